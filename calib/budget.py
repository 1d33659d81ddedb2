"""The accuracy budget: exit thresholds for the fewest expected MACs whose accuracy drop
against the backbone stays within `max_drop` points on the calibration split, and a
statistical guard so that the budget also holds on images the calibration never saw.

The search tries one knob per exit (the CPM margin, or the global policy's threshold),
shared by every exit or chosen exit by exit, calibrates the cascade in sequence with it
and measures it with `cascade_outcome`. Numpy and the standard library only.

The guard (`guarded_search`), at a confidence level (e.g. 0.9), is learn-then-test: the
thresholds are fitted on one part of the calibration split, which also orders the
candidate settings from the most cautious to the boldest; the other, held-out part then
tests them in that order, each by a one-sided upper bound on the cascade's drop, and
the last setting to pass before the first failure is chosen. Of the n held-out images, b
are right by the backbone and wrong by the cascade and c the other way round; the drop is
(b - c) / n, a difference of paired proportions, bounded by Tango's score bound (its
one-sided error stays near the nominal level even when c is small, which a Wilson bound on
b / (b + c) scaled by (b + c) / n does not: that one ignores the noise in b + c). Given the
number of unseen images the promise is about (the test split's, say), the bound is a
prediction bound for the drop those images will show, which adds their own sampling noise;
without it, the bound is on the expected drop (infinitely many images).
Because the order is fixed before the held-out images are looked at, testing many settings
does not spend the confidence (fixed-sequence testing), whereas choosing the boldest of
all settings whose bound passes does: bench/bench_budget.py measures both.
CPM can also judge each class's precision by its lower bound (calib/cpm.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from calib.bounds import normal_quantile, paired_difference_upper
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
                    backbone_macs: float, confidence: float | None, future_images: int | None = None) -> Outcome:
    """Drop, its bound at `confidence` (None: no guard) and MAC fraction of a cascade that
    predicts `exit_pred` (N,) paying `exit_macs` (N,), against the backbone's `backbone_pred`.
    With `future_images`, the bound is on the drop that many unseen images will show."""
    n = len(labels)
    cascade_right, backbone_right = exit_pred == labels, backbone_pred == labels
    lost = int(np.sum(backbone_right & ~cascade_right))  # b
    gained = int(np.sum(~backbone_right & cascade_right))  # c
    drop = 100.0 * (lost - gained) / n
    bound = drop
    if confidence is not None:
        z = normal_quantile(confidence)
        bound = 100.0 * float(paired_difference_upper(lost, gained, n, z, future_images))
    return Outcome(drop, bound, float(np.mean(exit_macs) / backbone_macs))


@dataclass
class BudgetChoice:
    """What the search chose: a knob per exit, the calibrations, the outcome, and every
    configuration tried (knobs, drop, bound, MAC fraction)."""

    knobs: list[float]
    calibrations: list[Calibration]
    outcome: Outcome
    tried: list[dict] = field(default_factory=list)


Setting = tuple[float, ...]
"""One knob per exit."""
Calibrate = Callable[[list[float]], list[Calibration]]
Measure = Callable[[list[Calibration]], Outcome]


def _memo(calibrate: Calibrate, measure: Measure,
          tried: dict[Setting, tuple[list[Calibration], Outcome]]) -> Callable[[Setting], tuple[list[Calibration], Outcome]]:
    """`setting` -> (calibrations, outcome), each setting calibrated and measured once (kept in `tried`)."""

    def run(setting: Setting) -> tuple[list[Calibration], Outcome]:
        if setting not in tried:
            cals = calibrate(list(setting))
            tried[setting] = (cals, measure(cals))
        return tried[setting]

    return run


def _log(tried: dict[Setting, tuple[list[Calibration], Outcome]]) -> list[dict]:
    return [{"knobs": list(s), "drop_points": round(o.drop_points, 4), "drop_bound_points": round(o.drop_bound_points, 4),
             "mac_fraction": round(o.mac_fraction, 5)} for s, (_, o) in tried.items()]


def search_budget(calibrate: Calibrate, measure: Measure, knobs: Sequence[float], exits: int,
                  max_drop: float, per_exit: bool = False) -> BudgetChoice | None:
    """The fewest MACs whose drop bound is within `max_drop` points (ties: the smaller drop):
    first one knob shared by every exit, then, with `per_exit`, each exit's knob in turn
    (two passes, every value of `knobs`, the others held). None when no knob fits."""
    tried: dict[Setting, tuple[list[Calibration], Outcome]] = {}
    run = _memo(calibrate, measure, tried)

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
    return BudgetChoice(list(best), cals, outcome, _log(tried))


def cautious_to_bold(run: Callable[[Setting], tuple[list[Calibration], Outcome]], knobs: Sequence[float], exits: int,
                     per_exit: bool, stop_drop: float) -> list[Setting]:
    """Settings in order from the most cautious (every exit at knobs[0]) to bolder ones;
    `knobs` run from the most cautious to the boldest and `run` measures on the fitting
    images. Shared: every exit at each knob in turn. Per exit: one exit's knob one step
    bolder at a time, each time the step that saves the most MACs per point of drop (steps
    that cost no drop first, the largest saving first). Stops after the first setting whose
    drop exceeds `stop_drop` points, or at the boldest knobs."""
    if not per_exit:
        path = []
        for k in knobs:
            path.append((k,) * exits)
            if run(path[-1])[1].drop_points > stop_drop:
                break
        return path
    at = [0] * exits  # each exit's index into knobs
    path = [(knobs[0],) * exits]
    while run(path[-1])[1].drop_points <= stop_drop and min(at) < len(knobs) - 1:
        here = run(path[-1])[1]
        steps = []
        for j in (j for j in range(exits) if at[j] < len(knobs) - 1):
            nxt = list(at)
            nxt[j] += 1
            there = run(tuple(knobs[i] for i in nxt))[1]
            saved, cost = here.mac_fraction - there.mac_fraction, there.drop_points - here.drop_points
            free = cost <= 0
            steps.append(((free, saved if free else saved / cost), -j, nxt))
        at = max(steps)[2]
        path.append(tuple(knobs[i] for i in at))
    return path


def guarded_search(calibrate: Calibrate, measure_fit: Measure, measure_check: Measure, knobs: Sequence[float],
                   exits: int, max_drop: float, per_exit: bool = False, stop_drop: float | None = None
                   ) -> BudgetChoice | None:
    """Learn then test. `measure_fit` (plain drop, on the images `calibrate` fits on) orders
    the settings by `cautious_to_bold` (up to `stop_drop` points, default 2 * max_drop + 1);
    `measure_check` (drop bound, on held-out images) tests them in that order, and the last
    to pass before the first failure is chosen. None when the most cautious one fails.
    `tried` lists the settings tested on the held-out images, in order."""
    fitted: dict[Setting, tuple[list[Calibration], Outcome]] = {}
    path = cautious_to_bold(_memo(calibrate, measure_fit, fitted), knobs, exits, per_exit,
                            2 * max_drop + 1 if stop_drop is None else stop_drop)
    tested: dict[Setting, tuple[list[Calibration], Outcome]] = {}
    chosen = None
    for setting in path:
        cals = fitted[setting][0]
        outcome = measure_check(cals)
        tested[setting] = (cals, outcome)
        if outcome.drop_bound_points > max_drop:
            break
        chosen = setting
    if chosen is None:
        return None
    return BudgetChoice(list(chosen), *tested[chosen], _log(tested))
