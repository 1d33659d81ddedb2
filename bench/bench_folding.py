"""Early exits against no exits on the FPGA, at equal resources, across the board.

For LUT budgets from 12,000 to the board's 53,200 (the default run's 35,000 among them) the
fold step's search (`btsee.steps.folding`: every folding FINN allows, every subset of the
exits, none included, then the local search of `hw.fold.refine`) picks the fastest design
within the budget and the board's BRAM18 and DSP. `bench/fold_designs.py` builds it: FINN rebuilds each segment's folding, the RTL is
generated and synthesized by Yosys, and the whole design is simulated in Verilator in test
order and compared with the golden simulator image by image. Against it, from the same
search's no-exit designs (the backbone alone, built, synthesized and simulated the same
way, one steady-state rule for both):

- equal resources: the fastest no-exit design whose synthesized LUT + LUTRAM, DSP and
  BRAM18 are each within the early-exit design's;
- equal speed: the cheapest no-exit design at least as fast (none when no no-exit design
  on the board is).

The early-exit design at the default budget runs the whole test split (10,000 images, in
order); the other early-exit designs the first CURVE_IMAGES, the no-exit designs the first
NO_EXIT_IMAGES. Writes
bench/results/folding.json and docs/figures/throughput_by_budget.png; exits non-zero
when any design differs from golden on any image.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fold_designs import (SEGMENT_IMAGES, DesignBuilder, luts, mismatches, no_exit_fps, ratio,  # noqa: E402
                                 summary, within)
from calib.atomic import atomic_write_json  # noqa: E402

RUN = ROOT / "runs" / "default"
WORK = RUN / "bench_folding"
RESULT = ROOT / "bench" / "results" / "folding.json"
FIGURE = ROOT / "docs" / "figures" / "throughput_by_budget.png"
BUDGETS = (12_000, 16_000, 20_000, 26_600, 42_560)
"""LUT budgets besides the default run's and the board's."""
CURVE_IMAGES = 500
"""Test images, in order, each early-exit design of the curve simulates (the headline: the whole split)."""
NO_EXIT_IMAGES = 200
"""Test images each no-exit design simulates: every image takes the same cycles through the
backbone alone, so its steady state shows within a few frames."""
TARGETS = {"ratio_at_default_budget": 3.0, "ratio_everywhere": 1.0, "ratio_from_20000_luts": 1.5,
           "heads_share_of_luts": 0.15}


def search_all(ctx):
    """The fold step's search: ({buffer frames: SearchResult}, board, dataflow manifest,
    ladders, topology, {subset: validation exit sequence}, replay cache)."""
    from boards import load_board
    from btsee.run_folder import DATAFLOW_MANIFEST, read_manifest
    from btsee.steps.folding import (BUFFER_FRAME_CHOICES, RATE_STEP, build_ladders, topology_of,
                                     usable_subsets)
    from hw.fold.search import ReplayCache, search

    h = ctx.config.hardware
    board = load_board(h.board)
    clock_hz = 1e9 / h.clock_ns()
    manifest = read_manifest(RUN, DATAFLOW_MANIFEST)
    topo = topology_of(manifest)
    ladders, _ = build_ladders(ctx, manifest)
    subsets, _ = usable_subsets(ctx, len(topo.heads))
    limits = {k: float(v) for k, v in board.resources.items()}
    rates = [round(100.0 * RATE_STEP ** i, 1) for i in range(260)]
    cache = ReplayCache()
    frames = (h.buffer_frames,) if h.buffer_frames else BUFFER_FRAME_CHOICES
    results = {f: search(ladders, topo, subsets, clock_hz, rates, f, limits, cache) for f in frames}
    return results, board, manifest, ladders, topo, subsets, cache


def no_exit_equal(builder, front, ee: dict, images: int) -> tuple[dict | None, list]:
    """The fastest no-exit design of `front` whose synthesized LUT + LUTRAM, DSP and BRAM18
    are each within the early-exit design `ee`'s: a bisection over the designs in order of
    modelled images/s (their resources grow with it), each probe's segments synthesized,
    then the whole design of the fastest that fits (and down the order while its top level
    tips it over)."""
    limits = ee["synthesized"]
    order = sorted(front, key=lambda d: d.fps)
    tried = []

    def segments_fit(i: int) -> bool:
        segs = [builder.segment(n, o) for n, o in order[i].choice.items()]
        total = {k: sum(int(s.resources.get(k, 0)) for s in segs) for k in ("LUT", "LUTRAM", "DSP", "BRAM18")}
        tried.append({"model_fps": round(order[i].fps, 1), "segments_synthesized": total,
                      "fits": within(total, limits)})
        return tried[-1]["fits"]

    lo, hi = -1, len(order)  # order[lo] fits (or none), order[hi] does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if segments_fit(mid) else (lo, mid)
    for i in range(lo, -1, -1):
        row = builder.design(order[i], 1, images)
        tried.append({"model_fps": round(order[i].fps, 1), "whole_design": row["synthesized"]})
        if within(row["synthesized"], limits):
            return row, tried
    return None, tried


def no_exit_as_fast(builder, front, ee: dict, images: int) -> tuple[dict | None, str]:
    """The cheapest no-exit design of `front` at least as fast as `ee` in RTL (by modelled
    LUTs, built until one is), or None with the reason."""
    fastest = max(front, key=lambda d: d.fps)
    for cand in sorted([d for d in front if d.fps >= 0.97 * ee["images_per_second_rtl"]],
                       key=lambda d: d.resources["LUT"]):
        row = builder.design(cand, 1, images)
        if no_exit_fps(row) >= ee["images_per_second_rtl"]:
            return row, ""
    return None, (f"no no-exit design on the board reaches {ee['images_per_second_rtl']:,.0f} images/s; the "
                  f"fastest is modelled at {fastest.fps:,.0f} ({fastest.resources['LUT']:,.0f} LUT)")


def main() -> int:
    import subprocess

    subprocess.run([sys.executable, "-m", "btsee.cli", "run", "configs/default.yaml", "--out", str(RUN),
                    "--device", "cpu", "--resume", "--to", "fold"], cwd=ROOT, check=True)
    from btsee.config import load_config
    from btsee.flow import Context
    from btsee.steps.common import load_splits
    from btsee.steps.folding import refined_design
    from hw.fold.refine import refine
    from hw.fold.search import best_within

    t0 = time.time()
    ctx = Context(load_config(RUN / "config.json"), RUN, env=None)
    results, board, manifest, ladders, topo, subsets, cache = search_all(ctx)
    clock_hz = 1e9 / ctx.config.hardware.clock_ns()
    builder = DesignBuilder(ctx, WORK, manifest)
    default = int(ctx.config.hardware.lut_budget or board.resources["LUT"])
    limits = {k: float(v) for k, v in board.resources.items()}
    test_images = len(load_splits(ctx).test.images)
    rows = []
    budgets = sorted({*BUDGETS, default, int(board.resources["LUT"])})
    for budget in [default] + [b for b in budgets if b != default]:  # the headline first
        t = time.time()
        design, frames = refined_design(results, budget, limits, board.name, ladders, topo, subsets, clock_hz, cache)
        images = test_images if budget == default else CURVE_IMAGES
        print(f"bench_folding: budget {budget:,} LUT: exits {list(design.exits_built)}, modelled "
              f"{design.resources['LUT']:,.0f} LUT, {design.fps:,.0f} images/s; building ({images} images)", flush=True)
        ee = builder.design(design, frames, images)
        within = dict(limits, LUT=budget)
        model_ne = best_within(results[frames].no_exit, within)
        model_ne = model_ne and refine(model_ne, ladders, topo, subsets[()], frames, clock_hz, within, cache)
        front = results[frames].no_exit + ([model_ne] if model_ne else [])  # the sweep's, and the refined one
        equal, tried = no_exit_equal(builder, front, ee, NO_EXIT_IMAGES)
        fast, why = no_exit_as_fast(builder, front, ee, NO_EXIT_IMAGES)
        rows.append({"budget_lut_modelled": budget, "early_exit": summary(ee),
                     "no_exit_equal_resources": summary(equal), "no_exit_candidates_tried": tried,
                     "no_exit_as_fast": summary(fast), "no_exit_as_fast_none": why or None,
                     "ratio_rtl": ratio(ee, equal),
                     "ratio_model": round(design.fps / model_ne.fps, 3) if model_ne else None,
                     "seconds": round(time.time() - t, 1)})
        print(f"  early exit {ee['images_per_second_rtl']:,.0f} images/s ({ee['luts']:,} LUT, "
              f"{ee['synthesized']['DSP']} DSP, {ee['synthesized']['BRAM18']} BRAM18); no exit at equal resources "
              + (f"{no_exit_fps(equal):,.0f} ({equal['luts']:,}, {equal['synthesized']['DSP']}, "
                 f"{equal['synthesized']['BRAM18']}): {rows[-1]['ratio_rtl']}x" if equal else "none fits"), flush=True)
        rows.sort(key=lambda r: r["budget_lut_modelled"])
        atomic_write_json(RESULT, document(rows, default, board, test_images, t0))  # progress survives a stop
    doc = document(rows, default, board, test_images, t0)
    atomic_write_json(RESULT, doc)
    from btsee.plots import ratio_by_budget

    ratio_by_budget(rows, default, int(board.resources["LUT"]), FIGURE)
    print(json.dumps({k: v for k, v in doc.items() if k != "budgets"}, indent=1))
    return mismatch_status(doc["mismatched_images"])


def document(rows: list[dict], default: int, board, test_images: int, t0: float) -> dict:
    """folding.json: the rows, the headline (the default budget's row) and the targets."""
    head = next((r for r in rows if r["budget_lut_modelled"] == default), None)
    measured = [r["ratio_rtl"] for r in rows if r["ratio_rtl"] is not None]
    from_20k = [r["ratio_rtl"] for r in rows if r["ratio_rtl"] is not None and r["budget_lut_modelled"] >= 20_000]
    heads = head and head["early_exit"]["heads_share_of_luts"]
    values = {"ratio_at_default_budget": head and head["ratio_rtl"], "ratio_everywhere": min(measured, default=None),
              "ratio_from_20000_luts": min(from_20k, default=None), "heads_share_of_luts": heads}
    targets = {k: {"value": v, "target": TARGETS[k], "met": None if v is None else
                   (v <= TARGETS[k] if k == "heads_share_of_luts" else v >= TARGETS[k])} for k, v in values.items()}
    bad = {"early_exit": sum(r["early_exit"]["mismatched_images"] for r in rows),
           "no_exit": sum(mismatches(r[k]) for r in rows for k in ("no_exit_equal_resources", "no_exit_as_fast"))}
    return {"benchmark": "folding", "config": "configs/default.yaml", "board": board.name,
            "board_luts": int(board.resources["LUT"]),
            "board_resources": {k: int(v) for k, v in board.resources.items()}, "default_budget_lut": default,
            "headline": head and {"budget_lut_modelled": default, "ratio_rtl": head["ratio_rtl"],
                                  "early_exit_images": head["early_exit"]["images"], "test_images": test_images},
            "comparison": "each early-exit design against the fastest no-exit design whose synthesized LUT + LUTRAM, "
                          "DSP and BRAM18 are each within its own (and the cheapest no-exit design at least as fast); "
                          "both built the same way and timed in RTL by one steady-state rule, the no-exit design at "
                          "the faster of its whole chain and its slowest segment alone",
            "curve_images": CURVE_IMAGES, "no_exit_images": NO_EXIT_IMAGES, "segment_images": SEGMENT_IMAGES, "targets": targets,
            "mismatched_images": bad, "budgets": rows, "seconds": round(time.time() - t0, 1)}


def mismatch_status(mismatched: dict[str, int]) -> int:
    """1 (with a line on stderr) when any design built differs from golden on any image, else 0:
    a throughput measured on a design that computes wrong answers is no result."""
    bad = {k: v for k, v in mismatched.items() if v}
    if bad:
        print(f"bench_folding: designs differ from golden: {bad} mismatched images", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
