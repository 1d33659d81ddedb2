"""Timing depth without Vivado, in the `synth` step: the deepest register-to-register path
of every segment and of the exit glue (from their mapped netlists), and of every block of
ours as the design instantiates it (each a module of its own, all in one Yosys run), in
cells (`hw.rtl.depth`).

The reference is finn-rtllib's own layers, which FINN closes at 100 MHz on these parts:
the deepest path of a segment whose two ends lie outside our blocks. No block of ours may
be deeper (`within_reference`); a deeper one needs a pipeline register. Cell counts are
not delays: there is no place and route here.
"""
from __future__ import annotations

from pathlib import Path

from hw.rtl.depth import our_instances

OUR_INSTANCE_MARKS = ("_fifo_i", "Pool_hls", "ColumnMax", "btsee_")
"""Parts of a signal name that place it inside a block of ours in a segment's netlist (the
MVU input queues, the max pools, the column max in its wrapper)."""
SHELL_BLOCKS = ("btsee_axis_last",)
"""Blocks of ours outside the simulated design (the Vivado shell's stream tail), costed
with their default parameters."""


def _ours(signal: str) -> bool:
    return any(mark in signal for mark in OUR_INSTANCE_MARKS)


def _path(d: dict) -> dict:
    return {k: d[k] for k in ("levels", "path", "lut", "carry4", "muxf", "carry_chain", "from", "to")}


def block_jobs(sources: list[Path]) -> list[tuple[str, str]]:
    """The blocks (module, parameters) whose depth `timing_depth` needs: every distinct
    instance of our blocks in `sources`, and SHELL_BLOCKS. The synth step synthesizes them
    in one Yosys run (`hw.rtl.block_depth.block_depths_of`) beside the segments."""
    return list(our_instances(sources)) + [(m, "") for m in SHELL_BLOCKS]


def timing_depth(segments: dict[str, dict], glue: dict | None, results: list[dict]) -> dict:
    """report.json `timing_depth` from the segments' depths ({name: parse_ltp dict}), the
    exit glue's (or None) and the `block_depths_of` results of `block_jobs`: per segment, per
    block (its deepest instance), the FINN reference and the blocks deeper than it."""
    finn = {n: d for n, d in segments.items() if not (_ours(d["from"]) or _ours(d["to"]))}
    reference = max(finn.items(), key=lambda kv: kv[1]["levels"]) if finn else None
    blocks: dict[str, dict] = {}
    for r in results:
        if r["module"] not in blocks or r["levels"] > blocks[r["module"]]["levels"]:
            blocks[r["module"]] = dict(_path(r), params=r["params"], instances=0)
    for r in results:
        blocks[r["module"]]["instances"] += 1
    limit = reference[1]["levels"] if reference else None
    deeper = sorted(m for m, b in blocks.items() if limit is not None and b["levels"] > limit)
    return {"unit": "cells on the deepest register-to-register path (LUT, CARRY4, MUXF7/8, INV); not delays",
            "finn_reference": None if reference is None else dict(_path(reference[1]), segment=reference[0]),
            "segments": {n: dict(_path(d), ends_in_our_block=_ours(d["from"]) or _ours(d["to"]))
                         for n, d in segments.items()},
            "exit_glue": None if glue is None else _path(glue),
            "blocks": blocks, "blocks_deeper_than_finn": deeper,
            "within_reference": limit is not None and not deeper}


def log_lines(doc: dict) -> list[str]:
    """The synth step's log lines for `timing_depth`."""
    ref = doc["finn_reference"]
    lines = [f"  timing depth ({doc['unit'].split(';')[0]}):"]
    for n, d in doc["segments"].items():
        lines.append(f"    {n:15s} {d['levels']:2d} ({', '.join(d['path'])})"
                     + (" ends in a block of ours" if d["ends_in_our_block"] else ""))
    if doc["exit_glue"]:
        lines.append(f"    {'exit glue':15s} {doc['exit_glue']['levels']:2d} ({', '.join(doc['exit_glue']['path'])})")
    for m, b in sorted(doc["blocks"].items()):
        lines.append(f"    {m:19s} {b['levels']:2d} ({', '.join(b['path'])}), deepest of {b['instances']} "
                     f"instance(s)")
    if ref is None:
        lines.append("    no segment's deepest path lies in FINN's layers: no reference")
    else:
        lines.append(f"    FINN's deepest layer path: {ref['levels']} cells ({ref['segment']}); blocks of ours deeper: "
                     + (", ".join(doc["blocks_deeper_than_finn"]) or "none"))
    return lines
