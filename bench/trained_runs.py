"""What the benches that train share: starting a run folder from another run's data and
trained backbone, so that a bench does not retrain what `make demo` already trained."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from calib.atomic import atomic_write_json

REUSED_STEPS = ("data", "backbone")


def start_from_backbone(folder: Path, source: Path) -> bool:
    """Copies `source`'s data and backbone folders and their step records into a new
    `folder`; returns whether it did (not when `folder` exists or `source` has no steps).
    The flow still retrains unless the records' fingerprints match the config it runs."""
    if folder.exists() or not (source / "steps.json").exists():
        return False
    folder.mkdir(parents=True)
    for name in REUSED_STEPS:
        if (source / name).exists():
            shutil.copytree(source / name, folder / name)
    state = json.loads((source / "steps.json").read_text())
    atomic_write_json(folder / "steps.json", {k: v for k, v in state.items() if k in REUSED_STEPS})
    return True
