"""The `netlist` step: the netlists the `synth` step built, simulated against golden.

Each segment's mapped netlist (`synth/<segment>/netlist.v`) runs the first test images
with random input stalls and output backpressure, every output integer compared with the
golden simulator's (`hardware.netlist_images`); then, when
`hardware.netlist_design_images` > 0, the whole design as synthesized (the exit glue's
netlist with every segment's netlist under it) runs that many test images in order, pixels in and (class, exit index) out. Results: `synth/netlist.json` and report.json
`bit_exact.golden_vs_netlist`. The resources the `synth` step reports are then those of
netlists shown to compute the right answers.

Netlist binaries are compiled once per content fingerprint (1-2 minutes a segment on this
project's machines); `make bench` runs the full counts (`bench/bench_netlist.py`).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from btsee.flow import Context
from btsee.report import update_report
from btsee.run_folder import FOLD_MANIFEST, NETLIST_FILE, SYNTH_FILE, read_json, read_manifest
from btsee.steps.common import load_splits
from btsee.steps.rtl import SEED, STALLED, WORKERS, golden_streams, read_rtl, segment_passes
from btsee.steps.rtl_design import golden_design_result, read_design, run_design_passes
from calib.atomic import atomic_write_json
from calib.errors import ArtifactError
from calib.progress import progress
from hw.rtl.synth import NETLIST


def netlist_checks(ctx: Context, segment_images: int, design_images: int, log=None) -> dict:
    """Simulates every segment's netlist on `segment_images` test images with stalls and,
    if `design_images` > 0, the whole design's on that many; returns the netlist.json
    document (per segment and for the design: images, mismatched images, seconds)."""
    from hw.rtl.netlist import compile_netlists
    from hw.rtl.stream import TESTBENCH_TOP, stream_testbench

    log = log or ctx.log
    rtl_doc, rtls = read_rtl(ctx)
    synth_doc = read_json(ctx.out, SYNTH_FILE)
    netlists = {name: ctx.out / "synth" / name / NETLIST for name in rtls}
    for name, path in netlists.items():
        if name not in synth_doc["segments"] or not path.is_file():
            raise ArtifactError(f"{path}: missing; rerun the synth step (it keeps each segment's netlist)")
    manifest = read_manifest(ctx.out, FOLD_MANIFEST)
    segments = [s for s in manifest["segments"] if s["name"] in rtls]
    n = min(segment_images, len(load_splits(ctx).test.images))
    golden = golden_streams(ctx, manifest, segments, n)

    def one(s: dict) -> dict:
        rtl, folder = rtls[s["name"]], ctx.out / "netlist" / s["name"]
        t0 = time.time()
        tb = stream_testbench(rtl.top, rtl.input.width, rtl.output.width)
        binary, compiled, cxx = compile_netlists(TESTBENCH_TOP, tb, [netlists[s["name"]]], folder / "build",
                                                 n * int(s["estimate"]["cycles_per_frame"]))
        t1 = time.time()
        passes = segment_passes(binary, rtl, folder, golden[s["name"]], int(s["estimate"]["cycles_per_frame"]),
                                [("stalled", n, STALLED)])
        return {"compiled": compiled, "cxx_optimization": cxx, "compile_seconds": round(t1 - t0, 1),
                "simulate_seconds": round(time.time() - t1, 1), **passes}

    results = {}
    with ThreadPoolExecutor(WORKERS) as pool, \
            progress(total=len(segments), desc="netlist: verilate + simulate", unit="segment",
                 leave=False) as bar:
        # the costliest first (netlist size x cycles per frame: compile and simulation both grow
        # with them), so the last job to start is a short one and both cores stay busy
        by_cost = sorted(segments, key=lambda s: netlists[s["name"]].stat().st_size
                         * int(s["estimate"]["cycles_per_frame"]), reverse=True)
        futures = {pool.submit(one, s): s["name"] for s in by_cost}
        for fut in as_completed(futures):  # each segment's line as soon as it is done
            name = futures[fut]
            r = results[name] = fut.result()
            bar.update()
            log(f"  {name:15s} netlist: {r['stalled']['mismatched_images']} of {r['stalled']['images']} images "
                f"differ with {STALLED[0]}/{STALLED[1]} % stalls ({r['compile_seconds']:.0f} s compile"
                f" {r['cxx_optimization']}{'' if r['compiled'] else ', compiled before'}, "
                f"{r['simulate_seconds']:.0f} s simulation)")
    results = {s["name"]: results[s["name"]] for s in segments}  # segment order in netlist.json
    design_doc = None
    design = read_design(ctx, rtl_doc)
    if design is not None and design_images > 0:
        glue = ctx.out / "synth" / "exit_glue" / NETLIST
        m = min(design_images, len(load_splits(ctx).test.images))
        expected, _, _ = golden_design_result(ctx, m)
        first = next(iter(golden))
        pixels = golden_streams(ctx, manifest, [s for s in segments if s["name"] == first], m)[first]["in"]
        t0 = time.time()
        serial = sum(int(s["estimate"]["cycles_per_frame"]) for s in segments)
        pace = int(rtl_doc["multi_exit"]["free_running"]["steady_cycles_per_image"])  # the rtl step's
        binary, compiled, cxx = compile_netlists(TESTBENCH_TOP, design.testbench(monitors=False),
                                                 [glue, *netlists.values()],
                                                 ctx.out / "netlist" / "multi_exit" / "build", m * pace)
        design_doc = {"compiled": compiled, "cxx_optimization": cxx, "compile_seconds": round(time.time() - t0, 1)}
        design_doc.update(run_design_passes(design, binary, ctx.out / "netlist" / "multi_exit",
                                            pixels.reshape(-1, design.input.elems), expected,
                                            [("stalled", *STALLED)], SEED, 2 * m * serial + 1_000_000,
                                            monitors=False))
        p = design_doc["stalled"]
        log(f"  whole design netlist (exit glue + {len(netlists)} segments): {p['mismatched_images']} of "
            f"{p['images']} images differ (class or exit index) with {STALLED[0]}/{STALLED[1]} % stalls "
            f"({design_doc['compile_seconds']:.0f} s compile {cxx}, {design_doc['simulate_seconds']:.0f} s simulation)")
    mismatches = sum(r["stalled"]["mismatched_images"] for r in results.values())
    mismatches += design_doc["stalled"]["mismatched_images"] if design_doc else 0
    return {"images_per_segment": n, "stalls_percent": {"input": STALLED[0], "output": STALLED[1]},
            "mismatches": mismatches, "segments": results, "design": design_doc,
            "design_not_run": None if design_doc else ("no whole design was built" if design is None else
                                                      "hardware.netlist_design_images is 0 (make bench runs it)")}


def summary(doc: dict) -> dict:
    """report.json `bit_exact.golden_vs_netlist` from a netlist.json document."""
    design = doc["design"]
    return {"images": {"per_segment": doc["images_per_segment"],
                       "whole_design": design["stalled"]["images"] if design else 0},
            "mismatches": doc["mismatches"], "stalls_percent": doc["stalls_percent"],
            "per_segment": {k: v["stalled"]["mismatched_images"] for k, v in doc["segments"].items()},
            "whole_design": ({"mismatched_images": design["stalled"]["mismatched_images"],
                              "classes_differ": design["stalled"]["classes_differ"],
                              "exit_indices_differ": design["stalled"]["exit_indices_differ"]}
                             if design else {"not_run": doc["design_not_run"]}),
            "compared": "every output integer of each segment; the whole design's class and exit index"}


def step_netlist(ctx: Context) -> Context:
    """The synthesized netlists against golden (module docstring)."""
    h = ctx.config.hardware
    doc = netlist_checks(ctx, h.netlist_images, h.netlist_design_images)
    atomic_write_json(ctx.out / NETLIST_FILE, doc)
    ctx.log(f"  golden vs netlist: {doc['mismatches']} mismatched images ({doc['images_per_segment']} per segment"
            + (f", {doc['design']['stalled']['images']} through the whole design)" if doc["design"] else
               f"; the whole design: {doc['design_not_run']})"))
    update_report(ctx.out, {"bit_exact": {"golden_vs_netlist": summary(doc)}})
    return ctx

