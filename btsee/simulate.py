"""Simulating the deployed multi-exit dataflow in software: the `simulate` step and
`btsee simulate`.

`load_golden(run)` gives the golden simulator of a run folder (the `dataflow` step's HW
graphs and the calibrate step's integer thresholds, checked against the model's hash);
`simulate_run` is the step: the golden simulator on the whole test split against the
evaluate step and Brevitas, and the bit-exactness chain golden = qonnx = FINN.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from btsee.config import ConfigError, config_from_dict
from btsee.flow import Context, FlowError
from btsee.report import read_report
from btsee.steps import (DATA_SUMMARY, DATAFLOW_MANIFEST, EVALUATION_FILE, RUN_CONFIG, THRESHOLDS_FILE,
                         cascade_costs, load_logits, load_splits, model_files, read_splits)
from calib.cascade import summarize
from hw.golden import GoldenCascade, load_cascade
from hw.thresholds import ThresholdsError, load_artifact, model_hash

MAX_LOGGED_MISMATCHES = 20


def load_golden(run: Path, thresholds: Path | None = None) -> tuple[GoldenCascade, dict]:
    """(golden simulator, thresholds artifact) of a run folder; `thresholds` replaces the
    run's calibrate/thresholds.json and must belong to the same model."""
    run = Path(run)
    manifest_path = run / DATAFLOW_MANIFEST
    if not manifest_path.is_file():
        raise FlowError(f"{manifest_path} missing: run the dataflow step first "
                        f"(btsee run CONFIG --out {run} --to dataflow)")
    manifest = json.loads(manifest_path.read_text())
    classes = json.loads((run / DATA_SUMMARY).read_text())["classes"]
    path = Path(thresholds) if thresholds is not None else run / THRESHOLDS_FILE
    heads = [s for s in manifest["segments"] if s["kind"] == "head"]
    artifact = load_artifact(path, model_hash(*model_files(run)), len(classes), len(heads))
    for i, (e, p) in enumerate(zip(artifact["exits"], manifest["points"])):
        if e.get("point") != p:
            raise ThresholdsError(f"{path}: exits[{i}].point is {e.get('point')!r}, the dataflow has {p!r}")
    scores = {e["score"] for e in artifact["exits"]}
    if len(scores) != 1:
        raise ThresholdsError(f"{path}: exits use different scores {sorted(scores)}")
    cascade = load_cascade(manifest_path, [e["thresholds"] for e in artifact["exits"]], scores.pop())
    return cascade, artifact


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
    from hw.chain import run_reference, segments_from_manifest

    segments = segments_from_manifest(ctx.out, json.loads((ctx.out / DATAFLOW_MANIFEST).read_text()))
    exact = run_reference(segments, pixels, "qonnx")
    same = np.ones(len(pixels), bool)
    for seg in segments:
        same &= (exact[seg.name] == golden[seg.name]).reshape(len(pixels), -1).all(axis=1)
    return same


def brevitas_agreement(ctx: Context, pixels: np.ndarray, outputs: dict[str, np.ndarray],
                       cascade: GoldenCascade) -> dict:
    """Golden integer logits against those of the Brevitas model (the exits step's test
    logits, divided by their scale) on every test image; each mismatch is re-run through
    the exact (float64) qonnx execution to tell whose arithmetic is off."""
    lg = load_logits(ctx.out, "test")
    if not lg.integer:
        raise FlowError("the model has no integer form (quantized weights and activations, 8-bit input)")
    ref = {h.name: z for h, z in zip(cascade.heads, lg.heads)}
    ref[cascade.backbone[-1].name] = lg.final
    order = [name for name in outputs if name in ref]
    rows = _first_differences(outputs, ref, order)
    if rows:
        images = np.array([r["image"] for r in rows[:MAX_LOGGED_MISMATCHES]])
        exact = _exact_reference_agrees(ctx, pixels[images], {k: v[images] for k, v in outputs.items()})
        for r, same in zip(rows, exact):
            r["exact_reference_agrees_with_golden"] = bool(same)
    for r in rows:
        what = f"{r['segment']}: {r['values_differing']} integer logits differ by up to {r['max_difference']}"
        if r.get("exact_reference_agrees_with_golden"):
            r["cause"] = (f"{what}; the float64 execution of the exported graphs agrees with the golden "
                          "model, so Brevitas' float32 arithmetic rounded a value on a boundary the other way")
        elif "exact_reference_agrees_with_golden" in r:
            r["cause"] = f"{what}; the float64 execution of the exported graphs differs from the golden model too"
        else:
            r["cause"] = f"{what}; not re-run (only the first {MAX_LOGGED_MISMATCHES} are)"
    for r in rows[:MAX_LOGGED_MISMATCHES]:
        ctx.log(f"  Brevitas mismatch: image {r['image']}: {r['cause']}")
    n = len(lg.labels)
    return {"images": n, "agreeing": n - len(rows), "fraction": (n - len(rows)) / n if n else float("nan"),
            "mismatches": rows}


def chain(ctx: Context, pixels: np.ndarray, golden_outputs: dict[str, np.ndarray],
          classes: np.ndarray, exit_index: np.ndarray, cascade: GoldenCascade) -> dict:
    """golden = qonnx (exported graphs, executed exactly in float64) = FINN (HW graphs,
    Python execution) on `pixels`: every segment's integer output, then predictions and
    exit indices. qonnx's float32 execution is compared as well and reported apart."""
    from hw.chain import cascade_of, qonnx_decisions, run_reference, segments_from_manifest

    manifest = json.loads((ctx.out / DATAFLOW_MANIFEST).read_text())
    segments = segments_from_manifest(ctx.out, manifest)
    names = [s.name for s in segments]
    heads = [s.name for s in segments if s.kind == "head"]
    workers = max(1, min(2, os.cpu_count() or 1, len(pixels)))
    result = {"images": len(pixels), "segments": names,
              "reference": "qonnx executes the exported QONNX graphs in float64 (hw/exact_qonnx.py); "
                           "FINN executes the HW-layer graphs in Python; all compared with =="}
    for engine, key in (("qonnx", "golden_vs_qonnx"), ("finn", "golden_vs_finn"),
                        ("qonnx-float32", "golden_vs_qonnx_float32")):
        t0 = time.time()
        ref = run_reference(segments, pixels, engine, workers)
        seconds = time.time() - t0
        rows = _first_differences(golden_outputs, ref, names)
        decisions = [qonnx_decisions(ref[h], t, cascade.score) for h, t in zip(heads, cascade.thresholds)]
        ref_classes, ref_exit = cascade_of(decisions, ref[names[-1]])
        result[key] = {"mismatching_images": len(rows), "first_mismatches": rows[:MAX_LOGGED_MISMATCHES],
                       "prediction_mismatches": int((ref_classes != classes).sum()),
                       "exit_index_mismatches": int((ref_exit != exit_index).sum()),
                       "seconds": round(seconds, 1)}
        ctx.log(f"  golden vs {engine} on {len(pixels)} test images: {len(rows)} with any integer output "
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
    report = read_report(ctx.out)
    points = [e["point"] for e in artifact["exits"]]
    k = artifact["num_classes"]
    golden = summarize(deployed.exit_index, deployed.classes, labels, cascade_costs(report, points), k)
    evaluated = json.loads((ctx.out / EVALUATION_FILE).read_text())["cascade"]
    same = {key: golden[key] == evaluated[key] for key in ("accuracy", "mac_fraction", "exit_fraction")}
    ctx.log(f"  golden simulator on {len(pixels):,} test images: accuracy {golden['accuracy']:.4f}, MAC "
            f"fraction {golden['mac_fraction']:.4f}, exits {np.round(golden['exit_fraction'], 3).tolist()} "
            f"({len(pixels) / seconds:,.0f} images/s); equal to the evaluate step: {all(same.values())}")
    outputs = cascade.segment_outputs(pixels)
    agreement = brevitas_agreement(ctx, pixels, outputs, cascade)
    ctx.log(f"  Brevitas agreement: {agreement['agreeing']:,} of {agreement['images']:,} test images "
            "with every integer logit equal")
    n = min(ctx.config.hardware.chain_images, len(pixels))
    bit_exact = chain(ctx, pixels[:n], {name: v[:n] for name, v in outputs.items()},
                      deployed.classes[:n], deployed.exit_index[:n], cascade)
    return {"golden": {"images": len(pixels), "accuracy": golden["accuracy"],
                       "mac_fraction": golden["mac_fraction"], "exit_fraction": golden["exit_fraction"],
                       "images_per_second": len(pixels) / seconds, "equal_to_evaluate": same},
            "brevitas_agreement": agreement, "bit_exact": bit_exact}


def _read_images(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 images (N, *shape) from a .npy file; errors name the file."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise FlowError(f"{path}: not a readable .npy array ({e})") from e
    if x.dtype != np.uint8 or x.shape[1:] != shape:
        raise FlowError(f"{path}: expected uint8 images of shape (N, {', '.join(map(str, shape))}), "
                        f"got {x.dtype} {x.shape}")
    return x


def simulate_command(run: Path, images: Path | None, thresholds: Path | None, limit: int | None,
                     save: Path | None) -> int:
    """`btsee simulate`: prints a JSON summary; exit status 1 with a one-line error on bad input."""
    import sys

    from hw.dataflow import DataflowError
    from qat import data as data_mod
    from qat.atomic import atomic_write

    try:
        cascade, artifact = load_golden(run, thresholds)
        labels = None
        if images is None:
            config_path = run / RUN_CONFIG
            if not config_path.is_file():
                raise FlowError(f"{config_path} missing: give --images, or rerun `btsee run` on this folder")
            cfg = config_from_dict(json.loads(config_path.read_text()))
            test = read_splits(run, cfg.data).test
            pixels, labels = test.images, test.labels
        else:
            pixels = _read_images(images, cascade.backbone[0].input_shape)
    except (FlowError, ThresholdsError, DataflowError, data_mod.DataError, ConfigError, OSError) as e:
        print(f"btsee simulate: error: {e}", file=sys.stderr)
        return 1
    if limit is not None:
        pixels = pixels[:limit]
        labels = labels[:limit] if labels is not None else None
    t0 = time.time()
    res = cascade.run(pixels)
    seconds = time.time() - t0
    out = {"images": len(pixels), "images_per_second": round(len(pixels) / seconds, 1)}
    if labels is not None:  # the evaluate step's summary, on the golden simulator's decisions
        costs = cascade_costs(read_report(run), [e["point"] for e in artifact["exits"]])
        s = summarize(res.exit_index, res.classes, labels, costs, artifact["num_classes"])
        out.update(exit_fraction=s["exit_fraction"], accuracy=s["accuracy"], mac_fraction=s["mac_fraction"])
    else:
        n_exits = len(cascade.heads) + 1
        out["exit_fraction"] = (np.bincount(res.exit_index, minlength=n_exits) / max(1, len(pixels))).tolist()
    if save is not None:
        arrays = {"classes": res.classes, "exit_index": res.exit_index, "final_logits": res.final_logits}
        for i, (z, r) in enumerate(zip(res.head_logits, res.reached)):
            arrays[f"head{i}_logits"], arrays[f"head{i}_reached"] = z, r
        atomic_write(save, lambda tmp: np.savez(tmp.open("wb"), **arrays))
        out["saved"] = str(save)
    print(json.dumps(out, indent=2))
    return 0
