"""`btsee sweep`: BTS-EE against the joint baseline and the global threshold, over
margins x exit-point sets x head widths x seeds, on one trained backbone; then the
v2 variants of bts (soft weights, distillation) and ground-truth targets against v1 on
the config's own exit points.

Every threshold and margin is chosen on the validation split; the test split only
measures. Writes DIR/sweep/{sweep.csv, sweep.md, summary.json, *.png}.
"""
from __future__ import annotations

import csv
import io
import itertools
import time
from dataclasses import replace

import numpy as np

from btsee.config import Config, check_exit_points
from btsee.flow import Context, run_steps
from btsee.run_folder import class_names, read_segment_macs
from btsee.steps import STEPS
from btsee.steps.inputs import check_input
from btsee.steps.common import backbone, head_specs, head_training, policy, split_data
from calib.atomic import atomic_write_json, atomic_write_text
from calib.cascade import Costs, calibrate_in_sequence, cascade_from_logits, oracle, summarize
from calib.cpm import class_precision
from calib.progress import progress
from calib.rules import predicted_class
from qat.exit_training import fit_exits, head_logits


def check_sweep_points(config: Config) -> None:
    """A ConfigError naming sweep.point_sets[i] that holds no valid exit points of the model."""
    for i, points in enumerate(config.sweep.point_sets):
        check_exit_points(points, config.model.name, f"sweep.point_sets[{i}]")


def _measure(heads_val, heads_test, cals, data, costs, score, k) -> dict:
    out = {}
    for split, logits in (("val", heads_val), ("test", heads_test)):
        exit_at, pred = cascade_from_logits(logits, [c.thresholds for c in cals],
                                            data[split].backbone_logits, score)
        r = summarize(exit_at, pred, data[split].labels, costs, k)
        out[f"{split}_accuracy"] = r["accuracy"]
        out[f"{split}_mac_fraction"] = r["mac_fraction"]
        if split == "test":
            out["exit_fraction"] = r["exit_fraction"]
            out["exit_fraction_by_class"] = r["exit_fraction_by_class"]
    return out


def _logits(heads, points, data, split):
    return [head_logits(h, data[split].features[p]) for h, p in zip(heads, points)]


def run_sweep(ctx: Context) -> dict:
    """Trains and evaluates every configuration; returns the summary (also written)."""
    check_sweep_points(ctx.config)
    run_steps(STEPS, ctx, stop="backbone", check_input=check_input)
    sw = ctx.config.sweep
    model = backbone(ctx)
    wanted = set().union(*sw.point_sets, ctx.config.exits.points if sw.variants else [])
    points_union = [p for p in model.exit_points if p in wanted]
    data = split_data(ctx, points_union)
    k = model.spec.num_classes
    anchor = class_precision(predicted_class(data["val"].backbone_logits), data["val"].labels, k)
    backbone_acc = {s: float((predicted_class(data[s].backbone_logits) == data[s].labels).mean())
                    for s in ("val", "test")}
    segment_macs = read_segment_macs(ctx.out)
    base_policy = policy(ctx)
    rows: list[dict] = []
    pretrained: dict = {}  # heads trained on all samples, shared by joint and first bts heads
    boosted_trainings = 0
    combos = list(itertools.product(sw.point_sets, sw.conv_channels, sw.seeds))
    t0 = time.time()
    for points, width, seed in progress(combos, desc="sweep", unit="config"):
        specs = head_specs(ctx, model, points, [width])
        costs = Costs.for_points(segment_macs, points, [_head_macs(s) for s in specs])
        common = {"points": "+".join(points), "head_width": width, "seed": seed}
        joint_opts = replace(head_training(ctx), method="joint", seed=seed)
        joint = fit_exits(points, specs, data["train"], data["val"], base_policy, anchor, joint_opts,
                          pretrained=pretrained)
        jv, jt = _logits(joint.heads, points, data, "val"), _logits(joint.heads, points, data, "test")
        for margin in sw.margins:  # joint: the same heads, calibrated in sequence per margin
            pol = replace(base_policy, policy="cpm", margin=margin)
            cals = calibrate_in_sequence(jv, data["val"].labels, anchor, pol)
            rows.append({"method": "joint", "knob": margin, **common,
                         **_measure(jv, jt, cals, data, costs, pol.score, k)})
        for thr in sw.global_thresholds:  # BranchyNet/SDN: one max-softmax threshold
            pol = replace(base_policy, policy="global", score="softmax", global_threshold=thr)
            cals = calibrate_in_sequence(jv, data["val"].labels, anchor, pol)
            rows.append({"method": "global", "knob": thr, **common,
                         **_measure(jv, jt, cals, data, costs, pol.score, k)})
        best = oracle([predicted_class(z) for z in jt], predicted_class(data["test"].backbone_logits),
                      data["test"].labels, costs, k)
        rows.append({"method": "oracle", "knob": None, **common, "val_accuracy": None,
                     "val_mac_fraction": None, "test_accuracy": best["accuracy"],
                     "test_mac_fraction": best["mac_fraction"], "exit_fraction": best["exit_fraction"],
                     "exit_fraction_by_class": best["exit_fraction_by_class"]})
        for margin in sw.margins:
            pol = replace(base_policy, policy="cpm", margin=margin)
            bts = fit_exits(points, specs, data["train"], data["val"], pol, anchor,
                            replace(head_training(ctx), method="bts", seed=seed), pretrained=pretrained)
            boosted_trainings += len(points) - 1
            bv, bt = _logits(bts.heads, points, data, "val"), _logits(bts.heads, points, data, "test")
            rows.append({"method": "bts", "knob": margin, **common,
                         **_measure(bv, bt, bts.calibrations, data, costs, pol.score, k)})
    variant_opts = {"soft": {"soft_weights": True}, "distill": {"distill_temperature": 2.0},
                    "labels": {"target": "labels"}}
    points, seed = ctx.config.exits.points, sw.seeds[0]
    width = ctx.config.exits.conv_channels[0]
    specs = head_specs(ctx, model, points, ctx.config.exits.conv_channels)
    costs = Costs.for_points(segment_macs, points, [_head_macs(s) for s in specs])
    for variant in progress(sw.variants, desc="bts variants", unit="variant"):
        opts = replace(head_training(ctx), method="bts", seed=seed, **variant_opts[variant])
        for margin in sw.margins:
            pol = replace(base_policy, policy="cpm", margin=margin)
            fitted = fit_exits(points, specs, data["train"], data["val"], pol, anchor, opts,
                               pretrained=pretrained)
            boosted_trainings += len(points) - 1
            bv = _logits(fitted.heads, points, data, "val")
            bt = _logits(fitted.heads, points, data, "test")
            rows.append({"method": f"bts-{variant}", "knob": margin, "points": "+".join(points),
                         "head_width": width, "seed": seed,
                         **_measure(bv, bt, fitted.calibrations, data, costs, pol.score, k)})
    seconds = time.time() - t0
    summary = summarize_sweep(rows, backbone_acc)
    summary.update({"seconds": round(seconds, 1), "backbone_accuracy": backbone_acc,
                    "configurations_per_method": len(combos) * len(sw.margins),
                    "head_trainings": len(pretrained) + boosted_trainings})
    out = ctx.out / "sweep"
    _write_tables(rows, summary, out)
    from btsee.plots import exits_by_class, sweep_pareto

    sweep_pareto(rows, backbone_acc["test"], out / "accuracy_vs_macs.png")
    classes = class_names(ctx.out)
    for name, r in summary["chosen_on_validation"].items():
        if r is not None and name.endswith("@1pt"):
            row = next(x for x in rows if all(x[c] == r[c] for c in ("points", "head_width", "seed", "knob"))
                       and x["method"] == name.split("@")[0])
            exits_by_class(np.asarray(row["exit_fraction_by_class"]), row["points"].split("+"), classes,
                           out / f"exits_by_class_{name.replace('@', '_')}.png")
    return summary


def _head_macs(spec) -> int:
    from qat.heads import ExitHead

    return ExitHead(spec).macs()


def select_on_validation(rows: list[dict], method: str, backbone_val: float, drop: float) -> dict | None:
    """The row of `method` with the lowest validation MAC fraction whose validation
    accuracy is at most `drop` below the backbone's; None when no row qualifies."""
    ok = [r for r in rows if r["method"] == method and r["val_accuracy"] is not None
          and r["val_accuracy"] >= backbone_val - drop]
    return min(ok, key=lambda r: (r["val_mac_fraction"], -r["val_accuracy"])) if ok else None


def summarize_sweep(rows: list[dict], backbone_acc: dict) -> dict:
    """Per method: the configuration chosen on validation at 1 and 2 points of drop, and
    how often bts is at least as good as joint on the same configuration."""
    chosen = {}
    methods = ["bts", "joint", "global"] + sorted({r["method"] for r in rows if r["method"].startswith("bts-")})
    for method in methods:
        for drop in (0.01, 0.02):
            r = select_on_validation(rows, method, backbone_acc["val"], drop)
            chosen[f"{method}@{int(drop * 100)}pt"] = None if r is None else {
                key: r[key] for key in ("points", "head_width", "seed", "knob", "val_accuracy",
                                        "val_mac_fraction", "test_accuracy", "test_mac_fraction",
                                        "exit_fraction")} | {
                "test_drop_points": 100 * (backbone_acc["test"] - r["test_accuracy"])}
    key = lambda r: (r["points"], r["head_width"], r["seed"], r["knob"])  # noqa: E731
    joint = {key(r): r for r in rows if r["method"] == "joint"}
    pairs = [(r, joint[key(r)]) for r in rows if r["method"] == "bts" and key(r) in joint]
    not_dominated = sum(1 for b, j in pairs if not (
        j["test_accuracy"] >= b["test_accuracy"] and j["test_mac_fraction"] <= b["test_mac_fraction"]
        and (j["test_accuracy"] > b["test_accuracy"] or j["test_mac_fraction"] < b["test_mac_fraction"])))
    both = sum(1 for b, j in pairs if b["test_accuracy"] >= j["test_accuracy"]
               and b["test_mac_fraction"] <= j["test_mac_fraction"])
    return {"chosen_on_validation": chosen,
            "bts_vs_joint": {"configurations": len(pairs),
                             "bts_not_dominated_by_joint": not_dominated,
                             "bts_at_least_as_good_on_both": both},
            "definitions": {
                "chosen": "lowest validation MAC fraction with validation accuracy >= backbone - drop; "
                          "test figures are measured on that configuration",
                "bts_not_dominated_by_joint": "joint is not both at least as accurate and at most as "
                                              "costly (one strictly) on the test split, same margin, "
                                              "exit points, head width and seed",
                "bts_at_least_as_good_on_both": "bts accuracy >= joint and bts MAC fraction <= joint"}}


COLUMNS = ["method", "knob", "points", "head_width", "seed", "val_accuracy", "val_mac_fraction",
           "test_accuracy", "test_mac_fraction", "exit_fraction"]


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, list):
        return " ".join(f"{x:.3f}" for x in v)
    return "" if v is None else str(v)


def _write_tables(rows: list[dict], summary: dict, out) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([_fmt(r[c]) for c in COLUMNS])
    atomic_write_text(out / "sweep.csv", buf.getvalue())
    lines = ["# Exit sweep", "", "knob = CPM margin (bts, joint) or max-softmax threshold (global).", "",
             "## Chosen on validation", "", "| method @ drop | points | width | seed | knob | test acc | "
             "test drop (pt) | test MAC fraction |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in summary["chosen_on_validation"].items():
        if r is None:
            lines.append(f"| {name} | none qualifies on validation | | | | | | |")
        else:
            lines.append(f"| {name} | {r['points']} | {r['head_width']} | {r['seed']} | {_fmt(r['knob'])} | "
                         f"{r['test_accuracy']:.4f} | {r['test_drop_points']:.2f} | {r['test_mac_fraction']:.3f} |")
    variants = [r for r in rows if r["method"].startswith("bts-")]
    if variants:
        ref = variants[0]
        same = [r for r in rows if r["method"] in ("bts", "joint") or r["method"].startswith("bts-")]
        same = [r for r in same if (r["points"], r["head_width"], r["seed"]) ==
                (ref["points"], ref["head_width"], ref["seed"])]
        lines += ["", f"## bts variants against v1 ({ref['points']}, width {ref['head_width']}, "
                  f"seed {ref['seed']})", "", "| method | margin | test acc | test MAC fraction |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| {r['method']} | {_fmt(r['knob'])} | {r['test_accuracy']:.4f} | "
                  f"{r['test_mac_fraction']:.3f} |" for r in sorted(same, key=lambda r: (r['knob'], r['method']))]
    b = summary["bts_vs_joint"]
    lines += ["", f"bts not dominated by joint in {b['bts_not_dominated_by_joint']} of {b['configurations']} "
              f"configurations; at least as good on both axes in {b['bts_at_least_as_good_on_both']}.", "",
              "## All rows", "", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
    atomic_write_text(out / "sweep.md", "\n".join(lines) + "\n")
    atomic_write_json(out / "summary.json", summary)
    atomic_write_json(out / "rows.json", rows)
