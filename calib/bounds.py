"""One-sided confidence bounds for the calibration's guard: of a proportion (Wilson score)
and of the difference of two paired proportions (Tango's score), the latter also as a
prediction bound for the difference a given number of new pairs will show. Numpy and the
standard library only."""
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


def paired_difference_upper(first: np.ndarray, second: np.ndarray, n: np.ndarray, z: float,
                            future: int | None = None) -> np.ndarray:
    """One-sided upper bound of p1 - p2 from n paired trials of which `first` have only the
    first event and `second` only the second (Tango's score bound, 1998): the largest d
    whose score statistic (b - c - n d) / sqrt(n (2 q(d) + d (1 - d))) stays at or above -z,
    q(d) being the maximum-likelihood p2 given p1 - p2 = d. Found by bisection to 1e-12.

    With `future`, a prediction bound instead: for the difference of the shares observed on
    that many new pairs, which adds their own noise. The observed share minus the future
    one has variance v (1/n + 1/future), v the per-pair variance, so the same score
    equation holds with z scaled by sqrt(1 + n / future); None is the limit of infinitely
    many new pairs, the bound on p1 - p2 itself."""
    if future is not None:
        if future < 1:
            raise ValueError(f"a prediction bound is for at least one new pair, got {future}")
        z = z * np.sqrt(1.0 + np.asarray(n, np.float64) / future)
    b, c = np.asarray(first, np.float64), np.asarray(second, np.float64)
    n = np.asarray(n, np.float64)
    lo, hi = np.broadcast_arrays((b - c) / n, np.ones_like(b + c + n))
    lo, hi = lo.copy(), hi.copy()
    for _ in range(50):
        d = (lo + hi) / 2
        keep = paired_score(b, c, n, d) >= -z
        lo, hi = np.where(keep, d, lo), np.where(keep, hi, d)
    return lo


def paired_score(b: np.ndarray, c: np.ndarray, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Tango's score statistic for the hypothesis p1 - p2 = d (decreasing in d)."""
    # the likelihood's stationary point in p2: 2n q^2 + B q + C = 0, the root at or above 0
    B = -b - c + (2 * n - b + c) * d
    C = -c * d * (1 - d)
    q = (-B + np.sqrt(np.maximum(B * B - 8 * n * C, 0.0))) / (4 * n)
    variance = n * (2 * q + d * (1 - d))  # of b - c under the hypothesis
    return (b - c - n * d) / np.sqrt(np.maximum(variance, 1e-300))
