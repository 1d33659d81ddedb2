"""Lightweight 1D-convolution exit heads (our choice of layout; the exit rule: docs/design.md §6).

    features (N, C, H, W)
    -> row pool MaxPool2d((H, 1))                      (N, C, 1, W)
    -> optional 1x1 QuantConv2d channel reduction + BN + QuantReLU
    -> one or more QuantConv2d (1, 3) + BN + QuantReLU   a 1D conv along the width
    -> MaxPool2d((1, W'))                              (N, C'', 1, 1)
    -> flatten -> QuantLinear (no bias, one positive per-tensor weight scale)

The row pool comes first: it has no parameters, so the feature cache stores its output
(H times smaller) and every later layer works on a 1D signal. 4D tensors throughout,
no reshapes, max pools only: every layer maps to a FINN HW layer. The last layer's
logits are integers times one scale, so the top-2 margin of the float logits orders
samples exactly as the integer margin does.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from qat import quant
from qat.macs import count_macs


@dataclass(frozen=True)
class HeadSpec:
    in_shape: tuple[int, int, int]
    """(C, H, W) of the exit point's features."""
    num_classes: int
    reduce_channels: int | None = 8
    """1x1 reduction to this many channels first; None keeps C."""
    conv_channels: tuple[int, ...] = (16,)
    """Output channels of each (1, 3) convolution."""
    weight_bits: int | None = 4
    act_bits: int | None = 4


class ExitHead(nn.Module):
    def __init__(self, spec: HeadSpec):
        super().__init__()
        self.spec = spec
        c, h, w = spec.in_shape
        self.row_pool = nn.MaxPool2d((h, 1))  # (N, C, H, W) -> (N, C, 1, W)
        layers: list[nn.Module] = []
        if spec.reduce_channels is not None:
            layers += [quant.conv2d(c, spec.reduce_channels, 1, spec.weight_bits),
                       nn.BatchNorm2d(spec.reduce_channels), quant.relu(spec.act_bits)]
            c = spec.reduce_channels
        for cout in spec.conv_channels:
            if w < 3:
                raise ValueError(f"exit head: features of width {w} are too narrow for a (1, 3) conv")
            layers += [quant.conv2d(c, cout, (1, 3), spec.weight_bits),
                       nn.BatchNorm2d(cout), quant.relu(spec.act_bits)]
            c, w = cout, w - 2
        layers += [nn.MaxPool2d((1, w)), nn.Flatten()]  # (N, C)
        self.body = nn.Sequential(*layers)
        self.classifier = quant.linear(c, spec.num_classes, spec.weight_bits, bias=False)

    @property
    def pooled_shape(self) -> tuple[int, int, int]:
        """(C, 1, W): what the row pool makes of one sample's features."""
        c, _h, w = self.spec.in_shape
        return (c, 1, w)

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, 1, W) -> (N, classes)
        return self.classifier(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, classes)
        return self.forward_pooled(self.row_pool(x))

    def macs(self) -> int:
        return count_macs(self, torch.rand(1, *self.spec.in_shape))


def load_heads(path) -> tuple[list[str], list[ExitHead]]:
    """(exit points, heads in eval mode) saved by the exits step (weights_only load). A
    damaged file, a missing field, or weights that do not fit the saved head specs or are
    not finite are an ArtifactError naming the file and the tensor (`qat.saved`)."""
    from calib.errors import ArtifactError
    from qat.saved import build_from_spec, field_of, load_torch_file, load_weights

    state = load_torch_file(path, ("points", "specs", "state_dicts"))
    points = field_of(state, "points", list, path)
    specs, dicts = field_of(state, "specs", list, path), field_of(state, "state_dicts", list, path)
    if not (len(points) == len(specs) == len(dicts)) or not all(isinstance(p, str) for p in points):
        raise ArtifactError(f"{path}: {len(points)} points, {len(specs)} specs and {len(dicts)} state_dicts; "
                            "expected one of each per exit, points as names")
    heads = []
    for i, (spec, sd) in enumerate(zip(specs, dicts)):
        head_spec = build_from_spec(HeadSpec, spec, path, f"specs[{i}]")
        try:
            head = ExitHead(head_spec)
        except (ValueError, TypeError, RuntimeError) as e:
            raise ArtifactError(f"{path}: specs[{i}]: {e}") from e
        heads.append(load_weights(head, sd, path, f"state_dicts[{i}]").eval())
    return list(points), heads
