"""The `rtl` and `synth` steps on the tiny run: every segment's RTL (FINN's generated HDL,
our max pool, the generated top) simulated in Verilator against the golden simulator with
stalls, and synthesized with Yosys; plus the errors a user meets when a tool fails."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import btsee


def _rtl(run: Path) -> dict:
    return json.loads((run / "rtl" / "rtl.json").read_text())


def test_every_segment_rtl_equals_golden_with_stalls(tiny_run):
    rtl = _rtl(tiny_run)
    manifest = json.loads((tiny_run / "dataflow" / "manifest.json").read_text())
    assert set(rtl["segments"]) == {s["name"] for s in manifest["segments"]}
    assert rtl["images"] == 8
    for name, seg in rtl["segments"].items():
        assert seg["stalled"]["images"] == 8 and seg["stalled"]["input_stall_percent"] > 0
        assert seg["stalled"]["mismatched_images"] == 0, name
        assert seg["free_running"]["mismatched_images"] == 0, name
        assert seg["free_running"]["cycles_per_frame"] > 0
    report = json.loads((tiny_run / "report.json").read_text())
    summary = report["bit_exact"]["golden_vs_rtl_segments"]
    assert summary["mismatches"] == 0 and summary["segments"] == len(manifest["segments"])


def test_every_pool_is_our_max_pool_and_every_layer_is_rtl(tiny_run):
    for seg in _rtl(tiny_run)["segments"].values():
        for layer in seg["layers"]:
            assert layer["op"].endswith("_rtl") or layer["module"] == "btsee_maxpool", layer


def test_the_comparison_finds_a_changed_value(tiny_run, tmp_path):
    """The same simulation against golden values with one integer changed: that image, and
    only that one, is reported as a mismatch."""
    from btsee.config import load_config
    from btsee.flow import Context
    from btsee.run_folder import read_manifest
    from btsee.steps.rtl import _golden_streams, _simulate_segment
    from hw.rtl.segment import SegmentRtl

    ctx = Context(load_config(tiny_run / "config.json"), tiny_run, env=None)
    manifest = read_manifest(tiny_run, "dataflow/manifest.json")
    head = next(s for s in manifest["segments"] if s["name"] == "head_0")
    golden = _golden_streams(ctx, manifest, [head], 4)["head_0"]
    golden["out"] = golden["out"].copy()
    golden["out"][2].reshape(-1)[0] += 1
    rtl = SegmentRtl.load(tiny_run / "rtl" / "head_0")
    result = _simulate_segment(rtl, tiny_run / "rtl" / "head_0", golden,
                               head["estimate"]["cycles_per_frame"])  # compiled before: reused
    assert not result["compiled"]
    assert result["stalled"]["first_mismatched"] == [2]
    assert result["free_running"]["first_mismatched"] == [2]


def test_synthesized_resources_beside_finn_estimates(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    res = report["resources"]
    assert res["source"].startswith("synthesis: Yosys")
    assert res["LUT"] > 0 and res["FF"] > 0
    synth = json.loads((tiny_run / "synth" / "synth.json").read_text())
    assert set(synth["segments"]) == set(_rtl(tiny_run)["segments"])
    for name, seg in res["per_segment"].items():
        # every MVAU_rtl multiplies in DSP48E1 slices, as many as FINN's estimate counts
        assert seg["DSP"] == seg["finn_estimate"]["DSP"], name
        assert (tiny_run / "synth" / name / "yosys.log").is_file()
    assert (tiny_run / "synth" / "resources.png").is_file()


def test_changed_rtl_sources_are_refused_by_synth(tiny_run_copy):
    top = tiny_run_copy / "rtl" / "head_0" / "src" / "segment_head_0.sv"
    top.write_text(top.read_text().replace("endmodule", "// edited\nendmodule"))
    r = btsee("run", str(tiny_run_copy / "config.json"), "--out", str(tiny_run_copy), "--from", "synth",
              check=False)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "head_0/src" in lines[0] and "changed since the rtl step" in lines[0]


def test_a_verilator_failure_names_the_file_and_keeps_the_log(tmp_path):
    from hw.rtl.tools import RtlToolError, verilate

    bad = tmp_path / "bad.sv"
    bad.write_text("module stream_tb; wire x = ; endmodule\n")
    with pytest.raises(RtlToolError) as e:
        verilate("stream_tb", [bad], tmp_path / "build")
    message = str(e.value)
    assert "\n" not in message and str(bad) in message and "Verilator failed" in message
    log = Path(message.split("whole log: ")[1].rstrip(")"))
    assert log.is_file() and "bad.sv" in log.read_text()


def test_a_yosys_failure_names_the_file_and_keeps_the_log(tmp_path):
    from hw.rtl.tools import RtlToolError, yosys

    (tmp_path / "bad.sv").write_text("module top(input a, output b); assign b = ; endmodule\n")
    script = tmp_path / "s.ys"
    script.write_text("read_slang bad.sv\nsynth_xilinx -family xc7 -top top\n")
    with pytest.raises(RtlToolError) as e:
        yosys(script, tmp_path, tmp_path / "yosys.log", tmp_path / "bad.sv")
    message = str(e.value)
    assert "\n" not in message and "bad.sv" in message and "Yosys failed" in message
    assert (tmp_path / "yosys.log").is_file()


def test_maxpool_model_is_the_golden_pool():
    """The golden simulator's Pool layer computes with the block's model function."""
    from hw import golden
    from hw.rtl.maxpool import model

    assert golden.window_max is model.window_max
    x = np.arange(24).reshape(1, 2, 3, 4)
    assert np.array_equal(model.window_max(x), x.max(axis=-2))
