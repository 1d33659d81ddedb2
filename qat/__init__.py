"""Quantization-aware training: data sets, Brevitas backbones and exit branches, training.

Imports torch and brevitas; depends on `calib` only.
"""
import logging

# Brevitas imports torch.utils.cpp_extension, which warns on every start that a CPU-only
# machine has no CUDA runtime; that says nothing to a user of this toolkit.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
