"""Verification against the golden simulator: the exact float64 execution of the exported
QONNX graphs (`exact_qonnx`) and the bit-exactness chain golden = qonnx = FINN (`chain`)."""
