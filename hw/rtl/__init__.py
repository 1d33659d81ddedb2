"""The segments and blocks as RTL with open tools (no Vivado): FINN's generated HDL and
blocks of ours (`maxpool/`, `exit_decision/`, each beside its Python model and block
test), stitched per segment (`segment`, `patches`), simulated in Verilator (`stream`,
`tools`) and synthesized with Yosys for xc7 (`synth`)."""
