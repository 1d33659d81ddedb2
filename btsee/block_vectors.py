"""Regenerates the RTL block tests' vectors from a finished run: `python -m
btsee.block_vectors RUN_FOLDER` writes hw/rtl/maxpool/feature_maps.npz (backbone_0's codes on
the first 4 test images), hw/rtl/column_max/vectors.npz (head_0's ColumnMax inputs on the
first 40) and hw/rtl/exit_decision/vectors.npz (each head's integer logits and thresholds on
the first 1,200). The flow reads the run's test split and hands the images to `hw`, which
does not read the flow's configs. The committed vectors' run is named in each model.py."""
from __future__ import annotations

import sys
from pathlib import Path

MAXPOOL_IMAGES = 4
COLUMN_MAX_IMAGES = 40


def main(argv: list[str] | None = None) -> int:
    from btsee.config import load_config
    from btsee.run_folder import read_splits
    from hw.rtl.column_max import vectors as column_max
    from hw.rtl.exit_decision import vectors as exit_decision
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
    print(f"block vectors written from {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
