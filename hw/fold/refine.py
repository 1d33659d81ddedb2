"""A local search that improves one folded design within its resource limits.

The fold step's sweep folds every stage for one rate R times the share of images entering
it. That misses designs where a stage runs slower or faster than its share says: the
pipeline model's throughput depends on bursts of hard images and on which segment of a
stage binds. `refine` starts from a design of the sweep and, with the same pipeline model
and LUT model, repeats two moves until neither helps:

- trim: give a segment the fastest of its cheaper foldings when the design's modelled
  throughput stays within `keep` of what it was (LUTs freed at no cost);
- upgrade: give the segment whose next faster folding (the cheapest of those faster)
  buys the most images/s per LUT that folding, trimming other segments (the cheapest
  trims in images/s per LUT first) until the design is within `limits` again; taken only
  when the design ends faster.

It serves both designs alike: for the backbone alone (no exit built) it trims the
segments faster than the slowest and upgrades the slowest.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hw.fold.search import Design, FoldOption, ReplayCache, Topology, design_of, fits


def refine(design: Design, ladders: dict[str, Sequence[FoldOption]], topology: Topology, exits: np.ndarray,
           buffer_frames: int, clock_hz: float, limits: dict[str, float], cache: ReplayCache,
           keep: float = 0.999, max_moves: int = 100) -> Design:
    """A design within `limits` (LUT, BRAM18, DSP) building the same exits (`topology`),
    never below `keep` x `design`'s modelled images/s, with the moves of the module
    docstring applied until neither helps (at most `max_moves` rounds; no folding of the
    segments is visited twice)."""
    topo = topology.with_exits(design.exits_built)
    best = design
    floor = keep * design.fps
    seen = {_key(design.choice)}  # no state twice: a trim and an upgrade of one segment could undo each other

    def evaluate(choice: dict[str, FoldOption]) -> Design:
        return design_of(choice, topo, exits, buffer_frames, clock_hz, cache)

    for _ in range(max_moves):
        moved = False
        for name in sorted(best.choice, key=lambda n: -best.choice[n].lut):  # trim the dearest first
            cand = _trimmed(best, name, ladders, evaluate)
            if cand and _key(cand.choice) not in seen and cand.fps >= max(floor, keep * best.fps) \
                    and fits(cand, limits):
                best, moved = cand, True
                seen.add(_key(best.choice))
        gains = []
        for name, now in best.choice.items():
            faster = [o for o in ladders[name] if o.cycles < now.cycles]
            if not faster:
                continue
            cand = _within(evaluate(dict(best.choice, **{name: min(faster, key=lambda o: (o.lut, o.cycles))})),
                           name, ladders, evaluate, limits)
            if cand and _key(cand.choice) not in seen and cand.fps > best.fps:
                extra = cand.resources["LUT"] - best.resources["LUT"]
                gains.append(((cand.fps - best.fps) / max(extra, 1.0), cand))
        if gains:
            best, moved = max(gains, key=lambda g: g[0])[1], True
            seen.add(_key(best.choice))
        if not moved:
            break
    return best


def _trimmed(design: Design, name: str, ladders, evaluate) -> Design | None:
    """`design` with segment `name` at the fastest of its cheaper foldings; None when it has none."""
    cheaper = [o for o in ladders[name] if o.lut < design.choice[name].lut]
    if not cheaper:
        return None
    return evaluate(dict(design.choice, **{name: min(cheaper, key=lambda o: (o.cycles, o.lut))}))


def _within(design: Design, kept: str, ladders, evaluate, limits: dict[str, float]) -> Design | None:
    """`design` brought within `limits` by trimming the other segments than `kept`, each time
    the trim that loses the fewest images/s per LUT freed; None when no trim is left."""
    while not fits(design, limits):
        trims = [t for n in design.choice if n != kept and (t := _trimmed(design, n, ladders, evaluate))]
        if not trims:
            return None
        design = min(trims, key=lambda t: (design.fps - t.fps) / max(design.resources["LUT"] - t.resources["LUT"], 1.0))
    return design


def _key(choice: dict[str, FoldOption]) -> tuple:
    return tuple(sorted((n, o.cycles, o.lut) for n, o in choice.items()))
