"""The run folder: where every artifact lives, and a typed reader for each.

Steps declare these paths as their inputs and outputs (`btsee.steps`), so the flow can
fingerprint them; a step reads an earlier step's results only through the readers here,
never from `report.json`, which is output only (a summary for people and other tools).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from btsee.config import DataConfig
from btsee.flow import CONFIG_RECORD, FlowError
from calib.cascade import Costs
from calib.errors import ArtifactError
from calib.schema import OneOf, array_field, finite, integers, load_npz, pinned_file, read_json_file
from calib.thresholds import SCHEMA as THRESHOLDS_SCHEMA
from calib.thresholds import ThresholdsError, load_artifact, model_hash

if TYPE_CHECKING:
    from hw.golden import GoldenCascade
    from qat.data import Splits

RUN_CONFIG = CONFIG_RECORD  # what `btsee simulate RUN` reads back; the flow writes it after each step
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
FOLD_MANIFEST = "fold/manifest.json"
FOLDING_FILE = "fold/folding.json"
SIMULATION_FILE = "simulate/simulation.json"
BITSTREAM_FILE = "bitstream/bitstream.json"
PACKAGE_MANIFEST = "package/manifest.json"
RTL_FILE = "rtl/rtl.json"
SYNTH_FILE = "synth/synth.json"
NETLIST_FILE = "netlist/netlist.json"


_SEGMENT = {"name": str, "kind": OneOf("backbone", "head"), "file": str, "sha256": str, "source": str,
            "input_type": str, "output_scale": float}
SCHEMAS: dict[str, Any] = {
    DATA_SUMMARY: {"dataset": str, "classes": [str], "shape": [int],
                   "sizes": {"train": int, "val": int, "test": int}},
    BACKBONE_HISTORY: [{"epoch": int, "seconds": float}],
    BACKBONE_MACS: {"segment_macs": {str: int}, "macs": int},
    HEAD_MACS: {"points": [str], "head_macs": [int]},
    THRESHOLDS_FILE: THRESHOLDS_SCHEMA,
    EVALUATION_FILE: {"cascade": {"accuracy": float, "mac_fraction": float, "exit_fraction": [float]}},
    EXPORT_MANIFEST: {"points": [str], "segments": [_SEGMENT]},
    DATAFLOW_MANIFEST: {"points": [str], "segments": [dict(_SEGMENT, qonnx_file=str, hw_file=str,
                                                           hw_sha256=str, folded_file=str, folded_sha256=str,
                                                           estimate={"cycles_per_frame": int})]},
    FOLD_MANIFEST: {"points": [str], "buffer_frames": int, "folding": str, "exits_built": [int],
                    "segments": [dict(_SEGMENT, qonnx_file=str, hw_file=str, hw_sha256=str, folded_file=str,
                                      folded_sha256=str, estimate={"cycles_per_frame": int})]},
    RTL_FILE: {"segments": {str: {"top": str, "folder": str, "sources_sha256": str, "finn_cycles_per_frame": int,
                                  "free_running": {"cycles_per_frame": float}}}},
    SYNTH_FILE: {"segments": {str: {"resources": {str: int}}}},
    BITSTREAM_FILE: {"board": str, "built": bool, "build_script": str},
    RUN_CONFIG: {str: Any},
}
"""The schema each JSON artifact is checked against when read (`calib.schema`): the
fields some reader uses, nothing more."""


def read_json(out: Path, rel: str) -> Any:
    """The JSON document at `out/rel`, checked against its schema in SCHEMAS. A missing
    file is a FlowError (run the step first); an unreadable one, or a field missing or of
    the wrong kind, an ArtifactError naming the file and field."""
    path = Path(out) / rel
    if not path.is_file():
        raise FlowError(f"{path} missing: run the step that writes it first")
    try:
        return read_json_file(path, SCHEMAS.get(rel, Any))
    except ArtifactError as e:
        raise ArtifactError(f"{e} (damaged, or written by an older btsee: rerun the step that writes it)") from e


LISTED_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    EXPORT_MANIFEST: (("file", "sha256"),),
    DATAFLOW_MANIFEST: (("qonnx_file", "sha256"), ("hw_file", "hw_sha256"), ("folded_file", "folded_sha256")),
    FOLD_MANIFEST: (("qonnx_file", "sha256"), ("hw_file", "hw_sha256"), ("folded_file", "folded_sha256")),
}
"""Per manifest, the (file, SHA-256) field pairs of each segment entry: the graph files it
lists and pins."""


def listed_files(out: Path, rel: str) -> list[str]:
    """The files (relative to the run folder) that the manifest `rel` lists; [] for other files."""
    if rel not in LISTED_FILES:
        return []
    doc = read_manifest(out, rel)
    return sorted({seg[f] for seg in doc["segments"] for f, _ in LISTED_FILES[rel]})


def read_manifest(out: Path, rel: str) -> dict:
    """The export, dataflow or fold manifest at `out/rel`, checked against its schema, with every
    graph file it lists present and unchanged since (SHA-256 recorded beside it)."""
    doc = read_json(out, rel)
    path = Path(out) / rel
    for i, seg in enumerate(doc["segments"]):
        for file_key, hash_key in LISTED_FILES[rel]:
            pinned_file(Path(out) / seg[file_key], seg[hash_key], f"{path} (segments[{i}].{file_key})")
        if seg["output_scale"] <= 0:
            raise ArtifactError(f"{path}: segments[{i}].output_scale is {seg['output_scale']}, expected > 0")
    kinds = [seg["kind"] for seg in doc["segments"]]
    built = doc.get("exits_built", list(range(len(doc["points"]))))  # the fold manifest may build fewer exits
    if not all(0 <= k < len(doc["points"]) for k in built) or kinds.count("head") != len(built):
        raise ArtifactError(f"{path}: {kinds.count('head')} head segments for exits {built} of "
                            f"{len(doc['points'])} points")
    return doc


def read_splits(out: Path, d: DataConfig) -> Splits:
    """The train/val/test splits the data step recorded in run folder `out`; a damaged
    split file, or indices outside the data set, are an ArtifactError naming it."""
    from qat import data as data_mod
    from qat.image_fit import ImageFit

    path = Path(out) / SPLIT_FILE
    if not path.is_file():
        raise FlowError(f"{path} missing: run the data step first")
    arrays = load_npz(path)
    raw = data_mod.load_raw(d.dataset, d.root, d.grayscale, ImageFit(d.image_size, d.image_fit))
    index = {}
    for s in SPLITS:
        source = str(array_field(arrays, f"{s}_source", path, ndim=0))
        idx = array_field(arrays, f"{s}_index", path, ndim=1)
        if source not in raw:
            raise ArtifactError(f"{path}: {s}_source is {source!r}; the data set has {sorted(raw)}")
        if idx.dtype.kind not in "iu" or (len(idx) and (idx.min() < 0 or idx.max() >= len(raw[source]))):
            raise ArtifactError(f"{path}: {s}_index holds values outside 0..{len(raw[source]) - 1} "
                                f"(dtype {idx.dtype}); the data set is not the one split")
        index[s] = (source, idx)
    return data_mod.assemble(raw, index)


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

    def subset(self, idx: np.ndarray) -> "SplitLogits":
        """The logits of the samples `idx` only."""
        return SplitLogits([h[idx] for h in self.heads], self.final[idx], self.labels[idx], self.head_scales,
                           self.final_scale)

    @property
    def float_heads(self) -> list[np.ndarray]:
        """Per head (N, K): the model's float logits (the integers times their scale)."""
        return [z * s for z, s in zip(self.heads, self.head_scales)] if self.integer else self.heads

    def for_score(self, score: str) -> tuple[list[np.ndarray], np.ndarray]:
        """(head logits, final logits) in the domain the exit decision compares: the
        integers for the margin score (the hardware's), float64 logits otherwise."""
        if not self.integer or score == "margin":
            return self.heads, self.final
        return self.float_heads, self.final * self.final_scale


SPLITS = ("train", "val", "test")


def _split_arrays(z: dict[str, np.ndarray], split: str, integer: bool, path: Path
                  ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(heads, final, labels) of one split of the logits file, checked: (N, K) arrays with
    one N and K, finite, integers where the integer form is stored, labels in 0..K-1."""
    labels = array_field(z, f"{split}_labels", path, ndim=1)
    final = array_field(z, f"{split}_backbone", path, ndim=2)
    k = sum(1 for name in z if name.startswith(f"{split}_head") and not name.endswith("_int"))
    names = [f"{split}_backbone"] + [f"{split}_head{i}" for i in range(k)]
    if integer:
        names += [f"{n}_int" for n in names]
    for name in names:
        a = array_field(z, name, path, ndim=2)
        (integers if name.endswith("_int") else finite)(a, path, name)
        if a.shape != final.shape or len(a) != len(labels):
            raise ArtifactError(f"{path}: {name} has shape {a.shape}; expected ({len(labels)}, {final.shape[1]}) "
                                f"like {split}_backbone and {split}_labels")
    if labels.dtype.kind not in "iu" or (len(labels) and (labels.min() < 0 or labels.max() >= final.shape[1])):
        raise ArtifactError(f"{path}: {split}_labels holds values outside 0..{final.shape[1] - 1}")
    suffix = "_int" if integer else ""
    return [z[f"{split}_head{i}{suffix}"] for i in range(k)], z[f"{split}_backbone{suffix}"], labels


def load_logits(out: Path, split: str) -> SplitLogits:
    """The logits of `split` ("val" or "test") written by the exits step. The whole file is
    checked whichever split is asked for (every array present, (N, K) with one N per split,
    finite, integer where integers are stored, labels within the classes, positive scales):
    errors are ArtifactErrors naming the file and the array."""
    path = Path(out) / LOGITS_FILE
    if not path.is_file():
        raise FlowError(f"{path} missing: run the exits step first")
    z = load_npz(path)
    integer = "head_scales" in z or "backbone_scale" in z
    parts = {s: _split_arrays(z, s, integer, path) for s in SPLITS if f"{s}_labels" in z or s != "train"}
    counts = {s: len(p[0]) for s, p in parts.items()}
    if len(set(counts.values())) != 1:
        raise ArtifactError(f"{path}: head logits per split {counts}; every split has one per exit head")
    heads, final, labels = parts[split]
    classes = array_field(z, "classes", path, ndim=1)
    if not np.array_equal(classes, np.arange(final.shape[1])):
        raise ArtifactError(f"{path}: classes is {classes.tolist()[:12]}, expected 0..{final.shape[1] - 1}")
    if not integer:
        return SplitLogits(heads, final, labels, None, None)
    scales = finite(array_field(z, "head_scales", path, ndim=1), path, "head_scales")
    final_scale = finite(array_field(z, "backbone_scale", path, ndim=0), path, "backbone_scale")
    if len(scales) != len(heads) or (scales <= 0).any() or float(final_scale) <= 0:
        raise ArtifactError(f"{path}: head_scales {scales.tolist()} / backbone_scale {final_scale.tolist()}: "
                            f"expected {len(heads)} positive head scales and one positive backbone scale")
    return SplitLogits(heads, final, labels, [float(v) for v in scales], float(final_scale))


def model_files(out: Path) -> tuple[Path, Path]:
    """The files whose hash identifies the trained multi-exit model."""
    return Path(out) / BACKBONE_FILE, Path(out) / HEADS_FILE


def read_thresholds(out: Path) -> list[np.ndarray]:
    """Per exit (K,) float64 thresholds in the domain `SplitLogits.for_score` gives: the
    integer thresholds when the artifact has them (inf = never exits). The artifact must
    belong to this run's model and hold K thresholds per exit (an ArtifactError if not)."""
    doc = read_json(out, THRESHOLDS_FILE)
    path = Path(out) / THRESHOLDS_FILE
    files = model_files(out)
    want = model_hash(*files)
    if doc.get("model_sha256") != want:
        raise ThresholdsError(f"{path}: model_sha256 is {doc.get('model_sha256')!r}, the model in "
                              f"{' + '.join(map(str, files))} has {want!r}; the thresholds were written for "
                              "another model, or the model files changed")
    k = len(class_names(out))
    out_list = []
    for i, e in enumerate(doc["exits"]):
        values = e["thresholds"] if e["thresholds"] is not None else e["float_thresholds"]
        if values is None or len(values) != k:
            raise ArtifactError(f"{path}: exits[{i}]: expected {k} thresholds (one per class), got "
                                f"{None if values is None else len(values)}")
        out_list.append(np.array([np.inf if t is None else t for t in values], np.float64))
    return out_list


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
    manifest = read_manifest(run, DATAFLOW_MANIFEST)
    classes = class_names(run)
    path = Path(thresholds) if thresholds is not None else run / THRESHOLDS_FILE
    heads = [s for s in manifest["segments"] if s["kind"] == "head"]
    files = model_files(run)
    artifact = load_artifact(path, model_hash(*files), len(classes), len(heads),
                             f"the model in {' + '.join(map(str, files))}")
    for i, (e, p) in enumerate(zip(artifact["exits"], manifest["points"])):
        if e.get("point") != p:
            raise ThresholdsError(f"{path}: exits[{i}].point is {e.get('point')!r}, the dataflow has {p!r}")
    scores = {e["score"] for e in artifact["exits"]}
    if len(scores) != 1:
        raise ThresholdsError(f"{path}: exits use different scores {sorted(scores)}")
    cascade = load_cascade(run, manifest, [e["thresholds"] for e in artifact["exits"]], scores.pop())
    return cascade, artifact
