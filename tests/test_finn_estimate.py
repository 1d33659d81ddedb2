"""FINN's estimate-only build on the tiny run's verified HW-layer graphs, without Vivado."""
from __future__ import annotations

import json
import logging
import os
import sys

import numpy as np
import pytest
from onnx import numpy_helper

pytest.importorskip("finn")

from hw.finn.builder import finn_builder  # noqa: E402
from hw.finn.convert import DataflowError  # noqa: E402
from hw.finn.estimate import PARTITION_MODEL, REPORTS, estimate_segment  # noqa: E402


def first_segment(run, kind: str) -> dict:
    """The dataflow manifest's entry of the first segment of `kind`; its hw_file is the
    graph the golden simulator and the chain verify."""
    manifest = json.loads((run / "dataflow" / "manifest.json").read_text())
    seg = next(s for s in manifest["segments"] if s["kind"] == kind)
    return dict(seg, file=seg["hw_file"])


def _initializers(model) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_estimate_builds_exactly_the_verified_graph(tiny_run, tmp_path):
    """The build starts from the dataflow step's HW graph, and the layers FINN estimates
    carry that graph's weights and thresholds, value for value."""
    from qonnx.core.modelwrapper import ModelWrapper

    seg = first_segment(tiny_run, "backbone")
    verified = ModelWrapper(str(tiny_run / seg["file"]))
    estimate_segment(tiny_run / seg["file"], seg["input_type"], tmp_path / "build")
    first = ModelWrapper(str(tmp_path / "build" / "intermediate_models" / "step_mark_input.onnx"))
    assert [(n.op_type, list(n.input)) for n in first.graph.node] == \
        [(n.op_type, list(n.input)) for n in verified.graph.node]
    want, have = _initializers(verified), _initializers(first)
    assert set(want) == set(have)
    assert all(np.array_equal(want[k], have[k]) for k in want)
    partition = ModelWrapper(str(tmp_path / "build" / "intermediate_models" / PARTITION_MODEL))
    estimated = {n.name.replace("_hls", "").replace("_rtl", ""): n for n in partition.graph.node}
    compared = 0
    for node in verified.graph.node:
        if node.op_type not in ("MVAU", "Thresholding"):
            continue
        other = estimated[node.name]
        params = [(want[a], partition.get_initializer(b)) for a, b in zip(node.input[1:], other.input[1:])]
        if node.op_type == "MVAU":  # RTL-ready: weights only, the thresholds are a layer of their own
            (w, w_est), = params
            assert np.array_equal(w, w_est)
        else:
            (t, t_est), = params
            mvau = verified.find_producer(node.input[0])
            if mvau is not None and mvau.op_type == "MVAU":  # FINN's MinimizeAccumulatorWidth clips
                w = want[mvau.input[1]]  # thresholds no accumulator reaches: the same comparisons
                dt = verified.get_tensor_datatype(mvau.input[0])
                reach = np.abs(w).sum(axis=0).max() * max(abs(dt.max()), abs(dt.min()))  # max |accumulator|
                inside = np.abs(t) <= reach
                assert np.array_equal(t[inside], t_est[inside])
                assert np.all(t_est[~inside & (t > 0)] > reach) and np.all(t_est[~inside & (t < 0)] <= -reach)
            else:
                assert np.array_equal(t, t_est)
        compared += 1
    assert compared == sum(n.op_type in ("MVAU", "Thresholding") for n in verified.graph.node) > 0


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


def test_builds_in_two_threads_leave_stdout_as_it_was(tmp_path):
    # each build swaps sys.stdout for its own sink and closes that sink when it ends: two
    # overlapping builds used to leave sys.stdout on the first one's closed sink
    import threading

    stdout, stderr = sys.stdout, sys.stderr
    inside = threading.Barrier(2, timeout=5)
    overlapped = []

    def build(name: str) -> None:
        with finn_builder(tmp_path / name):
            try:
                inside.wait()  # both inside at once: only possible without the lock
                overlapped.append(name)
            except threading.BrokenBarrierError:
                pass

    threads = [threading.Thread(target=build, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlapped == []  # one build at a time
    assert sys.stdout is stdout and sys.stderr is stderr and not sys.stdout.closed
