"""The flow's steps, in order. Each step reads and writes files in the run folder.

Steps: data, backbone, exits, calibrate, evaluate, export, dataflow, simulate. (Later
steps arrive with their issues; only working steps are listed.)
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from boards import load_board
from btsee.config import ConfigError, DataConfig
from btsee.flow import Context, Step, fingerprint
from btsee.report import read_report, update_report
from calib.cascade import Costs, calibrate_in_sequence, cascade_from_logits, oracle, summarize
from calib.cpm import CalibrationPolicy, class_precision
from calib.rules import predicted_class
from qat import data as data_mod
from qat.atomic import atomic_torch_save, atomic_write, atomic_write_json
from qat.exit_training import HeadTraining, SplitData, fit_exits, head_logits
from qat.feature_cache import build_cache
from qat.heads import ExitHead, HeadSpec
from qat.models import Backbone, ModelSpec, build_backbone, load_backbone, save_backbone
from qat.train import InputScaling, accuracy, train

RUN_CONFIG = "config.json"
SPLIT_FILE = "data/split.npz"
DATA_SUMMARY = "data/summary.json"
BACKBONE_FILE = "backbone/model.pt"
BACKBONE_CHECKPOINT = "backbone/checkpoint.pt"
BACKBONE_HISTORY = "backbone/history.json"
HEADS_FILE = "exits/heads.pt"
LOGITS_FILE = "exits/logits.npz"
THRESHOLDS_FILE = "calibrate/thresholds.json"
EVALUATION_FILE = "evaluate/evaluation.json"
EXPORT_MANIFEST = "export/manifest.json"
EXPORT_CHECK_IMAGES = 64
DATAFLOW_MANIFEST = "dataflow/manifest.json"
SIMULATION_FILE = "simulate/simulation.json"
RESOURCES_SOURCE = ("FINN estimates from the estimate-only build (no Vivado): lower bounds, without "
                    "FIFOs, width converters, the shell and the project's exit RTL; pools count 0 LUT")


# --------------------------------------------------------------------------- helpers

def read_splits(out: Path, d: DataConfig) -> data_mod.Splits:
    """The train/val/test splits the data step recorded in run folder `out`."""
    raw = data_mod.load_raw(d.dataset, d.root, d.grayscale)
    with np.load(out / SPLIT_FILE) as z:
        index = {s: (str(z[f"{s}_source"]), z[f"{s}_index"]) for s in ("train", "val", "test")}
    return data_mod.assemble(raw, index, d.pad_to_32)


def load_splits(ctx: Context) -> data_mod.Splits:
    """The train/val/test splits recorded by the data step (cached for the invocation)."""
    if "splits" not in ctx.cache:
        ctx.cache["splits"] = read_splits(ctx.out, ctx.config.data)
    return ctx.cache["splits"]


def input_scaling(ctx: Context) -> InputScaling:
    summary = json.loads((ctx.out / DATA_SUMMARY).read_text())
    if ctx.config.data.normalize:
        return InputScaling(tuple(summary["mean"]), tuple(summary["std"]))
    return InputScaling()


def model_spec(ctx: Context) -> ModelSpec:
    """The backbone spec: the config's model section plus the data's shape and classes."""
    m = ctx.config.model
    summary = json.loads((ctx.out / DATA_SUMMARY).read_text())
    c, h, w = summary["shape"]
    if h != w:
        raise ValueError(f"{ctx.out / DATA_SUMMARY}: images are {h}x{w}; backbones need square images")
    return ModelSpec(name=m.name, width=m.width,
                     channels=tuple(m.channels) if m.channels is not None else None,
                     weight_bits=m.weight_bits, act_bits=m.act_bits, input_bits=m.input_bits,
                     in_channels=c, num_classes=len(summary["classes"]), image_size=h)


def backbone(ctx: Context) -> Backbone:
    if "backbone" not in ctx.cache:
        ctx.cache["backbone"] = load_backbone(ctx.out / BACKBONE_FILE)
    return ctx.cache["backbone"]


# --------------------------------------------------------------------------- steps

def step_data(ctx: Context) -> Context:
    """Loads the data set, cuts the seeded train/validation/test split, records it."""
    d = ctx.config.data
    raw = data_mod.load_raw(d.dataset, d.root, d.grayscale)
    index = data_mod.make_split_indices(raw, d.val_fraction, d.test_fraction, d.seed)
    limits = {"train": d.limit_train, "val": d.limit_val, "test": d.limit_test}
    index = {s: (src, data_mod.limit(idx, limits[s])) for s, (src, idx) in index.items()}
    arrays = {}
    for s, (src, idx) in index.items():
        arrays[f"{s}_source"] = np.array(src)
        arrays[f"{s}_index"] = idx
    atomic_write(ctx.out / SPLIT_FILE, lambda tmp: np.savez(tmp.open("wb"), **arrays))
    splits = data_mod.assemble(raw, index, d.pad_to_32)
    ctx.cache["splits"] = splits
    mean, std = data_mod.channel_stats(splits.train.images)
    counts = {s: np.bincount(getattr(splits, s).labels, minlength=len(splits.classes)).tolist()
              for s in ("train", "val", "test")}
    summary = {"dataset": d.dataset, "root": str(d.root or data_mod.default_root(d.dataset)),
               "classes": splits.classes, "shape": list(splits.shape),
               "sizes": {s: len(getattr(splits, s)) for s in ("train", "val", "test")},
               "class_counts": counts, "mean": mean, "std": std}
    atomic_write_json(ctx.out / DATA_SUMMARY, summary)
    from btsee.plots import sample_grid

    sample_grid(splits.train.images, splits.train.labels, splits.classes, ctx.out / "data/samples.png")
    update_report(ctx.out, {"name": ctx.config.name, "dataset": d.dataset,
                            "data": {"sizes": summary["sizes"], "shape": summary["shape"],
                                     "classes": len(splits.classes)},
                            "plots": {"samples": "data/samples.png"}})
    ctx.log(f"  {d.dataset}: " + ", ".join(f"{k} {v}" for k, v in summary["sizes"].items())
            + f" images of {summary['shape']}")
    return ctx


def step_backbone(ctx: Context) -> Context:
    """Trains the quantized backbone (checkpoint each epoch; --resume continues)."""
    splits = load_splits(ctx)
    spec = model_spec(ctx)
    torch.manual_seed(ctx.config.train.seed)
    model = build_backbone(spec)
    scaling = input_scaling(ctx)
    step = STEPS_BY_NAME["backbone"]
    history = train(model, splits.train, splits.val, ctx.config.train, scaling, ctx.env,
                    ctx.out / BACKBONE_CHECKPOINT, fingerprint(step, ctx), resume=ctx.resume,
                    log=ctx.log)
    if not ctx.env.is_main:
        return ctx
    plain = build_backbone(spec)  # DDP swapped in cross-process batch norms; same state keys
    plain.load_state_dict(model.state_dict())
    plain.eval()
    save_backbone(ctx.out / BACKBONE_FILE, plain)
    atomic_write_json(ctx.out / BACKBONE_HISTORY, history)
    from btsee.plots import training_curves

    training_curves(history, ctx.out / "backbone/training.png")
    ctx.cache["backbone"] = plain
    test_acc = accuracy(plain, splits.test, scaling)
    val_acc = accuracy(plain, splits.val, scaling)
    macs = plain.segment_macs()
    m = ctx.config.model
    update_report(ctx.out, {
        "model": {"name": m.name, "width": m.width, "channels": list(m.channels) if m.channels else None,
                  "exit_points": plain.exit_points, "segment_macs": macs, "macs": sum(macs.values())},
        "bits": {"weight": m.weight_bits, "act": m.act_bits, "input": m.input_bits},
        "accuracy": {"backbone": test_acc, "backbone_val": val_acc},
        "training": {"epochs": len(history), "seconds": round(sum(h["seconds"] for h in history), 1)},
        "plots": {"training": "backbone/training.png"},
    })
    ctx.log(f"  backbone test accuracy {test_acc:.4f} (validation {val_acc:.4f}), "
            f"{sum(macs.values()):,} MACs per image")
    return ctx


def _mirror(cls, section):
    """An instance of `cls` (a qat/calib dataclass that cannot import the config) filled
    from the config section's fields of the same names."""
    return cls(**{f.name: getattr(section, f.name) for f in fields(cls)})


def policy(ctx: Context) -> CalibrationPolicy:
    return _mirror(CalibrationPolicy, ctx.config.calibration)


def head_training(ctx: Context) -> HeadTraining:
    return _mirror(HeadTraining, ctx.config.exits)


def head_specs(ctx: Context, model: Backbone, points: list[str], conv_channels: list[int]
               ) -> list[HeadSpec]:
    """One head spec per point; an error names a head over the MAC budget."""
    e = ctx.config.exits
    shapes = model.exit_point_shapes()
    unknown = [p for p in points if p not in shapes]
    if unknown:
        raise ConfigError(f"exits.points: {unknown} are not exit points of this "
                          f"{model.spec.name}; it has {model.exit_points}")
    order = [model.exit_points.index(p) for p in points]
    if order != sorted(order):
        raise ConfigError(f"exits.points: {points} are not in backbone order {model.exit_points}")
    total = sum(model.segment_macs().values())
    specs = []
    for p in points:
        spec = HeadSpec(shapes[p], model.spec.num_classes, e.reduce_channels, tuple(conv_channels),
                        model.spec.weight_bits, model.spec.act_bits)
        macs = ExitHead(spec).macs()
        if macs > e.max_head_mac_fraction * total:
            raise ConfigError(f"exits: the head at {p} costs {macs:,} MACs, "
                              f"{macs / total:.1%} of the backbone, over exits.max_head_mac_fraction "
                              f"{e.max_head_mac_fraction:.0%}; lower exits.reduce_channels or conv_channels")
        specs.append(spec)
    return specs


def split_data(ctx: Context, points: list[str]) -> dict[str, SplitData]:
    """Cached exit-point features, backbone logits and labels of train/val/test."""
    key = ("split_data", tuple(points))
    if key not in ctx.cache:
        splits, model, scaling = load_splits(ctx), backbone(ctx), input_scaling(ctx)
        out = {}
        for name in ("train", "val", "test"):
            part = getattr(splits, name)
            bar = lambda it, name=name: tqdm(it, desc=f"features {name}", disable=None,  # noqa: E731
                                             leave=False, unit="batch")
            feats, logits = build_cache(model, part, points, scaling, progress=bar)
            out[name] = SplitData(feats, logits, part.labels)
        ctx.cache[key] = out
    return ctx.cache[key]


def step_exits(ctx: Context) -> Context:
    """Trains the exit heads on cached features (BTS-EE or joint), calibrating as it goes."""
    e = ctx.config.exits
    model = backbone(ctx)
    specs = head_specs(ctx, model, e.points, e.conv_channels)
    t0 = time.time()
    data = split_data(ctx, e.points)
    cache_seconds = time.time() - t0
    anchor = class_precision(predicted_class(data["val"].backbone_logits), data["val"].labels,
                             model.spec.num_classes)
    t0 = time.time()
    bar = lambda it, desc: tqdm(it, desc=desc, disable=None, leave=False, unit="batch")  # noqa: E731
    fitted = fit_exits(e.points, specs, data["train"], data["val"], policy(ctx), anchor,
                       head_training(ctx), progress=bar)
    head_seconds = time.time() - t0
    atomic_torch_save(ctx.out / HEADS_FILE, {
        "points": e.points, "specs": [asdict(s) for s in specs],
        "state_dicts": [h.state_dict() for h in fitted.heads]})
    arrays = {"classes": np.arange(model.spec.num_classes)}
    integer = has_integer_form(model)
    if integer:
        from hw.export import classifier_scale, logit_scale

        arrays["backbone_scale"] = np.float64(classifier_scale(model))
        arrays["head_scales"] = np.array([logit_scale(h) for h in fitted.heads], np.float64)
    for split in ("val", "test"):
        arrays[f"{split}_labels"] = data[split].labels
        arrays[f"{split}_backbone"] = data[split].backbone_logits
        for k, (p, h) in enumerate(zip(e.points, fitted.heads)):
            arrays[f"{split}_head{k}"] = head_logits(h, data[split].features[p])
        if integer:  # what the integer dataflow computes: logits / scale, checked to be integers
            from hw.export import integer_codes

            arrays[f"{split}_backbone_int"] = integer_codes(
                arrays[f"{split}_backbone"], float(arrays["backbone_scale"]), f"{split} backbone logits")
            for k in range(len(e.points)):
                arrays[f"{split}_head{k}_int"] = integer_codes(
                    arrays[f"{split}_head{k}"], float(arrays["head_scales"][k]), f"{split} head {k} logits")
    atomic_write(ctx.out / LOGITS_FILE, lambda tmp: np.savez(tmp.open("wb"), **arrays))
    head_macs = [h.macs() for h in fitted.heads]
    total = sum(model.segment_macs().values())
    report = read_report(ctx.out)
    backbone_seconds = report.get("training", {}).get("seconds")
    ctx.log(f"  heads at {e.points}: {[f'{m / total:.1%}' for m in head_macs]} of the backbone's "
            f"MACs; trained in {head_seconds:.0f} s on features cached in {cache_seconds:.0f} s "
            f"({sum(f.nbytes for f in data['train'].features.values()) / 2**20:.0f} MiB for train)")
    update_report(ctx.out, {"exits": {
        "points": e.points, "method": e.method, "target": e.target,
        "soft_weights": e.soft_weights, "distill_temperature": e.distill_temperature,
        "head_macs": head_macs, "head_mac_fraction": [m / total for m in head_macs],
        "train_samples_per_head": fitted.train_sizes,
        "head_training_seconds": round(head_seconds, 1), "feature_cache_seconds": round(cache_seconds, 1),
        "head_over_backbone_training_time": (head_seconds / backbone_seconds) if backbone_seconds else None,
    }})
    return ctx


def has_integer_form(model: Backbone) -> bool:
    """Whether the model's logits are integers times a scale (quantized, 8-bit input)."""
    spec = model.spec
    return spec.input_bits == 8 and spec.weight_bits is not None and spec.act_bits is not None


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
    with np.load(out / LOGITS_FILE) as z:
        k = sum(1 for name in z.files if name.startswith(f"{split}_head") and not name.endswith("_int"))
        if "head_scales" in z.files:
            return SplitLogits([z[f"{split}_head{i}_int"] for i in range(k)], z[f"{split}_backbone_int"],
                               z[f"{split}_labels"], [float(v) for v in z["head_scales"]],
                               float(z["backbone_scale"]))
        return SplitLogits([z[f"{split}_head{i}"] for i in range(k)], z[f"{split}_backbone"],
                           z[f"{split}_labels"], None, None)


def model_files(out: Path) -> tuple[Path, Path]:
    """The files whose hash identifies the trained multi-exit model."""
    return out / BACKBONE_FILE, out / HEADS_FILE


def step_calibrate(ctx: Context) -> Context:
    """Per-class CPM (or global) thresholds of every exit, in sequence, on the validation
    split; in the integer domain of each head's logits when the model has one."""
    from hw.thresholds import integer_thresholds, make_artifact, model_hash

    lg = load_logits(ctx.out, "val")
    pol = policy(ctx)
    heads, final = lg.for_score(pol.score)
    k = final.shape[1]
    anchor = class_precision(predicted_class(final), lg.labels, k)
    integer = lg.integer and pol.score == "margin"
    if integer and pol.policy == "global":
        # a global threshold is in float score units: calibrate there, then take the least
        # integer margin m with m * scale >= t for each exit (exact; tested)
        floats = [z * s for z, s in zip(lg.heads, lg.head_scales)]
        cals = calibrate_in_sequence(floats, lg.labels, anchor, pol)
        for c, s in zip(cals, lg.head_scales):
            c.thresholds = np.array([np.inf if t is None else t for t in integer_thresholds(c.thresholds, s)],
                                    np.float64)
    else:
        cals = calibrate_in_sequence(heads, lg.labels, anchor, pol)
    points = ctx.config.exits.points
    exits = []
    for i, (p, c) in enumerate(zip(points, cals)):
        entry = {"point": p, "score": pol.score}
        if integer:  # CPM thresholds on integer margins are observed margins: integers
            entry["scale"] = lg.head_scales[i]
            entry["thresholds"] = [None if not np.isfinite(t) else int(t) for t in c.thresholds]
            entry["float_thresholds"] = [None if t is None else t * lg.head_scales[i] for t in entry["thresholds"]]
        else:
            entry.update(scale=None, thresholds=None,
                         float_thresholds=[None if not np.isfinite(t) else float(t) for t in c.thresholds])
        entry.update(bar=c.to_dict()["bar"], support=c.to_dict()["support"])
        exits.append(entry)
    doc = make_artifact(model_hash(*model_files(ctx.out)), k, exits)
    doc.update(policy=asdict(pol), points=points, anchor=[None if np.isnan(a) else a for a in anchor])
    atomic_write_json(ctx.out / THRESHOLDS_FILE, doc)
    never = [int(np.sum(~np.isfinite(c.thresholds))) for c in cals]
    ctx.log(f"  {pol.policy} thresholds for {len(cals)} exits "
            f"({'integer' if integer else 'float'} {pol.score} scores); classes that never exit: {never}")
    update_report(ctx.out, {"calibration": {"policy": pol.policy, "score": pol.score,
                                            "margin": pol.margin, "margin_mode": pol.margin_mode,
                                            "integer_thresholds": integer,
                                            "classes_never_exiting": never}})
    return ctx


def read_thresholds(out: Path) -> list[np.ndarray]:
    """Per exit (K,) float64 thresholds in the domain `SplitLogits.for_score` gives: the
    integer thresholds when the artifact has them (inf = never exits)."""
    doc = json.loads((out / THRESHOLDS_FILE).read_text())
    return [np.array([np.inf if t is None else t for t in (e["thresholds"] if e["thresholds"] is not None
                                                           else e["float_thresholds"])], np.float64)
            for e in doc["exits"]]


def cascade_costs(report: dict, points: list[str]) -> Costs:
    """MAC costs of a cascade with heads at `points`, from the report's model and exits keys."""
    seg = report["model"]["segment_macs"]
    names = list(seg)
    to_exit = [sum(seg[n] for n in names[:names.index(p) + 1]) for p in points]
    return Costs(sum(seg.values()), tuple(to_exit), tuple(report["exits"]["head_macs"]))


def step_evaluate(ctx: Context) -> Context:
    """Test accuracy, exit fractions and MAC fraction of the calibrated cascade, and the oracle."""
    lg = load_logits(ctx.out, "test")
    score = ctx.config.calibration.score
    heads, final = lg.for_score(score)
    labels = lg.labels
    report = read_report(ctx.out)
    points = ctx.config.exits.points
    costs = cascade_costs(report, points)
    k = final.shape[1]
    exit_at, pred = cascade_from_logits(heads, read_thresholds(ctx.out), final, score)
    result = summarize(exit_at, pred, labels, costs, k)
    bound = oracle([predicted_class(z) for z in heads], predicted_class(final), labels, costs, k)
    backbone_acc = float((predicted_class(final) == labels).mean())
    atomic_write_json(ctx.out / EVALUATION_FILE, {"cascade": result, "oracle": bound,
                                                  "backbone_accuracy": backbone_acc})
    from btsee.plots import exits_by_class

    names = json.loads((ctx.out / DATA_SUMMARY).read_text())["classes"]
    exits_by_class(np.asarray(result["exit_fraction_by_class"]), points, names,
                   ctx.out / "evaluate/exits_by_class.png")
    ctx.log(f"  early-exit test accuracy {result['accuracy']:.4f} (backbone {backbone_acc:.4f}), "
            f"MAC fraction {result['mac_fraction']:.3f}, exits {np.round(result['exit_fraction'], 3).tolist()}; "
            f"oracle: {bound['mac_fraction']:.3f} at {bound['accuracy']:.4f}")
    update_report(ctx.out, {
        "accuracy": {"early_exit": result["accuracy"]},
        "exit_fraction": result["exit_fraction"], "mac_fraction": result["mac_fraction"],
        "oracle": {"accuracy": bound["accuracy"], "mac_fraction": bound["mac_fraction"],
                   "exit_fraction": bound["exit_fraction"]},
        "plots": {"exits_by_class": "evaluate/exits_by_class.png"}})
    return ctx


def step_export(ctx: Context) -> Context:
    """One cleaned QONNX graph per backbone segment and exit head, checked against PyTorch."""
    from hw.export import cascade_segments, check_segments, export_segment, torch_codes
    from qat.heads import load_heads

    points, heads = load_heads(ctx.out / HEADS_FILE)
    segments = cascade_segments(backbone(ctx), heads, points)
    pixels = load_splits(ctx).test.images[:EXPORT_CHECK_IMAGES]
    codes = torch_codes(segments, pixels[:1])
    paths, entries = {}, []
    for seg in segments:
        rel = f"export/{seg.name}.onnx"
        paths[seg.name] = export_segment(seg, torch.from_numpy(codes[seg.source]), ctx.out / rel)
        entries.append({"name": seg.name, "kind": seg.kind, "file": rel, "source": seg.source,
                        "input_type": seg.input_type, "output_scale": seg.output_scale})
    check = check_segments(segments, paths, pixels)
    atomic_write_json(ctx.out / EXPORT_MANIFEST, {"points": points, "segments": entries,
                                                  "qonnx_vs_brevitas": check})
    ctx.log(f"  {len(segments)} QONNX graphs in {ctx.out / 'export'}; qonnx vs Brevitas on "
            f"{check['checked']} test images: {check['mismatches']} with any integer output differing")
    update_report(ctx.out, {"export": {"segments": [e["name"] for e in entries],
                                       "qonnx_vs_brevitas": {"checked": check["checked"],
                                                             "mismatches": check["mismatches"]}}})
    return ctx


def step_dataflow(ctx: Context) -> Context:
    """Each exported segment through finn-plus to HW layers, checked to leave no compute in
    software, and FINN's estimate-only build of each for the configured board."""
    from hw.dataflow import (check_hw_only, convert_to_hw, load_qonnx, qonnx_to_finn, software_nodes,
                             streamline)
    from hw.finn_estimate import estimate_segment

    h = ctx.config.hardware
    board = load_board(h.board)
    manifest = json.loads((ctx.out / EXPORT_MANIFEST).read_text())
    entries, totals = [], {"LUT": 0.0, "BRAM18": 0.0, "DSP": 0.0}
    per_segment = {}
    for seg in tqdm(manifest["segments"], desc="dataflow", unit="segment", disable=None, leave=False):
        path = ctx.out / seg["file"]
        model = load_qonnx(path, seg["input_type"])
        hw = convert_to_hw(streamline(qonnx_to_finn(model, seg["input_type"]), seg["input_type"]),
                           seg["input_type"])
        check_hw_only(hw, str(path))
        rel = f"dataflow/{seg['name']}.onnx"
        atomic_write(ctx.out / rel, lambda tmp: hw.save(str(tmp)))
        est = estimate_segment(path, seg["input_type"], ctx.out / "dataflow" / "estimates" / seg["name"],
                               board=board.finn_board, clock_period_ns=h.clock_period_ns, target_fps=h.target_fps,
                               mvau_wwidth_max=h.mvau_wwidth_max)
        ops: dict[str, int] = {}
        for n in hw.graph.node:
            ops[n.op_type] = ops.get(n.op_type, 0) + 1
        est_doc = est.to_dict()
        est_doc["report_dir"] = str(Path(est.report_dir).relative_to(ctx.out))
        entries.append(dict(seg, qonnx_file=seg["file"], hw_file=rel, nodes=ops,
                            software=[f"{n.name} ({n.op_type})" for n in software_nodes(hw)],
                            estimate=est_doc))
        for key, value in (("LUT", est.lut), ("BRAM18", est.bram18), ("DSP", est.dsp)):
            totals[key] += value
        per_segment[seg["name"]] = {"LUT": est.lut, "BRAM18": est.bram18, "DSP": est.dsp,
                                    "cycles_per_frame": est.cycles_per_frame, "target_met": est.target_met}
        ctx.log(f"  {seg['name']:15s} " + " ".join(f"{k}x{v}" for k, v in ops.items())
                + f" | {est.lut:,.0f} LUT, {est.bram18:g} BRAM18, {est.dsp:g} DSP, "
                f"{est.cycles_per_frame:,} cycles/frame{'' if est.target_met else ' (target missed)'}")
    atomic_write_json(ctx.out / DATAFLOW_MANIFEST, {"points": manifest["points"], "segments": entries})
    resources = dict(totals, source=RESOURCES_SOURCE, board=board.name, part=board.part,
                     board_resources=board.resources, clock_mhz=1000.0 / h.clock_period_ns,
                     target_fps=h.target_fps, per_segment=per_segment)
    ctx.log(f"  total {totals['LUT']:,.0f} LUT, {totals['BRAM18']:g} BRAM18, {totals['DSP']:g} DSP "
            f"(FINN estimates, lower bounds) of {board.resources.get('LUT', 0):,} LUT and "
            f"{board.resources.get('BRAM18', 0)} BRAM18 on {board.name}")
    from btsee.plots import resources_by_segment

    resources_by_segment(per_segment, board.resources.get("LUT"), ctx.out / "dataflow/resources.png")
    update_report(ctx.out, {"resources": resources, "plots": {"resources": "dataflow/resources.png"}})
    return ctx


def step_simulate(ctx: Context) -> Context:
    """The golden simulator on the test split (accuracy and MAC fraction against the
    evaluate step's), against Brevitas on every test image, and the chain golden = qonnx =
    FINN on the first hardware.chain_images test images."""
    from btsee.simulate import simulate_run

    summary = simulate_run(ctx)
    atomic_write_json(ctx.out / SIMULATION_FILE, summary)
    agreement = dict(summary["brevitas_agreement"])
    agreement["mismatches"] = agreement["mismatches"][:20]  # all of them are in simulation.json
    update_report(ctx.out, {"bit_exact": summary["bit_exact"], "golden": summary["golden"],
                            "brevitas_agreement": agreement})
    return ctx


STEPS: list[Step] = [
    Step("data", step_data, "load the data set and cut the seeded splits", ("data",),
         outputs=(SPLIT_FILE, DATA_SUMMARY)),
    Step("backbone", step_backbone, "train the quantized backbone", ("data", "model", "train"),
         inputs=(SPLIT_FILE, DATA_SUMMARY), outputs=(BACKBONE_FILE, BACKBONE_HISTORY),
         all_ranks=True),
    Step("exits", step_exits, "train the exit heads on cached backbone features",
         ("data", "model", "train", "exits", "calibration"),
         inputs=(SPLIT_FILE, BACKBONE_FILE), outputs=(HEADS_FILE, LOGITS_FILE)),
    Step("calibrate", step_calibrate, "calibrate the exit thresholds on the validation split",
         ("calibration",), inputs=(LOGITS_FILE, BACKBONE_FILE, HEADS_FILE), outputs=(THRESHOLDS_FILE,)),
    Step("evaluate", step_evaluate, "measure the calibrated cascade on the test split",
         ("exits", "calibration"), inputs=(LOGITS_FILE, THRESHOLDS_FILE, BACKBONE_FILE),
         outputs=(EVALUATION_FILE,)),
    Step("export", step_export, "export each segment and head to QONNX and check it",
         ("data",), inputs=(SPLIT_FILE, BACKBONE_FILE, HEADS_FILE), outputs=(EXPORT_MANIFEST,)),
    Step("dataflow", step_dataflow, "convert each segment to FINN HW layers and estimate its resources",
         ("hardware",), inputs=(EXPORT_MANIFEST,), outputs=(DATAFLOW_MANIFEST,)),
    Step("simulate", step_simulate, "golden simulator vs evaluate, Brevitas, qonnx and FINN",
         ("calibration", "hardware"),
         inputs=(DATAFLOW_MANIFEST, THRESHOLDS_FILE, LOGITS_FILE, SPLIT_FILE, EVALUATION_FILE),
         outputs=(SIMULATION_FILE,)),
]
STEPS_BY_NAME = {s.name: s for s in STEPS}
