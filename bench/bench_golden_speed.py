"""Images/s of the golden simulator against Brevitas fake-quant inference of the same
multi-exit model (backbone and heads) on the CPU, measured in one run on the default
run's test split; the ratios are the result.

* golden, exits: the deployed behaviour, exited images skip the later segments;
* golden, no exits: every image through every segment and head;
* Brevitas: the trained backbone plus its heads in PyTorch (fake quantization), batch 512,
  every image through every segment and head (PyTorch cannot skip per image in a batch).

Reuses `make demo`'s runs/default (runs the flow up to the dataflow step when needed).
Writes bench/results/golden_speed.json.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from btsee.config import load_config  # noqa: E402
from btsee.run_folder import load_golden, read_splits  # noqa: E402
from calib.atomic import atomic_write_json  # noqa: E402
from qat.heads import load_heads  # noqa: E402
from qat.models import load_backbone  # noqa: E402

RUN = ROOT / "runs" / "default"
BATCH = 512
REPEATS = 3


def best_rate(fn, images: int) -> float:
    """Images/s of the fastest of REPEATS calls (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return images / best


def main() -> None:
    subprocess.run([sys.executable, "-m", "btsee.cli", "run", "configs/default.yaml", "--out", str(RUN),
                    "--to", "dataflow", "--device", "cpu"], cwd=ROOT, check=True)
    cascade, _ = load_golden(RUN)
    pixels = read_splits(RUN, load_config(ROOT / "configs" / "default.yaml").data).test.images  # (N, C, H, W)
    n = len(pixels)

    model = load_backbone(RUN / "backbone" / "model.pt").eval()
    points, heads = load_heads(RUN / "exits" / "heads.pt")
    heads = [h.eval() for h in heads]
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0)

    @torch.no_grad()
    def brevitas() -> None:
        for i in range(0, n, BATCH):
            feats, _ = model.forward_with_exits(x[i:i + BATCH], points)
            for p, h in zip(points, heads):
                h(feats[p])

    rates = {
        "golden_exits": best_rate(lambda: cascade.run(pixels), n),
        "golden_no_exits": best_rate(lambda: cascade.run(pixels, exits=False), n),
        "brevitas_backbone_and_heads": best_rate(brevitas, n),
    }
    base = rates["brevitas_backbone_and_heads"]
    out = {"benchmark": "golden_speed", "run": str(RUN.relative_to(ROOT)), "images": n,
           "images_per_second": {k: round(v, 1) for k, v in rates.items()},
           "ratio_golden_exits_over_brevitas": rates["golden_exits"] / base,
           "ratio_golden_no_exits_over_brevitas": rates["golden_no_exits"] / base,
           "target_ratio": 1.0, "torch_threads": torch.get_num_threads(),
           "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version()}}
    atomic_write_json(ROOT / "bench" / "results" / "golden_speed.json", out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
