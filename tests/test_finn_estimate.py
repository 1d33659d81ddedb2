"""FINN's estimate-only build on the tiny run's exported segments, without Vivado."""
from __future__ import annotations

import json
import logging
import os
import sys

import pytest

pytest.importorskip("finn")

from hw.dataflow import DataflowError  # noqa: E402
from hw.finn_estimate import REPORTS, estimate_segment, finn_builder  # noqa: E402


def first_segment(run, kind: str) -> dict:
    manifest = json.loads((run / "export" / "manifest.json").read_text())
    return next(s for s in manifest["segments"] if s["kind"] == kind)


@pytest.mark.parametrize("kind", ["backbone", "head"])
def test_estimate_first_segment(tiny_run, tmp_path, kind):
    seg = first_segment(tiny_run, kind)
    est = estimate_segment(tiny_run / seg["file"], seg["input_type"], tmp_path / "build")
    assert est.name == seg["name"]
    assert est.lut > 0
    assert est.cycles_per_frame > 0
    for f in REPORTS:
        assert (tmp_path / "build" / "report" / f).is_file(), f
    assert est.report_dir == tmp_path / "build" / "report"
    assert sum(layer["LUT"] for layer in est.layers.values()) == pytest.approx(est.lut)
    assert est.cycles_per_frame == max(layer["cycles"] for layer in est.layers.values())
    assert set(est.folding) == set(est.layers)
    assert est.target_met == (est.cycles_per_frame <= 1e9 / est.clock_period_ns / est.target_fps)
    json.dumps(est.to_dict())


def test_truncated_graph_is_an_error_naming_the_file(tiny_run, tmp_path):
    seg = first_segment(tiny_run, "backbone")
    data = (tiny_run / seg["file"]).read_bytes()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataflowError, match="truncated") as info:
        estimate_segment(bad, seg["input_type"], tmp_path / "build")
    assert str(bad) in str(info.value)


def test_failed_build_is_an_error_naming_the_file(tiny_run, tmp_path):
    seg = first_segment(tiny_run, "backbone")
    with pytest.raises(DataflowError, match="NoSuchBoard") as info:
        estimate_segment(tiny_run / seg["file"], seg["input_type"], tmp_path / "build",
                         board="NoSuchBoard")
    assert str(tiny_run / seg["file"]) in str(info.value)


def test_adapter_leaves_process_state_as_it_was(tiny_run, tmp_path, monkeypatch):
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    monkeypatch.setenv("FINN_BUILD_DIR", str(tmp_path / "before"))
    import finn.builder.build_dataflow as bd

    stdout, stderr, get_vivado_root = sys.stdout, sys.stderr, bd.get_vivado_root
    handlers = list(logging.getLogger().handlers)
    seg = first_segment(tiny_run, "backbone")
    estimate_segment(tiny_run / seg["file"], seg["input_type"], tmp_path / "build")
    assert "XILINX_VIVADO" not in os.environ
    assert os.environ["FINN_BUILD_DIR"] == str(tmp_path / "before")
    assert sys.stdout is stdout and sys.stderr is stderr
    assert bd.get_vivado_root is get_vivado_root
    assert logging.getLogger().handlers == handlers
    with finn_builder(tmp_path / "tmp"):
        assert os.environ["FINN_BUILD_DIR"] == str((tmp_path / "tmp").resolve())
        assert bd.get_vivado_root() == "none"
        assert "XILINX_VIVADO" not in os.environ
    assert bd.get_vivado_root is get_vivado_root


@pytest.mark.skipif("XILINX_VIVADO" in os.environ, reason="Vivado present: real SimEngine")
def test_rtl_simulation_fails_clearly_without_vivado(tmp_path, monkeypatch):
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    with finn_builder(tmp_path):
        import finn.xsi

        with pytest.raises(RuntimeError, match="xsim"):
            finn.xsi.SimEngine()
