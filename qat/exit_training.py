"""Exit-head training on cached features, and the BTS-EE / joint methods.

`bts` (the paper, v1): head k trains on the training samples that heads 0..k-1 do not
exit (hard filtering) and is calibrated on the validation survivors before head k+1
trains. `joint` (the non-boosted baseline): every head trains on all samples; the
heads are then calibrated in sequence. Options from the authors' v2: soft importance
weights instead of hard filtering, and temperature-scaled KL to the backbone's softmax
instead of cross-entropy on its argmax. All methods share `fit_exits`; the filtering
uses exactly the calibrated decisions (`calib.rules.exits`).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from calib.cascade import calibrate_exit
from calib.cpm import Calibration, CalibrationPolicy
from calib.rules import exit_score, exits, predicted_class
from qat.feature_cache import CachedFeatures
from qat.heads import ExitHead, HeadSpec
from qat.train import epoch_generator, learning_rate

METHODS = ("bts", "joint")


@dataclass
class HeadTraining:
    """How heads train (mirrors the config's `exits` section)."""

    method: str = "bts"
    target: str = "backbone"
    """'backbone' (its argmax, the paper's v1) or 'labels' (ground truth)."""
    soft_weights: bool = False
    soft_temperature: float = 1.0
    distill_temperature: float | None = None
    epochs: int = 4
    batch_size: int = 512
    lr: float = 0.005
    seed: int = 0


@dataclass
class SplitData:
    """One split as the heads see it: cached features per point, backbone logits, labels."""

    features: dict[str, CachedFeatures]
    backbone_logits: np.ndarray  # (N, K) float32
    labels: np.ndarray  # (N,) int64


@dataclass
class FittedExits:
    points: list[str]
    heads: list[ExitHead]
    calibrations: list[Calibration]
    train_weights: list[np.ndarray] = field(default_factory=list)
    """(N_train,) the weight each training sample had for each head (0 = not seen)."""

    @property
    def train_sizes(self) -> list[float]:
        """Training samples (or total weight) each head saw."""
        return [float(w.sum()) for w in self.train_weights]


def train_head(head: ExitHead, feats: CachedFeatures, targets: torch.Tensor, weights: torch.Tensor,
               opts: HeadTraining, teacher: torch.Tensor | None = None,
               progress: Callable | None = None) -> list[float]:
    """Trains `head` on the samples with weight > 0; returns the mean loss of each epoch.

    targets (N,) int64; weights (N,) float (0 = not seen); teacher (N, K) backbone logits
    for distillation when `opts.distill_temperature` is set.
    """
    index = torch.nonzero(weights > 0).flatten()
    n = len(index)
    if n == 0:
        return []
    optimizer = torch.optim.AdamW(head.parameters(), lr=opts.lr, weight_decay=0.0)
    steps_per_epoch = max(1, (n + opts.batch_size - 1) // opts.batch_size)
    total = steps_per_epoch * opts.epochs
    losses = []
    head.train()
    for epoch in range(opts.epochs):
        order = index[torch.randperm(n, generator=epoch_generator(opts.seed, epoch))]
        run, seen = 0.0, 0.0
        steps = range(steps_per_epoch)
        for b in (progress(steps, epoch) if progress else steps):
            idx = order[b * opts.batch_size:(b + 1) * opts.batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            for g in optimizer.param_groups:
                g["lr"] = learning_rate(epoch * steps_per_epoch + b, total, 0, opts.lr, "cosine")
            logits = head.forward_pooled(feats.batch(idx))
            w = weights[idx]
            if opts.distill_temperature:
                t = opts.distill_temperature
                per = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(teacher[idx] / t, 1),
                               reduction="none", log_target=True).sum(1) * t * t
            else:
                per = F.cross_entropy(logits, targets[idx], reduction="none")
            loss = (per * w).sum() / w.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            run += float(loss.detach()) * float(w.sum())
            seen += float(w.sum())
        losses.append(run / max(seen, 1e-12))
    head.eval()
    return losses


@torch.no_grad()
def head_logits(head: ExitHead, feats: CachedFeatures, batch_size: int = 4096) -> np.ndarray:
    """(N, K) float32 logits of `head` in eval mode."""
    head.eval()
    out = [head.forward_pooled(feats.batch(slice(i, i + batch_size)))
           for i in range(0, len(feats), batch_size)]
    return torch.cat(out).numpy()


def decisions(logits: np.ndarray, calibration: Calibration, score: str) -> tuple[np.ndarray, np.ndarray]:
    """(exits (N,) bool, predicted class (N,)) of one head under its calibration."""
    pred = predicted_class(logits)
    return exits(exit_score(logits, score), pred, calibration.thresholds), pred


def _soft_exit_probability(logits: np.ndarray, calibration: Calibration, score: str,
                           temperature: float) -> np.ndarray:
    """(N,) a smooth version of the exit decision: sigmoid((score - threshold) / T)."""
    pred = predicted_class(logits)
    gap = exit_score(logits, score) - calibration.thresholds[pred]
    with np.errstate(over="ignore", invalid="ignore"):
        p = 1.0 / (1.0 + np.exp(-gap / temperature))
    return np.nan_to_num(p, nan=0.0)


def fit_exits(points: list[str], specs: list[HeadSpec], train: SplitData, val: SplitData,
              policy: CalibrationPolicy, anchor: np.ndarray, opts: HeadTraining,
              pretrained: dict | None = None, progress: Callable | None = None) -> FittedExits:
    """Trains and calibrates one head per point with `opts.method`.

    `pretrained` maps a key (see `head_key`) to a trained head that can be reused when a
    head would be trained on exactly the same samples (sweeps share first heads)."""
    if opts.method not in METHODS:
        raise ValueError(f"exits.method: choose one of {METHODS}, got {opts.method!r}")
    targets_np = train.labels if opts.target == "labels" else predicted_class(train.backbone_logits)
    targets = torch.from_numpy(targets_np.astype(np.int64))
    teacher = torch.from_numpy(train.backbone_logits) if opts.distill_temperature else None
    weights = np.ones(len(train.labels))  # (N_train,) current training weight of each sample
    val_open = np.ones(len(val.labels), bool)  # (N_val,) validation survivors
    heads, calibrations, used = [], [], []
    for k, (point, spec) in enumerate(zip(points, specs)):
        boosted = opts.method == "bts" and k > 0
        key = head_key(point, spec, opts) if not boosted else None
        w_k = weights.copy() if boosted else np.ones_like(weights)
        if pretrained is not None and key in pretrained:
            head = pretrained[key]
        else:
            torch.manual_seed(opts.seed * 1009 + zlib.crc32(point.encode()) % 1000)
            head = ExitHead(spec)
            bar = ((lambda it, e: progress(it, f"head {k + 1} ({point}) epoch {e + 1}"))
                   if progress else None)
            train_head(head, train.features[point], targets, torch.from_numpy(w_k).float(), opts,
                       teacher, progress=bar)
            if pretrained is not None and key is not None:
                pretrained[key] = head
        used.append(w_k)
        # calibrate on the validation survivors, then drop what this head exits
        cal, v_exit = calibrate_exit(head_logits(head, val.features[point]), val.labels, val_open,
                                     anchor, policy)
        val_open &= ~v_exit
        heads.append(head)
        calibrations.append(cal)
        if opts.method != "bts":
            continue
        t_logits = head_logits(head, train.features[point])
        if opts.soft_weights:
            weights = weights * (1.0 - _soft_exit_probability(t_logits, cal, policy.score,
                                                              opts.soft_temperature))
        else:
            t_exit, _ = decisions(t_logits, cal, policy.score)
            weights = weights * ~t_exit
    return FittedExits(points, heads, calibrations, used)


def head_key(point: str, spec: HeadSpec, opts: HeadTraining) -> tuple:
    """Identifies a head trained on all samples (what joint heads and first bts heads are)."""
    return (point, spec, opts.target, opts.distill_temperature, opts.epochs, opts.batch_size,
            opts.lr, opts.seed)
