"""CPM (Class Precision Margin) thresholds and the global-threshold baseline.

For each class c the head predicts, the anchor is the backbone's precision on c on the
validation set. The threshold is the lowest score t at which the head's precision over
its validation samples predicted c with score >= t is still at least the bar
(anchor - margin, or (1 - margin) * anchor, capped at 1), over at least `min_support`
samples. A
class that never clears the bar (or is never predicted, or has no anchor) never exits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.bounds import normal_quantile, wilson_lower
from calib.rules import NEVER

MARGIN_MODES = ("additive", "multiplicative")


def class_precision(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(K,) precision of `pred` per predicted class; NaN for a class never predicted."""
    predicted = np.bincount(pred, minlength=num_classes).astype(np.float64)
    right = np.bincount(pred[pred == labels], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(predicted > 0, right / predicted, np.nan)


def precision_bar(anchor: np.ndarray, margin: float, mode: str) -> np.ndarray:
    """(K,) the precision each class must keep: anchor - margin or (1 - margin) * anchor,
    at most 1. A negative margin asks for more than the backbone's precision; the cap keeps
    the classes the backbone already gets (nearly) all right able to exit at precision 1."""
    if mode == "additive":
        return np.minimum(anchor - margin, 1.0)
    if mode == "multiplicative":
        return np.minimum((1.0 - margin) * anchor, 1.0)
    raise ValueError(f"margin mode must be one of {MARGIN_MODES}, got {mode!r}")


def lowest_threshold(scores: np.ndarray, correct: np.ndarray, bar: float, min_support: int,
                     z: float | None = None) -> float:
    """The lowest t with precision(score >= t) >= bar over >= min_support samples, else NEVER;
    with `z`, the precision's one-sided Wilson lower bound at that normal quantile must clear
    the bar instead (the guard).

    Only thresholds at a score value are considered, so samples with equal scores are
    always on the same side (the rule is `>=`).
    """
    if len(scores) < max(1, min_support) or np.isnan(bar):
        return NEVER
    order = np.argsort(-scores, kind="stable")
    s = scores[order]  # (n,) descending
    hits = np.cumsum(correct[order])  # (n,) correct samples among the top i+1
    count = np.arange(1, len(s) + 1)
    boundary = np.append(s[:-1] > s[1:], True)  # prefix ends between distinct scores
    precise = hits >= bar * count if z is None else wilson_lower(hits, count, z) >= bar
    ok = boundary & precise & (count >= min_support)
    if not ok.any():
        return NEVER
    return float(s[np.flatnonzero(ok)[-1]])


@dataclass
class Calibration:
    """Per-class thresholds of one exit and how they were found."""

    thresholds: np.ndarray
    """(K,) float64; NEVER (inf) for a class that does not exit."""
    bar: np.ndarray
    """(K,) the precision each class had to keep (NaN where there is no anchor)."""
    support: np.ndarray
    """(K,) validation samples the head predicted as each class."""

    def to_dict(self) -> dict:
        fin = lambda a: [None if not np.isfinite(v) else float(v) for v in a]  # noqa: E731
        return {"thresholds": fin(self.thresholds), "bar": fin(self.bar),
                "support": [int(v) for v in self.support]}


def cpm_calibrate(scores: np.ndarray, pred: np.ndarray, labels: np.ndarray, anchor: np.ndarray,
                  margin: float, mode: str = "additive", min_support: int = 20,
                  confidence: float | None = None) -> Calibration:
    """CPM thresholds of one exit from its validation scores (N,), predictions (N,) and
    the true labels (N,); `anchor` is the backbone's per-class precision (K,). With a
    `confidence`, each class's precision is judged by its lower confidence bound."""
    k = len(anchor)
    bar = precision_bar(np.asarray(anchor, np.float64), margin, mode)
    z = None if confidence is None else normal_quantile(confidence)
    thresholds = np.full(k, NEVER)
    for c in range(k):
        sel = pred == c
        thresholds[c] = lowest_threshold(scores[sel], labels[sel] == c, bar[c], min_support, z)
    return Calibration(thresholds, bar, np.bincount(pred, minlength=k))


def global_calibrate(threshold: float, num_classes: int, pred: np.ndarray) -> Calibration:
    """The BranchyNet/SDN baseline: one threshold for every class of an exit."""
    return Calibration(np.full(num_classes, float(threshold)), np.full(num_classes, np.nan),
                       np.bincount(pred, minlength=num_classes))


POLICIES = ("cpm", "global")


@dataclass
class CalibrationPolicy:
    """How an exit's thresholds are chosen (mirrors the config's `calibration` section)."""

    policy: str = "cpm"
    """'cpm' (per-class, anchored at the backbone's precision) or 'global' (one threshold)."""
    score: str = "margin"
    """'margin' (top-2 logit margin, what the hardware computes) or 'softmax' (max softmax)."""
    margin: float = -0.05
    margin_mode: str = "additive"
    min_support: int = 20
    global_threshold: float = 0.9
    class_confidence: float | None = None
    """CPM: judge each class's precision by its one-sided lower bound at this confidence."""

    def calibrate(self, scores: np.ndarray, pred: np.ndarray, labels: np.ndarray,
                  anchor: np.ndarray) -> Calibration:
        """Thresholds from the validation survivors' scores, predictions and labels (N,)."""
        if self.policy == "cpm":
            return cpm_calibrate(scores, pred, labels, anchor, self.margin, self.margin_mode,
                                 self.min_support, self.class_confidence)
        if self.policy == "global":
            return global_calibrate(self.global_threshold, len(anchor), pred)
        raise ValueError(f"calibration.policy: choose one of {POLICIES}, got {self.policy!r}")
