"""Training and inference images/s of the default W4A4 QAT backbone against the same
backbone in float, measured in one run on this machine; the ratios are the result.

Writes bench/results/qat_speed.json.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from btsee.config import load_config  # noqa: E402
from calib.atomic import atomic_write_json  # noqa: E402
from qat.models import ModelSpec, build_backbone  # noqa: E402

BATCH_TRAIN, BATCH_INFER = 128, 512


def _images_per_s(fn, batch: int, min_seconds: float = 4.0, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds:
        fn()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def measure(spec: ModelSpec) -> dict:
    torch.manual_seed(0)
    model = build_backbone(spec)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 256, (BATCH_TRAIN, spec.in_channels, 32, 32)).float() / 255
    y = torch.randint(0, spec.num_classes, (BATCH_TRAIN,))
    xi = torch.randint(0, 256, (BATCH_INFER, spec.in_channels, 32, 32)).float() / 255

    def train_step():
        model.train()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    @torch.no_grad()
    def infer():
        model.eval()
        model(xi)

    return {"train_images_per_s": _images_per_s(train_step, BATCH_TRAIN),
            "inference_images_per_s": _images_per_s(infer, BATCH_INFER)}


def main() -> None:
    cfg = load_config(ROOT / "configs" / "default.yaml").model
    qat = ModelSpec(name=cfg.name, width=cfg.width, weight_bits=cfg.weight_bits,
                    act_bits=cfg.act_bits, input_bits=cfg.input_bits, in_channels=1)
    flt = replace(qat, weight_bits=None, act_bits=None, input_bits=None)
    results = {"qat": measure(qat), "float": measure(flt)}
    out = {
        "benchmark": "qat_speed",
        "model": f"{cfg.name} width {cfg.width}, W{cfg.weight_bits}A{cfg.act_bits} vs float",
        "batch": {"train": BATCH_TRAIN, "inference": BATCH_INFER},
        "machine": {"cpu_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__},
        **results,
        "ratio_qat_over_float": {
            "train": results["qat"]["train_images_per_s"] / results["float"]["train_images_per_s"],
            "inference": results["qat"]["inference_images_per_s"] / results["float"]["inference_images_per_s"],
        },
    }
    atomic_write_json(ROOT / "bench" / "results" / "qat_speed.json", out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
