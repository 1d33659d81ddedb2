"""The Python model of `global_acc_pool.sv`, and the stream layout it reads.

`channel_sums` is the golden simulator's GlobalAccPool (the sum over the image of each
channel); the stream functions put a feature map into FINN's (pixel, fold) word order, the
order the block receives, and compute the block's output words from its input words.
`out_bits` is FINN's output width rule, the OUT_BITS the generator passes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

FEATURE_MAPS = Path(__file__).with_name("feature_maps.npz")
"""Real feature maps for the block test: `pool_input`, the (N, 16, 16, 16) UINT4 codes that
feed backbone_final's GlobalAccPool on the first 6 test images of a ResNet-8 run (channels
8/16/16, 4-bit weights and activations, 12 epochs) on 64x64 RGB images of a 6-class
imagefolder tree made from Fashion-MNIST, built 2026-12-07 (written by
`hw.rtl.global_acc_pool.vectors`, regenerated with `python -m btsee.block_vectors RUN`)."""


def channel_sums(fmap: np.ndarray) -> np.ndarray:
    """(N, H, W, C) integer feature map -> (N, C) int64: each channel summed over the image
    (exact: the sum runs in int64)."""
    return np.asarray(fmap).astype(np.int64).sum(axis=(1, 2))


def pool_stream(fmap: np.ndarray, pe: int) -> np.ndarray:
    """(N, H, W, C) feature map -> the block's input words as (N*H*W*C/PE, PE) values, in
    order (N, pixel, fold, PE): channel f*PE + p of a pixel in lane p of its word f."""
    n, h, w, c = fmap.shape
    if c % pe:
        raise ValueError(f"PE {pe} does not divide {c} channels")
    return np.asarray(fmap).reshape(n * h * w * (c // pe), pe)


def stream_sums(words: np.ndarray, pixels: int, folds: int) -> np.ndarray:
    """The block: (N*pixels*folds, PE) input words -> (N*folds, PE) int64 output words, word
    f of a frame the lane-wise sum of word f of each of its pixels."""
    pe = words.shape[1]
    frames = np.asarray(words).astype(np.int64).reshape(-1, pixels, folds, pe)  # (N, pixels, folds, PE)
    return frames.sum(axis=1).reshape(-1, pe)


def out_bits(in_bits: int, in_signed: bool, pixels: int) -> int:
    """FINN's GlobalAccPool output width: the bits of the smallest datatype that holds
    pixels x the input's extreme (its minimum when signed, else its maximum), unsigned
    preferred (`DataType.get_smallest_possible`)."""
    if in_signed:
        extreme = -pixels * (1 << (in_bits - 1))  # <= -1
        return (-extreme - 1).bit_length() + 1
    extreme = pixels * ((1 << in_bits) - 1)
    return max(1, extreme.bit_length())
