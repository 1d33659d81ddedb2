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
from calib.diagnose import diagnose_exits
from calib.errors import ArtifactError
from calib.rules import predicted_class
from calib.thresholds import integer_thresholds, make_artifact, model_hash


MARGIN_KNOBS = tuple(float(round(m, 2)) + 0.0 for m in np.arange(-0.10, 0.3001, 0.01))  # + 0.0: no -0.0
"""CPM margins the accuracy-budget search tries (additive or multiplicative, as configured)."""
GLOBAL_KNOB_QUANTILES = np.linspace(0.05, 0.995, 60)
"""The global policy's thresholds the search tries: these quantiles of the heads' scores."""


def calibrate_cascade(lg, heads: list[np.ndarray], anchor: np.ndarray, pol) -> list:
    """Every exit's Calibration, in sequence on the validation split; `pol` is one
    CalibrationPolicy or one per exit. Integer thresholds where the model has integer
    margins (a global threshold is found on float margins, then taken to the least integer
    margin at or above it: exact; tested)."""
    first = pol[0] if isinstance(pol, list) else pol
    if lg.integer and first.score == "margin" and first.policy == "global":
        cals = calibrate_in_sequence(lg.float_heads, lg.labels, anchor, pol)
        for c, s in zip(cals, lg.head_scales):
            c.thresholds = np.array([np.inf if t is None else t for t in integer_thresholds(c.thresholds, s)],
                                    np.float64)
        return cals
    return calibrate_in_sequence(heads, lg.labels, anchor, pol)


HOLDOUT_SEED = 0
"""Seed of the guard's split of the calibration images: the same images are held out every run."""


def budget_search(lg, pol, costs, max_drop: float, per_exit: bool, holdout: float = 0.0,
                  drop_confidence: float | None = None, sequential: bool = True,
                  guard_images: int | None = None) -> tuple[list, dict]:
    """(calibrations, record): on the split `lg` (SplitLogits), the CPM margin (or global
    threshold) per exit with the fewest expected MACs whose accuracy drop against the
    backbone, or its upper bound at `drop_confidence`, is within `max_drop` points; a
    budget nothing meets is a ConfigError naming calibration.max_drop. With a `holdout`
    fraction, the thresholds are fitted on the rest of `lg` and the drop is measured on
    that held-out part (seeded), which the thresholds never saw; with a bound too, the
    settings are tested there in an order the fitting part fixed (calib.budget.guarded_search),
    unless `sequential` is False: then the boldest setting whose bound passes is taken
    (bench/bench_budget.py compares the two). With `guard_images`, the bound is on the drop
    that many unseen images will show (a prediction bound); None: on the expected drop."""
    from dataclasses import replace

    from btsee.config import ConfigError
    from calib.budget import cascade_outcome, guarded_search, search_budget
    from calib.rules import exit_score

    check = lg
    if holdout:
        order = np.random.default_rng(HOLDOUT_SEED).permutation(len(lg.labels))
        cut = int(round(len(order) * (1 - holdout)))
        lg, check = lg.subset(np.sort(order[:cut])), lg.subset(np.sort(order[cut:]))
    heads, final = lg.for_score(pol.score)
    anchor = class_precision(predicted_class(final), lg.labels, final.shape[1])
    per_exit_macs = costs.per_exit()  # (K+1,)
    if pol.policy == "cpm":
        name, knobs = "margin", MARGIN_KNOBS  # a higher margin lowers the bar: cautious to bold
    else:
        name = "global_threshold"
        domain = lg.float_heads if pol.score == "margin" else heads
        scores = np.concatenate([exit_score(z, pol.score) for z in domain])
        knobs = tuple(float(v) for v in np.unique(np.quantile(scores, GLOBAL_KNOB_QUANTILES))[::-1])

    def calibrate(values: list[float]) -> list:
        return calibrate_cascade(lg, heads, anchor, [replace(pol, **{name: v}) for v in values])

    def measurer(split, confidence: float | None):
        split_heads, split_final = split.for_score(pol.score)
        backbone_pred = predicted_class(split_final)

        def measure(cals: list):
            exit_at, pred = cascade_from_logits(split_heads, [cal.thresholds for cal in cals], split_final, pol.score)
            return cascade_outcome(pred, per_exit_macs[exit_at], backbone_pred, split.labels, costs.backbone,
                                   confidence, guard_images)
        return measure

    measure = measurer(check, drop_confidence)
    guard = "sequential" if holdout and drop_confidence is not None and sequential else "best"
    if guard == "sequential":
        choice = guarded_search(calibrate, measurer(lg, None), measure, knobs, len(heads), max_drop, per_exit)
    else:
        choice = search_budget(calibrate, measure, knobs, len(heads), max_drop, per_exit)
    if choice is None:
        least = min(measure(calibrate([k] * len(heads))).drop_bound_points for k in knobs)
        first = (f"; the most cautious {name} {knobs[0]:g} does not" if guard == "sequential" else "")
        raise ConfigError(f"calibration.max_drop {max_drop}: no {name} from {min(knobs):g} to {max(knobs):g} keeps "
                          f"the validation drop{' bound' if drop_confidence else ''} within it{first} (the least is "
                          f"{least:.2f} points on {len(check.labels)} images); allow more, or calibrate on more images")
    record = {"max_drop": max_drop, "search": "per_exit" if per_exit else "shared", "confidence": drop_confidence,
              "guard_images": guard_images if drop_confidence is not None else None, "holdout": holdout,
              "guard": guard if drop_confidence is not None else None,
              "class_confidence": pol.class_confidence, "knob": name,
              "chosen": choice.knobs, "drop_points": round(choice.outcome.drop_points, 4),
              "drop_bound_points": round(choice.outcome.drop_bound_points, 4),
              "mac_fraction_validation": round(choice.outcome.mac_fraction, 5), "tried": len(choice.tried)}
    return choice.calibrations, record


def step_calibrate(ctx: Context) -> Context:
    """Per-class CPM (or global) thresholds of every exit, in sequence, on the validation
    split; in the integer domain of each head's logits when the model has one. With
    calibration.max_drop, the margin (or threshold) comes from the accuracy-budget search."""
    lg = load_logits(ctx.out, "val")
    pol = policy(ctx)
    heads, final = lg.for_score(pol.score)
    k = final.shape[1]
    anchor = class_precision(predicted_class(final), lg.labels, k)
    integer = lg.integer and pol.score == "margin"
    budget = None
    if ctx.config.calibration.max_drop is None:
        cals = calibrate_cascade(lg, heads, anchor, pol)
    else:
        c = ctx.config.calibration
        future = len(load_logits(ctx.out, "test").labels) if c.guard_images == "test" else c.guard_images
        cals, budget = budget_search(lg, pol, read_costs(ctx.out, ctx.config.exits.points), c.max_drop,
                                     c.budget_search == "per_exit", c.holdout if c.confidence else 0.0, c.confidence,
                                     guard_images=future)
        how = "tested in order" if budget["guard"] == "sequential" else "tried"
        on = f" on {budget['guard_images']:,} unseen images" if budget["guard_images"] else ""
        bound = (f" (bound {budget['drop_bound_points']:.2f}{on} at {budget['confidence']})" if budget["confidence"]
                 else "")
        ctx.log(f"  budget {budget['max_drop']} points: {budget['knob']} {[round(v, 4) for v in budget['chosen']]} "
                f"({budget['search']}, {budget['tried']} {how}), validation drop {budget['drop_points']:.2f} points"
                f"{bound}, MAC fraction {budget['mac_fraction_validation']:.3f}")
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
    if budget is not None:
        doc["budget"] = budget
    atomic_write_json(ctx.out / THRESHOLDS_FILE, doc)
    never = [int(np.sum(~np.isfinite(c.thresholds))) for c in cals]
    ctx.log(f"  {pol.policy} thresholds for {len(cals)} exits "
            f"({'integer' if integer else 'float'} {pol.score} scores); classes that never exit: {never}")
    exit_at, _ = cascade_from_logits(heads, [c.thresholds for c in cals], final, pol.score)  # (N,)
    diagnoses = diagnose_exits(points, heads, final, lg.labels, exit_at, cals, class_names(ctx.out), pol.score,
                               pol.min_support, pol.class_confidence)
    for d in diagnoses:
        if d.takes_almost_nothing:
            ctx.log(f"  exit {d.line()}")
    update_report(ctx.out, {"calibration": {"policy": pol.policy, "score": pol.score,
                                            "margin": pol.margin, "margin_mode": pol.margin_mode,
                                            "integer_thresholds": integer,
                                            "classes_never_exiting": never, "budget": budget,
                                            "exits_on_validation": {d.point: d.to_dict() for d in diagnoses}}})
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
