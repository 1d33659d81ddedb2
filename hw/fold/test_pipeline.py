"""The pipeline model on cases with a known answer, and the folding search's pieces."""
from __future__ import annotations

import numpy as np
import pytest

from hw.fold.pipeline import PipelineError, PipelineSpec, _peak, simulate_pipeline
from hw.fold.search import FoldOption, Topology, cheapest_meeting, fold_no_exit, pareto, reach_fractions

N = 391  # steady_interval then spans 352 intervals: whole periods (2, 16) of the patterns below


def _spec(buffers: int = 4, **kw) -> PipelineSpec:
    base = dict(backbone_cycles=[100, 300], head_cycles=[80], frame_words=[10], buffer_frames=[buffers])
    base.update(kw)
    return PipelineSpec(**base)


def test_all_images_exit_at_the_first_head():
    """Segment 1 never runs: one image per max(segment 0, head 0) cycles."""
    run = simulate_pipeline(_spec(), np.zeros(N, int))
    assert run.steady_cycles_per_image == 100.0
    assert run.total_cycles == 100.0 * N
    assert run.busy[1] == 0.0


def test_no_image_exits():
    """Every image goes through: the slowest segment (300 cycles) sets the pace."""
    run = simulate_pipeline(_spec(), np.ones(N, int))
    assert run.steady_cycles_per_image == 300.0


def test_alternating_images_share_the_slow_segment():
    """Every other image goes on. The buffer's one output port forwards a frame while
    segment 1 takes it (300 cycles), then drops the next image's frame (10 words): 310
    cycles per two images."""
    run = simulate_pipeline(_spec(buffers=4), np.arange(N) % 2)
    assert run.steady_cycles_per_image == 155.0


def test_a_one_frame_buffer_couples_the_segments():
    """With one frame of buffer, segment 0 waits for segment 1 to take the frame before it
    starts the next image: per two images 100 + 300 + 100 + 10 (the drop) = 510 cycles."""
    run = simulate_pipeline(_spec(buffers=1), np.arange(N) % 2)
    assert run.steady_cycles_per_image == 255.0
    assert run.buffer_peak_frames == [1]


def test_bursts_of_hard_images_need_deep_buffers():
    """Runs of 8 easy then 8 hard images: on average the buffer's port is busy 8 x 200 +
    8 x 10 cycles per 16 images (105 per image, segment 0 needs 100), but a burst of hard
    images only flows at that pace through buffers that hold it."""
    exits = (np.arange(N) // 8) % 2
    runs = {d: simulate_pipeline(_spec(buffers=d, backbone_cycles=[100, 200]), exits) for d in (2, 4, 8, 16)}
    paces = [runs[d].steady_cycles_per_image for d in (2, 4, 8, 16)]
    assert paces == sorted(paces, reverse=True) and paces[0] > 1.4 * 105
    assert 105.0 <= paces[-1] < 1.02 * 105
    assert [runs[d].buffer_peak_frames[0] for d in (2, 4, 8, 16)] == [2, 4, 8, 16]


def test_peak_counts_the_intervals_open_at_once():
    """Against a count at every event time on random [start, end) intervals, some empty,
    some never closed (a frame still held): an interval ending at t is closed at t."""
    rng = np.random.default_rng(3)
    assert _peak([]) == 0
    for _ in range(300):
        starts = rng.integers(0, 30, rng.integers(1, 25)).astype(float)
        ends = starts + rng.integers(0, 9, len(starts))
        ends[rng.random(len(starts)) < 0.1] = np.inf
        times = np.unique(np.concatenate([starts, ends[np.isfinite(ends)]]))
        want = max(int(((starts <= t) & (t < ends)).sum()) for t in times)
        assert _peak(list(zip(starts, ends))) == want


def test_bad_specs_name_the_field():
    with pytest.raises(PipelineError, match="backbone_cycles"):
        PipelineSpec([100], [80], [10], [2])
    with pytest.raises(PipelineError, match="buffer_frames"):
        PipelineSpec([100, 300], [80], [10], [0])
    with pytest.raises(PipelineError, match="exits: indices"):
        simulate_pipeline(_spec(), np.array([0, 2]))


def _opt(cycles: int, lut: float, dsp: float = 0.0) -> FoldOption:
    return FoldOption(1e8 / cycles, cycles, lut, 0.0, dsp)


def test_cheapest_folding_that_keeps_up():
    ladder = [_opt(1000, 100), _opt(500, 300), _opt(250, 900)]
    assert cheapest_meeting(ladder, 600).cycles == 500
    assert cheapest_meeting(ladder, 1000).cycles == 1000
    assert cheapest_meeting(ladder, 100).cycles == 250  # none keeps up: the fastest


def test_reach_and_the_no_exit_chain():
    assert reach_fractions(np.array([0, 1, 2, 2]), 2) == [1.0, 0.75, 0.5]
    ladders = {"b0": [_opt(1000, 10), _opt(400, 30)], "b1": [_opt(2000, 10), _opt(500, 40)]}
    d = fold_no_exit(ladders, Topology(["b0", "b1"], ["h0"]), rate=1e8 / 600, clock_hz=1e8)
    assert d.cycles_per_image == 500 and d.choice["b0"].cycles == 400


def test_the_front_drops_dominated_designs():
    from hw.fold.search import Design

    designs = [Design("x", 1, {}, {"LUT": lut, "BRAM18": 0, "DSP": 0}, fps, 1) for lut, fps in
               [(100, 10), (200, 5), (300, 20), (300, 15), (400, 20)]]
    assert [(d.resources["LUT"], d.fps) for d in pareto(designs)] == [(100, 10), (300, 20)]


def test_subsets_cut_the_chain_into_stages():
    from hw.fold.search import exit_subsets

    topo = Topology(["b0", "b1", "b2", "b3"], ["h0", "h1", "h2"])
    assert exit_subsets(3)[0] == () and len(exit_subsets(3)) == 8
    assert topo.with_exits((1,)).stages() == [(["b0", "b1"], "h1"), (["b2", "b3"], None)]
    assert topo.with_exits(()).stages() == [(["b0", "b1", "b2", "b3"], None)]
    assert topo.stages() == [(["b0"], "h0"), (["b1"], "h1"), (["b2"], "h2"), (["b3"], None)]
    assert topo.with_exits((0, 2)).exits_built == (0, 2)


def test_the_empty_subset_is_the_no_exit_chain_and_the_front_never_loses():
    """Building no exit gives the no-exit chain exactly; the early-exit front spans every
    subset, so at any LUT count its fastest design is at least the no-exit one's, even
    where the exits cost more than they save (here: a head as dear as the segment after it)."""
    from hw.fold.search import ReplayCache, best_within, fold_early_exit, search

    ladders = {"b0": [_opt(1000, 10), _opt(400, 30), _opt(200, 60)],
               "b1": [_opt(2000, 10), _opt(500, 40), _opt(250, 80)],
               "h0": [_opt(1000, 200), _opt(200, 900)]}
    topo = Topology(["b0", "b1"], ["h0"])
    none = fold_early_exit(ladders, topo.with_exits(()), [1.0], 1e8 / 600, 1e8, np.zeros(N, int), 2)
    chain = fold_no_exit(ladders, topo, 1e8 / 600, 1e8)
    assert none.kind == "no_exit" and none.cycles_per_image == chain.cycles_per_image
    assert none.resources["LUT"] == chain.resources["LUT"]
    exits = {(): np.zeros(N, int), (0,): (np.arange(N) % 3 == 0).astype(int)}
    rates = [1e8 / c for c in (3000, 2000, 1000, 600, 400, 300, 250)]
    result = search(ladders, topo, exits, 1e8, rates, 2, {}, ReplayCache())
    assert result.no_exit == result.by_subset[()]
    for budget in (20, 50, 100, 140, 300, 1200):
        ee, ne = best_within(result.early_exit, {"LUT": budget}), best_within(result.no_exit, {"LUT": budget})
        assert (ee is None) == (ne is None) or ne is None
        if ne is not None:
            assert ee.fps >= ne.fps
    assert any(d.exits_built == () for d in result.early_exit)  # where the head does not pay, none is built
