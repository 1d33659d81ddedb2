"""The Python model of `exit_decision.sv`: the golden simulator's rule (`calib.rules.decide`),
the unit's output word, and its parameters from a thresholds table.

Thresholds outside what a score can reach are clamped to a value with the same outcome:
the score of LOGIT_BITS-bit logits lies in [-2**LOGIT_BITS, 2**LOGIT_BITS], and the unit
compares in LOGIT_BITS + 2 signed bits.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from calib.rules import decide

VECTORS = Path(__file__).with_name("vectors.npz")
"""Real head logits (first test images) and integer thresholds of the default run as it was
at commit 5a0b49a (2026-11-26, an earlier model than today's default, whose exits take other
shares of the images; written by `hw.rtl.exit_decision.vectors`, regenerated with
`python -m btsee.block_vectors RUN`)."""


def class_bits(k: int) -> int:
    return max(1, int(np.ceil(np.log2(k))))


def decisions(logits: np.ndarray, thresholds: list[int | None], kind: str) -> np.ndarray:
    """(N, K) integer logits -> (N, 3) rows (class, exits, score): the golden rule."""
    return decide(np.asarray(logits, np.int64), thresholds, kind)


def unpack_result(words: np.ndarray, k: int, logit_bits: int) -> np.ndarray:
    """(N,) output words of the unit -> (N, 3) rows (class, exits, score)."""
    cw, sw = class_bits(k), logit_bits + 2
    words = np.asarray(words, np.int64)
    cls = words & ((1 << cw) - 1)
    exits = (words >> cw) & 1
    score = (words >> (cw + 1)) & ((1 << sw) - 1)
    score = np.where(score >= 1 << (sw - 1), score - (1 << sw), score)
    return np.stack([cls, exits, score], axis=1)


def parameters(thresholds: list[int | None], logit_bits: int, kind: str) -> str:
    """The SystemVerilog parameter list `#(...)` of the unit for this table: THRESHOLDS
    packed, class c's LOGIT_BITS + 2 bit two's complement value in bits [c*SW +: SW]."""
    k, sw = len(thresholds), logit_bits + 2
    if k < 2:
        raise ValueError(f"the exit decision unit needs at least 2 classes, got {k}")
    lo, hi = -(1 << (sw - 1)), (1 << (sw - 1)) - 1
    values = [0 if t is None else min(max(int(t), lo), hi) for t in thresholds]
    enabled = "".join("1" if t is not None else "0" for t in reversed(thresholds))  # class 0 in bit 0
    packed = sum((v & ((1 << sw) - 1)) << (c * sw) for c, v in enumerate(values))
    return (f"#(.K({k}), .LOGIT_BITS({logit_bits}), .TOP_SCORE({int(kind == 'top')}), "
            f".ENABLED({k}'b{enabled}), .THRESHOLDS({k * sw}'h{packed:x}))")


def pack_result(rows: np.ndarray, k: int, logit_bits: int) -> np.ndarray:
    """(N, 3) rows (class, exits, score) -> (N,) output words of the unit (unpack_result's
    inverse)."""
    cw, sw = class_bits(k), logit_bits + 2
    rows = np.asarray(rows, np.int64)
    return rows[:, 0] | (rows[:, 1] << cw) | ((rows[:, 2] & ((1 << sw) - 1)) << (cw + 1))
