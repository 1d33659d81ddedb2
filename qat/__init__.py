"""Quantization-aware training: data sets, Brevitas backbones and exit branches, training.

Imports torch and brevitas; depends on `calib` only.
"""
