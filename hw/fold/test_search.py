"""`hw.fold.search.front_density`: how closely two fronts' LUT counts interleave."""
from __future__ import annotations

import json

from hw.fold.search import Design, front_density


def _design(luts: float) -> Design:
    return Design(kind="x", rate_target=1.0, choice={}, resources={"LUT": luts}, fps=1.0, cycles_per_image=1.0)


def test_the_gap_is_the_distance_to_the_nearest_point_of_the_other_front():
    early = [_design(10_000), _design(20_000)]
    plain = [_design(10_300), _design(22_000)]
    d = front_density(early, plain, 0, 50_000)
    assert d["range_lut"] == [10_300, 20_000]  # cut to where both fronts have designs
    assert d["points"] == [1, 1]
    # 10,300 -> 10,000: 2.9 %; 20,000 -> 22,000: 10 %
    assert d["worst_gap"] == 0.1 and d["share_within_3_percent"] == 0.5


def test_an_empty_front_gives_no_gap_and_plain_json():
    """No design with every exit (exits_built: []): nothing to compare, and no Infinity in
    folding.json."""
    d = front_density([], [_design(12_000)], 10_000, 53_200)
    assert d["worst_gap"] is None and d["share_within_3_percent"] is None and d["widest_gaps_at_lut"] == []
    assert d["points"] == [0, 1]
    json.dumps(d, allow_nan=False)  # raises on inf or nan
