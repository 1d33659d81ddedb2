"""The `fold` step: exit-aware folding of the segments for a LUT budget, and the
throughput it buys against the same backbone folded without exits.

For every segment FINN's SetFolding, re-run in-process (`hw.fold.refold`) on the folded
partition graph of the dataflow step's FINN build, with every MVAU then taking the
cheapest (PE, SIMD) FINN allows, finds every distinct folding between 250 and 100,000
frames/s (targets bisected to 1 % apart). The search sweeps a rate R for every subset of
the exits, none included: a design building the exits S folds
the backbone segments of each stage, and the stage's head, for R x (the share of
validation images entering that stage under S's cascade), and the pipeline model
(`hw.fold.pipeline`) replays that cascade's exit sequence through it with its finite
buffers. The empty subset is the backbone alone, so the fastest design within
`hardware.lut_budget` and the board's BRAM18 and DSP is never slower than the no-exit
design of that budget; where exits do not pay, it builds fewer of them or none. A subset
is considered only when its cascade is at least as accurate on the validation split as
the calibrated one. A local search (`hw.fold.refine`) then improves the sweep's fastest
designs within the budget segment by segment, and the no-exit design alike. The chosen
folding of every segment is rebuilt by FINN (`fold/manifest.json`: the dataflow manifest
with the chosen folded graphs and the exits built), and FINN's build must give the cycles
and resources the search assumed. With
`hardware.folding: uniform` every segment is folded for `hardware.target_fps` and every
exit is built.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from boards import load_board
from btsee.config import ConfigError
from btsee.flow import Context
from btsee.report import update_report
from btsee.run_folder import (DATAFLOW_MANIFEST, FOLD_MANIFEST, FOLDING_FILE, load_logits, read_manifest,
                              read_thresholds)
from calib.atomic import atomic_write, atomic_write_json
from calib.cascade import cascade_from_logits
from calib.progress import progress
from calib.schema import sha256_of

BUFFER_FRAME_CHOICES = (2, 3, 4, 6, 8)
RATE_STEP = 1.03
"""Ratio between successive rates of the sweep."""
LADDER_FPS = (250.0, 100_000.0)
"""Frame rates between which every distinct folding of a segment is found."""
LADDER_WORKERS = 2
"""Segments whose ladders are found at once (each is single-threaded Python)."""


def subset_cascade(ctx: Context, split: str, built: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """((N,) exit index, (N,) prediction) of every image of `split` under the calibrated
    thresholds, in split order (len(points) = the final classifier); with `built`, only
    those exits may take images (the others never exit)."""
    lg = load_logits(ctx.out, split)
    heads, final = lg.for_score(ctx.config.calibration.score)
    thresholds = read_thresholds(ctx.out)
    if built is not None:
        thresholds = [t if k in built else np.full_like(t, np.inf) for k, t in enumerate(thresholds)]
    return cascade_from_logits(heads, thresholds, final, ctx.config.calibration.score)


def exit_sequence(ctx: Context, split: str, built: tuple[int, ...] | None = None) -> np.ndarray:
    """(N,) exit index of every image of `split` (`subset_cascade`), equal to the golden
    simulator's (the `simulate` step checks the integer logits it starts from); with `built`,
    counted among the built exits (the stage each image leaves at)."""
    exits, _ = subset_cascade(ctx, split, built)
    if built is None:
        return exits
    return np.searchsorted(np.array([*built, len(read_thresholds(ctx.out))]), exits)  # (N,) stage index


def subset_accuracy(ctx: Context, split: str, built: tuple[int, ...]) -> float:
    """Accuracy on `split` of the cascade building only the exits `built`."""
    _, pred = subset_cascade(ctx, split, built)
    return float((pred == load_logits(ctx.out, split).labels).mean())


def topology_of(manifest: dict):
    """The chain of a dataflow or fold manifest: backbone segments and, after each but the
    last, its head (None where the manifest builds no exit there)."""
    from hw.fold.search import Topology

    segs = manifest["segments"]
    heads = {s["source"]: s["name"] for s in segs if s["kind"] == "head"}
    backbones = [s["name"] for s in segs if s["kind"] == "backbone"]
    return Topology(backbones, [heads.get(b) for b in backbones[:-1]])


def build_ladders(ctx: Context, manifest: dict) -> tuple[dict, dict]:
    """Per segment every distinct folding between LADDER_FPS ({name: [FoldOption]}) and the
    number of foldings computed for it ({name: int}), re-folding in-process the folded
    partition graph of the dataflow step's FINN estimate build (`folded_file`). Segments
    are independent: LADDER_WORKERS processes (fresh interpreters: the run's own process
    has torch's threads), the largest graph first."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from hw.fold.refold import segment_ladder

    h = ctx.config.hardware
    board = load_board(h.board)
    clock_hz = 1e9 / h.clock_ns()
    low, high = int(clock_hz / LADDER_FPS[1]), int(clock_hz / LADDER_FPS[0])
    graphs = {seg["name"]: ctx.out / seg["folded_file"] for seg in manifest["segments"]}
    ladders, builds = {}, {}
    with ProcessPoolExecutor(min(LADDER_WORKERS, len(graphs)) or 1,
                             mp_context=multiprocessing.get_context("spawn")) as pool, \
            progress(total=len(graphs), desc="fold ladders", unit="segment", leave=False) as bar:
        futures = {pool.submit(segment_ladder, path, board.part, h.mvau_wwidth_max, clock_hz, low, high): name
                   for name, path in sorted(graphs.items(), key=lambda kv: kv[1].stat().st_size, reverse=True)}
        for fut in as_completed(futures):
            ladders[futures[fut]], builds[futures[fut]] = fut.result()
            bar.update()
    order = list(graphs)  # the manifest's order, whatever finished first
    return {n: ladders[n] for n in order}, {n: builds[n] for n in order}


def search_depths(ladders: dict, topo, subsets: dict, clock_hz: float, rates: list[float], frames: tuple[int, ...],
                  limits: dict[str, float]) -> dict:
    """`hw.fold.search.search` at every buffer depth of `frames`: {depth: SearchResult}. The
    depths are independent, so several run in LADDER_WORKERS processes (fresh interpreters,
    as for the ladders), each replaying its own designs."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from hw.fold.search import search

    if len(frames) == 1:
        return {frames[0]: search(ladders, topo, subsets, clock_hz, rates, frames[0], limits)}
    with ProcessPoolExecutor(min(LADDER_WORKERS, len(frames)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {f: pool.submit(search, ladders, topo, subsets, clock_hz, rates, f, limits) for f in frames}
        return {f: fut.result() for f, fut in futures.items()}


def build_chosen(ctx: Context, manifest: dict, design, work: Path) -> dict:
    """{segment: SegmentEstimate} of FINN's estimate build of each segment `design` builds,
    with the folding the search chose; a build whose cycles or resources differ from the
    search's is a DataflowError naming the segment."""
    from hw.finn.convert import DataflowError
    from hw.finn.estimate import estimate_segment

    h = ctx.config.hardware
    board = load_board(h.board)
    built = {}
    for seg in manifest["segments"]:
        opt = design.choice.get(seg["name"])
        if opt is None:
            continue
        est = estimate_segment(ctx.out / seg["hw_file"], seg["input_type"], work / seg["name"] / "chosen",
                               board=board.finn_board, clock_period_ns=h.clock_ns(),
                               target_fps=int(round(opt.target_fps)), mvau_wwidth_max=h.mvau_wwidth_max,
                               folding_config=opt.config, threshold_bram_depth=h.threshold_bram_depth)
        got = (int(est.cycles_per_frame), float(est.lut), float(est.bram18), float(est.dsp))
        want = (opt.cycles, opt.finn_lut, opt.bram18, opt.dsp)
        if any(abs(a - b) > 1e-6 * max(1.0, abs(b)) for a, b in zip(got, want)):
            raise DataflowError(f"{seg['name']}: FINN's build of the chosen folding gives (cycles, LUT, BRAM18, "
                                f"DSP) {got}, the search assumed {want}")
        built[seg["name"]] = est
    return built


def choose_design(results: dict, budget: float, limits: dict[str, float], board: str,
                  exits_built: tuple[int, ...] | None = None):
    """(design, buffer frames): the fastest design of the searches `results` ({buffer frames:
    SearchResult}) within `budget` LUTs and the board's `limits` (ties: fewer LUTs, then
    shallower buffers), among every subset of the exits or those building `exits_built`;
    none fitting is a ConfigError naming hardware.lut_budget."""
    from hw.fold.search import best_within

    within = dict(limits, LUT=budget)
    fronts = {f: r.early_exit if exits_built is None else r.by_subset.get(exits_built, []) for f, r in results.items()}
    candidates = [(d, f) for f, front in fronts.items() if (d := best_within(front, within))]
    if not candidates:
        smallest = min((d.resources["LUT"] for front in fronts.values() for d in front), default=float("nan"))
        raise ConfigError(f"hardware.lut_budget {budget:,.0f}: no folding fits it and {board}'s "
                          f"BRAM18/DSP; the smallest needs {smallest:,.0f} LUT")
    return max(candidates, key=lambda c: (round(c[0].fps, 1), -c[0].resources["LUT"], -c[1]))


REFINED = 3
"""Designs of the sweep, the fastest within the budget, that the local search refines."""


def refined_design(results: dict, budget: float, limits: dict[str, float], board: str, ladders: dict, topology,
                   subsets: dict, clock_hz: float, cache, exits_built: tuple[int, ...] | None = None):
    """(design, buffer frames): the fastest within `budget` LUTs and the board's `limits`
    after `hw.fold.refine` improved each of the REFINED fastest designs of the sweep
    (`choose_design`'s candidates, one per buffer depth and subset of the exits, or only
    those building `exits_built`; the subsets' exit sequences in `subsets`)."""
    from hw.fold.refine import refine
    from hw.fold.search import best_within

    choose_design(results, budget, limits, board, exits_built)  # the error when nothing fits
    within = dict(limits, LUT=budget)
    subs = [exits_built] if exits_built is not None else list(subsets)
    candidates = [(d, f) for f, r in results.items() for sub in subs
                  if (d := best_within(r.by_subset.get(sub, []), within))]
    candidates.sort(key=lambda c: -c[0].fps)
    refined = [(refine(d, ladders, topology, subsets[d.exits_built], f, clock_hz, within, cache), f)
               for d, f in candidates[:REFINED]]
    return max(refined, key=lambda c: (round(c[0].fps, 1), -c[0].resources["LUT"], -c[1]))


def usable_subsets(ctx: Context, n_exits: int) -> tuple[dict, dict]:
    """({built exits: (N,) validation stage indices} for every subset of the exits whose
    cascade is at least as accurate on validation as the calibrated one (all exits), and
    {subset: its validation accuracy} for every subset)."""
    from hw.fold.search import exit_subsets

    every = tuple(range(n_exits))
    full = subset_accuracy(ctx, "val", every)
    accuracy = {sub: subset_accuracy(ctx, "val", sub) for sub in exit_subsets(n_exits)}
    keep = {sub: exit_sequence(ctx, "val", sub) for sub, acc in accuracy.items() if acc >= full or sub == every}
    return keep, accuracy


def step_fold(ctx: Context) -> Context:
    """Ladders, the sweep, the chosen designs (fold/folding.json), their folded graphs and
    manifest (fold/manifest.json), report.json `throughput_fps` and fold/throughput.png."""
    from hw.fold.refine import refine
    from hw.fold.search import (LUT_MODEL_SOURCE, ReplayCache, best_within, cheapest_meeting, fold_early_exit,
                                front_density, pipeline_spec, ratio_curve, reach_fractions)
    from hw.fold.pipeline import simulate_pipeline

    h = ctx.config.hardware
    board = load_board(h.board)
    clock_hz = 1e9 / h.clock_ns()
    manifest = read_manifest(ctx.out, DATAFLOW_MANIFEST)
    topo = topology_of(manifest)
    limits = {k: float(v) for k, v in board.resources.items()}
    budget = float(h.lut_budget or board.resources["LUT"])
    rates = [round(100.0 * RATE_STEP ** i, 1) for i in range(int(np.log(2000) / np.log(RATE_STEP)) + 1)]
    frames = (h.buffer_frames,) if h.buffer_frames else BUFFER_FRAME_CHOICES
    every = tuple(range(len(topo.heads)))
    subsets, accuracy = usable_subsets(ctx, len(topo.heads))
    full_reach = reach_fractions(exit_sequence(ctx, "val"), len(every))  # every exit built
    fixed = every if h.folding == "uniform" else tuple(h.exits_built) if h.exits_built is not None else None
    if fixed is not None:  # that subset, and the backbone alone to compare with
        subsets = {sub: exit_sequence(ctx, "val", sub) for sub in dict.fromkeys([(), fixed])}
    with tempfile.TemporaryDirectory(prefix="fold-", dir=ctx.out) as tmp:
        ladders, builds = build_ladders(ctx, manifest)
        cache = ReplayCache()
        results = search_depths(ladders, topo, subsets, clock_hz, rates, frames, limits)
        no_exit = best_within(results[frames[0]].no_exit, dict(limits, LUT=budget))
        if no_exit is not None and h.folding != "uniform":
            no_exit = refine(no_exit, ladders, topo, subsets[()], frames[0], clock_hz, dict(limits, LUT=budget), cache)
        if h.folding == "uniform":
            f = frames[0]
            uniform = {n: cheapest_meeting(lad, clock_hz / h.target_fps) for n, lad in ladders.items()}
            chosen = fold_early_exit({n: [o] for n, o in uniform.items()}, topo, full_reach, h.target_fps, clock_hz,
                                     subsets[every], f)
        else:
            chosen, f = refined_design(results, budget, limits, board.name, ladders, topo, subsets, clock_hz, cache,
                                       fixed)
        estimates = build_chosen(ctx, manifest, chosen, Path(tmp))
        entries = _write_chosen(ctx, manifest, chosen, estimates)
    built_topo = topo.with_exits(chosen.exits_built)
    test = exit_sequence(ctx, "test", chosen.exits_built)
    replay = simulate_pipeline(pipeline_spec(chosen.choice, built_topo, f), test)
    ee_fps = clock_hz / replay.steady_cycles_per_image
    ne_fps = no_exit.fps if no_exit else None
    budgets = sorted({round(board.resources["LUT"] * q / 10) for q in range(1, 11)} | {round(budget)})
    curve = {f"{fr}_frames": ratio_curve(r, budgets, limits) for fr, r in results.items()}
    r0 = results[f]
    density = front_density(r0.by_subset.get(every, []), r0.no_exit, 10_000, board.resources["LUT"])
    doc = {"folding": h.folding, "budget_lut": budget, "board": board.name, "clock_mhz": clock_hz / 1e6,
           "buffer_frames": f, "lut_source": LUT_MODEL_SOURCE,
           "exits_built": list(chosen.exits_built), "reach_validation": full_reach,
           "subsets_validation_accuracy": {",".join(map(str, k)) or "none": round(v, 4) for k, v in accuracy.items()},
           "subsets_searched": [list(k) for k in subsets],
           "ladders": {n: {"foldings": len(lad), "foldings_computed": builds[n],
                           "cycles_range": [lad[-1].cycles, lad[0].cycles]} for n, lad in ladders.items()},
           "front_density_all_exits_vs_no_exit": density,
           "early_exit": dict(chosen.summary(), fps_test_replay=round(ee_fps, 1),
                              buffer_peak_frames_test=replay.buffer_peak_frames, queue_peak_test=replay.queue_peak),
           "no_exit": no_exit.summary() if no_exit else None,
           "fronts": {f"{fr}_frames": {"early_exit": [d.summary() | {"segments": None} for d in r.early_exit],
                                       "no_exit": [d.summary() | {"segments": None} for d in r.no_exit]}
                      for fr, r in results.items()},
           "ratio_by_budget": curve}
    atomic_write_json(ctx.out / FOLDING_FILE, doc)
    atomic_write_json(ctx.out / FOLD_MANIFEST, {"points": manifest["points"], "segments": entries,
                                                "exits_built": list(chosen.exits_built),
                                                "buffer_frames": f, "folding": h.folding})
    from btsee.plots import throughput_vs_luts

    throughput_vs_luts(results[f], budget, board.resources["LUT"], chosen, no_exit, ctx.out / "fold/throughput.png")
    ratio = round(ee_fps / ne_fps, 3) if ne_fps else None
    ctx.log(f"  ladders: {sum(len(v) for v in ladders.values())} distinct foldings over {len(ladders)} segments; "
            "fronts within 10,000 LUT to the board: " + (f"worst LUT gap {density['worst_gap']}"
                                                          if density["worst_gap"] is not None else
                                                          f"not compared ({density['points'][0]} designs with every "
                                                          f"exit, {density['points'][1]} with none)"))
    ctx.log(f"  {h.folding} folding within {budget:,.0f} LUT (modelled): exits {list(chosen.exits_built)} built, "
            f"{ee_fps:,.0f} images/s (test sequence, {f}-frame buffers, {chosen.resources['LUT']:,.0f} LUT, "
            f"{chosen.resources['DSP']:g} DSP, {chosen.resources['BRAM18']:g} BRAM18), no exit "
            + (f"{ne_fps:,.0f} images/s ({no_exit.resources['LUT']:,.0f} LUT): {ratio}x" if no_exit
               else "does not fit"))
    update_report(ctx.out, {"throughput_fps": {
        "no_exit": ne_fps and round(ne_fps, 1), "early_exit": round(ee_fps, 1), "ratio": ratio,
        "budget_lut": budget, "exits_built": list(chosen.exits_built),
        "source": "pipeline model (hw.fold.pipeline) on FINN's cycles per frame replaying the "
                  "test split's exit sequence; LUTs " + LUT_MODEL_SOURCE,
        "folding": h.folding, "buffer_frames": f,
        "segments": {n: {"target_fps": o.target_fps, "cycles_per_frame": o.cycles,
                         "frames_per_second": round(clock_hz / o.cycles, 1), "folding": o.folding}
                     for n, o in chosen.choice.items()},
        "reach": dict(zip(topo.backbones, full_reach)),
        "ratio_by_budget": curve[f"{f}_frames"]},
        "plots": {"throughput": "fold/throughput.png"}})
    return ctx


def _write_chosen(ctx: Context, manifest: dict, chosen, estimates: dict) -> list[dict]:
    """Copies each built segment's folded graph and estimate reports (FINN's build of the
    chosen folding) into fold/; the manifest entries (the dataflow ones with the chosen
    folded graph and estimate)."""
    entries = []
    for seg in manifest["segments"]:
        if seg["name"] not in chosen.choice:  # the head of an exit not built
            continue
        est = estimates[seg["name"]]
        rel = f"fold/{seg['name']}.folded.onnx"
        atomic_write(ctx.out / rel, lambda tmp: shutil.copyfile(est.folded_graph, tmp))
        reports = ctx.out / "fold" / "estimates" / seg["name"]
        shutil.rmtree(reports, ignore_errors=True)
        shutil.copytree(est.report_dir, reports)
        est_doc = est.to_dict()
        est_doc["report_dir"] = str(reports.relative_to(ctx.out))
        entries.append(dict(seg, folded_file=rel, folded_sha256=sha256_of(ctx.out / rel), estimate=est_doc))
    return entries
