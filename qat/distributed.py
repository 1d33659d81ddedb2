"""One training code path for one CPU, one GPU or `torchrun --nproc_per_node=N` (DDP).

Under torchrun each process takes an equal, contiguous shard of every global batch, so
N processes compute the same gradient as one process on the whole batch. Batch-norm
statistics are reduced across processes by `CrossProcessBatchNorm` (torch's
SyncBatchNorm only runs on GPUs), which makes the N-process run agree with the
1-process run up to floating-point summation order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' takes a GPU when one is usable, else the CPU."""
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch finds no usable GPU")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def init_distributed(device_preference: str = "auto") -> DistEnv:
    """Joins the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistEnv(rank, world, device)


def barrier(env: DistEnv) -> None:
    if env.active:
        dist.barrier()


def collective_tensor(values: list[float], env: DistEnv,
                      dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """`values` as a tensor on `env.device`: NCCL (any CUDA run) takes GPU tensors only,
    so every tensor handed to a collective is made here."""
    return torch.tensor(values, dtype=dtype, device=env.device)


def all_reduce_sum(values: list[float], env: DistEnv) -> list[float]:
    """The element-wise sum of `values` over all processes (unchanged in a single process)."""
    if not env.active:
        return list(values)
    t = collective_tensor(values, env)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_flag(env: DistEnv, flag: bool) -> bool:
    """Rank 0's value of `flag` on every rank."""
    if not env.active:
        return flag
    t = collective_tensor([int(flag)], env, torch.int64)
    dist.broadcast(t, 0)
    return bool(t.item())


class CrossProcessBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics cover the global batch of all processes.

    Works for (N, C) and (N, C, ...) inputs on any backend; outside a process group or
    in eval mode it is plain batch norm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        dims = [d for d in range(x.dim()) if d != 1]
        local_count = torch.tensor([x.numel() / c], dtype=x.dtype, device=x.device)
        stats = torch.cat([x.sum(dims), (x * x).sum(dims), local_count])  # (2C + 1,)
        stats = all_reduce(stats)  # differentiable sum over processes
        count = stats[-1]
        mean = stats[:c] / count  # (C,)
        var = stats[c:2 * c] / count - mean * mean  # biased, as batch norm normalises
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(m * mean.detach())
            self.running_var.mul_(1 - m).add_(m * var.detach() * count / (count - 1))
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replaces every BatchNorm1d/2d in `module` by CrossProcessBatchNorm, keeping its state."""
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            new = CrossProcessBatchNorm(child.num_features, child.eps, child.momentum,
                                        child.affine, child.track_running_stats)
            new.load_state_dict(child.state_dict())
            new.to(child.weight.device)
            setattr(module, name, new)
        else:
            convert_batchnorm(child)
    return module
