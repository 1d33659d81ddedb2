"""One-sided confidence bounds of a proportion (Wilson score), for the calibration's guard.
Numpy and the standard library only."""
from __future__ import annotations

import math

import numpy as np


def normal_quantile(p: float) -> float:
    """The standard normal's p-quantile (bisection on math.erf; exact to 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a confidence level lies strictly between 0 and 1, got {p}")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def wilson_lower(successes: np.ndarray, trials: np.ndarray, z: float) -> np.ndarray:
    """One-sided Wilson score lower bound of a proportion (0 where there are no trials)."""
    s, n = np.asarray(successes, np.float64), np.asarray(trials, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = s / n
        centre = p + z * z / (2 * n)
        spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return np.where(n > 0, (centre - spread) / (1 + z * z / n), 0.0)


def wilson_upper(successes: np.ndarray, trials: np.ndarray, z: float) -> np.ndarray:
    """One-sided Wilson score upper bound of a proportion (1 where there are no trials)."""
    s, n = np.asarray(successes, np.float64), np.asarray(trials, np.float64)
    return np.where(n > 0, 1.0 - wilson_lower(n - s, n, z), 1.0)
