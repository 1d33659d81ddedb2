"""Exit thresholds in the integer domain of each head's logits, and their artifact.

A head's logits are integers times one positive scale s (its last layer has a single
per-tensor weight scale and no bias), so for an integer score m and a float threshold t

    m * s >= t   <=>   m >= ceil(t / s)

in exact arithmetic. `integer_threshold` evaluates ceil(t / s) with exact rationals
(Python's Fraction of the float64 values), so no float rounding can flip a `>=`
(docs/design.md §6; FINN's PR 1635 saw a float32 ulp do so).

The artifact (JSON) carries the hash of the model it belongs to, the class count and the
exit count; `load_artifact` refuses a file written for another model.
"""
from __future__ import annotations

import hashlib
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from calib.errors import ArtifactError
from calib.schema import Optional, read_json_file

FORMAT = "btsee-exit-thresholds/1"


class ThresholdsError(ArtifactError):
    """A thresholds artifact is unreadable or belongs to another model; names file and field."""


SCHEMA = {"format": str, "model_sha256": str, "num_classes": int, "num_exits": int,
          "exits": [{"point": str, "score": str, "thresholds": Optional([Optional(int)]),
                     "float_thresholds": Optional([Optional(float)])}]}
"""What every reader of a thresholds artifact relies on (`calib.schema`)."""


def integer_threshold(threshold: float, scale: float) -> int | None:
    """The least integer m with m * scale >= threshold; None for a class that never exits."""
    if not math.isfinite(threshold):
        return None
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"the logit scale must be positive and finite, got {scale}")
    q = Fraction(threshold) / Fraction(scale)
    return math.ceil(q)


def integer_thresholds(thresholds: np.ndarray, scale: float) -> list[int | None]:
    """(K,) float thresholds -> K integer thresholds (None = never exits)."""
    return [integer_threshold(float(t), scale) for t in thresholds]


def model_hash(*files: Path) -> str:
    """sha256 over the bytes of the model files (backbone and heads)."""
    h = hashlib.sha256()
    for f in files:
        if not Path(f).is_file():
            raise ThresholdsError(f"{f}: no such file (the model the thresholds belong to)")
        h.update(Path(f).read_bytes())
    return h.hexdigest()


def make_artifact(model_sha256: str, num_classes: int, exits: list[dict]) -> dict:
    """exits: one dict per exit with 'point', 'score', 'scale' (float, or None without an
    integer form), 'thresholds' (K integers or None = never exits; None for the whole list
    without an integer form) and 'float_thresholds' (K floats or None), plus any extras."""
    for i, e in enumerate(exits):
        for key in ("thresholds", "float_thresholds"):
            if e[key] is not None and len(e[key]) != num_classes:
                raise ValueError(f"exit {i}: {len(e[key])} {key} for {num_classes} classes")
    return {"format": FORMAT, "model_sha256": model_sha256, "num_classes": num_classes,
            "num_exits": len(exits), "rule": "exit when score >= thresholds[argmax]; argmax ties go to "
            "the lowest index; null = never exits", "exits": exits}


def load_artifact(path: Path, model_sha256: str, num_classes: int, num_exits: int,
                  model: str = "this model") -> dict:
    """Reads and checks an artifact against the model it is meant for (`model` names it in
    errors, e.g. its files)."""
    path = Path(path)
    try:
        doc = read_json_file(path, SCHEMA)
    except ArtifactError as e:
        raise ThresholdsError(f"{e} (a thresholds file, {FORMAT})") from e
    if doc.get("format") != FORMAT:
        raise ThresholdsError(f"{path}: format: expected {FORMAT!r}, got {doc.get('format') if isinstance(doc, dict) else doc!r}")
    checks = (("model_sha256", model_sha256), ("num_classes", num_classes), ("num_exits", num_exits))
    for field, want in checks:
        if doc.get(field) != want:
            raise ThresholdsError(f"{path}: {field} is {doc.get(field)!r}, {model} has {want!r}; "
                                  "the thresholds were written for another model, or the model files changed")
    if len(doc.get("exits", [])) != num_exits:
        raise ThresholdsError(f"{path}: exits: {len(doc.get('exits', []))} entries for {num_exits} exits")
    for i, e in enumerate(doc["exits"]):
        t = e.get("thresholds")
        if t is None:
            raise ThresholdsError(f"{path}: exits[{i}].thresholds: no integer thresholds (score "
                                  f"{e.get('score')!r}); the hardware decision needs calibration.score margin "
                                  "on a quantized model")
        if not isinstance(t, list) or len(t) != num_classes or not all(v is None or type(v) is int for v in t):
            raise ThresholdsError(f"{path}: exits[{i}].thresholds: expected {num_classes} integers or null")
        if e.get("score") not in ("margin", "top"):
            raise ThresholdsError(f"{path}: exits[{i}].score: {e.get('score')!r} has no integer form")
    return doc
