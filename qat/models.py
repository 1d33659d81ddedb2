"""Brevitas quantized backbones with named exit points and per-segment MAC counts.

Every backbone is an ordered list of *segments* (``model.segments``): the input of
segment k is the output of segment k-1, the last segment is the classifier. The exit
points are the outputs of all segments but the last, named after the segment; these
are the places where exit heads attach and where the hardware is cut (docs/design.md §7).

Inputs are images as float pixel/255 in [0, 1], shape (N, C, H, W); the 8-bit input
quantizer with scale 1/255 makes them exact integers again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn

from qat import quant
from qat.macs import count_macs
from qat.topology import CLASSIFIER, CNV_BLOCKS, RESNET_STAGES, input_size_problem, segment_names


@dataclass(frozen=True)
class ModelSpec:
    """What a backbone is built from (mirrors the `model` section of the config)."""

    name: str = "cnv"
    width: float = 1.0
    channels: tuple[int, ...] | None = None
    weight_bits: int | None = 4
    act_bits: int | None = 4
    input_bits: int | None = 8
    in_channels: int = 1
    num_classes: int = 10
    image_size: int = 32


class Backbone(nn.Module):
    """A chain of named segments behind an input quantizer."""

    def __init__(self, segments: Sequence[tuple[str, nn.Module]], input_bits: int | None,
                 spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.input_quant = quant.input_quant(input_bits)
        self.segments = nn.ModuleDict(dict(segments))

    @property
    def exit_points(self) -> list[str]:
        """Names of the points where exit heads may attach (every segment output but the last)."""
        return list(self.segments.keys())[:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, classes)
        x = self.input_quant(x)
        for seg in self.segments.values():
            x = seg(x)
        return x

    def forward_with_exits(self, x: torch.Tensor, points: Sequence[str] | None = None
                           ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Returns ({exit point: features}, logits) for the named points (all by default)."""
        wanted = set(self.exit_points if points is None else points)
        unknown = wanted - set(self.exit_points)
        if unknown:
            raise KeyError(f"unknown exit point(s) {sorted(unknown)}; "
                           f"this {self.spec.name} has {self.exit_points}")
        feats = {}
        x = self.input_quant(x)
        for name, seg in self.segments.items():
            x = seg(x)
            if name in wanted:
                feats[name] = x
        return feats, x

    def example_input(self) -> torch.Tensor:
        s = self.spec
        return torch.rand(1, s.in_channels, s.image_size, s.image_size)

    def segment_macs(self) -> dict[str, int]:
        """MACs per sample of each segment, counted by hooks on the layers."""
        macs = {}
        x = self.input_quant(self.example_input())
        with torch.no_grad():
            for name, seg in self.segments.items():
                macs[name] = count_macs(seg, x)
                was = seg.training
                seg.eval()
                x = seg(x)
                seg.train(was)
        return macs

    def exit_point_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample feature shape (C, H, W) at each exit point."""
        was = self.training
        self.eval()
        with torch.no_grad():
            feats, _ = self.forward_with_exits(self.example_input())
        self.train(was)
        return {k: tuple(v.shape[1:]) for k, v in feats.items()}


def _conv_bn_act(cin: int, cout: int, spec: ModelSpec, stride: int = 1, padding: int = 0
                 ) -> list[nn.Module]:
    return [quant.conv2d(cin, cout, 3, spec.weight_bits, stride=stride, padding=padding),
            nn.BatchNorm2d(cout), quant.relu(spec.act_bits)]


def _scaled(base: Sequence[int], spec: ModelSpec) -> list[int]:
    if spec.channels is not None:
        if len(spec.channels) != len(base):
            raise ValueError(f"model.channels for {spec.name} needs {len(base)} entries "
                             f"(like {list(base)}), got {list(spec.channels)}")
        return [int(c) for c in spec.channels]
    return [max(1, int(round(c * spec.width))) for c in base]


# FINN's CNV: six unpadded 3x3 convolutions in three stages (pool after the 2nd and 4th),
# then two fully connected layers; on 32x32 inputs the last conv sees 3x3 and outputs 1x1.
CNV_BASE = (64, 64, 128, 128, 256, 256, 512, 512)


def cnv(spec: ModelSpec) -> Backbone:
    """FINN's CNV topology with a width multiplier; one segment per conv block.

    `model.channels` overrides the eight widths (six convs, two fully connected layers).
    """
    problem = input_size_problem("cnv", spec.image_size)
    if problem:
        raise ValueError(problem)
    c = _scaled(CNV_BASE, spec)
    cin = spec.in_channels
    names = segment_names("cnv")
    segs: list[tuple[str, nn.Module]] = []
    for i in range(CNV_BLOCKS):
        layers = _conv_bn_act(cin, c[i], spec)
        if i in (1, 3):
            layers.append(nn.MaxPool2d(2))
        segs.append((names[i], nn.Sequential(*layers)))
        cin = c[i]
    classifier = nn.Sequential(
        nn.Flatten(),
        quant.linear(c[5], c[6], spec.weight_bits), nn.BatchNorm1d(c[6]), quant.relu(spec.act_bits),
        quant.linear(c[6], c[7], spec.weight_bits), nn.BatchNorm1d(c[7]), quant.relu(spec.act_bits),
        quant.linear(c[7], spec.num_classes, spec.weight_bits),
    )
    segs.append((CLASSIFIER, classifier))
    return Backbone(segs, spec.input_bits, spec)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs, a shortcut (1x1 conv when the shape changes), add, act.

    With quantized activations both inputs of the add pass through one shared signed
    quantizer (`quant.residual_quant`), so the add sums integer codes of one scale: the
    block has an exact integer form (docs/design.md §7).
    """

    def __init__(self, cin: int, cout: int, stride: int, spec: ModelSpec):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn_act(cin, cout, spec, stride=stride, padding=1),
            quant.conv2d(cout, cout, 3, spec.weight_bits, padding=1), nn.BatchNorm2d(cout))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                quant.conv2d(cin, cout, 1, spec.weight_bits, stride=stride), nn.BatchNorm2d(cout))
        self.add_quant = quant.residual_quant(spec.act_bits)
        self.act = quant.relu(spec.act_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.add_quant(self.body(x)) + self.add_quant(self.shortcut(x)))


def _resnet(spec: ModelSpec, base: Sequence[int], blocks_per_stage: int) -> Backbone:
    problem = input_size_problem(spec.name, spec.image_size)
    if problem:
        raise ValueError(problem)
    widths = _scaled(base, spec)
    names = segment_names(spec.name)
    if len(widths) != RESNET_STAGES[spec.name]:
        raise ValueError(f"{spec.name}: {len(widths)} stage widths for {RESNET_STAGES[spec.name]} stages")
    stem, *stages = names[:-1]
    segs: list[tuple[str, nn.Module]] = [(stem, nn.Sequential(*_conv_bn_act(spec.in_channels, widths[0], spec,
                                                                            padding=1)))]
    cin = widths[0]
    for s, w in enumerate(widths):
        blocks: list[nn.Module] = []
        for b in range(blocks_per_stage):
            stride = 2 if (s > 0 and b == 0) else 1
            blocks.append(BasicBlock(cin, w, stride, spec))
            cin = w
        segs.append((stages[s], nn.Sequential(*blocks)))
    segs.append((CLASSIFIER, nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        quant.linear(cin, spec.num_classes, spec.weight_bits))))
    return Backbone(segs, spec.input_bits, spec)


def resnet8(spec: ModelSpec) -> Backbone:
    """ResNet-8 (MLPerf Tiny): 3x3 stem, three stages of one basic block (16, 32, 64)."""
    return _resnet(spec, (16, 32, 64), 1)


def resnet18(spec: ModelSpec) -> Backbone:
    """ResNet-18 with the CIFAR stem (3x3 conv, no max pool): four stages of two blocks."""
    return _resnet(spec, (64, 128, 256, 512), 2)


BACKBONES = {"cnv": cnv, "resnet8": resnet8, "resnet18": resnet18}


def build_backbone(spec: ModelSpec) -> Backbone:
    """Builds the backbone `spec.name` (one of BACKBONES) with its bit widths."""
    if spec.name not in BACKBONES:
        raise ValueError(f"model.name: unknown backbone {spec.name!r}; choose one of {sorted(BACKBONES)}")
    quant.check_bits(spec.weight_bits, "model.weight_bits")
    quant.check_bits(spec.act_bits, "model.act_bits")
    return BACKBONES[spec.name](spec)


def save_backbone(path, model: Backbone) -> None:
    """Writes the spec and weights atomically (loadable with weights_only=True)."""
    from dataclasses import asdict

    from qat.atomic import atomic_torch_save

    spec = asdict(model.spec)
    spec["channels"] = list(spec["channels"]) if spec["channels"] is not None else None
    atomic_torch_save(path, {"spec": spec, "state_dict": model.state_dict()})


def load_backbone(path) -> Backbone:
    """The backbone saved by `save_backbone`, in eval mode. A damaged file, a spec that
    builds no backbone, or weights missing, misshapen or non-finite are an ArtifactError
    naming the file and the tensor (`qat.saved`)."""
    from calib.errors import ArtifactError
    from qat.saved import build_from_spec, load_torch_file, load_weights

    state = load_torch_file(path, ("spec", "state_dict"))
    spec = build_from_spec(ModelSpec, state["spec"], path)
    try:
        model = build_backbone(spec)
    except ValueError as e:
        raise ArtifactError(f"{path}: spec: {e}") from e
    return load_weights(model, state["state_dict"], path).eval()
