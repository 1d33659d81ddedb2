"""The sweep: choices made on validation only, the bts-vs-joint count, and its outputs."""
from __future__ import annotations

import csv
import json

from btsee.sweep import select_on_validation, summarize_sweep
from conftest import TINY_CONFIG, btsee, write_config


def _row(method, knob, val_acc, val_mac, test_acc, test_mac, points="block1+block2"):
    return {"method": method, "knob": knob, "points": points, "head_width": 8, "seed": 0,
            "val_accuracy": val_acc, "val_mac_fraction": val_mac, "test_accuracy": test_acc,
            "test_mac_fraction": test_mac, "exit_fraction": [0.5, 0.5]}


def test_selection_looks_at_validation_only():
    rows = [_row("bts", 0.0, 0.90, 0.30, 0.80, 0.30),  # fine on validation, poor on test
            _row("bts", 0.1, 0.85, 0.20, 0.95, 0.10),  # too inaccurate on validation
            _row("bts", 0.2, 0.91, 0.50, 0.91, 0.50)]
    chosen = select_on_validation(rows, "bts", backbone_val=0.91, drop=0.01)
    assert chosen["knob"] == 0.0
    assert select_on_validation(rows, "bts", backbone_val=0.99, drop=0.01) is None


def test_bts_vs_joint_counts():
    rows = [_row("bts", 0.0, 0.9, 0.3, 0.90, 0.30), _row("joint", 0.0, 0.9, 0.3, 0.89, 0.30),  # bts wins
            _row("bts", 0.1, 0.9, 0.3, 0.90, 0.40), _row("joint", 0.1, 0.9, 0.3, 0.89, 0.30),  # trade-off
            _row("bts", 0.2, 0.9, 0.3, 0.88, 0.40), _row("joint", 0.2, 0.9, 0.3, 0.89, 0.30)]  # joint wins
    s = summarize_sweep(rows, {"val": 0.9, "test": 0.9})["bts_vs_joint"]
    assert s == {"configurations": 3, "bts_not_dominated_by_joint": 2, "bts_at_least_as_good_on_both": 1}


def test_pareto_front_keeps_only_points_nothing_beats():
    from btsee.plots import pareto_front

    points = [(0.5, 0.90), (0.3, 0.88), (0.3, 0.85), (0.4, 0.88), (0.6, 0.89), (0.2, 0.80), (0.5, 0.90)]
    # (0.3, 0.85) costs as much as (0.3, 0.88); (0.4, 0.88) costs more for the same accuracy;
    # (0.6, 0.89) costs more than (0.5, 0.90) and is less accurate; the duplicate counts once
    assert pareto_front(points) == [(0.2, 0.80), (0.3, 0.88), (0.5, 0.90)]
    assert pareto_front([]) == []


def test_sweep_command_writes_tables_and_plots(tiny_run_copy, tmp_path):
    values = json.loads(json.dumps(TINY_CONFIG))
    values["sweep"] = {"margins": [0.0, 0.05], "point_sets": [["block1", "block2"]],
                       "conv_channels": [8], "seeds": [0], "global_thresholds": [0.5, 0.9],
                       "variants": ["distill"]}
    cfg = write_config(tmp_path / "sweep.json", values)
    r = btsee("sweep", str(cfg), "--out", str(tiny_run_copy), "--device", "cpu")
    assert "sweep.md" in r.stdout
    out = tiny_run_copy / "sweep"
    with (out / "sweep.csv").open() as f:
        rows = list(csv.DictReader(f))
    methods = [row["method"] for row in rows]
    assert methods.count("bts") == 2 and methods.count("joint") == 2
    assert methods.count("global") == 2 and methods.count("oracle") == 1
    assert methods.count("bts-distill") == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bts_vs_joint"]["configurations"] == 2
    assert (out / "accuracy_vs_macs.png").stat().st_size > 0
    assert "Chosen on validation" in (out / "sweep.md").read_text()
