"""The exit sweep on the default config: bts against joint and the global threshold,
every threshold and margin chosen on validation. Runs `btsee sweep` (reusing the
backbone of `make demo`'s runs/default when it is up to date) and writes
bench/results/exits_sweep.json with the selections, the bts-vs-joint counts, the sweep's
duration and the head-training cost against the backbone's training time.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calib.atomic import atomic_write_json  # noqa: E402

RUN = ROOT / "runs" / "default"  # the make demo run folder; its backbone is reused


def main() -> None:
    subprocess.run([sys.executable, "-m", "btsee.cli", "run", "configs/default.yaml", "--out", str(RUN),
                    "--device", "cpu"], cwd=ROOT, check=True)
    subprocess.run([sys.executable, "-m", "btsee.cli", "sweep", "configs/default.yaml", "--out", str(RUN),
                    "--device", "cpu"], cwd=ROOT, check=True)
    summary = json.loads((RUN / "sweep" / "summary.json").read_text())
    report = json.loads((RUN / "report.json").read_text())
    out = {"benchmark": "exits_sweep", "config": "configs/default.yaml",
           "backbone_accuracy": summary["backbone_accuracy"],
           "chosen_on_validation": summary["chosen_on_validation"],
           "bts_vs_joint": summary["bts_vs_joint"],
           "configurations_per_method": summary["configurations_per_method"],
           "sweep_seconds": summary["seconds"],
           "default_run": {"accuracy": report["accuracy"], "mac_fraction": report["mac_fraction"],
                           "exit_fraction": report["exit_fraction"],
                           "backbone_training_seconds": report["training"]["seconds"],
                           "head_training_seconds": report["exits"]["head_training_seconds"],
                           "head_over_backbone_training_time":
                               report["exits"]["head_over_backbone_training_time"]},
           "definitions": summary["definitions"]}
    atomic_write_json(ROOT / "bench" / "results" / "exits_sweep.json", out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
