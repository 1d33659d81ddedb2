"""`DIR/report.json`, the run's one summary, and its rendering `DIR/report.md`.

Steps merge their keys in with `update_report`; keys are added, never renamed
(docs/design.md §3 lists the ones other tools rely on). No step reads it back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from calib.atomic import atomic_write_json, atomic_write_text
from calib.errors import ArtifactError
from calib.schema import read_json_file

REPORT = "report.json"


def read_report(out: Path) -> dict[str, Any]:
    """The report so far ({} before the first step writes it); a damaged file is an
    ArtifactError naming it (the steps' results are in their own files: delete it and
    rerun the steps to rebuild it)."""
    path = out / REPORT
    if not path.exists():
        return {}
    try:
        return read_json_file(path, {str: Any})
    except ArtifactError as e:
        raise ArtifactError(f"{e}; delete it and rerun the steps to rebuild the report") from e


def _merge(base: dict, new: dict) -> dict:
    """Top-level sections merge key by key (several steps fill `accuracy`, `plots`); below
    that a step's value replaces the old one whole, so no stale nested key survives a
    rerun (a new model's segment MACs never mix with the old model's)."""
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k].update(v)
        else:
            base[k] = v
    return base


def update_report(out: Path, values: dict[str, Any]) -> dict[str, Any]:
    """Merges `values` into report.json (see `_merge`); rewrites report.md. The report is
    output only: no step reads its results back from it (they read `btsee.run_folder`)."""
    report = _merge(read_report(out), values)
    atomic_write_json(out / REPORT, report)
    atomic_write_text(out / "report.md", render_markdown(report))
    return report


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _rows(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        rows = []
        for k, v in value.items():
            rows += _rows(f"{prefix}.{k}" if prefix else k, v)
        return rows
    return [(prefix, _fmt(value))]


def render_markdown(report: dict[str, Any]) -> str:
    """A two-column table of every report key, then the plots the run folder holds."""
    lines = [f"# Run report: {report.get('name', '')}", "", "| key | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in _rows("", report) if k != "name"]
    plots = report.get("plots", {})
    if plots:
        lines += [""] + [f"![{k}]({v})" for k, v in plots.items()]
    return "\n".join(lines) + "\n"
