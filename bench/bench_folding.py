"""Early exits against no exits on the FPGA: the default run's exit-aware design (the fold
step's choice, built by the rtl and synth steps) against the backbone alone folded by the
same search within the same LUT budget, both synthesized by Yosys and both timed in RTL.

Writes bench/results/folding.json:
- early_exit: synthesized resources of the whole design (segments, heads, exit glue), its
  sustained images/s measured by the RTL simulation of the whole design on the test split's
  first images in order, and the pipeline model's figures for it;
- no_exit: the no-exit design's backbone segments generated as RTL, synthesized, and each
  timed alone in Verilator (free-running; the chain runs at its slowest segment), checked
  bit-exact against the golden simulator on the images it ran;
- ratio: early-exit over no-exit images/s (RTL), and images/s per synthesized LUT;
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


def no_exit_design(ctx, folding: dict) -> dict:
    """The no-exit design's backbone segments: FINN's folding at the search's targets, RTL,
    Yosys synthesis and a free-running simulation of each (two at a time)."""
    from boards import load_board
    from btsee.run_folder import DATAFLOW_MANIFEST, read_manifest
    from btsee.steps.rtl import _golden_streams, _simulate_segment
    from hw.finn.estimate import estimate_segment
    from hw.rtl.segment import generate_segment
    from hw.rtl.synth import synthesize

    h = ctx.config.hardware
    board = load_board(h.board)
    manifest = read_manifest(RUN, DATAFLOW_MANIFEST)
    chosen = folding["no_exit"]["segments"]
    segments = []
    for seg in manifest["segments"]:
        if seg["name"] not in chosen:
            continue
        est = estimate_segment(RUN / seg["hw_file"], seg["input_type"], RUN / WORK / "estimates" / seg["name"],
                               board=board.finn_board, clock_period_ns=h.clock_ns(),
                               target_fps=chosen[seg["name"]]["target_fps"], mvau_wwidth_max=h.mvau_wwidth_max)
        if est.cycles_per_frame != chosen[seg["name"]]["cycles_per_frame"]:
            raise RuntimeError(f"{seg['name']}: FINN folds to {est.cycles_per_frame} cycles, the search had "
                               f"{chosen[seg['name']]['cycles_per_frame']}")
        folded = est.folded_graph.relative_to(RUN)
        segments.append(dict(seg, folded_file=str(folded), estimate=est.to_dict()))
    golden = _golden_streams(ctx, manifest, segments, IMAGES)
    rtls = {s["name"]: generate_segment(s["name"], RUN / s["folded_file"], RUN / WORK / "rtl" / s["name"],
                                        board.part, h.clock_ns()) for s in segments}

    def one(s):
        t = time.time()
        sim = _simulate_segment(rtls[s["name"]], RUN / WORK / "rtl" / s["name"], golden[s["name"]],
                                int(s["estimate"]["cycles_per_frame"]))
        syn = synthesize(rtls[s["name"]], RUN / WORK / "synth" / s["name"])
        return {"finn_cycles_per_frame": int(s["estimate"]["cycles_per_frame"]),
                "rtl_cycles_per_frame": sim["free_running"]["cycles_per_frame"],
                "mismatched_images": sim["free_running"]["mismatched_images"] + sim["stalled"]["mismatched_images"],
                "images": sim["free_running"]["images"], "resources": syn["resources"],
                "folding": s["estimate"]["folding"], "seconds": round(time.time() - t, 1)}

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip([s["name"] for s in segments], pool.map(one, segments)))
    return results


def main() -> None:
    subprocess.run([sys.executable, "-m", "btsee.cli", "run", "configs/default.yaml", "--out", str(RUN),
                    "--device", "cpu", "--resume"], cwd=ROOT, check=True)
    from btsee.config import load_config
    from btsee.flow import Context

    ctx = Context(load_config(RUN / "config.json"), RUN, env=None)
    clock_hz = 1e9 / ctx.config.hardware.clock_ns()
    report = json.loads((RUN / "report.json").read_text())
    folding = json.loads((RUN / "fold" / "folding.json").read_text())
    t0 = time.time()
    ne = no_exit_design(ctx, folding)
    ne_luts = sum(luts(r["resources"]) for r in ne.values())
    ne_cycles = max(r["rtl_cycles_per_frame"] for r in ne.values())
    ne_fps = clock_hz / ne_cycles
    res = report["resources"]
    ee_luts = luts(res)
    multi = report["rtl"]["multi_exit"]
    ee_fps = multi["images_per_second"]
    heads = {n: luts(r) for n, r in res["per_segment"].items() if n.startswith("head")}
    out = {
        "benchmark": "folding", "config": "configs/default.yaml", "board": folding["board"],
        "clock_mhz": folding["clock_mhz"], "budget_lut_modelled": folding["budget_lut"],
        "mac_fraction": report["mac_fraction"], "bound_1_over_mac_fraction": round(1 / report["mac_fraction"], 3),
        "early_exit": {
            "images_per_second_rtl": ee_fps, "rtl_images": multi["images"],
            "source": "RTL simulation of the whole multi-exit design, test images in order (rtl step)",
            "synthesized": {k: res[k] for k in ("LUT", "LUTRAM", "FF", "DSP", "BRAM18")}, "luts": ee_luts,
            "heads_luts": heads, "heads_share_of_design": res["lut_shares"]["heads_share_of_design"],
            "exit_glue": res["exit_glue"], "modelled": folding["early_exit"]["resources"],
            "model_fps_finn_cycles": folding["early_exit"]["fps_test_replay"],
            "pipeline_model_vs_rtl": multi["pipeline_model"], "buffer_frames": folding["buffer_frames"]},
        "no_exit": {
            "images_per_second_rtl": round(ne_fps, 1), "slowest_segment_cycles_rtl": ne_cycles,
            "source": "each backbone segment simulated alone in RTL, free-running (the chain's pace is its slowest)",
            "luts": ne_luts, "segments": ne, "model_fps_finn_cycles": folding["no_exit"]["fps"],
            "modelled": folding["no_exit"]["resources"],
            "mismatched_images": sum(r["mismatched_images"] for r in ne.values())},
        "ratio_rtl_fps": round(ee_fps / ne_fps, 3),
        "ratio_fps_per_lut": round((ee_fps / ee_luts) / (ne_fps / ne_luts), 3),
        "ratio_model": report["throughput_fps"]["ratio"],
        "curve_modelled": folding["ratio_by_budget"],
        "seconds": round(time.time() - t0, 1)}
    out["fraction_of_bound_rtl"] = round(out["ratio_rtl_fps"] / out["bound_1_over_mac_fraction"], 3)
    atomic_write_json(ROOT / "bench" / "results" / "folding.json", out)
    print(json.dumps({k: v for k, v in out.items() if k not in ("curve_modelled",)}, indent=2)[:4000])


if __name__ == "__main__":
    main()
