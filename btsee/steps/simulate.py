"""The `simulate` step: the deployed multi-exit dataflow simulated in software.

The golden simulator (`hw.golden`, loaded by `btsee.run_folder.load_golden`) runs the
whole test split and must reproduce the evaluate step's accuracy, MAC fraction and exit
fractions; its integer logits are compared with Brevitas' on every test image; and the
bit-exactness chain golden = qonnx = FINN (`hw.verify.chain`) runs on the first
`hardware.chain_images` test images (all of them by default).
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np

from btsee.flow import Context, FlowError
from btsee.report import update_report
from btsee.run_folder import (DATAFLOW_MANIFEST, EVALUATION_FILE, SIMULATION_FILE, load_golden, load_logits,
                              read_costs, read_json, read_manifest)
from btsee.steps.common import load_splits
from calib.atomic import atomic_write_json
from calib.cascade import summarize

if TYPE_CHECKING:
    from hw.golden import GoldenCascade

MAX_LOGGED_MISMATCHES = 20
FLOAT32_IMAGES = 200
"""qonnx's float32 execution, reported beside the chain and not a link of it, runs on the
first this many of the chain's images (the chain itself runs on all of them)."""


def _first_differences(golden: dict[str, np.ndarray], other: dict[str, np.ndarray], order: list[str]
                       ) -> list[dict]:
    """Per image that differs anywhere: its index, the first segment that differs and by how much."""
    rows = {}
    for name in order:
        diff = (golden[name] != other[name]).reshape(len(golden[name]), -1)
        for i in np.flatnonzero(diff.any(axis=1)):
            if int(i) not in rows:
                delta = np.abs(golden[name][i].astype(np.int64) - other[name][i].astype(np.int64)).max()
                rows[int(i)] = {"image": int(i), "segment": name, "values_differing": int(diff[i].sum()),
                                "max_difference": int(delta)}
    return [rows[i] for i in sorted(rows)]


def _exact_reference_agrees(ctx: Context, pixels: np.ndarray, golden: dict[str, np.ndarray]) -> np.ndarray:
    """(N,) whether qonnx's float64 execution of the exported graphs equals the golden
    outputs on every segment, image by image."""
    from hw.verify.chain import run_reference, segments_from_manifest

    segments = segments_from_manifest(ctx.out, read_manifest(ctx.out, DATAFLOW_MANIFEST))
    exact = run_reference(segments, pixels, "qonnx")
    same = np.ones(len(pixels), bool)
    for seg in segments:
        same &= (exact[seg.name] == golden[seg.name]).reshape(len(pixels), -1).all(axis=1)
    return same


def brevitas_agreement(ctx: Context, pixels: np.ndarray, outputs: dict[str, np.ndarray],
                       cascade: GoldenCascade) -> dict:
    """Golden integer logits against those of the Brevitas model (the exits step's test
    logits, divided by their scale) on every test image; every mismatch is re-run through
    the exact (float64) qonnx execution to tell whose arithmetic is off."""
    lg = load_logits(ctx.out, "test")
    if not lg.integer:
        raise FlowError("the model has no integer form (quantized weights and activations, 8-bit input)")
    ref = {h.name: z for h, z in zip(cascade.heads, lg.heads)}
    ref[cascade.backbone[-1].name] = lg.final
    order = [name for name in outputs if name in ref]
    rows = _first_differences(outputs, ref, order)
    if rows:  # every mismatch is re-run: the batched exact execution takes seconds for hundreds
        images = np.array([r["image"] for r in rows])
        exact = _exact_reference_agrees(ctx, pixels[images], {k: v[images] for k, v in outputs.items()})
        for r, same in zip(rows, exact):
            r["exact_reference_agrees_with_golden"] = bool(same)
    for r in rows:
        what = f"{r['segment']}: {r['values_differing']} integer logits differ by up to {r['max_difference']}"
        if r["exact_reference_agrees_with_golden"]:
            r["cause"] = (f"{what}; the float64 execution of the exported graphs agrees with the golden "
                          "model, so Brevitas' float32 arithmetic rounded a value on a boundary the other way")
        else:
            r["cause"] = f"{what}; the float64 execution of the exported graphs differs from the golden model too"
    if len(rows) > MAX_LOGGED_MISMATCHES:
        ctx.log(f"  {len(rows)} Brevitas mismatches, the first {MAX_LOGGED_MISMATCHES} below, all in "
                "simulate/simulation.json")
    for r in rows[:MAX_LOGGED_MISMATCHES]:
        ctx.log(f"  Brevitas mismatch: image {r['image']}: {r['cause']}")
    n = len(lg.labels)
    return {"images": n, "agreeing": n - len(rows), "fraction": (n - len(rows)) / n if n else float("nan"),
            "mismatches": rows}


def chain(ctx: Context, pixels: np.ndarray, golden_outputs: dict[str, np.ndarray],
          classes: np.ndarray, exit_index: np.ndarray, cascade: GoldenCascade) -> dict:
    """golden = qonnx (exported graphs, executed exactly in float64) = FINN (HW graphs,
    Python execution) on `pixels`: every segment's integer output, then predictions and
    exit indices. qonnx's float32 execution is compared as well, on the first
    FLOAT32_IMAGES, and reported apart."""
    from hw.verify.chain import cascade_of, qonnx_decisions, run_reference, segments_from_manifest

    segments = segments_from_manifest(ctx.out, read_manifest(ctx.out, DATAFLOW_MANIFEST))
    names = [s.name for s in segments]
    heads = [s.name for s in segments if s.kind == "head"]
    workers = max(1, min(2, os.cpu_count() or 1, len(pixels)))
    result = {"images": len(pixels), "segments": names,
              "reference": "qonnx executes the exported QONNX graphs in float64 (hw/verify/exact_qonnx.py); "
                           "FINN executes the HW-layer graphs in Python; all compared with =="}
    for engine, key, n in (("qonnx", "golden_vs_qonnx", len(pixels)), ("finn", "golden_vs_finn", len(pixels)),
                           ("qonnx-float32", "golden_vs_qonnx_float32", min(FLOAT32_IMAGES, len(pixels)))):
        t0 = time.time()
        ref = run_reference(segments, pixels[:n], engine, workers)
        seconds = time.time() - t0
        rows = _first_differences({name: v[:n] for name, v in golden_outputs.items()}, ref, names)
        decisions = [qonnx_decisions(ref[h], t, cascade.score) for h, t in zip(heads, cascade.thresholds)]
        ref_classes, ref_exit = cascade_of(decisions, ref[names[-1]])
        result[key] = {"images": n, "mismatching_images": len(rows), "first_mismatches": rows[:MAX_LOGGED_MISMATCHES],
                       "prediction_mismatches": int((ref_classes != classes[:n]).sum()),
                       "exit_index_mismatches": int((ref_exit != exit_index[:n]).sum()),
                       "seconds": round(seconds, 1)}
        ctx.log(f"  golden vs {engine} on {n} test images: {len(rows)} with any integer output "
                f"differing, {result[key]['prediction_mismatches']} predictions and "
                f"{result[key]['exit_index_mismatches']} exit indices differing ({seconds:.0f} s)")
    result["mismatches"] = sum(result[k][m] for k in ("golden_vs_qonnx", "golden_vs_finn")
                               for m in ("mismatching_images", "prediction_mismatches", "exit_index_mismatches"))
    return result


def simulate_run(ctx: Context) -> dict:
    """The simulate step's checks; returns the summary written to simulate/simulation.json."""
    cascade, artifact = load_golden(ctx.out)
    test = load_splits(ctx).test
    pixels, labels = test.images, test.labels  # (N, C, H, W) uint8, (N,)
    t0 = time.time()
    deployed = cascade.run(pixels)  # exited images skip the later segments
    seconds = time.time() - t0
    points = [e["point"] for e in artifact["exits"]]
    k = artifact["num_classes"]
    golden = summarize(deployed.exit_index, deployed.classes, labels, read_costs(ctx.out, points), k)
    evaluated = read_json(ctx.out, EVALUATION_FILE)["cascade"]
    same = {key: golden[key] == evaluated[key] for key in ("accuracy", "mac_fraction", "exit_fraction")}
    ctx.log(f"  golden simulator on {len(pixels):,} test images: accuracy {golden['accuracy']:.4f}, MAC "
            f"fraction {golden['mac_fraction']:.4f}, exits {np.round(golden['exit_fraction'], 3).tolist()} "
            f"({len(pixels) / seconds:,.0f} images/s); equal to the evaluate step: {all(same.values())}")
    outputs = cascade.segment_outputs(pixels)
    agreement = brevitas_agreement(ctx, pixels, outputs, cascade)
    ctx.log(f"  Brevitas agreement: {agreement['agreeing']:,} of {agreement['images']:,} test images "
            "with every integer logit equal")
    limit = ctx.config.hardware.chain_images
    n = len(pixels) if limit is None else min(limit, len(pixels))
    bit_exact = chain(ctx, pixels[:n], {name: v[:n] for name, v in outputs.items()},
                      deployed.classes[:n], deployed.exit_index[:n], cascade)
    return {"golden": {"images": len(pixels), "accuracy": golden["accuracy"],
                       "mac_fraction": golden["mac_fraction"], "exit_fraction": golden["exit_fraction"],
                       "images_per_second": len(pixels) / seconds, "equal_to_evaluate": same},
            "brevitas_agreement": agreement, "bit_exact": bit_exact}


def chain_check(ctx: Context, images: int | None) -> dict:
    """`chain` (golden = qonnx = FINN) on the first `images` test images of the run, or on
    all of them (None): what `make bench` runs beyond the demo's `hardware.chain_images`."""
    cascade, _ = load_golden(ctx.out)
    pixels = load_splits(ctx).test.images
    pixels = pixels[:len(pixels) if images is None else images]  # (n, C, H, W) uint8
    deployed = cascade.run(pixels)
    return chain(ctx, pixels, cascade.segment_outputs(pixels), deployed.classes, deployed.exit_index, cascade)


def step_simulate(ctx: Context) -> Context:
    """The golden simulator on the test split (accuracy and MAC fraction against the
    evaluate step's), against Brevitas on every test image, and the chain golden = qonnx =
    FINN on the first hardware.chain_images test images (all by default)."""
    summary = simulate_run(ctx)
    atomic_write_json(ctx.out / SIMULATION_FILE, summary)
    agreement = dict(summary["brevitas_agreement"])
    agreement["mismatches"] = agreement["mismatches"][:20]  # all of them are in simulation.json
    update_report(ctx.out, {"bit_exact": summary["bit_exact"], "golden": summary["golden"],
                            "brevitas_agreement": agreement})
    return ctx
