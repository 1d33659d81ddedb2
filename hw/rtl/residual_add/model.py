"""The Python model of `residual_add.sv`: the element-wise sum of two streams, as the
golden simulator's ElementwiseAdd computes it (`hw.golden._elementwise_add`), and the
output widths that hold every sum.

The block adds modulo 2**OUT_BITS; `fits` says when that is the exact sum for every
pair of input codes (the generator passes FINN's `out_dtype` width and checks it here).
"""
from __future__ import annotations

import numpy as np


def value_range(bits: int, signed: bool) -> tuple[int, int]:
    """(lowest, highest) code of a `bits`-wide value: two's complement when signed."""
    if bits < 1:
        raise ValueError(f"values of {bits} bits")
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def add_streams(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., PE) lhs codes, (..., PE) rhs codes of one shape -> (..., PE) int64, a + b."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if a.shape != b.shape:
        raise ValueError(f"adds streams of shapes {a.shape} and {b.shape}")
    return a + b


def sum_range(a_bits: int, a_signed: bool, b_bits: int, b_signed: bool) -> tuple[int, int]:
    """(lowest, highest) sum of an a code and a b code."""
    (a_lo, a_hi), (b_lo, b_hi) = value_range(a_bits, a_signed), value_range(b_bits, b_signed)
    return a_lo + b_lo, a_hi + b_hi


def fits(out_bits: int, out_signed: bool, a_bits: int, a_signed: bool, b_bits: int, b_signed: bool) -> bool:
    """Whether every sum of an a code and a b code is an `out_bits`-wide value (two's
    complement when out_signed): then the block's modulo sum is exact."""
    lo, hi = sum_range(a_bits, a_signed, b_bits, b_signed)
    out_lo, out_hi = value_range(out_bits, out_signed)
    return out_lo <= lo and hi <= out_hi


def out_bits(a_bits: int, a_signed: bool, b_bits: int, b_signed: bool) -> int:
    """The narrowest output width that holds every sum, signed when either input is
    (the block's OUT_BITS; `fits` holds for it and fails for one bit less)."""
    signed = a_signed or b_signed
    bits = 1
    while not fits(bits, signed, a_bits, a_signed, b_bits, b_signed):
        bits += 1
    return bits
