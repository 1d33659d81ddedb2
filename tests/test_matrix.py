"""The generality matrix: tiny runs that take other class counts, channel counts, bit widths
and exit layouts of a user's own image tree through `dataflow`, `simulate`, `rtl` and
`synth`, each with 0 mismatches: golden = qonnx = FINN on every test image, and golden =
RTL on every segment and on the whole multi-exit design, free-running and with stalls.

Each value is covered at least once, not the cross product:

| case                  | classes | channels | bits (W/A) | exits                 |
| --------------------- | ------- | -------- | ---------- | --------------------- |
| c2-grey-w2a2-x1       | 2       | grey     | 2/2        | block2                |
| c43-rgb-w8a8-x2       | 43      | RGB      | 8/8        | block1, block3        |
| c6-rgb-w3a3-x3        | 6       | RGB      | 3/3        | block1, block2, block3 |
| c10-grey-w6a6-x1      | 10      | grey     | 6/6        | block3                |

Besides these: 10 classes, grey, W4A4 and three exits in the tiny run of
tests/conftest.py (every step, netlists included); 6 classes, RGB, 64x64 with ResNet-8
in tests/test_resnet_flow.py (residual segments and the whole design in RTL, synth and
package). Every input is 8-bit pixels. The weights go through the MVUs' DSP48E1 datapath
in every case, so the 2, 3, 6 and 8-bit cases check FINN's DSP packing at those widths
against golden, image by image.

`make matrix` runs them all; `make test` none (IN_MAKE_TEST).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import btsee, write_config


@dataclass(frozen=True)
class Case:
    classes: int
    rgb: bool
    bits: int
    points: tuple[str, ...]
    lut_budget: int = 10000
    """hardware.lut_budget: small designs; W8A8 with 43 classes needs 21,945 LUT at its
    slowest folding (the fold step says so), so it gets about 10 % above that."""


CASES = {
    "c2-grey-w2a2-x1": Case(2, False, 2, ("block2",)),
    "c43-rgb-w8a8-x2": Case(43, True, 8, ("block1", "block3"), lut_budget=24000),
    "c6-rgb-w3a3-x3": Case(6, True, 3, ("block1", "block2", "block3")),
    "c10-grey-w6a6-x1": Case(10, False, 6, ("block3",)),
}
IN_MAKE_TEST: set[str] = set()
"""None: make test's 25 minutes hold the tiny run and the ResNet-8 case, not these too."""
MIN_PER_CLASS, MIN_IMAGES = 40, 320
"""Images per class of a case's tree (train, validation and test together): at least
MIN_PER_CLASS, and MIN_IMAGES in all (a few batches of training with two classes)."""
VARIANTS = ("plain", "flipped", "upside_down", "rotated", "inverted")
"""Fashion-MNIST image variants that make up to 50 distinct classes (10 labels x 5)."""


def _variant(image: np.ndarray, variant: str) -> np.ndarray:
    """One 28x28 uint8 image transformed by `variant` (VARIANTS)."""
    return {"plain": image, "flipped": image[:, ::-1], "upside_down": image[::-1],
            "rotated": np.rot90(image), "inverted": 255 - image}[variant]


def write_tree(root: Path, fmnist, classes: int, rgb: bool) -> None:
    """root/<class>/<n>.png: 28x28 images for each of `classes` classes (MIN_PER_CLASS
    each at least, MIN_IMAGES in all), class k = (Fashion-MNIST label k % 10, variant
    k // 10); RGB ones with three different channels."""
    from PIL import Image

    images, labels = fmnist["train"].images, fmnist["train"].labels  # (N, 1, 28, 28), (N,)
    per_class = max(MIN_PER_CLASS, -(-MIN_IMAGES // classes))
    for k in range(classes):
        label, variant = k % 10, VARIANTS[k // 10]
        folder = root / f"c{k:02d}_{label}_{variant}"
        folder.mkdir(parents=True)
        for i, image in enumerate(images[labels == label][:per_class, 0]):
            grey = np.ascontiguousarray(_variant(image, variant))  # (28, 28)
            pixels = np.stack([grey, grey // 2, 255 - grey], -1) if rgb else grey  # (28, 28[, 3])
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")


def case_config(tree: Path, case: Case) -> dict:
    """A tiny run's configuration for `case` on its tree, every exit built, up to synth."""
    return {
        "name": "matrix",
        "data": {"dataset": "imagefolder", "root": str(tree), "grayscale": not case.rgb, "image_size": 32,
                 "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "cnv", "width": 0.125, "weight_bits": case.bits, "act_bits": case.bits},
        "train": {"epochs": 2, "batch_size": 64, "lr": 0.005, "warmup_epochs": 0.0},
        "exits": {"points": list(case.points), "epochs": 2, "batch_size": 64},
        "calibration": {"margin": 0.05, "min_support": 5},
        "hardware": {"rtl_images": 40, "lut_budget": case.lut_budget, "exits_built": list(range(len(case.points)))},
    }


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in IN_MAKE_TEST else pytest.mark.matrix)
                                  for n in CASES])
def test_case_is_bit_exact_through_rtl_and_synthesizes(name, fmnist, tmp_path):
    case = CASES[name]
    write_tree(tmp_path / "tree", fmnist, case.classes, case.rgb)
    cfg = write_config(tmp_path / f"{name}.json", case_config(tmp_path / "tree", case))
    btsee("run", str(cfg), "--out", str(tmp_path / "run"), "--device", "cpu", "--to", "synth")
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["data"]["classes"] == case.classes
    assert report["data"]["shape"] == [3 if case.rgb else 1, 32, 32]
    assert report["exits"]["points"] == list(case.points)
    exact = report["bit_exact"]
    for key in ("golden_vs_qonnx", "golden_vs_finn"):
        assert exact[key]["images"] == report["data"]["sizes"]["test"], key
        assert exact[key]["mismatching_images"] == exact[key]["prediction_mismatches"] == 0, key
        assert exact[key]["exit_index_mismatches"] == 0, key
    segments = exact["golden_vs_rtl_segments"]
    assert segments["not_covered"] == [] and segments["segments"] == 2 * len(case.points) + 1
    assert segments["mismatches"] == 0, segments["per_segment"]
    whole = exact["golden_vs_rtl"]
    assert whole["images"] == 40 and whole["mismatches"] == 0
    assert whole["free_running"]["mismatched_images"] == whole["stalled"]["mismatched_images"] == 0
    resources = report["resources"]
    assert resources["DSP"] > 0 and resources["LUT"] > 0  # synthesized, and the weights went through DSPs
    rtl = json.loads((tmp_path / "run" / "rtl" / "rtl.json").read_text())
    ops = {layer["op"] for seg in rtl["segments"].values() for layer in seg["layers"]}
    assert "MVAU_rtl" in ops and "MVAU_hls" not in ops, ops  # every matrix layer is finn-rtllib's MVU
