"""Writes the block test's vectors: `python -m hw.rtl.exit_decision.vectors RUN_FOLDER`
stores each head's integer test logits (first 1,200 images) and integer thresholds of a
finished run, and the final classifier's integer logits on the same images, in vectors.npz
beside the block."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from hw.rtl.exit_decision.model import VECTORS

IMAGES = 1200


def write_vectors(run: Path, out: Path = VECTORS) -> None:
    import json

    logits = np.load(run / "exits" / "logits.npz")
    exits = json.loads((run / "calibrate" / "thresholds.json").read_text())["exits"]
    arrays = {}
    for i, e in enumerate(exits):
        arrays[f"head{i}_logits"] = logits[f"test_head{i}_int"][:IMAGES].astype(np.int16)
        arrays[f"head{i}_thresholds"] = np.array([0 if t is None else t for t in e["thresholds"]], np.int64)
        arrays[f"head{i}_enabled"] = np.array([t is not None for t in e["thresholds"]])
    arrays["final_logits"] = logits["test_backbone_int"][:IMAGES].astype(np.int16)
    np.savez_compressed(out, **arrays)


if __name__ == "__main__":
    write_vectors(Path(sys.argv[1]))
