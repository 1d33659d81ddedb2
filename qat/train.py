"""Backbone training: learning-rate schedule, progress bar, a checkpoint each epoch, resume.

The batch order and augmentation of epoch e are functions of (seed, e) alone, so a run
resumed from the checkpoint of epoch e continues exactly as the uninterrupted run would.
Checkpoints hold only tensors and plain values and are loaded with `weights_only=True`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from calib.errors import ArtifactError, BtseeError
from calib.progress import progress
from qat.atomic import atomic_torch_save
from qat.data import ImageSet
from qat.distributed import DistEnv, all_reduce_sum, convert_batchnorm
from qat.saved import load_weights


class TrainOptions(Protocol):
    """The fields of the config's `train` section that training reads."""

    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    weight_decay: float
    schedule: str
    warmup_epochs: float
    augment: bool
    seed: int
    label_smoothing: float


class CheckpointError(ArtifactError):
    """A checkpoint cannot be used (unreadable, or from another configuration)."""


@dataclass
class InputScaling:
    """uint8 pixels -> network input: pixel/255, then (x - mean)/std if normalising."""

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __call__(self, x_u8: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) uint8 -> float
        x = x_u8.float() / 255.0
        if self.mean is not None:
            c = x.shape[1]
            x = (x - torch.tensor(self.mean).view(1, c, 1, 1)) / torch.tensor(self.std).view(1, c, 1, 1)
        return x


def learning_rate(step: int, total_steps: int, warmup_steps: int, peak: float, schedule: str) -> float:
    """Linear warm-up to `peak`, then constant or cosine decay to zero at `total_steps`."""
    if warmup_steps > 0 and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * peak * (1.0 + math.cos(math.pi * min(1.0, progress)))


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def augment_batch(x: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random horizontal flip and a shift of up to `max_shift` pixels (zero fill), per image."""
    n, _, h, w = x.shape  # (N, C, H, W)
    flip = torch.rand(n, generator=gen) < 0.5
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=gen)
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    p = max_shift
    padded = F.pad(x, (p, p, p, p))  # (N, C, H+2p, W+2p)
    out = torch.empty_like(x)
    for dy in range(-p, p + 1):
        for dx in range(-p, p + 1):
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            if sel.any():
                out[sel] = padded[sel, :, p + dy:p + dy + h, p + dx:p + dx + w]
    return out


def make_optimizer(model: nn.Module, opts: TrainOptions) -> torch.optim.Optimizer:
    if opts.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=opts.lr, momentum=0.9, nesterov=True,
                               weight_decay=opts.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)


@torch.no_grad()
def predict_logits(model: nn.Module, data: ImageSet, scaling: InputScaling,
                   batch_size: int = 512, device: torch.device | None = None) -> torch.Tensor:
    """Logits (N, classes) of `model` in eval mode over the whole set."""
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()
    out = []
    images = torch.from_numpy(data.images)
    for i in range(0, len(data), batch_size):
        out.append(model(scaling(images[i:i + batch_size]).to(device)).float().cpu())
    model.train(was)
    return torch.cat(out) if out else torch.zeros(0)


def accuracy(model: nn.Module, data: ImageSet, scaling: InputScaling,
             device: torch.device | None = None) -> float:
    logits = predict_logits(model, data, scaling, device=device)
    return float((logits.argmax(1).numpy() == data.labels).mean())


VAL_MONITOR_IMAGES = 1000
"""Validation images each epoch's accuracy is measured on (the first ones: the same every
epoch): a curve to watch, not a result. The whole validation split is measured once, after
training (the backbone step's `backbone_val`); eight epochs on all 6,000 took 21 s more."""

CHECKPOINT_FIELDS = ("fingerprint", "model", "optimizer", "history", "epoch")


def load_checkpoint(path: Path) -> dict:
    """A training checkpoint (weights_only load) with all its fields; a damaged file or a
    missing field is a CheckpointError naming the file (`qat.saved`)."""
    from qat.saved import load_torch_file

    try:
        return load_torch_file(path, CHECKPOINT_FIELDS)
    except ArtifactError as e:
        raise CheckpointError(f"{e} (delete it to train from scratch)") from e


def train(model: nn.Module, train_set: ImageSet, val_set: ImageSet, opts: TrainOptions,
          scaling: InputScaling, env: DistEnv, checkpoint: Path, fingerprint: str,
          resume: bool = False, log: Callable[[str], None] = print) -> list[dict]:
    """Trains `model` in place; returns the history (one dict per epoch).

    Every epoch ends with an atomic checkpoint at `checkpoint`; with `resume` a checkpoint
    written for the same `fingerprint` is continued from the epoch after it (one written
    for another fingerprint is ignored, with a message).
    """
    if env.active:  # before the optimizer exists: the swap creates new BN parameters
        convert_batchnorm(model)
    model.to(env.device)
    history: list[dict] = []
    start_epoch = 0
    state = None
    if resume and checkpoint.exists():
        state = load_checkpoint(checkpoint)
        if state.get("fingerprint") != fingerprint:
            log(f"{checkpoint} was written for another configuration or data; training from scratch")
            state = None
    if state is not None:
        # Brevitas replaces some parameters while loading a state dict: build the
        # optimizer only afterwards, or it would step the replaced ones.
        load_weights(model, state["model"], checkpoint, "model")
    optimizer = make_optimizer(model, opts)
    if state is not None:
        try:
            optimizer.load_state_dict(state["optimizer"])
            history = [dict(h) for h in state["history"]]
            start_epoch = int(state["epoch"]) + 1
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"{checkpoint}: optimizer, history or epoch unusable ({type(e).__name__}: "
                                  f"{e}); delete it to train from scratch") from e
        log(f"resuming from {checkpoint} after epoch {start_epoch}")

    net: nn.Module = model
    if env.active:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[env.device] if env.device.type == "cuda" else None)
    n = len(train_set)
    if opts.batch_size % env.world_size:
        raise ValueError(f"train.batch_size {opts.batch_size} is not divisible by the "
                         f"{env.world_size} processes")
    steps_per_epoch = n // opts.batch_size
    if steps_per_epoch == 0:
        raise BtseeError(f"train.batch_size {opts.batch_size} exceeds the {n} training images of the split: "
                         f"lower it, or give more images (data.limit_train, data.val_fraction, data.test_fraction)")
    total = steps_per_epoch * opts.epochs
    warmup = int(round(opts.warmup_epochs * steps_per_epoch))
    shard = opts.batch_size // env.world_size
    lo, hi = env.rank * shard, (env.rank + 1) * shard
    images = torch.from_numpy(train_set.images)
    labels = torch.from_numpy(train_set.labels)
    monitor = val_set.subset(np.arange(min(len(val_set), VAL_MONITOR_IMAGES)))  # each epoch's validation

    for epoch in range(start_epoch, opts.epochs):
        net.train()
        gen = epoch_generator(opts.seed, epoch)
        order = torch.randperm(n, generator=gen)
        t0 = time.time()
        loss_sum, correct, seen = 0.0, 0, 0
        bar = progress(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{opts.epochs}",
                       disable=not env.is_main, leave=False, unit="batch")
        for b in bar:
            idx = order[b * opts.batch_size:(b + 1) * opts.batch_size]  # the global batch
            x = images[idx]
            if opts.augment:
                x = augment_batch(x, gen)
            x, y = scaling(x[lo:hi]).to(env.device), labels[idx][lo:hi].to(env.device)
            lr = learning_rate(epoch * steps_per_epoch + b, total, warmup, opts.lr, opts.schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            logits = net(x)
            loss = F.cross_entropy(logits, y, label_smoothing=opts.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            if b % 20 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", lr=f"{lr:.2e}")
        loss_sum, correct, seen = all_reduce_sum([loss_sum, correct, seen], env)  # over all processes
        record = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
                  "seconds": time.time() - t0}
        if env.is_main:
            record["val_accuracy"] = accuracy(model, monitor, scaling, env.device)
            history.append(record)
            atomic_torch_save(checkpoint, {"epoch": epoch, "model": model.state_dict(),
                                           "optimizer": optimizer.state_dict(),
                                           "history": history, "fingerprint": fingerprint})
            log(f"epoch {epoch + 1}/{opts.epochs}: loss {record['train_loss']:.4f}, "
                f"train acc {record['train_accuracy']:.4f}, val acc {record['val_accuracy']:.4f} "
                f"(first {len(monitor):,}) "
                f"({record['seconds']:.0f} s)")
        else:
            history.append(record)
        if env.active:
            torch.distributed.barrier()
    return history

