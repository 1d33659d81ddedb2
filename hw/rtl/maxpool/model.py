"""The Python model of `maxpool.sv`, and the stream layout it reads.

`window_max` is the golden simulator's max pool (hw.golden's Pool layer calls it); the
stream functions put a feature map into FINN's depthwise sliding-window order, the order
the block receives from ConvolutionInputGenerator_rtl (depthwise = 1), and take the
block's output back.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

FEATURE_MAPS = Path(__file__).with_name("feature_maps.npz")
"""Real feature maps for the block test: backbone_0's 4-bit outputs on test images of the
default run as it was at commit 3c01768 (2026-11-26, an earlier model than today's default;
written by `hw.rtl.maxpool.vectors`, regenerated with `python -m btsee.block_vectors RUN`)."""


def window_max(windows: np.ndarray) -> np.ndarray:
    """(..., K, C) window values -> (..., C): the max over each window (MaxPool)."""
    return windows.max(axis=-2)


def window_stream(fmap: np.ndarray, kernel: tuple[int, int], pe: int) -> np.ndarray:
    """(N, H, W, C) feature map, non-overlapping kh x kw windows -> the depthwise window
    stream as (words, PE) values, in order (N, OH, OW, C/PE, kh*kw, PE)."""
    n, h, w, c = fmap.shape
    kh, kw = kernel
    oh, ow = h // kh, w // kw
    win = fmap[:, :oh * kh, :ow * kw].reshape(n, oh, kh, ow, kw, c // pe, pe)
    win = win.transpose(0, 1, 3, 5, 2, 4, 6)  # (N, OH, OW, C/PE, kh, kw, PE)
    return win.reshape(-1, pe)


def stream_max(words: np.ndarray, kernel_words: int) -> np.ndarray:
    """The block: (n * K, PE) words -> (n, PE), each group of K consecutive words maxed."""
    return window_max(words.reshape(-1, kernel_words, words.shape[1]))


def pooled(fmap: np.ndarray, kernel: tuple[int, int]) -> np.ndarray:
    """(N, H, W, C) -> (N, OH, OW, C): the max pool the golden simulator computes, as the
    windows of `hw.golden` present it ((kh, kw, c) per output pixel)."""
    n, h, w, c = fmap.shape
    kh, kw = kernel
    oh, ow = h // kh, w // kw
    win = fmap[:, :oh * kh, :ow * kw].reshape(n, oh, kh, ow, kw, c).transpose(0, 1, 3, 2, 4, 5)
    return window_max(win.reshape(n, oh, ow, kh * kw, c))
