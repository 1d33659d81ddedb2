"""The Python model of `column_max.sv`, and the stream layout it reads.

`column_max` is the golden simulator's ColumnMax layer (hw.golden calls it, and so does the
FINN op's Python execution, `hw.finn.column_max_op`); `geometry` gives the block's ROWS and
WORDS for a feature map, `row_stream` puts a map into the NHWC word order the block
receives, and `stream_column_max` is the block itself on those words.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

VECTORS = Path(__file__).with_name("vectors.npz")
"""Real head inputs for the block test, from the default run as it was at commit 5a0b49a
(2026-11-26, an earlier model than today's default; written by `hw.rtl.column_max.vectors`,
regenerated with `python -m btsee.block_vectors RUN`)."""


def column_max(fmap: np.ndarray, whole_map: bool) -> np.ndarray:
    """(N, H, W, C) -> (N, 1, W, C), the max over the rows; with `whole_map` (N, 1, 1, C),
    the max over rows and columns."""
    out = fmap.max(axis=1, keepdims=True)  # (N, 1, W, C)
    return out.max(axis=2, keepdims=True) if whole_map else out


def geometry(height: int, width: int, channels: int, pe: int, whole_map: bool) -> tuple[int, int]:
    """(ROWS, WORDS) of the block for an (H, W, C) map folded by PE: the rows reduced and
    the words of PE values kept per row."""
    if channels % pe:
        raise ValueError(f"PE {pe} does not divide {channels} channels")
    if whole_map:
        return height * width, channels // pe
    return height, width * channels // pe


def row_stream(fmap: np.ndarray, pe: int) -> np.ndarray:
    """(N, H, W, C) -> the block's input words (N*H*W*C/PE, PE), NHWC order."""
    return fmap.reshape(-1, pe)


def stream_column_max(words: np.ndarray, rows: int, words_per_row: int) -> np.ndarray:
    """The block: (n * ROWS * WORDS, PE) words -> (n * WORDS, PE), each word the max of
    the words at its position in the ROWS rows of its frame."""
    frames = words.reshape(-1, rows, words_per_row, words.shape[1])  # (n, ROWS, WORDS, PE)
    return frames.max(axis=1).reshape(-1, words.shape[1])
