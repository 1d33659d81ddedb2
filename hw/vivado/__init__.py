"""The Vivado side: the build folder for a bitstream (block design Tcl, build script, the
multi-exit design's SystemVerilog as sources, FINN's per-segment build configs) and the
stream block that ends the output DMA's transfers (`axis_last.sv`, model in `model.py`)."""
