"""The exit rules, written once and used by calibration, evaluation, the golden
simulator and the board: argmax ties go to the lowest class index, and a sample exits
when `score >= threshold[predicted class]`. `decide` is the rule on a head's integer
logits, as the hardware applies it. (The leave-at-first rule is `calib.cascade.FirstExit`.)

Independent implementations check these: the streaming model of the exit unit in
`hw.exit_decision` (one logit at a time, as the RTL) and the per-image loop in the tests.
"""
from __future__ import annotations

import numpy as np

SCORE_KINDS = ("margin", "softmax")
HW_SCORES = ("margin", "top")
"""Scores with an integer form that the exit hardware computes from integer logits."""
NEVER = np.inf
"""The threshold of a class that never exits."""


def predicted_class(logits: np.ndarray) -> np.ndarray:
    """(N, K) -> (N,) argmax; ties go to the lowest class index (numpy's argmax does so)."""
    return np.argmax(logits, axis=1)


def top2_margin(logits: np.ndarray) -> np.ndarray:
    """(N, K) -> (N,) largest minus second-largest logit (0 on a tie); integer in, integer out."""
    part = np.partition(logits, -2, axis=1)  # (N, K), the two largest at the end
    return part[:, -1] - part[:, -2]


def max_softmax(logits: np.ndarray) -> np.ndarray:
    """(N, K) -> (N,) the largest softmax probability, in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return 1.0 / e.sum(axis=1)  # exp(max - max) = 1 over the sum


def exit_score(logits: np.ndarray, kind: str) -> np.ndarray:
    """(N, K) -> (N,) the score compared with the thresholds: 'margin' or 'softmax'."""
    if kind == "margin":
        return top2_margin(logits)
    if kind == "softmax":
        return max_softmax(logits)
    raise ValueError(f"score kind must be one of {SCORE_KINDS}, got {kind!r}")


def exits(scores: np.ndarray, classes: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N,) bool: sample n exits when scores[n] >= thresholds[classes[n]]."""
    return scores >= thresholds[classes]


def integer_score(logits: np.ndarray, kind: str) -> np.ndarray:
    """(N, K) integer logits -> (N,) int64 hardware score: 'margin' or 'top' (largest logit)."""
    z = logits.astype(np.int64)
    if kind == "margin":
        return top2_margin(z)
    if kind == "top":
        return z.max(axis=1)
    raise ValueError(f"hardware score must be one of {HW_SCORES}, got {kind!r}")


def decide(logits: np.ndarray, thresholds: list[int | None], kind: str) -> np.ndarray:
    """(N, K) integer logits -> (N, 3) int64 rows (class, exits 0/1, score); a None
    threshold means the class never exits."""
    if logits.ndim != 2 or logits.shape[1] != len(thresholds):
        raise ValueError(f"logits of shape {logits.shape} for {len(thresholds)} class thresholds")
    if not np.array_equal(logits, np.round(logits)):
        raise ValueError("the exit decision takes integer logits")
    cls = predicted_class(logits.astype(np.int64))  # (N,)
    score = integer_score(logits, kind)  # (N,)
    enabled = np.array([t is not None for t in thresholds])  # (K,)
    table = np.array([0 if t is None else t for t in thresholds], np.int64)  # (K,)
    leave = enabled[cls] & (score >= table[cls])  # (N,) the comparator
    return np.stack([cls, leave.astype(np.int64), score], axis=1)
