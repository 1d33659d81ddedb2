"""The local search of `hw.fold.refine` on designs with a known better neighbour."""
from __future__ import annotations

import numpy as np

from hw.fold.refine import refine
from hw.fold.search import FoldOption, ReplayCache, Topology, design_of

N = 391


def _opt(cycles: int, lut: float) -> FoldOption:
    return FoldOption(1e8 / cycles, cycles, lut, 0.0, 0.0, out_words=10)


LADDERS = {"b0": [_opt(1000, 100), _opt(500, 300), _opt(250, 900)],
           "h0": [_opt(1000, 50), _opt(500, 150), _opt(250, 450)],
           "b1": [_opt(8000, 100), _opt(4000, 300), _opt(2000, 900)]}
TOPO = Topology(["b0", "b1"], ["h0"])
EXITS = (np.arange(N) % 4 == 3).astype(int)  # a quarter of the images go on to b1


def test_trims_an_overprovisioned_stage_and_spends_the_luts_where_they_pay():
    """Stage 0 at 250 cycles while a quarter of the images need b1's 8,000: the design runs
    at about 2,000 cycles an image. Refining within the same LUTs trims stage 0 and buys b1
    a faster folding: faster, within the limit."""
    cache = ReplayCache()
    start = design_of({"b0": LADDERS["b0"][2], "h0": LADDERS["h0"][2], "b1": LADDERS["b1"][0]}, TOPO, EXITS, 4,
                      1e8, cache)
    limit = {"LUT": start.resources["LUT"]}
    better = refine(start, LADDERS, TOPO, EXITS, 4, 1e8, limit, cache)
    assert better.fps > 1.5 * start.fps
    assert better.resources["LUT"] <= limit["LUT"]
    assert better.choice["b1"].cycles < 8000 and better.choice["b0"].cycles > 250


def test_never_slower_nor_over_the_limit_and_the_chain_alike():
    """From every starting folding: the refined design keeps the limit and is at least as
    fast as the start; for the backbone alone it ends with no segment faster than needed."""
    cache = ReplayCache()
    chain = TOPO.with_exits(())
    for b0 in LADDERS["b0"]:
        for b1 in LADDERS["b1"]:
            for topo, exits, choice in ((TOPO, EXITS, {"b0": b0, "h0": LADDERS["h0"][1], "b1": b1}),
                                        (chain, np.zeros(N, int), {"b0": b0, "b1": b1})):
                start = design_of(choice, topo, exits, 4, 1e8, cache)
                limit = {"LUT": start.resources["LUT"] + 200}
                got = refine(start, LADDERS, topo, exits, 4, 1e8, limit, cache)
                assert got.fps >= 0.999 * start.fps and got.resources["LUT"] <= limit["LUT"]
                if topo is chain:
                    slowest = max(o.cycles for o in got.choice.values())
                    assert all(o.cycles == slowest or o is LADDERS[n][0] or
                               not [x for x in LADDERS[n] if o.cycles < x.cycles <= slowest]
                               for n, o in got.choice.items())
