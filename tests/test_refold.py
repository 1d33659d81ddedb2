"""The in-process re-folding (`hw.fold.refold`) against FINN's own builds of the tiny run's
segments: the folding SetFolding picks, and the estimates FINN's build reports for it."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("finn")

from hw.finn.estimate import estimate_segment  # noqa: E402
from hw.fold.refold import FoldingExplorer  # noqa: E402

PART, CLOCK_HZ = "xc7z020clg400-1", 1e8


def _segments(run) -> list[dict]:
    return json.loads((run / "dataflow" / "manifest.json").read_text())["segments"]


def test_explorer_matches_finns_build_of_its_folding(tiny_run, tmp_path):
    """For a backbone segment and a head (ColumnMax, MVAUs) at three targets: FINN's
    estimate build with the explorer's folding config gives exactly the cycles, LUT, BRAM18
    and DSP the explorer predicted, and meets the target the explorer aimed at. (The folded
    graph carries the run's threshold placement; the build is told it as the fold step tells it.)"""
    bram_depth = json.loads((tiny_run / "config.json").read_text())["hardware"]["threshold_bram_depth"]
    assert bram_depth is not None  # the tiny run places thresholds in block RAM: the case checked here
    for seg in [s for s in _segments(tiny_run) if s["name"] in ("backbone_1", "head_0")]:
        ex = FoldingExplorer(tiny_run / seg["folded_file"], PART, 36, CLOCK_HZ)
        ladder = ex.ladder(1000, 200_000)
        for opt in (ladder[0], ladder[len(ladder) // 2], ladder[-1]):
            est = estimate_segment(tiny_run / seg["hw_file"], seg["input_type"],
                                   tmp_path / seg["name"] / str(opt.cycles), folding_config=opt.config,
                                   threshold_bram_depth=bram_depth)
            assert (est.cycles_per_frame, est.lut, est.bram18, est.dsp) == \
                (opt.cycles, opt.finn_lut, opt.bram18, opt.dsp), (seg["name"], opt.config)
            assert est.folding == opt.folding


def test_ladder_is_every_breakpoint_and_monotone(tiny_run):
    """The ladder's foldings get strictly faster; between two neighbours no target in
    between (on a 1 % grid) gives a third folding; each MVAU's (PE, SIMD) is the cheapest
    that keeps within the target, so it is never dearer than SetFolding's own choice."""
    from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer
    from finn.analysis.fpgadataflow.res_estimation import res_estimation
    from finn.transformation.fpgadataflow.set_folding import SetFolding
    from qonnx.core.modelwrapper import ModelWrapper

    from hw.fold.search import modelled_luts

    seg = next(s for s in _segments(tiny_run) if s["name"] == "backbone_final")
    ex = FoldingExplorer(tiny_run / seg["folded_file"], PART, 36, CLOCK_HZ)
    ladder = ex.ladder(2000, 100_000)
    cycles = [o.cycles for o in ladder]
    assert cycles == sorted(cycles, reverse=True) and len(set(cycles)) == len(cycles)
    keys = {repr(sorted(o.config.items())) for o in ladder}
    t = 2000
    while t < 100_000:
        assert repr(sorted(ex.at(t).config.items())) in keys, t
        t = int(t * 1.01) + 1
    for target in (3000, 30_000):
        ours = ex.at(target)
        finn = ModelWrapper(str(tiny_run / seg["folded_file"])).transform(SetFolding(target, mvau_wwidth_max=36))
        theirs = finn.analysis(lambda m: res_estimation(m, PART))
        their_lut = modelled_luts(sum(r.get("LUT", 0) for r in theirs.values()),
                                  sum(r.get("DSP", 0) for r in theirs.values()))
        their_cycles = max(int(c) for c in finn.analysis(exp_cycles_per_layer).values())
        assert ours.lut <= their_lut + 1e-6, (target, ours.lut, their_lut)
        assert ours.cycles <= max(target, their_cycles), (target, ours.cycles, their_cycles)
