"""The exit configurations over seeds of the whole run: for each seed (backbone training
and head training both seeded), the default config's data and backbone recipe, and every
exit/calibration variant below run through the flow (`btsee run --to evaluate`) on that
seed's backbone. Thresholds come from the validation split only; the test split measures.

Writes bench/results/seeds.json: per variant and seed, the test accuracy drop against the
backbone (points), the test MAC fraction, the validation MAC fraction the budget search
saw; per variant their mean, standard deviation and range over seeds; and the variant a
user would pick on validation alone (lowest mean validation MAC fraction among those whose
guard held on validation at every seed), with its test figures.

Each seed's backbone lives in runs/seeds/seed<N> (seed 0 reuses `make demo`'s runs/default
when it is up to date: the flow's fingerprints decide); each variant runs in its own folder,
runs/seeds/seed<N>-<variant>, started from that backbone, so that a rerun after a change to
the calibration recalibrates without retraining the heads.
"""
from __future__ import annotations

import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.trained_runs import start_from_backbone  # noqa: E402
from calib.atomic import atomic_write_json, atomic_write_text  # noqa: E402

SEEDS = (0, 1, 2)
OUT = ROOT / "runs" / "seeds"
BUDGET = 1.0
GUARD = {"max_drop": BUDGET, "confidence": 0.9, "holdout": 0.5}
STRONG_HEADS = {"conv_channels": [64, 48], "epochs": 8, "target": "labels"}
"""Heads up to the 5 % MAC budget at block1 (4.2 %), trained twice as long on the labels."""
VARIANTS: dict[str, dict] = {
    "v1": {"exits": {"conv_channels": [32], "epochs": 4, "target": "backbone", "method": "bts"},
           "calibration": {"policy": "cpm", "max_drop": None}},
    "bts+cpm": {"exits": {**STRONG_HEADS, "method": "bts"},
                "calibration": {"policy": "cpm", "budget_search": "per_exit", **GUARD}},
    "joint+cpm": {"exits": {**STRONG_HEADS, "method": "joint"},
                  "calibration": {"policy": "cpm", "budget_search": "per_exit", **GUARD}},
    "joint+global": {"exits": {**STRONG_HEADS, "method": "joint"},
                     "calibration": {"policy": "global", "budget_search": "per_exit", **GUARD}},
    "joint+global shared": {"exits": {**STRONG_HEADS, "method": "joint"},
                            "calibration": {"policy": "global", "budget_search": "shared", **GUARD}},
    "bts+cpm block1-4": {"exits": {**STRONG_HEADS, "method": "bts",
                                   "points": ["block1", "block2", "block3", "block4"]},
                         "calibration": {"policy": "cpm", "budget_search": "per_exit", **GUARD}},
}
"""Exit/calibration settings layered over configs/default.yaml (v1: the paper's recipe
with the former default heads and a fixed CPM margin; the rest: stronger heads and the
1-point accuracy budget with its guard at 0.9, per policy and training method)."""


def variant_config(base: dict, seed: int, changes: dict) -> dict:
    cfg = copy.deepcopy(base)
    cfg["train"]["seed"] = seed
    cfg["exits"]["seed"] = seed
    for section, values in changes.items():
        cfg[section].update(values)
    return cfg


def run_flow(folder: Path, cfg: dict, last_step: str) -> None:
    """`btsee run` of `cfg` in `folder` up to `last_step` (steps up to date are skipped)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "variant.yaml"
    atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False))
    subprocess.run([sys.executable, "-m", "btsee.cli", "run", str(path), "--out", str(folder), "--to", last_step,
                    "--device", "cpu"], cwd=ROOT, check=True)


def run_variant(folder: Path, cfg: dict) -> dict:
    """The variant's test and validation figures, after running it to `evaluate`."""
    run_flow(folder, cfg, "evaluate")
    report = json.loads((folder / "report.json").read_text())
    thresholds = json.loads((folder / "calibrate" / "thresholds.json").read_text())
    budget = thresholds.get("budget")
    backbone_acc = json.loads((folder / "evaluate" / "evaluation.json").read_text())["backbone_accuracy"]
    acc = report["accuracy"]["early_exit"]
    return {"backbone_test_accuracy": backbone_acc, "test_accuracy": acc,
            "test_drop_points": round(100 * (backbone_acc - acc), 3),
            "test_mac_fraction": round(report["mac_fraction"], 4),
            "exit_fraction": [round(x, 4) for x in report["exit_fraction"]],
            "validation_mac_fraction": None if budget is None else budget["mac_fraction_validation"],
            "validation_drop_bound_points": None if budget is None else budget["drop_bound_points"],
            "chosen_knobs": None if budget is None else budget["chosen"]}


def spread(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            "min": round(min(values), 4), "max": round(max(values), 4)}


def main() -> None:
    base = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    t0 = time.time()
    rows: dict[str, dict[int, dict]] = {name: {} for name in VARIANTS}
    for seed in SEEDS:
        backbone = OUT / f"seed{seed}"
        if seed == base["train"]["seed"]:
            start_from_backbone(backbone, ROOT / "runs" / "default")
        first = variant_config(base, seed, next(iter(VARIANTS.values())))
        run_flow(backbone, first, "backbone")  # trains the seed's backbone unless it is up to date
        for name, changes in VARIANTS.items():
            print(f"== seed {seed}: {name}", flush=True)
            folder = OUT / f"seed{seed}-{name.replace('+', '-').replace(' ', '-')}"
            start_from_backbone(folder, backbone)
            rows[name][seed] = run_variant(folder, variant_config(base, seed, changes))
    summary = {}
    for name, by_seed in rows.items():
        runs = list(by_seed.values())
        val = [r["validation_mac_fraction"] for r in runs]
        summary[name] = {
            "settings": VARIANTS[name],
            "test_drop_points": spread([r["test_drop_points"] for r in runs]),
            "test_mac_fraction": spread([r["test_mac_fraction"] for r in runs]),
            "validation_mac_fraction": None if None in val else spread(val),
            "guard_held_on_validation": all(r["validation_drop_bound_points"] is not None
                                            and r["validation_drop_bound_points"] <= BUDGET for r in runs)}
    eligible = [n for n, s in summary.items() if s["guard_held_on_validation"] and s["validation_mac_fraction"]]
    pick = min(eligible, key=lambda n: summary[n]["validation_mac_fraction"]["mean"]) if eligible else None
    out = {"benchmark": "seeds", "config": "configs/default.yaml", "seeds": list(SEEDS), "budget_points": BUDGET,
           "variants": summary, "per_seed": rows, "chosen_on_validation": pick,
           "chosen_test": None if pick is None else {k: summary[pick][k] for k in
                                                     ("test_drop_points", "test_mac_fraction")},
           "seconds": round(time.time() - t0, 1),
           "definitions": {"test_drop_points": "backbone test accuracy - early-exit test accuracy, in points",
                           "chosen_on_validation": "lowest mean validation MAC fraction among the variants whose "
                                                   "guarded drop bound stayed within the budget at every seed "
                                                   "(variants without a budget are not candidates)",
                           "std": "sample standard deviation over seeds"}}
    atomic_write_json(ROOT / "bench" / "results" / "seeds.json", out)
    print(json.dumps({n: (s["test_drop_points"]["mean"], s["test_mac_fraction"]["mean"]) for n, s in summary.items()}))
    print("chosen on validation:", pick, out["chosen_test"])


if __name__ == "__main__":
    main()
