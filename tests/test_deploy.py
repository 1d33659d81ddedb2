"""The fold, bitstream and package steps on the tiny run: the folding search's report, the
Vivado build folder (its Tcl run under tclsh with a stub for every Vivado command), `btsee
bitstream` without Vivado, and the deploy package's manifest."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import btsee
from hw.vivado.testing import (OUR_EXTRA_IPS, OUR_EXTRA_PROPERTIES, finn_plus_names, our_names, pinned_versions,
                               run_stubbed)


def _stubbed_build(build: Path, tmp_path: Path, env: dict[str, str] | None = None):
    """build.tcl of a copy of the build folder `build` run under tclsh with a stub for every
    Vivado command (hw/vivado/testing.py): the copy and the run (calls, output, status)."""
    copy = tmp_path / "bitstream"
    shutil.copytree(build, copy)
    return copy, run_stubbed(copy / "build.tcl", tmp_path, env)


def _calls(build: Path, tmp_path: Path) -> list[list[str]]:
    """The Vivado commands build.tcl calls; a failing script fails the test."""
    _, r = _stubbed_build(build, tmp_path)
    assert r.returncode == 0, r.output
    return r.calls


def test_fold_reports_both_designs(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    t = report["throughput_fps"]
    assert t["early_exit"] > 0 and t["no_exit"] > 0
    assert t["ratio"] == pytest.approx(t["early_exit"] / t["no_exit"], rel=1e-3)
    assert t["budget_lut"] == 10000 and "pipeline model" in t["source"]
    folding = json.loads((tiny_run / "fold" / "folding.json").read_text())
    assert folding["early_exit"]["resources"]["LUT"] <= 10000
    assert folding["no_exit"]["resources"]["LUT"] <= 10000
    assert folding["subsets_searched"] == [[], [0, 1, 2]]  # the config's exits, and none to compare with
    assert len(folding["subsets_validation_accuracy"]) == 8
    manifest = json.loads((tiny_run / "fold" / "manifest.json").read_text())
    heads = sorted(int(s["name"].split("_")[1]) for s in manifest["segments"] if s["kind"] == "head")
    assert heads == manifest["exits_built"] == folding["exits_built"]
    assert {s["name"] for s in manifest["segments"]} == set(t["segments"])
    for seg in manifest["segments"]:
        assert seg["folded_file"].startswith("fold/") and (tiny_run / seg["folded_file"]).is_file()
        assert seg["estimate"]["cycles_per_frame"] == t["segments"][seg["name"]]["cycles_per_frame"]
    assert (tiny_run / "fold" / "throughput.png").is_file()
    model = report["rtl"]["multi_exit"]["pipeline_model"]
    assert model["rtl"]["cycles_first_pixel_to_last_decision"] > 0


def test_the_build_tcl_runs_under_tclsh_with_vivado_stubbed(tiny_run, tmp_path):
    if shutil.which("tclsh") is None:
        pytest.fail("tclsh is missing: scripts/setup.sh installs the tcl package")
    build = tiny_run / "bitstream"
    calls = _calls(build, tmp_path)
    names = [c[0] for c in calls]
    order = ["create_project", "add_files", "create_bd_design", "create_bd_cell", "apply_bd_automation",
             "connect_bd_intf_net", "assign_bd_address", "validate_bd_design", "save_bd_design", "make_wrapper",
             "generate_target", "launch_runs", "wait_on_run", "open_run", "report_timing_summary", "file_copy"]
    firsts = [names.index(n) for n in order]
    assert firsts == sorted(firsts), dict(zip(order, firsts))
    cells = [c[-1] for c in calls if c[0] == "create_bd_cell"]
    assert cells == ["ps", "clock", "reset", "control", "memory", "dma", "batch", "design"]
    assert [c[1] for c in calls if c[0] == "launch_runs"] == ["synth_1", "impl_1"]
    assert ["set_property", "board_part", "tul.com.tw:pynq-z2:part0:1.0"] in [c[:3] for c in calls]
    module = [c for c in calls if c[0] == "create_bd_cell" and c[-1] == "design"][0]
    assert "btsee_bd_design" in module
    added = [p for c in calls if c[0] == "add_files" for p in c[1:] if not p.startswith("-")]
    sources = [p.strip("[]{}") for p in added if p.strip("[]{}") not in ("list",)]
    generated = [p for p in sources if "/vivado/" in p]  # the wrapper Vivado writes itself
    assert len(generated) == 1
    present = [p for p in sources if p not in generated]
    assert present and all(Path(p).is_file() for p in present), [p for p in present if not Path(p).is_file()]
    assert any(p.endswith("axis_last.sv") for p in present) and any(p.endswith("btsee_bd_design.v") for p in present)
    copies = [c[-1] for c in calls if c[0] == "file_copy"]
    assert [Path(p).suffix for p in copies] == [".bit", ".hwh"]


def test_the_block_design_uses_names_finn_plus_uses(tiny_run):
    """Every IP, block automation rule and CONFIG property in the tiny run's block design is
    one finn-plus's Zynq shell templates use (read from the installed finn package), or one
    that hw/vivado/testing.py lists with the reason we need it: a misspelt name fails here.
    No IP version is written out: btsee_vlnv looks up the newest."""
    tcl = (tiny_run / "bitstream" / "block_design.tcl").read_text()
    finn = finn_plus_names()
    ips, properties = our_names(tcl)
    assert ("ip", "processing_system7") in ips and ("bd_rule", "processing_system7") in ips
    assert ips - finn.ips - set(OUR_EXTRA_IPS) == set()
    assert properties - finn.properties - set(OUR_EXTRA_PROPERTIES) == set()
    assert pinned_versions(tcl) == []


def test_the_build_stops_on_negative_slack_with_one_line(tiny_run, tmp_path):
    """build.tcl's timing gate: a negative WNS (the stubs' timing report and STATS) stops the
    build before the .bit is copied, with one line naming the worst path, its slack and the
    kept report."""
    copy, r = _stubbed_build(tiny_run / "bitstream", tmp_path, {"STUB_WNS": "-0.412", "STUB_TNS": "-3.100"})
    assert r.returncode == 1
    lines = [line for line in r.output.splitlines() if line.startswith("btsee: timing")]
    assert lines == [f"btsee: timing not met (setup): WNS -0.412 ns, TNS -3.100 ns; worst path "
                     f"design/design_i/a_reg/C -> design/design_i/b_reg/D, slack -0.412 ns; report "
                     f"{copy.resolve() / 'timing_summary.rpt'}"], r.output
    assert (copy / "timing_summary.rpt").is_file() and (copy / "gate.txt").read_text().splitlines() == lines
    assert "file_copy" not in r.names()


def test_the_block_designs_verilog_top_elaborates(tiny_run, tmp_path):
    """Verilator lints the Vivado sources with the Verilog wrapper as the top: every module
    and port the block design's module reference needs is there."""
    from hw.rtl.dsp_path import primitive_models
    from hw.rtl.tools import run_tool, verilator_env, verilator_root

    src = tiny_run / "bitstream" / "src"
    design = json.loads((tiny_run / "rtl" / "multi_exit" / "multi_exit.json").read_text())
    files = [str(src / f) for f in (*design["sources"], "axis_last.sv", "btsee_bd_design.v")]  # compile order
    files.insert(0, str(primitive_models(tmp_path / "models")))  # DSP48E1, LUT6_2: Vivado's library there
    run_tool([str(verilator_root() / "bin" / "verilator"), "--lint-only", "-Wno-fatal", "-Wno-lint", "-Wno-style",
              "-Wno-WIDTH", "--top-module", "btsee_bd_design", *files],
             "Verilator lint", src / "btsee_bd_design.v", tmp_path / "lint.log", tmp_path, verilator_env())
    text = (src / "btsee_bd_design.v").read_text()
    assert "module btsee_bd_design" in text and "m_axis_tlast" in text and "btsee_multi_exit design_i" in text


def test_bitstream_without_vivado_exits_3_with_the_command(tiny_run_copy):
    """A missing tool is exit status 3, apart from a configuration error (2, below)."""
    r = btsee("bitstream", str(tiny_run_copy / "config.json"), "--out", str(tiny_run_copy), "--board", "pynq-z2",
              check=False)
    assert r.returncode == 3
    assert "Vivado is not on PATH" in r.stderr and "vivado -mode batch -source build.tcl" in r.stderr
    doc = json.loads((tiny_run_copy / "bitstream" / "bitstream.json").read_text())
    assert doc["built"] is False
    for f in ("build.tcl", "block_design.tcl", "src/axis_last.sv"):
        assert (tiny_run_copy / "bitstream" / f).is_file(), f
    assert sorted(p.stem for p in (tiny_run_copy / "bitstream" / "finn").glob("*.json")) == sorted(
        json.loads((tiny_run_copy / "report.json").read_text())["throughput_fps"]["segments"])
    r = btsee("bitstream", str(tiny_run_copy / "config.json"), "--out", str(tiny_run_copy), "--board", "zcu104",
              check=False)
    assert r.returncode == 2 and "hardware.board is 'pynq-z2', BOARD is 'zcu104'" in r.stderr


def test_the_package_pins_every_file(tiny_run):
    from calib.schema import sha256_of

    pkg = tiny_run / "package"
    manifest = json.loads((pkg / "manifest.json").read_text())
    on_disk = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == on_disk - {"manifest.json"}
    assert {"thresholds.json", "board.json", "driver.json", "test_vectors.npz", "golden/manifest.json",
            "rtl/multi_exit.json"} <= set(manifest["files"])
    for name, digest in manifest["files"].items():
        assert sha256_of(pkg / name) == digest, name
    vectors = np.load(pkg / "test_vectors.npz")
    rtl = json.loads((tiny_run / "rtl" / "rtl.json").read_text())
    n = manifest["images"]
    assert vectors["images"].shape[0] == vectors["classes"].shape[0] == vectors["exit_index"].shape[0] == n
    assert vectors["labels"].shape == (n,)
    taken = rtl["multi_exit"]["free_running"]["exits_taken"]  # one count per exit built, then the final
    assert np.array_equal(np.bincount(vectors["exit_index"][:rtl["images"]], minlength=len(taken)), taken)


def test_the_fastest_design_within_the_budget_is_chosen():
    from btsee.config import ConfigError
    from btsee.steps.folding import choose_design
    from hw.fold.search import Design, SearchResult

    def design(lut, fps, bram=0):
        return Design("early_exit", 1, {}, {"LUT": lut, "BRAM18": bram, "DSP": 0}, fps, 1)

    results = {2: SearchResult([design(100, 10), design(300, 20), design(500, 40)], []),
               4: SearchResult([design(120, 15), design(300, 25, bram=900), design(450, 30)], [])}
    limits = {"BRAM18": 280, "DSP": 220}
    assert choose_design(results, 320, limits, "b") == (results[2].early_exit[1], 2)  # 4 frames' 300 is over BRAM
    assert choose_design(results, 460, limits, "b") == (results[4].early_exit[2], 4)
    with pytest.raises(ConfigError, match="hardware.lut_budget 90: no folding fits it and b.s BRAM18/DSP; "
                                          "the smallest needs 100 LUT"):
        choose_design(results, 90, limits, "b")
    # a fixed subset of the exits: only its front counts, though a faster design of another fits
    only = design(280, 12)
    results[2].by_subset[(1,)] = [only]
    assert choose_design(results, 320, limits, "b", (1,)) == (only, 2)
    with pytest.raises(ConfigError, match="the smallest needs 280 LUT"):
        choose_design(results, 200, limits, "b", (1,))
