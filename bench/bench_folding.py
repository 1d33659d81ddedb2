"""Early exits against no exits on the FPGA: the default run's exit-aware design (the fold
step's choice, built by the rtl and synth steps) against the backbone alone folded by the
same search within the same LUT budget, both synthesized by Yosys and both timed in RTL.

Writes bench/results/folding.json:
- early_exit: synthesized resources of the whole design (segments, heads, exit glue), its
  sustained images/s measured by the RTL simulation of the whole design on the test split's
  first images in order, and the pipeline model's figures for it;
- no_exit: the no-exit designs of the same search, from the one within the budget up to the
  first that synthesizes to more LUTs than the early-exit design (or down to the first that
  synthesizes to fewer, when the early-exit design is the smaller): each one's backbone
  segments generated as RTL, synthesized, and timed alone in Verilator (free-running; the
  chain runs at its slowest segment), checked bit-exact against the golden simulator on
  the images it ran. The one compared is the fastest within the early-exit design's
  synthesized LUTs (the budget in synthesized LUTs); the next larger is reported too;
- ratio: early-exit over no-exit images/s (RTL), against the next larger no-exit design,
  and images/s per synthesized LUT;
- curve: the fold step's modelled throughput-vs-LUT ratio across the board's range.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calib.atomic import atomic_write_json  # noqa: E402

RUN = ROOT / "runs" / "default"
WORK = "bench_no_exit"  # inside the run folder: the no-exit design's graphs, RTL and synthesis
IMAGES = 20
"""Images each no-exit segment simulates free-running (its cycles per frame, and a bit-exact check)."""


def luts(r: dict) -> int:
    return int(r["LUT"]) + int(r.get("LUTRAM", 0))


def no_exit_front(ctx) -> tuple[list, dict]:
    """(the no-exit designs of the fold step's search within the board's BRAM18 and DSP, by
    LUT; the dataflow manifest): ladders rebuilt in RUN/WORK/ladders (FINN estimate builds)."""
    from boards import load_board
    from btsee.run_folder import DATAFLOW_MANIFEST, read_manifest
    from btsee.steps.folding import RATE_STEP, build_ladders, topology_of
    from hw.fold.search import fits, fold_no_exit, ladder_targets, pareto

    h = ctx.config.hardware
    board = load_board(h.board)
    clock_hz = 1e9 / h.clock_ns()
    manifest = read_manifest(RUN, DATAFLOW_MANIFEST)
    topo = topology_of(manifest)
    backbone = dict(manifest, segments=[s for s in manifest["segments"] if s["name"] in topo.backbones])
    targets = sorted(set(ladder_targets()) | {float(h.target_fps)})
    ladders, _ = build_ladders(ctx, backbone, RUN / WORK / "ladders", targets)
    hard = {k: float(board.resources[k]) for k in ("BRAM18", "DSP")}
    designs = [fold_no_exit(ladders, topo, r, clock_hz) for r in ladder_targets(100.0, 200_000.0, RATE_STEP)]
    return pareto([d for d in designs if fits(d, hard)]), manifest


def build_no_exit(ctx, design, manifest: dict) -> dict:
    """One no-exit design's backbone segments as RTL: generated, simulated free-running and
    with stalls against the golden simulator, and synthesized (two segments at a time); a
    segment folded the same way as one built before is reused."""
    from boards import load_board
    from btsee.steps.rtl import golden_streams, _simulate_segment
    from hw.rtl.segment import generate_segment
    from hw.rtl.synth import synthesize

    h = ctx.config.hardware
    board = load_board(h.board)
    segments = [dict(seg, folded_file=str(Path(design.choice[seg["name"]].graph).relative_to(RUN)),
                     estimate={"cycles_per_frame": design.choice[seg["name"]].cycles,
                               "folding": design.choice[seg["name"]].folding})
                for seg in manifest["segments"] if seg["name"] in design.choice]
    golden = golden_streams(ctx, manifest, segments, IMAGES)

    def one(s):
        key = f"{s['name']}_{s['estimate']['cycles_per_frame']}"
        if key in BUILT:
            return BUILT[key]
        t = time.time()
        rtl = generate_segment(s["name"], RUN / s["folded_file"], RUN / WORK / "rtl" / key, board.part, h.clock_ns())
        sim = _simulate_segment(rtl, RUN / WORK / "rtl" / key, golden[s["name"]],
                                int(s["estimate"]["cycles_per_frame"]))
        syn = synthesize(rtl, RUN / WORK / "synth" / key)
        BUILT[key] = {"finn_cycles_per_frame": int(s["estimate"]["cycles_per_frame"]),
                      "rtl_cycles_per_frame": sim["free_running"]["cycles_per_frame"],
                      "mismatched_images": (sim["free_running"]["mismatched_images"]
                                            + sim["stalled"]["mismatched_images"]),
                      "images": sim["free_running"]["images"], "resources": syn["resources"],
                      "folding": s["estimate"]["folding"], "seconds": round(time.time() - t, 1)}
        return BUILT[key]

    with ThreadPoolExecutor(2) as pool:
        per_segment = dict(zip([s["name"] for s in segments], pool.map(one, segments)))
    cycles = max(r["rtl_cycles_per_frame"] for r in per_segment.values())
    return {"modelled_luts": round(design.resources["LUT"]), "model_fps_finn_cycles": round(design.fps, 1),
            "luts": sum(luts(r["resources"]) for r in per_segment.values()), "slowest_segment_cycles_rtl": cycles,
            "images_per_second_rtl": round(1e9 / ctx.config.hardware.clock_ns() / cycles, 1),
            "mismatched_images": sum(r["mismatched_images"] for r in per_segment.values()), "segments": per_segment}


BUILT: dict[str, dict] = {}
"""Segments built so far, by name and cycles per frame."""


def no_exit_designs(ctx, folding: dict, ee_luts: int) -> list[dict]:
    """The no-exit design the fold step chose within the budget, then each larger one on the
    front, built and synthesized until one synthesizes to more LUTs than the early-exit
    design (`ee_luts`); when none fits within `ee_luts`, each smaller one until one does:
    the no-exit designs that bracket it in synthesized LUTs, in front order."""
    front, manifest = no_exit_front(ctx)
    chosen = folding["no_exit"]
    start = next((i for i, d in enumerate(front) if round(d.resources["LUT"], 1) == chosen["resources"]["LUT"]), None)
    if start is None:
        raise RuntimeError(f"the rebuilt no-exit front has no design of {chosen['resources']['LUT']} modelled LUT "
                           "(the fold step's choice): rerun the fold step")
    built = []
    for design in front[start:]:
        built.append(build_no_exit(ctx, design, manifest))
        if built[-1]["luts"] > ee_luts:
            break
    for design in reversed(front[:start]):  # the early-exit design is the smaller: go down until one fits
        if any(d["luts"] <= ee_luts for d in built):
            break
        built.insert(0, build_no_exit(ctx, design, manifest))
    return built


def main() -> int:
    subprocess.run([sys.executable, "-m", "btsee.cli", "run", "configs/default.yaml", "--out", str(RUN),
                    "--device", "cpu", "--resume"], cwd=ROOT, check=True)
    from btsee.config import load_config
    from btsee.flow import Context

    ctx = Context(load_config(RUN / "config.json"), RUN, env=None)
    report = json.loads((RUN / "report.json").read_text())
    folding = json.loads((RUN / "fold" / "folding.json").read_text())
    t0 = time.time()
    res = report["resources"]
    ee_luts = luts(res)
    multi = report["rtl"]["multi_exit"]
    ee_fps = multi["images_per_second"]
    bracket = no_exit_designs(ctx, folding, ee_luts)
    within = [d for d in bracket if d["luts"] <= ee_luts]
    ne = max(within, key=lambda d: d["images_per_second_rtl"]) if within else bracket[0]
    larger = next((d for d in bracket if d["luts"] > ee_luts), None)
    ne_fps, ne_luts = ne["images_per_second_rtl"], ne["luts"]
    heads = {n: luts(r) for n, r in res["per_segment"].items() if n.startswith("head")}
    out = {
        "benchmark": "folding", "config": "configs/default.yaml", "board": folding["board"],
        "clock_mhz": folding["clock_mhz"], "budget_lut_modelled": folding["budget_lut"],
        "budget_lut_synthesized": ee_luts,
        "mac_fraction": report["mac_fraction"], "bound_1_over_mac_fraction": round(1 / report["mac_fraction"], 3),
        "early_exit": {
            "images_per_second_rtl": ee_fps, "rtl_images": multi["images"],
            "source": "RTL simulation of the whole multi-exit design, test images in order (rtl step)",
            "synthesized": {k: res[k] for k in ("LUT", "LUTRAM", "FF", "DSP", "BRAM18")}, "luts": ee_luts,
            "heads_luts": heads, "heads_share_of_design": res["lut_shares"]["heads_share_of_design"],
            "exit_glue": res["exit_glue"], "modelled": folding["early_exit"]["resources"],
            "model_fps_finn_cycles": folding["early_exit"]["fps_test_replay"],
            "pipeline_model_vs_rtl": multi["pipeline_model"], "buffer_frames": folding["buffer_frames"]},
        "no_exit": dict(ne, source="the fastest no-exit design whose synthesized LUTs are within the early-exit "
                                   "design's; each backbone segment simulated alone in RTL, free-running (the chain "
                                   "runs at its slowest segment)"),
        "no_exit_next_larger": larger and {k: larger[k] for k in larger if k != "segments"},
        "no_exit_designs_built": [{k: d[k] for k in d if k != "segments"} for d in bracket],
        "ratio_rtl_fps": round(ee_fps / ne_fps, 3),
        "ratio_rtl_fps_vs_next_larger": larger and round(ee_fps / larger["images_per_second_rtl"], 3),
        "ratio_fps_per_lut": round((ee_fps / ee_luts) / (ne_fps / ne_luts), 3),
        "ratio_model": report["throughput_fps"]["ratio"],
        "curve_modelled": folding["ratio_by_budget"],
        "seconds": round(time.time() - t0, 1)}
    out["fraction_of_bound_rtl"] = round(out["ratio_rtl_fps"] / out["bound_1_over_mac_fraction"], 3)
    out["mismatched_images"] = {"early_exit": report["bit_exact"]["golden_vs_rtl"]["mismatches"],
                                "no_exit": sum(d["mismatched_images"] for d in bracket)}
    atomic_write_json(ROOT / "bench" / "results" / "folding.json", out)
    print(json.dumps({k: v for k, v in out.items() if k not in ("curve_modelled",)}, indent=2)[:4000])
    return mismatch_status(out["mismatched_images"])


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
