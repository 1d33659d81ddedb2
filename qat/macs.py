"""MAC counting from the layers themselves (forward hooks on every conv and linear layer)."""
from __future__ import annotations

import torch
import torch.nn as nn


def _layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates of one sample through `module`, given its output."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        per_output = (module.in_channels // module.groups) * kh * kw
        return int(output[0].numel()) * per_output  # output: (N, Cout, Ho, Wo)
    if isinstance(module, nn.Conv1d):
        per_output = (module.in_channels // module.groups) * module.kernel_size[0]
        return int(output[0].numel()) * per_output
    if isinstance(module, nn.Linear):
        return int(output[0].numel()) * module.in_features  # output: (N, ..., Fout)
    return 0


def _as_tensor(out) -> torch.Tensor:
    return out.value if hasattr(out, "value") else out


def count_macs(module: nn.Module, example: torch.Tensor) -> int:
    """MACs per sample of `module(example)`; `example` has a batch dimension (N=1 is enough)."""
    total = 0

    def hook(mod, _inp, out):
        nonlocal total
        total += _layer_macs(mod, _as_tensor(out))

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear))]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(example)
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    return total
