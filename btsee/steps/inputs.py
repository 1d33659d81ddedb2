"""Every run-folder file a step declares as an input, checked before the step runs.

`check_input(ctx, rel)` reads the file through its reader in `btsee.run_folder` (or the
loaders of `qat`), which refuse a damaged, foreign or inconsistent file with an
`ArtifactError` naming the file and the field or tensor. `btsee run` checks all inputs of
a step before running it, so a step never stops half-way on a bad input with some of its
outputs rewritten. A new input file needs a checker here; `check_input` refuses a file it
has none for, so the gap shows at the first run (and in tests/test_faults.py).
"""
from __future__ import annotations

from typing import Callable

from btsee.flow import Context
from btsee.run_folder import (BACKBONE_FILE, BACKBONE_HISTORY, BACKBONE_MACS, BITSTREAM_FILE, DATA_SUMMARY,
                              DATAFLOW_MANIFEST, EVALUATION_FILE, EXPORT_MANIFEST, FOLD_MANIFEST, FOLDING_FILE,
                              HEAD_MACS, HEADS_FILE, LOGITS_FILE, RTL_FILE, SPLIT_FILE, SYNTH_FILE, THRESHOLDS_FILE,
                              load_logits,
                              read_json, read_manifest, read_thresholds)
from btsee.steps.common import backbone, load_splits, model_spec
from btsee.steps.rtl import read_rtl


def _heads(ctx: Context) -> None:
    from qat.heads import load_heads

    load_heads(ctx.out / HEADS_FILE)


CHECKERS: dict[str, Callable[[Context], object]] = {
    SPLIT_FILE: load_splits,  # cached: the step reuses what was checked
    DATA_SUMMARY: model_spec,
    BACKBONE_FILE: backbone,  # cached too
    BACKBONE_HISTORY: lambda ctx: read_json(ctx.out, BACKBONE_HISTORY),
    BACKBONE_MACS: lambda ctx: read_json(ctx.out, BACKBONE_MACS),
    HEADS_FILE: _heads,
    LOGITS_FILE: lambda ctx: load_logits(ctx.out, "val"),  # checks the whole file
    HEAD_MACS: lambda ctx: read_json(ctx.out, HEAD_MACS),
    THRESHOLDS_FILE: lambda ctx: read_thresholds(ctx.out),
    EVALUATION_FILE: lambda ctx: read_json(ctx.out, EVALUATION_FILE),
    EXPORT_MANIFEST: lambda ctx: read_manifest(ctx.out, EXPORT_MANIFEST),
    DATAFLOW_MANIFEST: lambda ctx: read_manifest(ctx.out, DATAFLOW_MANIFEST),
    FOLD_MANIFEST: lambda ctx: read_manifest(ctx.out, FOLD_MANIFEST),
    FOLDING_FILE: lambda ctx: read_json(ctx.out, FOLDING_FILE),
    RTL_FILE: read_rtl,
    SYNTH_FILE: lambda ctx: read_json(ctx.out, SYNTH_FILE),
    BITSTREAM_FILE: lambda ctx: read_json(ctx.out, BITSTREAM_FILE),
}


def check_input(ctx: Context, rel: str) -> None:
    """Reads and checks run-folder file `rel` as its consumers will (errors name the file)."""
    if rel not in CHECKERS:
        raise KeyError(f"no input check for {rel!r}: add one to btsee.steps.inputs.CHECKERS")
    CHECKERS[rel](ctx)
