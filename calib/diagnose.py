"""Why an exit takes (almost) nothing, in one line with the figures (numpy only).

For each exit, on the validation images that reach it (those the earlier exits pass on):

- how many it takes, and the share of them its head gets right: the most any thresholds
  could let out there at no loss (the oracle's share);
- the head's accuracy on them against the backbone's on the same images (a weak head);
- each class that never exits, and why: fewer predictions than `calibration.min_support`
  (too few calibration images; with a `class_confidence`, the precision a flawless class
  could prove with them), or a precision that never reaches the class's bar (the closest
  it comes).

`diagnose_exits` returns one ExitDiagnosis per exit; `line()` gives what the calibrate step
logs for an exit that takes under TAKES_ALMOST_NOTHING of what reaches it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from calib.bounds import normal_quantile, wilson_lower
from calib.rules import exit_score, predicted_class

TAKES_ALMOST_NOTHING = 0.02
"""An exit that takes less than this share of the images reaching it is diagnosed."""
CLOSE_TO_BAR = 0.03
"""A class whose best precision comes this close to its bar is limited by the policy's
margin or budget rather than by the head."""


def best_precision(scores: np.ndarray, correct: np.ndarray, min_support: int, z: float | None = None) -> float:
    """The highest precision (or its Wilson lower bound at `z`) of any `score >= t` rule
    over at least `min_support` samples; NaN with fewer samples. Mirrors the thresholds
    `calib.cpm.lowest_threshold` may choose: only cuts between distinct scores."""
    if len(scores) < max(1, min_support):
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    s = scores[order]  # (n,) descending
    hits = np.cumsum(correct[order])  # (n,)
    count = np.arange(1, len(s) + 1)
    cut = np.append(s[:-1] > s[1:], True) & (count >= min_support)
    precision = hits / count if z is None else wilson_lower(hits, count, z)
    return float(precision[cut].max())


@dataclass
class ExitDiagnosis:
    """What limits one exit on the validation split."""

    point: str
    reaching: int
    """Validation images that reach this exit."""
    taken: int
    """Of them, how many leave here with the calibrated thresholds."""
    head_right: int
    """Of them, how many the head classifies right: the most any thresholds could take at no loss."""
    backbone_right: int
    """Of them, how many the backbone classifies right."""
    few_images: list[str] = field(default_factory=list)
    """Classes that never exit because the head predicted them fewer than min_support times."""
    below_bar: list[tuple[str, float, float]] = field(default_factory=list)
    """(class, best precision, bar) of classes that never exit because no threshold reaches the bar."""
    provable: float | None = None
    """With a class_confidence: the precision a flawless class could prove with the median support."""
    limit: str = ""
    """'' (it pays), 'images', 'policy' or 'head'."""
    advice: str = ""

    @property
    def takes_almost_nothing(self) -> bool:
        return self.taken < TAKES_ALMOST_NOTHING * max(1, self.reaching)

    def line(self) -> str:
        """One log line: the figures, the limit and what would help."""
        n = max(1, self.reaching)
        parts = [f"{self.point}: takes {self.taken} of {self.reaching} ({self.taken / n:.1%})",
                 f"head right on {self.head_right / n:.1%} (backbone {self.backbone_right / n:.1%})"]
        if self.few_images:
            parts.append(f"{len(self.few_images)} classes under min_support")
        if self.provable is not None:
            parts.append(f"a flawless class proves at most {self.provable:.3f}")
        if self.below_bar:
            name, best, bar = max(self.below_bar, key=lambda b: b[1] - b[2])
            parts.append(f"{len(self.below_bar)} classes below their bar (closest: {name} {best:.3f} of {bar:.3f})")
        return "; ".join(parts) + (f" -> limited by the {self.limit}: {self.advice}" if self.limit else "")

    def to_dict(self) -> dict:
        """The figures, flat enough for report.json and report.md (below_bar as 'class best/bar')."""
        doc = asdict(self)
        del doc["point"]
        doc["below_bar"] = [f"{c} {p:.4f}/{b:.4f}" for c, p, b in self.below_bar]
        doc["provable"] = None if self.provable is None else round(self.provable, 4)
        return doc


def _limit(d: ExitDiagnosis, min_support: int, val_images: int) -> tuple[str, str]:
    """The main limit of an exit that takes almost nothing, and what would help."""
    if not d.takes_almost_nothing:
        return "", ""
    never = len(d.few_images) + len(d.below_bar)
    if never == 0:  # every class may exit (a global threshold): the threshold sits above the scores
        return "policy", "a larger calibration.max_drop, or calibration.policy: cpm"
    if d.few_images and len(d.few_images) * 2 >= never:
        return "images", (f"more calibration images (data.val_fraction; {val_images} now) or a lower "
                          f"calibration.min_support ({min_support} now)")
    if d.below_bar and max(p - b for _, p, b in d.below_bar) >= -CLOSE_TO_BAR:
        return "policy", "a bolder calibration.margin or a larger calibration.max_drop, or budget_search: per_exit"
    return "head", "a stronger head (exits.conv_channels, exits.epochs) or a later exit point"


def diagnose_exits(points: list[str], head_logits: list[np.ndarray], final_logits: np.ndarray,
                   labels: np.ndarray, exit_at: np.ndarray, calibrations: list, classes: list[str],
                   score: str, min_support: int, class_confidence: float | None = None) -> list[ExitDiagnosis]:
    """One ExitDiagnosis per exit, from the validation logits (heads (N, K) each, final
    (N, K)), labels (N,), where the calibrated cascade lets each image out `exit_at` (N,)
    and the exits' Calibrations (thresholds and bars per class)."""
    z = None if class_confidence is None else normal_quantile(class_confidence)
    backbone_ok = predicted_class(final_logits) == labels  # (N,)
    out = []
    for j, (point, logits, cal) in enumerate(zip(points, head_logits, calibrations)):
        reach = exit_at >= j  # (N,)
        pred = predicted_class(logits)  # (N,)
        scores = exit_score(logits, score)  # (N,)
        d = ExitDiagnosis(point, int(reach.sum()), int((exit_at == j).sum()),
                          int((reach & (pred == labels)).sum()), int((reach & backbone_ok).sum()))
        supports = []
        for c, name in enumerate(classes):
            if np.isfinite(cal.thresholds[c]):
                continue
            sel = reach & (pred == c)
            supports.append(int(sel.sum()))
            best = best_precision(scores[sel], labels[sel] == c, min_support, z)
            if np.isnan(best):
                d.few_images.append(name)
            elif np.isfinite(cal.bar[c]):
                d.below_bar.append((name, best, float(cal.bar[c])))
        if z is not None and supports:
            support = max(1, int(np.median(supports)))
            d.provable = float(wilson_lower(np.array([support]), np.array([support]), z)[0])
        d.limit, d.advice = _limit(d, min_support, len(labels))
        out.append(d)
    return out
