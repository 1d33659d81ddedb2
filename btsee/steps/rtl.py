"""The `rtl` step (open tools, no Vivado): each segment's HDL generated from its folded graph (`hw.rtl.segment`), compiled
  in Verilator once per content fingerprint with the MVUs' DSP48E1 datapath
  (`hw.rtl.dsp_path`), and simulated on the first
  `hardware.rtl_images` test images fed with the golden simulator's integer inputs: once
  free-running (cycles per frame, beside FINN's estimate) and once with random stalls on
  the input and backpressure on the output. Every output integer is compared with the
  golden simulator's: report.json `bit_exact.golden_vs_rtl_segments`. Then the whole
  multi-exit design (`btsee.steps.rtl_design`): pixels in, (class, exit index) out, every
  image and every head's logits compared, free-running on all `hardware.rtl_images` and
  with stalls on the first DESIGN_STALLED_IMAGES: `bit_exact.golden_vs_rtl`, and its cycles
  from the first pixel in to the last decision out: `rtl.multi_exit`. The `synth` step
  (`btsee.steps.synth`) synthesizes what this step simulated (`read_rtl`).

Tool logs stay in the run folder (rtl/<segment>/build/verilator.log, .../sim*/simulation.log);
a failure is one line naming the tool, the file and the log.
"""
from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from boards import load_board
from btsee.flow import Context
from btsee.report import update_report
from btsee.run_folder import FOLD_MANIFEST, RTL_FILE, read_json, read_manifest
from btsee.steps.common import load_splits
from btsee.steps.rtl_design import (DESIGN_FOLDER, design_chain, generate_design, golden_design_result, model_vs_rtl,
                                    simulate_design)
from calib.atomic import atomic_write_json
from calib.errors import ArtifactError
from calib.progress import progress
from hw.rtl.tools import sources_digest

STALLED = (25, 35)
"""(input, output) stall probability in % of the checked simulation: the input withholds
its next word, the output lowers TREADY, at random each cycle."""
FREE_RUN_IMAGES = 40
"""Images of a segment's free-running simulation that measures its cycles per frame (a
segment's pace is steady after its first frames; the whole design runs every image)."""
SEGMENT_STALLED_IMAGES = 50
"""Images of a segment's own simulation with stalls: it isolates a fault to one segment; the
whole design, which covers every image, is the check (`make demo`'s budget: 100 free-running
and 100 stalled per segment cost about 25 s more)."""
DESIGN_STALLED_IMAGES = 100
"""Images of the whole design's run with stalls: the first of the `hardware.rtl_images` it
runs free-running (all of them: the cycles and the exits taken). Stalls test the handshakes,
and on the default run every exit takes at least one of the first 100; `make demo` has no
time for 1,000 more, and 250 cost about 15 s more."""
SEED = 7
SEGMENT_NICENESS = 10
"""The nice value of the segments' jobs while the whole design runs (`_yield_to_the_design`)."""
_PRIORITY = threading.local()
WORKERS = 2
"""Segments compiled and simulated (or synthesized) at once: the tools are single-threaded."""


def _selected(manifest: dict, names: list[str] | None, where: str) -> list[dict]:
    segments = manifest["segments"]
    if names is None:
        return segments
    known = [s["name"] for s in segments]
    if unknown := [n for n in names if n not in known]:
        raise ArtifactError(f"{where}: hardware.rtl_segments names {unknown}; the segments are {known}")
    return [s for s in segments if s["name"] in names]


def golden_streams(ctx: Context, manifest: dict, segments: list[dict], n: int) -> dict[str, dict]:
    """Per segment: the golden simulator's integer values at the two ends of its RTL
    (the folded graph's input and output tensors) on the first n test images."""
    from hw.golden import load_programs
    from hw.rtl.segment import stream_ends

    programs = load_programs(ctx.out, manifest)
    ends = {s["name"]: stream_ends(ctx.out / s["folded_file"]) for s in segments}
    outputs: dict[str, np.ndarray] = {"input": load_splits(ctx).test.images[:n]}
    streams = {}
    for s in manifest["segments"]:  # backbone before its head, in manifest order: one pass each
        name, prog = s["name"], programs[s["name"]]
        wanted = (*ends.get(name, ()), *((prog.output_name,) if s["kind"] == "backbone" else ()))
        if not wanted:
            continue
        values = prog.tensors(outputs[s["source"]], tuple(dict.fromkeys(wanted)))
        if s["kind"] == "backbone":
            outputs[name] = values[prog.output_name]
        if name in ends:
            streams[name] = {"in": values[ends[name][0]], "out": values[ends[name][1]]}
    return streams


def compile_segment(rtl, folder: Path) -> tuple[Path, bool]:
    """The segment's simulation binary, compiled unless the same sources were compiled
    before (build/fingerprint); (binary, whether it was compiled now)."""
    from hw.rtl.stream import TESTBENCH_TOP, stream_testbench
    from hw.rtl.dsp_path import compile_for_simulation

    tb_text = stream_testbench(rtl.top, rtl.input.width, rtl.output.width)
    return compile_for_simulation(TESTBENCH_TOP, tb_text, rtl.paths(), folder / "build")


HANG_FACTOR = 20
"""A simulation taking this many times FINN's cycle estimate (at least one cycle per input
word) per image is stuck: it stops with an error instead of running on."""


def _yield_to_the_design() -> None:
    """Lowers the calling worker thread's scheduling priority once (Linux: a thread's nice
    value, inherited by the compiler and simulator it starts). The whole design's compile and
    simulation are the rtl step's longest chain; the segments' jobs then fill the cores
    around it instead of slowing it down. Elsewhere, or when refused, nothing changes."""
    if getattr(_PRIORITY, "lowered", False) or not sys.platform.startswith("linux"):
        return
    _PRIORITY.lowered = True
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SEGMENT_NICENESS)
    except OSError:
        pass


def _simulate_segment(rtl, folder: Path, golden: dict, finn_cycles: int, yield_to_design: bool = False) -> dict:
    """Compiles (if needed) and simulates one segment twice; the comparison with golden.
    With `yield_to_design`, at a lower priority than the whole design's jobs."""
    if yield_to_design:
        _yield_to_the_design()
    t0 = time.time()
    binary, compiled = compile_segment(rtl, folder)
    t1 = time.time()
    n = len(golden["in"])
    passes = segment_passes(binary, rtl, folder, golden, finn_cycles,
                            [("free_running", min(n, FREE_RUN_IMAGES), (0, 0)),
                             ("stalled", min(n, SEGMENT_STALLED_IMAGES), STALLED)])
    return {"compiled": compiled, "compile_seconds": round(t1 - t0, 1),
            "simulate_seconds": round(time.time() - t1, 1), **passes}


def segment_passes(binary: Path, rtl, folder: Path, golden: dict, finn_cycles: int,
                   passes: list[tuple[str, int, tuple[int, int]]]) -> dict:
    """Runs the segment's simulation `binary` (its RTL or its netlist) once per pass (label,
    images, (input stall %, output stall %)) on the first images of `golden`; per pass the
    comparison of every output integer with golden's, and the cycles per frame."""
    from hw.rtl.stream import simulate

    n = len(golden["in"])
    words_in = golden["in"].reshape(-1, rtl.input.elems)  # (n * words per frame, elems)
    expected = golden["out"].reshape(n, -1)  # (n, values per frame)
    out = {}
    for label, images, (in_stall, out_stall) in passes:
        sim = folder / f"sim_{label}"
        sim.mkdir(parents=True, exist_ok=True)
        for f in rtl.data_files:  # memory images the design reads at start-up, by relative path
            shutil.copyfile(rtl.out_dir / "src" / f, sim / f)
        per_image_in = len(words_in) // n
        run = simulate(binary, sim, words_in[:images * per_image_in], rtl.input.bits,
                       images * rtl.output.words_per_frame, rtl.output.elems, rtl.output.bits, rtl.output.signed,
                       frame_words=rtl.output.words_per_frame, seed=SEED, in_stall=in_stall,
                       out_stall=out_stall,
                       max_cycles=HANG_FACTOR * images * max(finn_cycles, per_image_in) + 1_000_000,
                       subject=rtl.out_dir / "src" / f"{rtl.top}.sv")
        for f in ("in0_V.hex", "out0_V.hex"):  # tens of MB each; the comparison below keeps what matters
            (sim / f).unlink()
        got = run.codes.reshape(images, -1)
        wrong = np.flatnonzero((got != expected[:images]).any(axis=1))
        out[label] = {"images": images, "input_stall_percent": in_stall, "output_stall_percent": out_stall,
                      "mismatched_images": int(len(wrong)), "first_mismatched": [int(i) for i in wrong[:10]],
                      "values_compared": int(got.size), "cycles_per_frame": run.cycles_per_frame(),
                      "first_frame_cycles": int(run.frame_end_cycles[0]) if len(run.frame_end_cycles) else 0}
    return out


def step_rtl(ctx: Context) -> Context:
    """Each selected segment as RTL: generated, compiled once, simulated against golden."""
    from hw.rtl.segment import generate_segment, not_covered
    from hw.rtl.tools import verilator_version

    h = ctx.config.hardware
    board = load_board(h.board)
    manifest = read_manifest(ctx.out, FOLD_MANIFEST)  # the folding the fold step chose
    segments = _selected(manifest, h.rtl_segments, str(ctx.out / FOLD_MANIFEST))
    skipped = {s["name"]: reason for s in segments if (reason := not_covered(ctx.out / s["folded_file"]))}
    for name, reason in skipped.items():
        ctx.log(f"  {name}: not covered: {reason}")
    segments = [s for s in segments if s["name"] not in skipped]
    n = min(h.rtl_images, len(load_splits(ctx).test.images))
    golden = golden_streams(ctx, manifest, segments, n)
    rtls = {}
    for s in progress(segments, desc="rtl: generate", unit="segment", leave=False):
        rtls[s["name"]] = generate_segment(s["name"], ctx.out / s["folded_file"], ctx.out / "rtl" / s["name"],
                                           board.part, h.clock_ns())
    chain, why_not = design_chain(manifest, rtls)
    design = design_run = None
    if chain is not None:
        expected, thresholds, score = golden_design_result(ctx, n)
        design = generate_design(ctx, chain, thresholds, score, manifest["buffer_frames"])
        serial = sum(int(s["estimate"]["cycles_per_frame"]) for s in segments)  # an image at a time
    else:
        ctx.log(f"  whole multi-exit design: not built: {why_not}")
    results = {}
    with ThreadPoolExecutor(WORKERS) as pool, \
            progress(total=len(segments) + (design is not None), desc="rtl: verilate + simulate", unit="design",
                 leave=False) as bar:
        if design is not None:  # the longest job first
            pixels = golden[chain[0][0].name]["in"].reshape(-1, design.input.elems)
            whole = pool.submit(simulate_design, design, pixels, expected,
                                [("free_running", 0, 0), ("stalled", *STALLED, DESIGN_STALLED_IMAGES)], SEED,
                                2 * n * serial + 1_000_000)  # twice the pace of one image at a time: stuck
        futures = {s["name"]: pool.submit(_simulate_segment, rtls[s["name"]], ctx.out / "rtl" / s["name"],
                                          golden[s["name"]], int(s["estimate"]["cycles_per_frame"]),
                                          design is not None)
                   for s in segments}
        finn_cycles = {s["name"]: int(s["estimate"]["cycles_per_frame"]) for s in segments}
        names = {fut: name for name, fut in futures.items()}
        for fut in as_completed(names):  # each segment's line as soon as it is done
            name = names[fut]
            r = results[name] = fut.result()
            ctx.log(f"  {name:15s} {len(rtls[name].layers)} layers, {len(rtls[name].sources)} sources"
                    f"{' (compiled)' if r['compiled'] else ' (compiled before)'} | "
                    f"{r['stalled']['mismatched_images']} of {r['stalled']['images']} images differ with stalls, "
                    f"{r['free_running']['mismatched_images']} of {r['free_running']['images']} free-running | "
                    f"{r['free_running']['cycles_per_frame']:,.0f} cycles/frame (FINN: {finn_cycles[name]:,})")
            bar.update()
        if design is not None:
            design_run = whole.result()
            bar.update()
    doc = {"images": n, "segments": {}, "not_covered": skipped,
           "multi_exit": None if design is None else dict(design_run, design=design.to_dict(),
                                                           folder=DESIGN_FOLDER,
                                                           sources_sha256=sources_digest(design.paths()))}
    for s in segments:
        r, rtl = results[s["name"]], rtls[s["name"]]
        doc["segments"][s["name"]] = dict(
            r, top=rtl.top, folder=str(rtl.out_dir.relative_to(ctx.out.absolute())),
            sources_sha256=sources_digest(rtl.paths()), layers=rtl.layers,
            finn_cycles_per_frame=finn_cycles[s["name"]])
    atomic_write_json(ctx.out / RTL_FILE, doc)
    mismatched = sum(r["stalled"]["mismatched_images"] + r["free_running"]["mismatched_images"]
                     for r in results.values())
    summary = {"images": {"stalled": min(n, SEGMENT_STALLED_IMAGES), "free_running": min(n, FREE_RUN_IMAGES)},
               "mismatches": mismatched, "segments": len(segments), "not_covered": sorted(skipped),
               "stalls_percent": {"input": STALLED[0], "output": STALLED[1]},
               "per_segment": {k: {"stalled": v["stalled"]["mismatched_images"],
                                   "free_running": v["free_running"]["mismatched_images"]}
                               for k, v in results.items()}}
    cycles = {k: {"rtl": v["free_running"]["cycles_per_frame"],
                  "finn_estimate": doc["segments"][k]["finn_cycles_per_frame"]} for k, v in results.items()}
    ctx.log(f"  golden vs RTL, segment by segment: {mismatched} mismatched images")
    whole = _design_summary(ctx, design, design_run, why_not, h.clock_ns())
    if design is not None:
        whole["cycles"]["pipeline_model"] = model_vs_rtl(manifest, expected.exit_index, cycles, design.buffers,
                                                         design_run["free_running"], ctx.log)
    update_report(ctx.out, {"bit_exact": {"golden_vs_rtl_segments": summary, "golden_vs_rtl": whole["bit_exact"]},
                            "rtl": {"simulator": verilator_version(), "cycles_per_frame": cycles,
                                    "multi_exit": whole["cycles"]}})
    return ctx


def _design_summary(ctx: Context, design, run: dict | None, why_not: str | None, clock_ns: float) -> dict:
    """The whole design's report entries (bit_exact.golden_vs_rtl, rtl.multi_exit), logged."""
    if design is None:
        return {"bit_exact": {"not_covered": why_not}, "cycles": {"not_covered": why_not}}
    passes = {k: run[k] for k in ("free_running", "stalled")}
    mismatches = sum(p["mismatched_images"] for p in passes.values())
    free = passes["free_running"]
    fps = 1e9 / clock_ns / free["steady_cycles_per_image"]
    for label, p in passes.items():
        ctx.log(f"  whole design, {label} ({p['input_stall_percent']}/{p['output_stall_percent']} % stalls): "
                f"{p['mismatched_images']} of {p['images']} images differ (class, exit index or any logit); "
                f"{p['cycles_first_pixel_to_last_decision']:,} cycles from the first pixel to the last decision")
    ctx.log(f"  whole design: {free['steady_cycles_per_image']:,.0f} cycles per image in steady state, "
            f"{fps:,.0f} images/s at {1e3 / clock_ns:.0f} MHz; exits taken {free['exits_taken']}")
    bit_exact = {"images": free["images"], "mismatches": mismatches, "thresholds_sha256": design.thresholds_sha256,
                 "compared": "class, exit index, every head's and the final classifier's integer logits",
                 **{label: {k: p[k] for k in ("mismatched_images", "classes_differ", "exit_indices_differ",
                                              "input_stall_percent", "output_stall_percent", "logits")}
                    for label, p in passes.items()}}
    cycles = {"images": free["images"], "in_order": "the first test images, in split order",
              "cycles_first_pixel_to_last_decision": free["cycles_first_pixel_to_last_decision"],
              "cycles_per_image": free["cycles_per_image"],
              "steady_cycles_per_image": free["steady_cycles_per_image"], "images_per_second": round(fps, 1),
              "clock_mhz": round(1e3 / clock_ns, 3), "exits_taken": free["exits_taken"],
              "buffers": design.buffers}
    return {"bit_exact": bit_exact, "cycles": cycles}


def read_rtl(ctx: Context) -> tuple[dict, dict]:
    """(rtl/rtl.json, {segment: SegmentRtl}) with every segment's sources present and
    unchanged since the `rtl` step simulated them; otherwise an ArtifactError naming the file."""
    from hw.rtl.segment import SegmentRtl

    doc = read_json(ctx.out, RTL_FILE)
    rtls = {}
    for name, seg in doc["segments"].items():
        folder = ctx.out / seg["folder"]
        rtls[name] = SegmentRtl.load(folder)
        if sources_digest(rtls[name].paths()) != seg["sources_sha256"]:
            raise ArtifactError(f"{folder / 'src'}: the sources changed since the rtl step simulated them "
                                f"({ctx.out / RTL_FILE}, segments.{name}.sources_sha256); rerun it")
    return doc, rtls
