"""Residual add of ours (finn-plus ElementwiseAdd of two streams): residual_add.sv, model.py, its test."""
