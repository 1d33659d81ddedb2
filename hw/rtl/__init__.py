"""The segments and blocks as RTL with open tools (no Vivado): FINN's generated HDL and
blocks of ours, stitched per segment (`segment`), simulated in Verilator (`stream`,
`tools`) and synthesized with Yosys for xc7 (`synth`)."""
