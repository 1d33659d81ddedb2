"""The block test's vectors: backbone_0's output codes (NHWC, uint8) on a run's first test
images, in feature_maps.npz beside the block. `python -m btsee.block_vectors RUN_FOLDER`
calls it with the run's test images (hw does not read the flow's configs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hw.rtl.maxpool.model import FEATURE_MAPS


def write_feature_maps(pixels: np.ndarray, dataflow: Path, out: Path = FEATURE_MAPS) -> None:
    """backbone_0's codes on `pixels` ((N, C, H, W) uint8 test images), run by the golden
    simulator from dataflow/backbone_0.onnx (a run's `dataflow` folder) -> `out`."""
    from hw.finn.convert import load_hw
    from hw.golden import compile_segment

    prog = compile_segment(load_hw(Path(dataflow) / "backbone_0.onnx"), "backbone_0")
    codes = prog.run(pixels)  # (N, C, H, W)
    np.savez_compressed(out, backbone_0=codes.transpose(0, 2, 3, 1).astype(np.uint8))
