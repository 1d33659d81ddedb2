"""Does the accuracy budget hold on images the calibration never saw? The default run's
heads and backbone are fixed; validation and test logits are pooled and re-split at random
(6,000 to calibrate, the rest to test) SPLITS times. On each split the budget search
(calibration.max_drop, per-exit knobs as in the default config) calibrates on one part, and
the test part measures the drop against the backbone and the MAC fraction: plain, with the
drop's bound on the fitting images, with the boldest setting whose bound passes on a
held-out half ("best"), and with the learn-then-test guard the flow uses (settings tested on
the held-out half in an order the fitting half fixed), bounding the drop the test part's
images will show ("guard", the default) or the expected drop ("guard, expected drop"), for
CPM and the global threshold, at budgets of 1 and 2 points.

Writes bench/results/budget.json: per policy, budget and method, how often the test drop
exceeds the budget (the exceedance rate, with its binomial standard error), the mean and
spread of the test drop and of the MAC fraction; and the same on the run's own split
(validation -> test), where Fashion-MNIST's test set is slightly harder than the training
set the validation split is cut from.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calib.atomic import atomic_write_json  # noqa: E402

RUN = ROOT / "runs" / "default"
SPLITS = 100
CALIBRATION_IMAGES = 6000
BUDGETS = (1.0, 2.0)
CONFIDENCE = 0.9
POLICIES = ("cpm", "global")
PER_EXIT = True
GUARD = {"holdout": 0.5, "drop_confidence": CONFIDENCE}
METHODS = {"plain": {},
           "bound": {"drop_confidence": CONFIDENCE},
           "holdout+bound, best": {**GUARD, "sequential": False},
           "guard, expected drop": GUARD,
           "guard": {**GUARD, "guard_images": "test"},
           "guard@0.95": {**GUARD, "drop_confidence": 0.95, "guard_images": "test"}}
"""Name -> budget_search's keywords ("test": the test part's size). "guard" is what the flow
runs with calibration.confidence and guard_images: test; "guard, expected drop" bounds the
drop on infinitely many images instead (guard_images: null)."""


def pooled(a, b):
    from btsee.run_folder import SplitLogits

    return SplitLogits([np.concatenate([x, y]) for x, y in zip(a.heads, b.heads)], np.concatenate([a.final, b.final]),
                       np.concatenate([a.labels, b.labels]), a.head_scales, a.final_scale)


def trial(calibration, test, policy: str, budget: float, costs, method: dict) -> dict:
    """Budget search on `calibration` with `method` (budget_search's keywords), measured on
    `test`: drops in points, MAC fractions."""
    from btsee.config import ConfigError
    from btsee.steps.calibration import budget_search
    from calib.cascade import cascade_from_logits, summarize
    from calib.cpm import CalibrationPolicy
    from calib.rules import predicted_class

    pol = CalibrationPolicy(policy=policy)
    if method.get("guard_images") == "test":
        method = {**method, "guard_images": len(test.labels)}
    try:
        cals, record = budget_search(calibration, pol, costs, budget, per_exit=PER_EXIT, **method)
    except ConfigError:  # nothing within the budget: every image runs the whole backbone
        return {"fits": False, "test_drop": 0.0, "test_mac_fraction": 1.0}
    heads, final = test.for_score(pol.score)
    exit_at, pred = cascade_from_logits(heads, [c.thresholds for c in cals], final, pol.score)
    result = summarize(exit_at, pred, test.labels, costs, final.shape[1])
    backbone = float((predicted_class(final) == test.labels).mean())
    return {"fits": True, "knobs": record["chosen"], "calibration_drop": record["drop_points"],
            "calibration_drop_bound": record["drop_bound_points"],
            "test_drop": round(100 * (backbone - result["accuracy"]), 4),
            "test_mac_fraction": round(result["mac_fraction"], 5)}


def summary(rows: list[dict], budget: float) -> dict:
    drops = np.array([r["test_drop"] for r in rows])
    macs = np.array([r["test_mac_fraction"] for r in rows])
    rate = float(np.mean(drops > budget))
    return {"splits": len(rows), "exceedance_rate": round(rate, 3),
            "exceedance_rate_se": round(float(np.sqrt(rate * (1 - rate) / len(rows))), 3),
            "test_drop_mean": round(float(drops.mean()), 3), "test_drop_std": round(float(drops.std()), 3),
            "test_drop_max": round(float(drops.max()), 3),
            "mac_fraction_mean": round(float(macs.mean()), 4), "mac_fraction_std": round(float(macs.std()), 4),
            "no_fit": int(sum(not r["fits"] for r in rows))}


def resplit_trials(everything, policy: str, budget: float, costs, method: str) -> list[dict]:
    """`trial` on each of the SPLITS seeded re-splits of `everything`."""
    n = len(everything.labels)
    rows = []
    for seed in range(SPLITS):
        order = np.random.default_rng(seed).permutation(n)
        rows.append(trial(everything.subset(order[:CALIBRATION_IMAGES]), everything.subset(order[CALIBRATION_IMAGES:]),
                          policy, budget, costs, METHODS[method]))
    return rows


def main() -> None:
    subprocess.run([sys.executable, "-m", "btsee.cli", "run", "configs/default.yaml", "--out", str(RUN),
                    "--device", "cpu", "--resume", "--to", "evaluate"], cwd=ROOT, check=True)
    from btsee.config import load_config
    from btsee.run_folder import load_logits, read_costs

    t0 = time.time()
    cfg = load_config(RUN / "config.json")
    costs = read_costs(RUN, cfg.exits.points)
    val, test = load_logits(RUN, "val"), load_logits(RUN, "test")
    everything = pooled(val, test)
    out = {"benchmark": "budget", "config": "configs/default.yaml", "splits": SPLITS,
           "calibration_images": CALIBRATION_IMAGES, "test_images": len(everything.labels) - CALIBRATION_IMAGES,
           "confidence": CONFIDENCE, "search": "per_exit" if PER_EXIT else "shared",
           "methods": METHODS,
           "resplit": {}, "run_split": {}}
    jobs = [(policy, budget, method) for policy in POLICIES for budget in BUDGETS for method in METHODS]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # numpy only: one process per core
        futures = [pool.submit(resplit_trials, everything, *job[:2], costs, job[2]) for job in jobs]
        for (policy, budget, method), future in zip(jobs, futures):
            key = f"{policy}/{budget:g}pt/{method}"
            out["resplit"][key] = summary(future.result(), budget)
            out["run_split"][key] = trial(val, test, policy, budget, costs, METHODS[method])
            s = out["resplit"][key]
            print(f"{key:30s} exceeds {s['exceedance_rate']:.2f} +- {s['exceedance_rate_se']:.2f} of splits, test drop "
                  f"{s['test_drop_mean']:.2f} +- {s['test_drop_std']:.2f}, MAC {s['mac_fraction_mean']:.3f} | "
                  f"val->test: drop {out['run_split'][key]['test_drop']:.2f}, "
                  f"MAC {out['run_split'][key]['test_mac_fraction']:.3f}", flush=True)
    out["seconds"] = round(time.time() - t0, 1)
    atomic_write_json(ROOT / "bench" / "results" / "budget.json", out)
    print(json.dumps({k: out[k] for k in ("resplit", "seconds")}, indent=1)[:3000])


if __name__ == "__main__":
    main()
