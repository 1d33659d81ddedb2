"""The `rtl` step's checks at full counts, for `make bench`: every segment the step
simulated, on the first N test images in order free-running and again with random stalls,
and the whole multi-exit design on the same N with stalls (the step itself runs the whole
design free-running on all `hardware.rtl_images`, but with stalls only on the first
DESIGN_STALLED_IMAGES, and each segment on at most 50, to keep `make demo` short).

It reuses the binaries the step compiled (same sources, same fingerprint: nothing is
recompiled) and writes its simulations under <run>/rtl_checks/, beside the step's own.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable

from btsee.flow import Context
from btsee.run_folder import FOLD_MANIFEST, read_manifest
from btsee.steps.common import load_splits
from btsee.steps.rtl import SEED, STALLED, WORKERS, compile_segment, golden_streams, read_rtl, segment_passes
from btsee.steps.rtl_design import design_chain, golden_design_result, read_design, run_design_passes
from calib.errors import ArtifactError

CHECKS_FOLDER = "rtl_checks"


def rtl_checks(ctx: Context, images: int, log: Callable[[str], None] | None = None) -> dict:
    """Simulates every segment of the run's `rtl` step on the first `images` test images
    free-running and with STALLED stalls, and the whole design (when the step built one) on
    the same images with stalls; returns {"images", "stalls_percent", "mismatches",
    "segments": {name: {"free_running": ..., "stalled": ...}}, "design": {"stalled": ...}
    or None}, every pass in `segment_passes`' or `run_design_passes`' form."""
    log = log or ctx.log
    rtl_doc, rtls = read_rtl(ctx)
    manifest = read_manifest(ctx.out, FOLD_MANIFEST)
    segments = [s for s in manifest["segments"] if s["name"] in rtls]
    n = min(images, len(load_splits(ctx).test.images))
    golden = golden_streams(ctx, manifest, segments, n)
    out_dir = ctx.out / CHECKS_FOLDER

    def segment(s: dict) -> dict:
        name, finn_cycles = s["name"], int(s["estimate"]["cycles_per_frame"])
        binary, compiled = compile_segment(rtls[name], ctx.out / rtl_doc["segments"][name]["folder"])
        if compiled:  # read_rtl checked the sources: a rebuild means the step's binary was deleted
            log(f"  {name}: its simulation binary was missing and has been compiled again")
        t0 = time.time()
        passes = segment_passes(binary, rtls[name], out_dir / name, golden[name], finn_cycles,
                                [("free_running", n, (0, 0)), ("stalled", n, STALLED)])
        return dict(passes, compiled=compiled, simulate_seconds=round(time.time() - t0, 1))

    results: dict[str, dict] = {}
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {pool.submit(segment, s): s["name"] for s in segments}
        for fut in as_completed(futures):
            name = futures[fut]
            r = results[name] = fut.result()
            log(f"  {name:15s} {r['free_running']['mismatched_images']} of {n} images differ free-running, "
                f"{r['stalled']['mismatched_images']} of {n} with {STALLED[0]}/{STALLED[1]} % stalls "
                f"({r['simulate_seconds']:.0f} s)")
    results = {s["name"]: results[s["name"]] for s in segments}  # manifest order
    design_doc = _design_stalled(ctx, rtl_doc, rtls, manifest, golden, n, out_dir, log)
    mismatches = sum(p["mismatched_images"] for r in results.values() for p in (r["free_running"], r["stalled"]))
    mismatches += design_doc["stalled"]["mismatched_images"] if design_doc else 0
    return {"images": n, "in_order": "the first test images, in split order",
            "stalls_percent": {"input": STALLED[0], "output": STALLED[1]}, "mismatches": mismatches,
            "segments": results, "design": design_doc}


def _design_stalled(ctx: Context, rtl_doc: dict, rtls: dict, manifest: dict, golden: dict, n: int, out_dir,
                    log) -> dict | None:
    """The whole design's stalled pass on the first n test images, fed the first segment's
    golden input stream from `golden` (None when the `rtl` step built no whole design)."""
    from hw.rtl.dsp_path import compile_for_simulation
    from hw.rtl.stream import TESTBENCH_TOP

    design = read_design(ctx, rtl_doc)
    if design is None:
        return None
    chain, why_not = design_chain(manifest, rtls)
    if chain is None:
        raise ArtifactError(f"{ctx.out / FOLD_MANIFEST}: the rtl step built a whole design but its chain is "
                            f"gone: {why_not}")
    pixels = golden[chain[0][0].name]["in"]
    expected, _, _ = golden_design_result(ctx, n)
    binary, compiled = compile_for_simulation(TESTBENCH_TOP, design.testbench(), design.paths(),
                                              design.out_dir / "build")
    serial = sum(int(s["estimate"]["cycles_per_frame"]) for s in manifest["segments"] if s["name"] in rtls)
    (out_dir / "multi_exit").mkdir(parents=True, exist_ok=True)
    doc = dict(run_design_passes(design, binary, out_dir / "multi_exit", pixels.reshape(-1, design.input.elems),
                                 expected, [("stalled", *STALLED)], SEED, 2 * n * serial + 1_000_000),
               compiled=compiled)
    p = doc["stalled"]
    log(f"  whole design: {p['mismatched_images']} of {p['images']} images differ (class, exit index or any "
        f"logit) with {STALLED[0]}/{STALLED[1]} % stalls ({doc['simulate_seconds']:.0f} s)")
    return doc
