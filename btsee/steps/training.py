"""The training steps: `data` (seeded splits), `backbone` (quantization-aware training)
and `exits` (exit heads on the frozen backbone, BTS-EE or joint)."""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch

from btsee.flow import Context
from btsee.report import update_report
from btsee.run_folder import (BACKBONE_CHECKPOINT, BACKBONE_FILE, BACKBONE_HISTORY, BACKBONE_MACS,
                              DATA_SUMMARY, HEAD_MACS, HEADS_FILE, LOGITS_FILE, SPLIT_FILE, read_json)
from btsee.steps.common import (backbone, has_integer_form, head_specs, head_training, input_scaling,
                                load_splits, model_spec, policy, split_data)
from calib.atomic import atomic_write, atomic_write_json
from calib.cpm import class_precision
from calib.progress import progress
from calib.rules import predicted_class
from qat import data as data_mod
from qat.atomic import atomic_torch_save
from qat.exit_training import fit_exits, head_logits
from qat.image_fit import ImageFit
from qat.models import build_backbone, save_backbone
from qat.train import accuracy, train


def step_data(ctx: Context) -> Context:
    """Loads the data set, cuts the seeded train/validation/test split, records it."""
    d = ctx.config.data
    raw = data_mod.load_raw(d.dataset, d.root, d.grayscale, ImageFit(d.image_size, d.image_fit))
    index = data_mod.make_split_indices(raw, d.val_fraction, d.test_fraction, d.seed)
    limits = {"train": d.limit_train, "val": d.limit_val, "test": d.limit_test}
    index = {s: (src, data_mod.limit(idx, limits[s], d.seed)) for s, (src, idx) in index.items()}
    arrays = {}
    for s, (src, idx) in index.items():
        arrays[f"{s}_source"] = np.array(src)
        arrays[f"{s}_index"] = idx
    atomic_write(ctx.out / SPLIT_FILE, lambda tmp: np.savez(tmp.open("wb"), **arrays))
    splits = data_mod.assemble(raw, index)
    ctx.cache["splits"] = splits
    mean, std = data_mod.channel_stats(splits.train.images)
    counts = {s: np.bincount(getattr(splits, s).labels, minlength=len(splits.classes)).tolist()
              for s in ("train", "val", "test")}
    summary = {"dataset": d.dataset, "root": str(d.root or data_mod.default_root(d.dataset)),
               "classes": splits.classes, "shape": list(splits.shape),
               "image_fit": {"size": d.image_size, "method": d.image_fit},
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
            + f" images of {summary['shape']} (data.image_fit: {d.image_fit})")
    return ctx


def step_backbone(ctx: Context) -> Context:
    """Trains the quantized backbone (checkpoint each epoch; --resume continues)."""
    splits = load_splits(ctx)
    spec = model_spec(ctx)
    torch.manual_seed(ctx.config.train.seed)
    model = build_backbone(spec)
    scaling = input_scaling(ctx)
    history = train(model, splits.train, splits.val, ctx.config.train, scaling, ctx.env,
                    ctx.out / BACKBONE_CHECKPOINT, ctx.fingerprint, resume=ctx.resume, log=ctx.log)
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
    atomic_write_json(ctx.out / BACKBONE_MACS, {"segment_macs": macs, "macs": sum(macs.values())})
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
    bar = lambda it, desc: progress(it, desc=desc, leave=False, unit="batch")  # noqa: E731
    fitted = fit_exits(e.points, specs, data["train"], data["val"], policy(ctx), anchor,
                       head_training(ctx), progress=bar)
    head_seconds = time.time() - t0
    atomic_torch_save(ctx.out / HEADS_FILE, {
        "points": e.points, "specs": [asdict(s) for s in specs],
        "state_dicts": [h.state_dict() for h in fitted.heads]})
    arrays = {"classes": np.arange(model.spec.num_classes)}
    integer = has_integer_form(model)
    if integer:
        from hw.export import classifier_scale, integer_codes, logit_scale

        arrays["backbone_scale"] = np.float64(classifier_scale(model))
        arrays["head_scales"] = np.array([logit_scale(h) for h in fitted.heads], np.float64)
    for split in ("val", "test"):
        arrays[f"{split}_labels"] = data[split].labels
        arrays[f"{split}_backbone"] = data[split].backbone_logits
        for k, (p, h) in enumerate(zip(e.points, fitted.heads)):
            arrays[f"{split}_head{k}"] = head_logits(h, data[split].features[p])
        if integer:  # what the integer dataflow computes: logits / scale, checked to be integers
            arrays[f"{split}_backbone_int"] = integer_codes(
                arrays[f"{split}_backbone"], float(arrays["backbone_scale"]), f"{split} backbone logits")
            for k in range(len(e.points)):
                arrays[f"{split}_head{k}_int"] = integer_codes(
                    arrays[f"{split}_head{k}"], float(arrays["head_scales"][k]), f"{split} head {k} logits")
    atomic_write(ctx.out / LOGITS_FILE, lambda tmp: np.savez(tmp.open("wb"), **arrays))
    head_macs = [h.macs() for h in fitted.heads]
    atomic_write_json(ctx.out / HEAD_MACS, {"points": e.points, "head_macs": head_macs})
    total = sum(model.segment_macs().values())
    backbone_seconds = sum(h["seconds"] for h in read_json(ctx.out, BACKBONE_HISTORY))
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
