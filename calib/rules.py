"""The exit rules, written once and used by calibration, evaluation, the golden
simulator and the hardware: argmax ties go to the lowest class index, and a sample
exits when `score >= threshold[predicted class]`.
"""
from __future__ import annotations

import numpy as np

SCORE_KINDS = ("margin", "softmax")
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
