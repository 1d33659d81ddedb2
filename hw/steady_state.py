"""The one steady-state rule every throughput figure uses: the RTL simulations of a segment,
of the whole early-exit design and of the no-exit chain, and the pipeline model."""
from __future__ import annotations

import numpy as np


def steady_interval(end_cycles) -> float:
    """Cycles per frame in steady state from the cycles at which frames (or a design's
    decisions) left: the mean gap between the ends of the last 90 % (the pipeline's filling
    left out, at least the first end); with one end only, that end's cycle (an upper bound);
    0 without ends."""
    ends = np.asarray(end_cycles, np.float64)  # (n,)
    if len(ends) < 2:
        return float(ends[0]) if len(ends) else 0.0
    steady = ends[max(1, len(ends) // 10) - 1:]  # (m,) from the first end after the filling
    return float(np.diff(steady).mean())
