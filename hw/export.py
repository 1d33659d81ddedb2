"""Per-segment QONNX export of a calibrated multi-exit model (docs/design.md §7).

The network is cut at its exit points: backbone segment k runs from exit point k-1 (or
the input) to exit point k, the last one to the logits; exit head k reads exit point k.
Each segment is exported on its own with Brevitas' `export_qonnx`, behind a plain
`Mul(scale)` so that its graph input can be typed as the previous activation's integer
code (UINT8 pixels for the first segment, UINT<act_bits> codes after), then cleaned with
qonnx. `check_segments` executes every exported graph with qonnx on real images, chained
from integer codes, and compares its integer outputs with the PyTorch modules exactly.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from calib.errors import BtseeError
from qat.heads import ExitHead
from qat.models import Backbone


class ExportError(BtseeError):
    """A model or tensor that has no integer form to export; the message says which."""


class Scaled(nn.Module):
    """Integer codes -> `Mul(scale)` -> body; exported as a plain Mul in front of the body."""

    def __init__(self, scale: float, body: nn.Module):
        super().__init__()
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * self.scale)


@dataclass
class Segment:
    name: str
    kind: str  # "backbone" or "head"
    module: Scaled
    source: str  # the segment whose output codes feed this one ("input" for the first)
    input_type: str  # qonnx DataType name of the input codes
    output_scale: float  # output = integer code * output_scale


def _last_act_scale(module: nn.Module, input_scale: float | None = None) -> float:
    """Scale of the last quantized activation in `module` (its output's, for a segment);
    `input_scale` when it has none (a classifier fed by the previous segment)."""
    scale = input_scale
    for m in module.modules():
        q = getattr(m, "act_quant", None)
        if q is not None and getattr(q, "is_quant_enabled", False):
            scale = float(q.scale().detach().reshape(-1)[0])
    if scale is None:
        raise ExportError(f"{type(module).__name__} has no quantized activation")
    return scale


def logit_scale(module: nn.Module, input_scale: float | None = None) -> float:
    """Scale of the logits: the last linear layer's weight scale x the activation before it
    (`input_scale` when that is the module's input)."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    w = float(linears[-1].quant_weight().scale.detach().reshape(-1)[0])
    return w * _last_act_scale(module, input_scale)


def average_pool_area(model: Backbone) -> int:
    """H x W that the classifier's global average pool (a ResNet's) averages over; 1 when
    it has none. The pool's sum of integer codes is what the dataflow computes (FINN's
    GlobalAccPool); the division by the area goes into the logits' scale."""
    pools = [m for m in model.segments[list(model.segments)[-1]].modules()
             if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AvgPool2d))]
    if not pools:
        return 1
    if len(pools) > 1 or not (isinstance(pools[0], nn.AdaptiveAvgPool2d) and pools[0].output_size in (1, (1, 1))):
        raise ExportError("the classifier's pooling has no integer form: only one global average pool is mapped")
    seen: list[int] = []
    hook = pools[0].register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape[-2] * args[0].shape[-1]))
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(model.example_input())
    finally:
        hook.remove()
        model.train(was)
    return int(seen[0])


def cascade_segments(model: Backbone, heads: list[ExitHead], points: list[str]) -> list[Segment]:
    """The backbone cut at `points`, then one head per point, in execution order."""
    if model.spec.input_bits != 8 or model.spec.act_bits is None:
        raise ExportError("export needs a quantized model (model.input_bits 8, model.act_bits set)")
    names = list(model.segments)
    cuts = [names.index(p) + 1 for p in points] + [len(names)]
    act_type = f"UINT{model.spec.act_bits}"
    out: list[Segment] = []
    start, source, in_scale, in_type = 0, "input", 1.0 / 255.0, "UINT8"
    for k, stop in enumerate(cuts):
        parts = [model.segments[n] for n in names[start:stop]]
        body = nn.Sequential(model.input_quant, *parts) if start == 0 else nn.Sequential(*parts)
        last = stop == len(names)
        name = "backbone_final" if last else f"backbone_{k}"
        scale = logit_scale(body, in_scale) / average_pool_area(model) if last else _last_act_scale(body)
        out.append(Segment(name, "backbone", Scaled(in_scale, body).eval(), source, in_type, scale))
        if not last:
            head = heads[k]
            out.append(Segment(f"head_{k}", "head", Scaled(scale, head).eval(), name, act_type,
                               logit_scale(head)))
        start, source, in_scale, in_type = stop, name, scale, act_type
    return out


#: what float32 evaluation may move a value off its grid, relative to the largest |code|
#: (about 8 float32 epsilons: sums of many terms, a GPU's own summation order)
FLOAT32_SLACK = 1e-6


def integer_codes(values: np.ndarray, scale: float, what: str) -> np.ndarray:
    """Float outputs that are integers times `scale` -> those integers (int64). A value
    further off the grid than float32 evaluation explains (1e-3 of a step, plus
    FLOAT32_SLACK of the largest code: a ResNet's pooled logits reach 10^4 steps) means the
    scale is not the output's: an ExportError naming `what`."""
    q = np.asarray(values, np.float64) / scale
    codes = np.rint(q)
    off = float(np.abs(q - codes).max(initial=0.0))
    if off > 1e-3 + FLOAT32_SLACK * float(np.abs(codes).max(initial=0.0)):
        raise ExportError(f"{what}: values are not integers times the scale {scale!r} "
                          f"(up to {off:.3g} off the grid)")
    return codes.astype(np.int64)


def classifier_scale(model: Backbone) -> float:
    """Scale of the backbone's logits (its last segment's last linear layer)."""
    return logit_scale(model) / average_pool_area(model)


def export_segment(seg: Segment, example: torch.Tensor, path: Path) -> Path:
    """Exports one segment to a cleaned QONNX file at `path` (written atomically)."""
    with warnings.catch_warnings():  # brevitas warns about an optional package it does not need here
        warnings.filterwarnings("ignore", message="fast_hadamard_transform")
        from brevitas.export import export_qonnx
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / "raw.onnx"
        # torch's exporter narrates each stage on stdout; keep the flow's log readable
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            export_qonnx(seg.module, example, export_path=str(raw))
        model = cleanup_model(ModelWrapper(str(raw)))
        model.set_tensor_datatype(model.graph.input[0].name, DataType[seg.input_type])
        clean = Path(tmp) / "clean.onnx"
        model.save(str(clean))
        os.replace(clean, path)
    return path


@torch.no_grad()
def torch_codes(segments: list[Segment], pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Integer output codes of every segment on uint8 `pixels` (N, C, H, W), from PyTorch."""
    codes = {"input": pixels.astype(np.float32)}
    for seg in segments:
        y = seg.module(torch.from_numpy(codes[seg.source])).numpy()
        codes[seg.name] = np.round(y / seg.output_scale).astype(np.float32)
    return codes


def check_segments(segments: list[Segment], paths: dict[str, Path], pixels: np.ndarray) -> dict:
    """qonnx execution of every exported graph against PyTorch on the same integer input
    codes; returns {"checked": images, "mismatches": images with any code differing,
    "per_segment": {name: mismatching images}}."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    ref = torch_codes(segments, pixels)
    bad_images = np.zeros(len(pixels), bool)
    per_segment = {}
    for seg in segments:
        model = ModelWrapper(str(paths[seg.name]))
        iname, oname = model.graph.input[0].name, model.graph.output[0].name
        x = ref[seg.source]
        got = np.concatenate([execute_onnx(model, {iname: x[i:i + 1]})[oname] for i in range(len(x))])
        codes = np.round(got / seg.output_scale)
        differs = (codes != ref[seg.name]).reshape(len(x), -1).any(axis=1)
        per_segment[seg.name] = int(differs.sum())
        bad_images |= differs
    return {"checked": len(pixels), "mismatches": int(bad_images.sum()), "per_segment": per_segment}
