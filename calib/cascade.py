"""Running a cascade of exits and measuring it: accuracy, exit fractions, MAC fraction,
and the oracle bound. Numpy only.

Exit k (0-based) sits after backbone segment `point_macs[k]`; a sample leaving at exit k
pays the backbone MACs up to that point plus the MACs of heads 0..k. A sample that no
head takes pays the whole backbone and every head (index K = the final classifier).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.cpm import Calibration
from calib.rules import exit_score, exits, predicted_class


@dataclass(frozen=True)
class Costs:
    """MACs per sample: the whole backbone, the backbone up to each exit, each head."""

    backbone: int
    to_exit: tuple[int, ...]
    heads: tuple[int, ...]

    @classmethod
    def for_points(cls, segment_macs: dict[str, int], points: list[str], head_macs: list[int]) -> "Costs":
        """Costs of heads with `head_macs` at exit `points`, on a backbone whose segments
        (in order) cost `segment_macs`."""
        names = list(segment_macs)
        unknown = [p for p in points if p not in names]
        if unknown or len(head_macs) != len(points):
            raise ValueError(f"exit points {points} with {len(head_macs)} head costs on segments {names}")
        to_exit = [sum(segment_macs[n] for n in names[:names.index(p) + 1]) for p in points]
        return cls(sum(segment_macs.values()), tuple(to_exit), tuple(int(m) for m in head_macs))

    def per_exit(self) -> np.ndarray:
        """(K+1,) MACs of a sample leaving at exit k (last entry: the final classifier)."""
        head_cum = np.cumsum(self.heads)
        leave = [self.to_exit[k] + head_cum[k] for k in range(len(self.heads))]
        return np.asarray(leave + [self.backbone + (head_cum[-1] if len(self.heads) else 0)],
                          np.float64)


class FirstExit:
    """The leave-at-first rule, written once: a sample leaves at the first exit that takes
    it, with that exit's prediction; a sample no exit takes gets the final classifier's
    (exit index = the number of exits). Exits are offered in order, so the golden
    simulator can drop the samples that left before it runs the next segment."""

    def __init__(self, n: int, num_exits: int):
        self.num_exits = num_exits
        self.exit_index = np.full(n, num_exits, np.int64)  # (N,)
        self.pred = np.zeros(n, np.int64)  # (N,)
        self.open = np.ones(n, bool)  # (N,) not taken by any exit offered so far
        self._next = 0

    def offer(self, j: int, takes: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Exit j takes the open samples with `takes` (N,) true, predicting `pred` (N,);
        returns (N,) which samples left here."""
        if j != self._next:
            raise ValueError(f"exit {j} offered after exit {self._next - 1}; offer them in order")
        self._next += 1
        take = self.open & takes
        self.exit_index[take] = j
        self.pred[take] = pred[take]
        self.open &= ~take
        return take

    def finish(self, final_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The open samples take the final classifier's `final_pred` (N,); returns
        (exit index (N,), prediction (N,))."""
        if self._next != self.num_exits:
            raise ValueError(f"{self._next} of {self.num_exits} exits offered before the final classifier")
        self.pred[self.open] = final_pred[self.open]
        return self.exit_index, self.pred


def leave_at_first(takes: list[np.ndarray], head_pred: list[np.ndarray],
                   final_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exit index (N,), prediction (N,)): each sample leaves at the first exit j with
    takes[j] true, with that head's prediction, else at the final classifier (index K)."""
    first = FirstExit(len(final_pred), len(takes))
    for j, (take, pred) in enumerate(zip(takes, head_pred)):
        first.offer(j, take, pred)
    return first.finish(final_pred)


def run_cascade(head_pred: list[np.ndarray], head_score: list[np.ndarray],
                thresholds: list[np.ndarray], final_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (exit index (N,), prediction (N,)): each sample leaves at the first head whose
    score clears the threshold of its predicted class, else at the final classifier (K)."""
    takes = [exits(s, p, t) for s, p, t in zip(head_score, head_pred, thresholds)]
    return leave_at_first(takes, head_pred, final_pred)


def summarize(exit_at: np.ndarray, pred: np.ndarray, labels: np.ndarray, costs: Costs,
              num_classes: int) -> dict:
    """Accuracy, exit fraction per exit and per true class, MAC fraction of a cascade."""
    k1 = len(costs.heads) + 1
    n = len(labels)
    per_exit = np.bincount(exit_at, minlength=k1) / max(1, n)
    by_class = np.zeros((k1, num_classes))
    for c in range(num_classes):
        sel = labels == c
        if sel.any():
            by_class[:, c] = np.bincount(exit_at[sel], minlength=k1) / sel.sum()
    macs = costs.per_exit()[exit_at]
    return {"accuracy": float((pred == labels).mean()) if n else float("nan"),
            "exit_fraction": per_exit.tolist(),
            "exit_fraction_by_class": by_class.tolist(),
            "mac_fraction": float(macs.mean() / costs.backbone) if n else float("nan")}


def oracle(head_pred: list[np.ndarray], final_pred: np.ndarray, labels: np.ndarray,
           costs: Costs, num_classes: int) -> dict:
    """The limit of any thresholds on these heads: every sample leaves at the first head
    that is right (else at the final classifier)."""
    exit_at, pred = leave_at_first([p == labels for p in head_pred], head_pred, final_pred)
    return summarize(exit_at, pred, labels, costs, num_classes)


def calibrate_exit(logits: np.ndarray, labels: np.ndarray, open_: np.ndarray, anchor: np.ndarray,
                   policy) -> tuple[Calibration, np.ndarray]:
    """Calibrates one exit on the still-open validation samples; returns the calibration
    and (N,) whether each sample (open or not) would exit there."""
    pred = predicted_class(logits)  # (N,)
    score = exit_score(logits, policy.score)  # (N,)
    cal = policy.calibrate(score[open_], pred[open_], labels[open_], anchor)
    return cal, exits(score, pred, cal.thresholds)


def calibrate_in_sequence(head_logits: list[np.ndarray], labels: np.ndarray, anchor: np.ndarray,
                          policy) -> list[Calibration]:
    """Calibrates exit 0 on all validation samples, exit k on those exits 0..k-1 pass on;
    `policy` is one CalibrationPolicy for every exit, or a list of one per exit."""
    policies = policy if isinstance(policy, (list, tuple)) else [policy] * len(head_logits)
    open_ = np.ones(len(labels), bool)
    out = []
    for logits, pol in zip(head_logits, policies):
        cal, leave = calibrate_exit(logits, labels, open_, anchor, pol)
        open_ &= ~leave
        out.append(cal)
    return out


def cascade_from_logits(head_logits: list[np.ndarray], thresholds: list[np.ndarray],
                        final_logits: np.ndarray, score: str) -> tuple[np.ndarray, np.ndarray]:
    """(exit index (N,), prediction (N,)) of the cascade, from the logits of every head."""
    preds = [predicted_class(z) for z in head_logits]
    scores = [exit_score(z, score) for z in head_logits]
    return run_cascade(preds, scores, thresholds, predicted_class(final_logits))
