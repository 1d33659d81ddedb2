"""Regenerates the RTL block tests' vectors from a finished run: `python -m
btsee.block_vectors RUN_FOLDER` writes hw/rtl/maxpool/feature_maps.npz (backbone_0's codes on
the first 4 test images), hw/rtl/column_max/vectors.npz (head_0's ColumnMax inputs on the
first 40), hw/rtl/exit_decision/vectors.npz (each head's integer logits and thresholds on
the first 1,200) and, when the run's dataflow has a GlobalAccPool (a ResNet; the default CNV
run has none), hw/rtl/global_acc_pool/feature_maps.npz (the pool's input codes on the first
6). The flow reads the run's test split and hands the images to `hw`, which does not read
the flow's configs. The committed vectors' run is named in each model.py."""
from __future__ import annotations

import sys
from pathlib import Path

MAXPOOL_IMAGES = 4
COLUMN_MAX_IMAGES = 40
GAP_IMAGES = 6


def main(argv: list[str] | None = None) -> int:
    from btsee.config import load_config
    from btsee.run_folder import read_splits
    from hw.rtl.column_max import vectors as column_max
    from hw.rtl.exit_decision import vectors as exit_decision
    from hw.rtl.global_acc_pool import vectors as global_acc_pool
    from hw.rtl.maxpool import vectors as maxpool

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m btsee.block_vectors RUN_FOLDER", file=sys.stderr)
        return 2
    run = Path(argv[0])
    pixels = read_splits(run, load_config(run / "config.json").data).test.images  # (N, C, H, W) uint8
    maxpool.write_feature_maps(pixels[:MAXPOOL_IMAGES], run / "dataflow")
    column_max.write_vectors(pixels[:COLUMN_MAX_IMAGES], run / "dataflow")
    exit_decision.write_vectors(run)
    if global_acc_pool.pool_segment(run / "dataflow") is not None:
        global_acc_pool.write_feature_maps(pixels[:GAP_IMAGES], run / "dataflow")
    print(f"block vectors written from {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
