"""The accuracy budget: exit thresholds for the fewest expected MACs whose accuracy drop
against the backbone stays within `max_drop` points on the calibration split, and a
statistical guard so that the budget also holds on images the calibration never saw.

The search tries one knob per exit (the CPM margin, or the global policy's threshold),
shared by every exit or chosen exit by exit, calibrates the cascade in sequence with it
and measures it with `cascade_outcome`. Numpy and the standard library only.

The guard, at a confidence level (e.g. 0.9), judges the cascade's drop by a one-sided
Wilson score upper bound: of the m images on which the cascade and the backbone differ in
being right, b are those the cascade gets wrong; the drop is (2b - m) / n, and the bound
puts the upper bound of b / m in its place. The caller measures on images the thresholds
were not fitted on (btsee/steps/calibration.py holds part of the calibration split out):
measured on the fitting images, the drop is optimistic, and a bound on it is too.
CPM can also judge each class's precision by its lower bound (calib/cpm.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from calib.bounds import normal_quantile, wilson_upper
from calib.cpm import Calibration


@dataclass(frozen=True)
class Outcome:
    """A calibrated cascade measured on the calibration split."""

    drop_points: float
    """Backbone accuracy minus cascade accuracy, in points."""
    drop_bound_points: float
    """The guard's upper bound on the drop (the drop itself without a guard)."""
    mac_fraction: float


def cascade_outcome(exit_pred: np.ndarray, exit_macs: np.ndarray, backbone_pred: np.ndarray, labels: np.ndarray,
                    backbone_macs: float, confidence: float | None) -> Outcome:
    """Drop, its bound at `confidence` (None: no guard) and MAC fraction of a cascade that
    predicts `exit_pred` (N,) paying `exit_macs` (N,), against the backbone's `backbone_pred`."""
    n = len(labels)
    cascade_right, backbone_right = exit_pred == labels, backbone_pred == labels
    lost = int(np.sum(backbone_right & ~cascade_right))  # b
    gained = int(np.sum(~backbone_right & cascade_right))  # c
    drop = 100.0 * (lost - gained) / n
    bound = drop
    if confidence is not None:
        m = lost + gained
        p_up = float(wilson_upper(lost, m, normal_quantile(confidence)))
        bound = 100.0 * (2 * p_up - 1) * m / n if m else 0.0
    return Outcome(drop, bound, float(np.mean(exit_macs) / backbone_macs))


@dataclass
class BudgetChoice:
    """What the search chose: a knob per exit, the calibrations, the outcome, and every
    configuration tried (knobs, drop, bound, MAC fraction)."""

    knobs: list[float]
    calibrations: list[Calibration]
    outcome: Outcome
    tried: list[dict] = field(default_factory=list)


def search_budget(calibrate: Callable[[list[float]], list[Calibration]],
                  measure: Callable[[list[Calibration]], Outcome], knobs: Sequence[float], exits: int,
                  max_drop: float, per_exit: bool = False) -> BudgetChoice | None:
    """The fewest MACs whose drop bound is within `max_drop` points (ties: the smaller drop):
    first one knob shared by every exit, then, with `per_exit`, each exit's knob in turn
    (two passes, every value of `knobs`, the others held). None when no knob fits."""
    tried: dict[tuple, tuple[list[Calibration], Outcome]] = {}

    def run(setting: tuple[float, ...]) -> tuple[list[Calibration], Outcome]:
        if setting not in tried:
            cals = calibrate(list(setting))
            tried[setting] = (cals, measure(cals))
        return tried[setting]

    def key(setting: tuple[float, ...]) -> tuple[float, float]:
        outcome = run(setting)[1]
        return (outcome.mac_fraction, outcome.drop_points)

    fits = [s for s in ((k,) * exits for k in knobs) if run(s)[1].drop_bound_points <= max_drop]
    if not fits:
        return None
    best = min(fits, key=key)
    if per_exit:
        for _ in range(2):
            for j in range(exits):
                for value in knobs:
                    setting = best[:j] + (value,) + best[j + 1:]
                    if run(setting)[1].drop_bound_points <= max_drop and key(setting) < key(best):
                        best = setting
    cals, outcome = run(best)
    log = [{"knobs": list(s), "drop_points": round(o.drop_points, 4), "drop_bound_points": round(o.drop_bound_points, 4),
            "mac_fraction": round(o.mac_fraction, 5)} for s, (_, o) in tried.items()]
    return BudgetChoice(list(best), cals, outcome, log)
