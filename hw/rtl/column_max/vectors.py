"""Writes the block test's vectors: `python -m hw.rtl.column_max.vectors RUN_FOLDER` stores
the inputs of head_0's two ColumnMax layers on the first test images of a finished run
(NHWC codes, uint8) in vectors.npz beside the block: `rows` (N, H, W, C) for the row
pooling, `columns` (N, 1, W', C') for the pooling over the convolution's columns."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from hw.rtl.column_max.model import VECTORS


def write_vectors(run: Path, images: int = 40, out: Path = VECTORS) -> None:
    """head_0's ColumnMax inputs on the first `images` test images of the run -> `out`."""
    from btsee.config import load_config
    from btsee.run_folder import read_splits
    from hw.finn.convert import load_hw
    from hw.golden import compile_segment

    config = load_config(run / "config.json")
    pixels = read_splits(run, config.data).test.images[:images]  # (N, 1, H, W) uint8
    backbone = compile_segment(load_hw(run / "dataflow" / "backbone_0.onnx"), "backbone_0")
    head_graph = load_hw(run / "dataflow" / "head_0.onnx")
    pools = [n.input[0] for n in head_graph.graph.node if n.op_type == "ColumnMax"]
    if len(pools) != 2:
        raise SystemExit(f"{run}: head_0 has {len(pools)} ColumnMax layers, the vectors expect 2")
    head = compile_segment(head_graph, "head_0")
    maps = head.tensors(backbone.run(pixels), tuple(pools))  # NHWC codes
    np.savez_compressed(out, rows=maps[pools[0]].astype(np.uint8), columns=maps[pools[1]].astype(np.uint8))


if __name__ == "__main__":
    write_vectors(Path(sys.argv[1]))
