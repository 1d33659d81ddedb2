"""The run folder: where every artifact lives, and a typed reader for each.

Steps declare these paths as their inputs and outputs (`btsee.steps`), so the flow can
fingerprint them; a step reads an earlier step's results only through the readers here,
never from `report.json`, which is output only (a summary for people and other tools).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from btsee.config import DataConfig
from btsee.flow import FlowError
from calib.cascade import Costs
from calib.thresholds import ThresholdsError, load_artifact, model_hash

if TYPE_CHECKING:
    from hw.golden import GoldenCascade
    from qat.data import Splits

RUN_CONFIG = "config.json"  # what `btsee simulate RUN` reads back; written by `btsee run`
SPLIT_FILE = "data/split.npz"
DATA_SUMMARY = "data/summary.json"
BACKBONE_FILE = "backbone/model.pt"
BACKBONE_CHECKPOINT = "backbone/checkpoint.pt"
BACKBONE_HISTORY = "backbone/history.json"
BACKBONE_MACS = "backbone/macs.json"
HEADS_FILE = "exits/heads.pt"
LOGITS_FILE = "exits/logits.npz"
HEAD_MACS = "exits/macs.json"
THRESHOLDS_FILE = "calibrate/thresholds.json"
EVALUATION_FILE = "evaluate/evaluation.json"
EXPORT_MANIFEST = "export/manifest.json"
DATAFLOW_MANIFEST = "dataflow/manifest.json"
SIMULATION_FILE = "simulate/simulation.json"


def read_json(out: Path, rel: str) -> Any:
    """The JSON document at `out/rel`; a missing or unreadable file is a FlowError naming it."""
    path = Path(out) / rel
    if not path.is_file():
        raise FlowError(f"{path} missing: run the step that writes it first")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FlowError(f"{path}: not a readable JSON file ({e})") from e


def read_splits(out: Path, d: DataConfig) -> Splits:
    """The train/val/test splits the data step recorded in run folder `out`."""
    from qat import data as data_mod

    raw = data_mod.load_raw(d.dataset, d.root, d.grayscale)
    with np.load(Path(out) / SPLIT_FILE) as z:
        index = {s: (str(z[f"{s}_source"]), z[f"{s}_index"]) for s in ("train", "val", "test")}
    return data_mod.assemble(raw, index, d.pad_to_32)


def class_names(out: Path) -> list[str]:
    """The data set's class names, in label order."""
    return read_json(out, DATA_SUMMARY)["classes"]


@dataclass
class SplitLogits:
    """The logits of one split written by the exits step. With an integer form (quantized
    models) `heads`/`final` are the integers the dataflow computes and the scales turn
    them into the model's float logits; without one they are the float logits."""

    heads: list[np.ndarray]  # per head (N, K)
    final: np.ndarray  # (N, K)
    labels: np.ndarray  # (N,)
    head_scales: list[float] | None
    final_scale: float | None

    @property
    def integer(self) -> bool:
        return self.head_scales is not None

    def for_score(self, score: str) -> tuple[list[np.ndarray], np.ndarray]:
        """(head logits, final logits) in the domain the exit decision compares: the
        integers for the margin score (the hardware's), float64 logits otherwise."""
        if not self.integer or score == "margin":
            return self.heads, self.final
        return ([z * s for z, s in zip(self.heads, self.head_scales)], self.final * self.final_scale)


def load_logits(out: Path, split: str) -> SplitLogits:
    """The logits of `split` ("val" or "test") written by the exits step."""
    with np.load(Path(out) / LOGITS_FILE) as z:
        k = sum(1 for name in z.files if name.startswith(f"{split}_head") and not name.endswith("_int"))
        if "head_scales" in z.files:
            return SplitLogits([z[f"{split}_head{i}_int"] for i in range(k)], z[f"{split}_backbone_int"],
                               z[f"{split}_labels"], [float(v) for v in z["head_scales"]],
                               float(z["backbone_scale"]))
        return SplitLogits([z[f"{split}_head{i}"] for i in range(k)], z[f"{split}_backbone"],
                           z[f"{split}_labels"], None, None)


def model_files(out: Path) -> tuple[Path, Path]:
    """The files whose hash identifies the trained multi-exit model."""
    return Path(out) / BACKBONE_FILE, Path(out) / HEADS_FILE


def read_thresholds(out: Path) -> list[np.ndarray]:
    """Per exit (K,) float64 thresholds in the domain `SplitLogits.for_score` gives: the
    integer thresholds when the artifact has them (inf = never exits)."""
    doc = read_json(out, THRESHOLDS_FILE)
    return [np.array([np.inf if t is None else t for t in (e["thresholds"] if e["thresholds"] is not None
                                                           else e["float_thresholds"])], np.float64)
            for e in doc["exits"]]


def read_segment_macs(out: Path) -> dict[str, int]:
    """MACs per image of each backbone segment, in order (the backbone step's count)."""
    return {k: int(v) for k, v in read_json(out, BACKBONE_MACS)["segment_macs"].items()}


def read_costs(out: Path, points: list[str] | None = None) -> Costs:
    """The cascade's MAC costs from the backbone and exits steps' artifacts; `points`, when
    given, must be the exit points the heads were trained at."""
    heads = read_json(out, HEAD_MACS)
    if points is not None and list(points) != heads["points"]:
        raise FlowError(f"{Path(out) / HEAD_MACS}: heads at {heads['points']}, asked for {list(points)}")
    return Costs.for_points(read_segment_macs(out), heads["points"], heads["head_macs"])


def load_golden(run: Path, thresholds: Path | None = None) -> tuple[GoldenCascade, dict]:
    """(golden simulator, thresholds artifact) of a run folder; `thresholds` replaces the
    run's calibrate/thresholds.json and must belong to the same model."""
    from hw.golden import load_cascade

    run = Path(run)
    manifest_path = run / DATAFLOW_MANIFEST
    if not manifest_path.is_file():
        raise FlowError(f"{manifest_path} missing: run the dataflow step first "
                        f"(btsee run CONFIG --out {run} --to dataflow)")
    manifest = read_json(run, DATAFLOW_MANIFEST)
    classes = class_names(run)
    path = Path(thresholds) if thresholds is not None else run / THRESHOLDS_FILE
    heads = [s for s in manifest["segments"] if s["kind"] == "head"]
    artifact = load_artifact(path, model_hash(*model_files(run)), len(classes), len(heads))
    for i, (e, p) in enumerate(zip(artifact["exits"], manifest["points"])):
        if e.get("point") != p:
            raise ThresholdsError(f"{path}: exits[{i}].point is {e.get('point')!r}, the dataflow has {p!r}")
    scores = {e["score"] for e in artifact["exits"]}
    if len(scores) != 1:
        raise ThresholdsError(f"{path}: exits use different scores {sorted(scores)}")
    cascade = load_cascade(manifest_path, [e["thresholds"] for e in artifact["exits"]], scores.pop())
    return cascade, artifact
