"""Exit calibration and metrics, numpy only, so it also runs on the board's ARM Linux.

Nothing in this package may import torch (a test checks it).
"""
