"""Writes the block test's vectors: `python -m hw.rtl.maxpool.vectors RUN_FOLDER` stores
backbone_0's output codes on the first test images of a finished run (NHWC, uint8) in
feature_maps.npz beside the block."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from hw.rtl.maxpool.model import FEATURE_MAPS


def write_feature_maps(run: Path, images: int = 4, out: Path = FEATURE_MAPS) -> None:
    """backbone_0's codes on the first `images` test images of the run folder -> `out`."""
    from btsee.config import load_config
    from btsee.run_folder import read_splits
    from hw.finn.convert import load_hw
    from hw.golden import compile_segment

    config = load_config(run / "config.json")
    pixels = read_splits(run, config.data).test.images[:images]  # (N, 1, H, W) uint8
    prog = compile_segment(load_hw(run / "dataflow" / "backbone_0.onnx"), "backbone_0")
    codes = prog.run(pixels)  # (N, C, H, W)
    np.savez_compressed(out, backbone_0=codes.transpose(0, 2, 3, 1).astype(np.uint8))


if __name__ == "__main__":
    write_feature_maps(Path(sys.argv[1]))
