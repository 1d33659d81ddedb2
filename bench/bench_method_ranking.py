"""Does quantization, the data or the heads decide whether BTS-EE beats joint training?
The same exit sweep (`btsee sweep`: bts and joint heads on the same exit points, head
width, seed and CPM margin; the global threshold beside them) on three backbones trained
on Fashion-MNIST with one recipe:

- cnv-w4a4: the default run's CNV at 4-bit weights and activations;
- cnv-float: the same CNV without quantization (configs/fmnist-cnv-float.yaml);
- resnet8-w4a4: ResNet-8 at W4A4 (configs/fmnist-resnet8.yaml).

The heads are the paper's v1 recipe (cross-entropy on the backbone's argmax, 4 epochs)
in every case. Backbones are reused from runs/default and runs/fmnist-resnet8 when the
flow's fingerprints say they are up to date; otherwise they are trained here.

Writes bench/results/method_ranking.json: per backbone, the backbone's accuracy, in how
many configurations bts is not dominated by joint and at least as good on both axes, and
the configuration each method would pick on validation at 1 and 2 points with its test
figures.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.trained_runs import start_from_backbone  # noqa: E402
from calib.atomic import atomic_write_json, atomic_write_text  # noqa: E402

OUT = ROOT / "runs" / "ranking"
BACKBONES = {"cnv-w4a4": ("configs/default.yaml", "runs/default",
                          [["block1", "block3"], ["block1", "block2", "block3"]]),
             "cnv-float": ("configs/fmnist-cnv-float.yaml", None,
                           [["block1", "block3"], ["block1", "block2", "block3"]]),
             "resnet8-w4a4": ("configs/fmnist-resnet8.yaml", "runs/fmnist-resnet8", [["stage1"], ["stage1", "stage2"]])}
"""name: (config, run folder whose backbone may be reused, exit-point sets swept)."""
HEADS = {"method": "bts", "target": "backbone", "epochs": 4, "conv_channels": [32], "reduce_channels": None}
SWEEP = {"margins": [-0.04, -0.02, 0.0], "conv_channels": [32], "seeds": [0, 1],
         "global_thresholds": [0.8, 0.9, 0.95], "variants": []}
"""The sweep every backbone gets: 2 point sets x 1 width x 2 seeds x 3 margins = 12
configurations per method."""


def sweep(name: str, config: str, reuse: str | None, point_sets: list[list[str]]) -> dict:
    folder = OUT / name
    if reuse is not None:
        start_from_backbone(folder, ROOT / reuse)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = copy.deepcopy(yaml.safe_load((ROOT / config).read_text()))
    cfg["exits"].update(HEADS)
    cfg["calibration"].update({"policy": "cpm", "max_drop": None})
    cfg["sweep"] = {**SWEEP, "point_sets": point_sets}
    path = folder / "ranking.yaml"
    atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.time()
    print(f"bench_method_ranking: {name}: the exit sweep of {config} in {folder}", flush=True)
    subprocess.run([sys.executable, "-m", "btsee.cli", "sweep", str(path), "--out", str(folder), "--device", "cpu"],
                   cwd=ROOT, check=True)
    summary = json.loads((folder / "sweep" / "summary.json").read_text())
    chosen = {k: None if v is None else {f: v[f] for f in ("points", "knob", "test_drop_points", "test_mac_fraction")}
              for k, v in summary["chosen_on_validation"].items()}
    return {"config": config, "backbone_accuracy": summary["backbone_accuracy"],
            "bts_vs_joint": summary["bts_vs_joint"], "chosen_on_validation": chosen,
            "seconds": round(time.time() - t0, 1)}


def main() -> None:
    results = {name: sweep(name, *spec) for name, spec in BACKBONES.items()}
    out = {"benchmark": "method_ranking", "heads": HEADS, "sweep": SWEEP, "backbones": results,
           "definitions": {"bts_not_dominated_by_joint": "joint is not both at least as accurate and at most as "
                                                         "costly (one strictly) on the test split, same margin, "
                                                         "exit points, head width and seed",
                           "chosen_on_validation": "lowest validation MAC fraction with validation accuracy >= "
                                                   "backbone - drop; test figures of that configuration"}}
    atomic_write_json(ROOT / "bench" / "results" / "method_ranking.json", out)
    for name, r in results.items():
        b = r["bts_vs_joint"]
        print(f"{name}: backbone {r['backbone_accuracy']['test']:.4f}; bts not dominated by joint in "
              f"{b['bts_not_dominated_by_joint']} of {b['configurations']}, at least as good on both in "
              f"{b['bts_at_least_as_good_on_both']}")


if __name__ == "__main__":
    main()
