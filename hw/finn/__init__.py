"""FINN (finn-plus) on this project's segments: QONNX -> HW-layer graphs (`convert`), the
builder made usable without Vivado (`builder`), and FINN's estimates of the HW graphs the
flow verifies (`estimate`)."""
