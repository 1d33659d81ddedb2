"""The frozen backbone's features at each exit point, computed once per split.

What is cached is the exit point's feature map after the heads' parameter-free row
pool (`MaxPool2d((H, 1))`, see qat.heads), so (N, C, 1, W) per point. Quantized activations are stored as their integer codes (uint8) and one scale, so the
cache is 4x smaller than float32 and `features()` returns exactly (bit for bit) the
tensor the live backbone produces: code * scale is the same float32 product the
quantizer computes. Features that are not on such a grid (float models) are kept as
float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from qat.data import ImageSet
from qat.models import Backbone
from qat.train import InputScaling


@dataclass
class CachedFeatures:
    """Features of one exit point for one split: uint8 codes and a scale, or float32."""

    codes: torch.Tensor
    """(N, C, 1, W) uint8 codes, or float32 features when `scale` is None."""
    scale: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.codes)

    def batch(self, index) -> torch.Tensor:
        """Float row-pooled features (n, C, 1, W) of the samples `index` (a slice or an index tensor)."""
        x = self.codes[index]
        return x if self.scale is None else x.float() * self.scale

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes.shape[1:])

    @property
    def nbytes(self) -> int:
        return self.codes.numel() * self.codes.element_size()


def _encode(x: torch.Tensor, scale: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """uint8 codes when x == code * scale exactly for codes in 0..255, else float32."""
    if scale is not None and scale.numel() == 1:
        codes = torch.round(x / scale)
        if codes.min() >= 0 and codes.max() <= 255 and torch.equal(codes * scale, x):
            return codes.to(torch.uint8), scale
    return x.float(), None


def _point_scale(model: Backbone, point: str) -> torch.Tensor | None:
    """The per-tensor scale of the last quantized activation in segment `point`, if any."""
    scale = None
    for m in model.segments[point].modules():
        q = getattr(m, "act_quant", None)
        if q is not None and getattr(q, "is_quant_enabled", False):
            scale = q.scale().detach().reshape(-1)
    return scale


def row_pool(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, 1, W): the max over rows, as ExitHead.row_pool computes it."""
    return torch.amax(x, dim=2, keepdim=True)


@torch.no_grad()
def build_cache(model: Backbone, data: ImageSet, points: list[str], scaling: InputScaling,
                batch_size: int = 500, progress=None) -> tuple[dict[str, CachedFeatures], np.ndarray]:
    """Returns ({point: row-pooled features}, backbone logits (N, K) float32) over `data`,
    the backbone in eval mode."""
    model.eval()
    scales = {p: _point_scale(model, p) for p in points}
    chunks: dict[str, list] = {p: [] for p in points}
    logits = []
    images = torch.from_numpy(data.images)
    steps = range(0, len(data), batch_size)
    for i in (progress(steps) if progress else steps):
        feats, out = model.forward_with_exits(scaling(images[i:i + batch_size]), points)
        for p in points:
            chunks[p].append(row_pool(feats[p]))
        logits.append(out)
    cache = {}
    for p in points:
        x = torch.cat(chunks[p])
        codes, scale = _encode(x, scales[p])
        cache[p] = CachedFeatures(codes, scale)
    return cache, torch.cat(logits).numpy()
