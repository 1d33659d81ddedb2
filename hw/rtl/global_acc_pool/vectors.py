"""The block test's vectors: the codes (NHWC, uint8) that feed the GlobalAccPool of a run's
last backbone segment on its first test images, in feature_maps.npz beside the block.
`python -m btsee.block_vectors RUN_FOLDER` calls it with the run's test images when the
run's dataflow has a GlobalAccPool (hw does not read the flow's configs)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hw.rtl.global_acc_pool.model import FEATURE_MAPS

OP = "GlobalAccPool"


def backbone_segments(dataflow: Path) -> list[str]:
    """The backbone segments' names in stream order, from the `dataflow` step's manifest.json."""
    manifest = json.loads((Path(dataflow) / "manifest.json").read_text())
    return [seg["name"] for seg in manifest["segments"] if seg["kind"] == "backbone"]


def pool_segment(dataflow: Path) -> str | None:
    """The backbone segment with a GlobalAccPool node (the manifest's node counts), or None."""
    manifest = json.loads((Path(dataflow) / "manifest.json").read_text())
    found = [seg["name"] for seg in manifest["segments"]
             if seg["kind"] == "backbone" and seg.get("nodes", {}).get(OP, 0) > 0]
    return found[0] if found else None


def write_feature_maps(pixels: np.ndarray, dataflow: Path, out: Path = FEATURE_MAPS) -> None:
    """The GlobalAccPool's input codes on `pixels` ((N, C, H, W) uint8 test images): the
    golden simulator runs the backbone segments of a run's `dataflow` folder in turn up to
    the one with the pool and keeps the pool's input tensor -> `out` (`pool_input`,
    (N, H, W, C) uint8, or int8 when signed)."""
    from hw.finn.convert import load_hw
    from hw.golden import compile_segment

    dataflow = Path(dataflow)
    last = pool_segment(dataflow)
    if last is None:
        raise ValueError(f"{dataflow}: no backbone segment has a {OP} node")
    x = pixels
    for name in backbone_segments(dataflow):
        graph = load_hw(dataflow / f"{name}.onnx")
        prog = compile_segment(graph, name)
        if name != last:
            x = prog.run(x)  # the next segment's input codes
            continue
        pools = [n.input[0] for n in graph.graph.node if n.op_type == OP]
        if len(pools) != 1:
            raise ValueError(f"{dataflow / f'{name}.onnx'}: {len(pools)} {OP} nodes, the vectors expect 1")
        fmap = prog.tensors(x, (pools[0],))[pools[0]]  # (N, H, W, C) codes
        dtype = np.int8 if fmap.min() < 0 else np.uint8
        if fmap.min() < np.iinfo(dtype).min or fmap.max() > np.iinfo(dtype).max:
            raise ValueError(f"{dataflow}: {OP} input codes {fmap.min()}..{fmap.max()} exceed {dtype.__name__}")
        np.savez_compressed(out, pool_input=fmap.astype(dtype))
        return
