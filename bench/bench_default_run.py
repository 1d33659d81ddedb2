"""The default run (`make demo`'s: configs/default.yaml into runs/default, steps already
done are kept) recorded for the docs: bench/results/default_run.json holds its report.json,
the whole design's RTL passes from rtl/rtl.json (images and mismatches of each), the commit
it ran at and the machine. docs/hardware.md renders its tables of the default design from
this file (bench/readme_figures.py), so they are a run's figures, not typed ones.
Exits 1 when the run found any mismatch.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "runs" / "default"
OUT = ROOT / "bench" / "results" / "default_run.json"
PASS_KEYS = ("images", "input_stall_percent", "output_stall_percent", "mismatched_images", "classes_differ",
             "exit_indices_differ", "steady_cycles_per_image", "exits_taken")


def commit_of(folder: Path) -> str:
    """The checkout's commit, with `+changes` when its tracked files differ from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True, text=True,
                          check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                           capture_output=True, text=True, check=True).stdout.strip()
    return head + ("+changes" if dirty else "")


def snapshot(run: Path, commit: str) -> dict:
    """bench/results/default_run.json's document for the finished run in `run`."""
    report = json.loads((run / "report.json").read_text())
    rtl = json.loads((run / "rtl" / "rtl.json").read_text())
    passes = {label: {k: p[k] for k in PASS_KEYS if k in p}
              for label, p in (rtl.get("multi_exit") or {}).items() if label in ("free_running", "stalled")}
    return {"benchmark": "default_run", "config": "configs/default.yaml", "commit": commit,
            "machine": {"cpu_threads": os.cpu_count(), "python": platform.python_version()},
            "whole_design_passes": passes, "report": report}


def main() -> int:
    subprocess.run([sys.executable, "-m", "btsee.cli", "run", "configs/default.yaml", "--out", str(RUN),
                    "--device", "cpu", "--resume"], cwd=ROOT, check=True)
    sys.path.insert(0, str(ROOT))
    from btsee.cli import mismatches_found
    from calib.atomic import atomic_write_json

    doc = snapshot(RUN, commit_of(ROOT))
    atomic_write_json(OUT, doc)
    found = mismatches_found(RUN)
    print(f"default_run: {OUT} at {doc['commit']}; mismatches: {found or 'none'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
