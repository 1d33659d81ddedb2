"""The `fold` step: exit-aware folding of the segments for a LUT budget, and the
throughput it buys against the same backbone folded without exits.

For every segment it builds a ladder of FINN's foldings (the estimate-only build at a
geometric series of frame-rate targets), then sweeps a rate R: the early-exit design folds
backbone segment k and head k for R x (the share of validation images reaching exit k), the
no-exit design folds the backbone alone for R. The pipeline model (`hw.fold.pipeline`)
replays the validation split's exit sequence through each early-exit candidate with its
finite buffers; the no-exit chain runs at its slowest segment. The fastest early-exit design
within `hardware.lut_budget` and the board's BRAM18 and DSP is the one the `rtl` and `synth`
steps build (`fold/manifest.json`: the dataflow manifest with the chosen folded graphs);
with `hardware.folding: uniform` it is every segment at `hardware.target_fps`.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from boards import load_board
from btsee.config import ConfigError
from btsee.flow import Context
from btsee.report import update_report
from btsee.run_folder import (DATAFLOW_MANIFEST, FOLD_MANIFEST, FOLDING_FILE, load_logits, read_manifest,
                              read_thresholds)
from calib.atomic import atomic_write, atomic_write_json
from calib.cascade import cascade_from_logits
from calib.schema import sha256_of

BUFFER_FRAME_CHOICES = (2, 3, 4, 6, 8)
RATE_STEP = 1.1
"""Ratio between successive rates of the sweep (and 1.25 between the ladders' targets)."""


def exit_sequence(ctx: Context, split: str) -> np.ndarray:
    """(N,) exit index of every image of `split` under the calibrated thresholds, in split
    order (len(points) = the final classifier); equal to the golden simulator's (the
    `simulate` step checks the integer logits it starts from)."""
    lg = load_logits(ctx.out, split)
    heads, final = lg.for_score(ctx.config.calibration.score)
    return cascade_from_logits(heads, read_thresholds(ctx.out), final, ctx.config.calibration.score)[0]


def topology_of(manifest: dict):
    """The chain of a dataflow or fold manifest: backbone segments and heads in order."""
    from hw.fold.search import Topology

    segs = manifest["segments"]
    return Topology([s["name"] for s in segs if s["kind"] == "backbone"],
                    [s["name"] for s in segs if s["kind"] == "head"])


def build_ladders(ctx: Context, manifest: dict, work: Path, targets: list[float]) -> tuple[dict, dict]:
    """Per segment its ladder of FINN foldings ({name: [FoldOption]}) and the estimates
    behind them ({(name, target): SegmentEstimate}), built in `work`."""
    from hw.finn.estimate import estimate_segment
    from hw.fold.search import ladder_dir, segment_ladder

    h = ctx.config.hardware
    board = load_board(h.board)
    estimates, ladders = {}, {}
    bar = tqdm(total=len(manifest["segments"]) * len(targets), desc="fold ladders", unit="build", disable=None,
               leave=False)
    for seg in manifest["segments"]:
        def estimate(target, seg=seg):
            est = estimate_segment(ctx.out / seg["hw_file"], seg["input_type"], ladder_dir(work, seg["name"], target),
                                   board=board.finn_board, clock_period_ns=h.clock_ns(), target_fps=target,
                                   mvau_wwidth_max=h.mvau_wwidth_max)
            estimates[(seg["name"], target)] = est
            bar.update()
            return est
        ladders[seg["name"]] = segment_ladder(estimate, targets)
    bar.close()
    return ladders, estimates


def choose_design(results: dict, budget: float, limits: dict[str, float], board: str):
    """(design, buffer frames): the fastest early-exit design of the searches `results`
    ({buffer frames: SearchResult}) within `budget` LUTs and the board's `limits` (ties: fewer
    LUTs, then shallower buffers); none fitting is a ConfigError naming hardware.lut_budget."""
    from hw.fold.search import best_within

    within = dict(limits, LUT=budget)
    candidates = [(d, f) for f, r in results.items() if (d := best_within(r.early_exit, within))]
    if not candidates:
        smallest = min((d.resources["LUT"] for r in results.values() for d in r.early_exit), default=float("nan"))
        raise ConfigError(f"hardware.lut_budget {budget:,.0f}: no early-exit folding fits it and {board}'s "
                          f"BRAM18/DSP; the smallest needs {smallest:,.0f} LUT")
    return max(candidates, key=lambda c: (round(c[0].fps, 1), -c[0].resources["LUT"], -c[1]))


def step_fold(ctx: Context) -> Context:
    """Ladders, the sweep, the chosen designs (fold/folding.json), their folded graphs and
    manifest (fold/manifest.json), report.json `throughput_fps` and fold/throughput.png."""
    from hw.fold.pipeline import simulate_pipeline
    from hw.fold.search import (LUT_MODEL_SOURCE, best_within, cheapest_meeting, fold_early_exit, ladder_targets,
                                pipeline_spec, ratio_curve, reach_fractions, search)

    h = ctx.config.hardware
    board = load_board(h.board)
    clock_hz = 1e9 / h.clock_ns()
    manifest = read_manifest(ctx.out, DATAFLOW_MANIFEST)
    topo = topology_of(manifest)
    val, test = exit_sequence(ctx, "val"), exit_sequence(ctx, "test")
    reach = reach_fractions(val, len(topo.heads))
    limits = {k: float(v) for k, v in board.resources.items()}
    budget = float(h.lut_budget or board.resources["LUT"])
    targets = sorted(set(ladder_targets()) | {float(h.target_fps)})
    rates = ladder_targets(100.0, 200_000.0, RATE_STEP)
    frames = (h.buffer_frames,) if h.buffer_frames else BUFFER_FRAME_CHOICES
    with tempfile.TemporaryDirectory(prefix="fold-", dir=ctx.out) as tmp:
        ladders, estimates = build_ladders(ctx, manifest, Path(tmp), targets)
        results = {f: search(ladders, topo, val, clock_hz, rates, f, limits) for f in frames}
        no_exit = best_within(results[frames[0]].no_exit, dict(limits, LUT=budget))
        if h.folding == "uniform":
            f = frames[0]
            uniform = {n: cheapest_meeting(lad, clock_hz / h.target_fps) for n, lad in ladders.items()}
            chosen = fold_early_exit({n: [o] for n, o in uniform.items()}, topo, reach, h.target_fps, clock_hz, val, f)
        else:
            chosen, f = choose_design(results, budget, limits, board.name)
        entries = _write_chosen(ctx, manifest, chosen, estimates)
    replay = simulate_pipeline(pipeline_spec(chosen.choice, topo, f), test)
    ee_fps = clock_hz / replay.steady_cycles_per_image
    ne_fps = no_exit.fps if no_exit else None
    budgets = sorted({round(board.resources["LUT"] * q / 10) for q in range(1, 11)} | {round(budget)})
    curve = {f"{fr}_frames": ratio_curve(r, budgets, limits) for fr, r in results.items()}
    doc = {"folding": h.folding, "budget_lut": budget, "board": board.name, "clock_mhz": clock_hz / 1e6,
           "buffer_frames": f, "reach_validation": reach, "lut_source": LUT_MODEL_SOURCE,
           "early_exit": dict(chosen.summary(), fps_test_replay=round(ee_fps, 1),
                              buffer_peak_frames_test=replay.buffer_peak_frames, queue_peak_test=replay.queue_peak),
           "no_exit": no_exit.summary() if no_exit else None,
           "fronts": {f"{fr}_frames": {"early_exit": [d.summary() | {"segments": None} for d in r.early_exit],
                                       "no_exit": [d.summary() | {"segments": None} for d in r.no_exit]}
                      for fr, r in results.items()},
           "ratio_by_budget": curve}
    atomic_write_json(ctx.out / FOLDING_FILE, doc)
    atomic_write_json(ctx.out / FOLD_MANIFEST, {"points": manifest["points"], "segments": entries,
                                                "buffer_frames": f, "folding": h.folding})
    from btsee.plots import throughput_vs_luts

    throughput_vs_luts(results[f], budget, board.resources["LUT"], chosen, no_exit, ctx.out / "fold/throughput.png")
    ratio = round(ee_fps / ne_fps, 3) if ne_fps else None
    ctx.log(f"  {h.folding} folding within {budget:,.0f} LUT (modelled): early exit {ee_fps:,.0f} images/s "
            f"(test sequence, {f}-frame buffers, {chosen.resources['LUT']:,.0f} LUT, {chosen.resources['DSP']:g} DSP, "
            f"{chosen.resources['BRAM18']:g} BRAM18), no exit "
            + (f"{ne_fps:,.0f} images/s ({no_exit.resources['LUT']:,.0f} LUT): {ratio}x" if no_exit
               else "does not fit"))
    update_report(ctx.out, {"throughput_fps": {
        "no_exit": ne_fps and round(ne_fps, 1), "early_exit": round(ee_fps, 1), "ratio": ratio,
        "budget_lut": budget, "source": "pipeline model (hw.fold.pipeline) on FINN's cycles per frame replaying the "
                                        "test split's exit sequence; LUTs " + LUT_MODEL_SOURCE,
        "folding": h.folding, "buffer_frames": f,
        "segments": {n: {"target_fps": o.target_fps, "cycles_per_frame": o.cycles,
                         "frames_per_second": round(clock_hz / o.cycles, 1), "folding": o.folding}
                     for n, o in chosen.choice.items()},
        "reach": dict(zip(topo.backbones, reach)),
        "ratio_by_budget": curve[f"{f}_frames"]},
        "plots": {"throughput": "fold/throughput.png"}})
    return ctx


def _write_chosen(ctx: Context, manifest: dict, chosen, estimates: dict) -> list[dict]:
    """Copies each segment's chosen folded graph and estimate reports into fold/; the manifest
    entries (the dataflow ones with the chosen folded graph and estimate)."""
    entries = []
    for seg in manifest["segments"]:
        opt = chosen.choice[seg["name"]]
        est = estimates[(seg["name"], opt.target_fps)]
        rel = f"fold/{seg['name']}.folded.onnx"
        atomic_write(ctx.out / rel, lambda tmp: shutil.copyfile(opt.graph, tmp))
        reports = ctx.out / "fold" / "estimates" / seg["name"]
        shutil.rmtree(reports, ignore_errors=True)
        shutil.copytree(est.report_dir, reports)
        est_doc = est.to_dict()
        est_doc["report_dir"] = str(reports.relative_to(ctx.out))
        entries.append(dict(seg, folded_file=rel, folded_sha256=sha256_of(ctx.out / rel), estimate=est_doc))
    return entries
