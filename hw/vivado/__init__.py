"""The Vivado side: the build folder for a bitstream (block design Tcl in finn-plus's Zynq
shell layout, build script with its log and timing gates, the Tcl helpers `btsee.tcl`, the
multi-exit design's SystemVerilog as sources, FINN's per-segment build configs), the gates'
Python twins (`checks.py`), the tclsh stand-ins the tests run the scripts with (`testing.py`)
and the stream block that ends the output DMA's transfers (`axis_last.sv`, model in `model.py`)."""
