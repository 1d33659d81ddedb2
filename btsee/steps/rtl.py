"""The RTL steps (open tools, no Vivado):

* `rtl`: each segment's HDL generated from its folded graph (`hw.rtl.segment`), compiled
  in Verilator once per content fingerprint, and simulated on the first
  `hardware.rtl_images` test images fed with the golden simulator's integer inputs: once
  free-running (cycles per frame, beside FINN's estimate) and once with random stalls on
  the input and backpressure on the output. Every output integer is compared with the
  golden simulator's: report.json `bit_exact.golden_vs_rtl_segments`.
* `synth`: each segment synthesized by Yosys for xc7 (`hw.rtl.synth`): report.json
  `resources` from synthesis, FINN's estimates kept beside them.

Tool logs stay in the run folder (rtl/<segment>/build/verilator.log, .../sim*/simulation.log,
synth/<segment>/yosys.log); a failure is one line naming the tool, the file and the log.
"""
from __future__ import annotations

import hashlib
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from boards import load_board
from btsee.flow import Context
from btsee.report import update_report
from btsee.run_folder import DATAFLOW_MANIFEST, RTL_FILE, SYNTH_FILE, read_json, read_manifest
from btsee.steps.common import load_splits
from calib.atomic import atomic_write_json
from calib.errors import ArtifactError

STALLED = (25, 35)
"""(input, output) stall probability in % of the checked simulation: the input withholds
its next word, the output lowers TREADY, at random each cycle."""
FREE_RUN_IMAGES = 100
"""Images of the free-running simulation that measures cycles per frame."""
SEED = 7
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


def _golden_streams(ctx: Context, manifest: dict, segments: list[dict], n: int) -> dict[str, dict]:
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


def _sources_digest(paths: list[Path]) -> str:
    """SHA-256 over the sources' names and contents, in order."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _compile_fingerprint(paths: list[Path], testbench: str) -> str:
    """What a simulation binary depends on: the sources, the testbench, Verilator and its flags."""
    from hw.rtl.tools import VERILATOR_FLAGS, verilator_version

    key = repr((_sources_digest(paths), testbench, VERILATOR_FLAGS, verilator_version()))
    return hashlib.sha256(key.encode()).hexdigest()


def _compile(rtl, folder: Path) -> tuple[Path, bool]:
    """The segment's simulation binary, compiled unless the same sources were compiled
    before (build/fingerprint); (binary, whether it was compiled now)."""
    from hw.rtl.stream import TESTBENCH_TOP, stream_testbench
    from hw.rtl.tools import verilate

    tb_text = stream_testbench(rtl.top, rtl.input.width, rtl.output.width)
    build = folder / "build"
    stamp = build / "fingerprint"
    fingerprint = _compile_fingerprint(rtl.paths(), tb_text)
    binary = build / f"V{TESTBENCH_TOP}"
    if binary.is_file() and stamp.is_file() and stamp.read_text() == fingerprint:
        return binary, False
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    (build / "tb.sv").write_text(tb_text)
    binary = verilate(TESTBENCH_TOP, [build / "tb.sv", *rtl.paths()], build, defines=("FINN_SIMULATION",))
    shutil.rmtree(build / "obj")  # about 190 MB of objects per segment; the binary is all a rerun needs
    stamp.write_text(fingerprint)
    return binary, True


HANG_FACTOR = 20
"""A simulation taking this many times FINN's cycle estimate (at least one cycle per input
word) per image is stuck: it stops with an error instead of running on."""


def _simulate_segment(rtl, folder: Path, golden: dict, finn_cycles: int) -> dict:
    """Compiles (if needed) and simulates one segment twice; the comparison with golden."""
    from hw.rtl.stream import simulate

    t0 = time.time()
    binary, compiled = _compile(rtl, folder)
    t1 = time.time()
    n = len(golden["in"])
    words_in = golden["in"].reshape(-1, rtl.input.elems)  # (n * words per frame, elems)
    expected = golden["out"].reshape(n, -1)  # (n, values per frame)
    passes = {}
    for label, images, (in_stall, out_stall) in (("free_running", min(n, FREE_RUN_IMAGES), (0, 0)),
                                                 ("stalled", n, STALLED)):
        sim = folder / f"sim_{label}"
        sim.mkdir(exist_ok=True)
        for f in rtl.data_files:  # memory images the design reads at start-up, by relative path
            shutil.copyfile(rtl.out_dir / "src" / f, sim / f)
        per_image_in = len(words_in) // n
        run = simulate(binary, sim, words_in[:images * per_image_in], rtl.input.bits,
                       images * rtl.output.words_per_frame, rtl.output.elems, rtl.output.bits, rtl.output.signed,
                       frame_words=rtl.output.words_per_frame, seed=SEED, in_stall=in_stall,
                       out_stall=out_stall,
                       max_cycles=HANG_FACTOR * images * max(finn_cycles, per_image_in) + 1_000_000,
                       subject=rtl.out_dir / "src" / f"{rtl.top}.sv")
        for f in ("in.hex", "out.hex"):  # tens of MB each; the comparison below keeps what matters
            (sim / f).unlink()
        got = run.codes.reshape(images, -1)
        wrong = np.flatnonzero((got != expected[:images]).any(axis=1))
        passes[label] = {"images": images, "input_stall_percent": in_stall, "output_stall_percent": out_stall,
                         "mismatched_images": int(len(wrong)), "first_mismatched": [int(i) for i in wrong[:10]],
                         "values_compared": int(got.size), "cycles_per_frame": run.cycles_per_frame(),
                         "first_frame_cycles": int(run.frame_end_cycles[0]) if len(run.frame_end_cycles) else 0}
    return {"compiled": compiled, "compile_seconds": round(t1 - t0, 1),
            "simulate_seconds": round(time.time() - t1, 1), **passes}


def step_rtl(ctx: Context) -> Context:
    """Each selected segment as RTL: generated, compiled once, simulated against golden."""
    from hw.rtl.segment import generate_segment, not_covered
    from hw.rtl.tools import verilator_version

    h = ctx.config.hardware
    board = load_board(h.board)
    manifest = read_manifest(ctx.out, DATAFLOW_MANIFEST)
    segments = _selected(manifest, h.rtl_segments, str(ctx.out / DATAFLOW_MANIFEST))
    skipped = {s["name"]: reason for s in segments if (reason := not_covered(ctx.out / s["folded_file"]))}
    for name, reason in skipped.items():
        ctx.log(f"  {name}: not covered: {reason}")
    segments = [s for s in segments if s["name"] not in skipped]
    n = min(h.rtl_images, len(load_splits(ctx).test.images))
    golden = _golden_streams(ctx, manifest, segments, n)
    rtls = {}
    for s in tqdm(segments, desc="rtl: generate", unit="segment", disable=None, leave=False):
        rtls[s["name"]] = generate_segment(s["name"], ctx.out / s["folded_file"], ctx.out / "rtl" / s["name"],
                                           board.part, h.clock_ns())
    results = {}
    with ThreadPoolExecutor(WORKERS) as pool, \
            tqdm(total=len(segments), desc="rtl: verilate + simulate", unit="segment", disable=None,
                 leave=False) as bar:
        futures = {s["name"]: pool.submit(_simulate_segment, rtls[s["name"]], ctx.out / "rtl" / s["name"],
                                          golden[s["name"]], int(s["estimate"]["cycles_per_frame"]))
                   for s in segments}
        for name, fut in futures.items():
            results[name] = fut.result()
            bar.update()
    doc = {"images": n, "segments": {}, "not_covered": skipped}
    for s in segments:
        r, rtl = results[s["name"]], rtls[s["name"]]
        finn_cycles = int(s["estimate"]["cycles_per_frame"])
        doc["segments"][s["name"]] = dict(
            r, top=rtl.top, folder=str(rtl.out_dir.relative_to(ctx.out.absolute())),
            sources_sha256=_sources_digest(rtl.paths()), layers=rtl.layers,
            finn_cycles_per_frame=finn_cycles)
        ctx.log(f"  {s['name']:15s} {len(rtl.layers)} layers, {len(rtl.sources)} sources"
                f"{' (compiled)' if r['compiled'] else ' (compiled before)'} | "
                f"{r['stalled']['mismatched_images']} of {n} images differ with stalls, "
                f"{r['free_running']['mismatched_images']} of {r['free_running']['images']} free-running | "
                f"{r['free_running']['cycles_per_frame']:,.0f} cycles/frame (FINN: {finn_cycles:,})")
    atomic_write_json(ctx.out / RTL_FILE, doc)
    mismatched = sum(r["stalled"]["mismatched_images"] + r["free_running"]["mismatched_images"]
                     for r in results.values())
    summary = {"images": n, "mismatches": mismatched, "segments": len(segments), "not_covered": sorted(skipped),
               "stalls_percent": {"input": STALLED[0], "output": STALLED[1]},
               "per_segment": {k: {"stalled": v["stalled"]["mismatched_images"],
                                   "free_running": v["free_running"]["mismatched_images"]}
                               for k, v in results.items()}}
    cycles = {k: {"rtl": v["free_running"]["cycles_per_frame"],
                  "finn_estimate": doc["segments"][k]["finn_cycles_per_frame"]} for k, v in results.items()}
    ctx.log(f"  golden vs RTL: {mismatched} mismatched images over {len(segments)} segments x {n} test images")
    update_report(ctx.out, {"bit_exact": {"golden_vs_rtl_segments": summary},
                            "rtl": {"simulator": verilator_version(), "cycles_per_frame": cycles}})
    return ctx


def read_rtl(ctx: Context) -> tuple[dict, dict]:
    """(rtl/rtl.json, {segment: SegmentRtl}) with every segment's sources present and
    unchanged since the `rtl` step simulated them; otherwise an ArtifactError naming the file."""
    from hw.rtl.segment import SegmentRtl

    doc = read_json(ctx.out, RTL_FILE)
    rtls = {}
    for name, seg in doc["segments"].items():
        folder = ctx.out / seg["folder"]
        rtls[name] = SegmentRtl.load(folder)
        if _sources_digest(rtls[name].paths()) != seg["sources_sha256"]:
            raise ArtifactError(f"{folder / 'src'}: the sources changed since the rtl step simulated them "
                                f"({ctx.out / RTL_FILE}, segments.{name}.sources_sha256); rerun it")
    return doc, rtls


def step_synth(ctx: Context) -> Context:
    """Each segment of the `rtl` step synthesized by Yosys for xc7; resources from synthesis."""
    from hw.rtl.synth import RESOURCE_KEYS
    from hw.rtl.tools import yosys_version

    h = ctx.config.hardware
    board = load_board(h.board)
    rtl_doc, rtls = read_rtl(ctx)
    results = {}
    with ThreadPoolExecutor(WORKERS) as pool, \
            tqdm(total=len(rtls), desc="synth", unit="segment", disable=None, leave=False) as bar:
        futures = {name: pool.submit(_timed_synthesis, rtl, ctx.out / "synth" / name)
                   for name, rtl in rtls.items()}
        for name, fut in futures.items():
            results[name] = fut.result()
            bar.update()
    dataflow = {s["name"]: s for s in read_manifest(ctx.out, DATAFLOW_MANIFEST)["segments"]}
    totals = dict.fromkeys(RESOURCE_KEYS, 0)
    per_segment = {}
    for name, r in results.items():
        est = dataflow[name]["estimate"]
        per_segment[name] = dict(r["resources"], finn_estimate={"LUT": est["lut"], "BRAM18": est["bram18"],
                                                                "DSP": est["dsp"]})
        for k in RESOURCE_KEYS:
            totals[k] += r["resources"][k]
        ctx.log(f"  {name:15s} " + ", ".join(f"{r['resources'][k]:,} {k}" for k in RESOURCE_KEYS)
                + f" (FINN estimate {est['lut']:,.0f} LUT, {est['bram18']:g} BRAM18, {est['dsp']:g} DSP; "
                f"{r['seconds']:.0f} s)")
    tool = yosys_version()
    source = (f"synthesis: {tool}, synth_xilinx -family xc7 per segment (no place and route, no timing); "
              "LUT = logic LUTs, LUTRAM = LUTs used as distributed RAM or shift registers")
    finn_totals = {k: sum(per_segment[n]["finn_estimate"][k] for n in results) for k in ("LUT", "BRAM18", "DSP")}
    atomic_write_json(ctx.out / SYNTH_FILE, {"tool": tool, "part": board.part, "totals": totals,
                                             "segments": {n: dict(r, log=str(Path("synth") / n / "yosys.log"))
                                                          for n, r in results.items()}})
    lut_budget = board.resources.get("LUT", 0)
    ctx.log(f"  total {totals['LUT']:,} LUT + {totals['LUTRAM']:,} LUTRAM, {totals['FF']:,} FF, {totals['DSP']} DSP, "
            f"{totals['BRAM18']} BRAM18 (synthesized) of {lut_budget:,} LUT on {board.name}; FINN estimated "
            f"{finn_totals['LUT']:,.0f} LUT, {finn_totals['BRAM18']:g} BRAM18, {finn_totals['DSP']:g} DSP")
    from btsee.plots import synthesized_resources

    for name, seg in rtl_doc["segments"].items():
        per_segment[name]["cycles_per_frame"] = {"rtl": seg["free_running"]["cycles_per_frame"],
                                                 "finn_estimate": seg["finn_cycles_per_frame"]}
    synthesized_resources(per_segment, lut_budget, ctx.out / "synth/resources.png")
    not_covered = sorted(rtl_doc.get("not_covered", {}))
    if not_covered:
        ctx.log(f"  the totals leave out the segments the rtl step did not cover: {', '.join(not_covered)}")
    update_report(ctx.out, {"resources": dict(totals, source=source, board=board.name, part=board.part,
                                              board_resources=board.resources, finn_estimate=finn_totals,
                                              per_segment=per_segment, not_covered=not_covered),
                            "plots": {"resources": "synth/resources.png"}})
    return ctx


def _timed_synthesis(rtl, folder: Path) -> dict:
    """`hw.rtl.synth.synthesize` with its wall time in seconds."""
    from hw.rtl.synth import synthesize

    t = time.time()
    r = synthesize(rtl, folder)
    return dict(r, seconds=round(time.time() - t, 1))
