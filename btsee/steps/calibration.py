"""The calibration steps: `calibrate` (per-class CPM or global exit thresholds on the
validation split, integer where the hardware compares integers) and `evaluate` (the
calibrated cascade on the test split, and the oracle bound)."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np

from btsee.flow import Context
from btsee.report import update_report
from btsee.run_folder import (EVALUATION_FILE, LOGITS_FILE, THRESHOLDS_FILE, class_names, load_logits, model_files,
                              read_costs, read_thresholds)
from btsee.steps.common import policy
from calib.atomic import atomic_write_json
from calib.cascade import calibrate_in_sequence, cascade_from_logits, oracle, summarize
from calib.cpm import class_precision
from calib.errors import ArtifactError
from calib.rules import predicted_class
from calib.thresholds import integer_thresholds, make_artifact, model_hash


def step_calibrate(ctx: Context) -> Context:
    """Per-class CPM (or global) thresholds of every exit, in sequence, on the validation
    split; in the integer domain of each head's logits when the model has one."""
    lg = load_logits(ctx.out, "val")
    pol = policy(ctx)
    heads, final = lg.for_score(pol.score)
    k = final.shape[1]
    anchor = class_precision(predicted_class(final), lg.labels, k)
    integer = lg.integer and pol.score == "margin"
    if integer and pol.policy == "global":
        # a global threshold is in float score units: calibrate there, then take the least
        # integer margin m with m * scale >= t for each exit (exact; tested)
        floats = [z * s for z, s in zip(lg.heads, lg.head_scales)]
        cals = calibrate_in_sequence(floats, lg.labels, anchor, pol)
        for c, s in zip(cals, lg.head_scales):
            c.thresholds = np.array([np.inf if t is None else t for t in integer_thresholds(c.thresholds, s)],
                                    np.float64)
    else:
        cals = calibrate_in_sequence(heads, lg.labels, anchor, pol)
    points = ctx.config.exits.points
    if len(cals) != len(points):
        raise ArtifactError(f"{ctx.out / LOGITS_FILE}: logits of {len(cals)} heads, exits.points names {len(points)}; "
                            "rerun the exits step")
    exits = []
    for i, (p, c) in enumerate(zip(points, cals)):
        entry = {"point": p, "score": pol.score}
        if integer:  # CPM thresholds on integer margins are observed margins: integers
            entry["scale"] = lg.head_scales[i]
            entry["thresholds"] = [None if not np.isfinite(t) else int(t) for t in c.thresholds]
            entry["float_thresholds"] = [None if t is None else t * lg.head_scales[i] for t in entry["thresholds"]]
        else:
            entry.update(scale=None, thresholds=None,
                         float_thresholds=[None if not np.isfinite(t) else float(t) for t in c.thresholds])
        entry.update(bar=c.to_dict()["bar"], support=c.to_dict()["support"])
        exits.append(entry)
    doc = make_artifact(model_hash(*model_files(ctx.out)), k, exits)
    doc.update(policy=asdict(pol), points=points, anchor=[None if np.isnan(a) else a for a in anchor])
    atomic_write_json(ctx.out / THRESHOLDS_FILE, doc)
    never = [int(np.sum(~np.isfinite(c.thresholds))) for c in cals]
    ctx.log(f"  {pol.policy} thresholds for {len(cals)} exits "
            f"({'integer' if integer else 'float'} {pol.score} scores); classes that never exit: {never}")
    update_report(ctx.out, {"calibration": {"policy": pol.policy, "score": pol.score,
                                            "margin": pol.margin, "margin_mode": pol.margin_mode,
                                            "integer_thresholds": integer,
                                            "classes_never_exiting": never}})
    return ctx


def step_evaluate(ctx: Context) -> Context:
    """Test accuracy, exit fractions and MAC fraction of the calibrated cascade, and the oracle."""
    lg = load_logits(ctx.out, "test")
    score = ctx.config.calibration.score
    heads, final = lg.for_score(score)
    labels = lg.labels
    points = ctx.config.exits.points
    costs = read_costs(ctx.out, points)
    k = final.shape[1]
    thresholds = read_thresholds(ctx.out)
    if not len(thresholds) == len(heads) == len(points):
        raise ArtifactError(f"{ctx.out / THRESHOLDS_FILE}: {len(thresholds)} exits, {ctx.out / LOGITS_FILE}: "
                            f"{len(heads)} heads, exits.points: {len(points)}; rerun from the step that differs")
    exit_at, pred = cascade_from_logits(heads, thresholds, final, score)
    result = summarize(exit_at, pred, labels, costs, k)
    bound = oracle([predicted_class(z) for z in heads], predicted_class(final), labels, costs, k)
    backbone_acc = float((predicted_class(final) == labels).mean())
    atomic_write_json(ctx.out / EVALUATION_FILE, {"cascade": result, "oracle": bound,
                                                  "backbone_accuracy": backbone_acc})
    from btsee.plots import exits_by_class

    names = class_names(ctx.out)
    exits_by_class(np.asarray(result["exit_fraction_by_class"]), points, names,
                   ctx.out / "evaluate/exits_by_class.png")
    ctx.log(f"  early-exit test accuracy {result['accuracy']:.4f} (backbone {backbone_acc:.4f}), "
            f"MAC fraction {result['mac_fraction']:.3f}, exits {np.round(result['exit_fraction'], 3).tolist()}; "
            f"oracle: {bound['mac_fraction']:.3f} at {bound['accuracy']:.4f}")
    update_report(ctx.out, {
        "accuracy": {"early_exit": result["accuracy"]},
        "exit_fraction": result["exit_fraction"], "mac_fraction": result["mac_fraction"],
        "oracle": {"accuracy": bound["accuracy"], "mac_fraction": bound["mac_fraction"],
                   "exit_fraction": bound["exit_fraction"]},
        "plots": {"exits_by_class": "evaluate/exits_by_class.png"}})
    return ctx
