"""The block test's vectors: the inputs of head_0's two ColumnMax layers on a run's first
test images (NHWC codes, uint8) in vectors.npz beside the block: `rows` (N, H, W, C) for the
row pooling, `columns` (N, 1, W', C') for the pooling over the convolution's columns.
`python -m btsee.block_vectors RUN_FOLDER` calls it with the run's test images."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hw.rtl.column_max.model import VECTORS


def write_vectors(pixels: np.ndarray, dataflow: Path, out: Path = VECTORS) -> None:
    """head_0's ColumnMax inputs on `pixels` ((N, C, H, W) uint8 test images), run by the
    golden simulator from a run's `dataflow` folder -> `out`."""
    from hw.finn.convert import load_hw
    from hw.golden import compile_segment

    dataflow = Path(dataflow)
    backbone = compile_segment(load_hw(dataflow / "backbone_0.onnx"), "backbone_0")
    head_graph = load_hw(dataflow / "head_0.onnx")
    pools = [n.input[0] for n in head_graph.graph.node if n.op_type == "ColumnMax"]
    if len(pools) != 2:
        raise ValueError(f"{dataflow / 'head_0.onnx'}: head_0 has {len(pools)} ColumnMax layers, the vectors "
                         "expect 2")
    head = compile_segment(head_graph, "head_0")
    maps = head.tensors(backbone.run(pixels), tuple(pools))  # NHWC codes
    np.savez_compressed(out, rows=maps[pools[0]].astype(np.uint8), columns=maps[pools[1]].astype(np.uint8))
