"""The flow's steps, in order. Each step reads and writes files in the run folder.

Steps: data, backbone. (Later steps arrive with their issues; only working steps are
listed.)
"""
from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import torch

from btsee.flow import Context, Step, fingerprint
from btsee.report import update_report
from qat import data as data_mod
from qat.atomic import atomic_write, atomic_write_json
from qat.models import Backbone, ModelSpec, build_backbone, load_backbone, save_backbone
from qat.train import InputScaling, accuracy, train

SPLIT_FILE = "data/split.npz"
DATA_SUMMARY = "data/summary.json"
BACKBONE_FILE = "backbone/model.pt"
BACKBONE_CHECKPOINT = "backbone/checkpoint.pt"
BACKBONE_HISTORY = "backbone/history.json"


# --------------------------------------------------------------------------- helpers

def load_splits(ctx: Context) -> data_mod.Splits:
    """The train/val/test splits recorded by the data step (cached for the invocation)."""
    if "splits" not in ctx.cache:
        d = ctx.config.data
        raw = data_mod.load_raw(d.dataset, d.root, d.grayscale)
        with np.load(ctx.out / SPLIT_FILE) as z:
            index = {s: (str(z[f"{s}_source"]), z[f"{s}_index"]) for s in ("train", "val", "test")}
        ctx.cache["splits"] = data_mod.assemble(raw, index, d.pad_to_32)
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


STEPS: list[Step] = [
    Step("data", step_data, "load the data set and cut the seeded splits", ("data",),
         outputs=(SPLIT_FILE, DATA_SUMMARY)),
    Step("backbone", step_backbone, "train the quantized backbone", ("data", "model", "train"),
         inputs=(SPLIT_FILE, DATA_SUMMARY), outputs=(BACKBONE_FILE, BACKBONE_HISTORY),
         all_ranks=True),
]
STEPS_BY_NAME = {s.name: s for s in STEPS}
