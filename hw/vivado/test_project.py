"""The Vivado scripts without Vivado: the block design against the names finn-plus's Zynq
shell uses (IPs, rules, CONFIG properties, board parts), build.tcl under tclsh with stub
Vivado commands (call order, board preset or explicit PS, the log gate, the timing gate and
its one line), the Python twins of the gates, and run_vivado against a stand-in Vivado."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from boards import available, load_board
from hw.vivado.checks import log_problems, timing_line, timing_summary
from hw.vivado.project import (BOARD_PARTS, TCL_HELPERS, BuildFolder, VivadoError, block_design_tcl, build_tcl,
                               run_vivado)
from hw.vivado.testing import (OUR_EXTRA_IPS, OUR_EXTRA_PROPERTIES, TIMING_REPORT, WORST_END, WORST_START,
                               finn_plus_names, our_names, pinned_versions, run_stubbed)

DESIGN = SimpleNamespace(top="btsee_multi_exit", input=SimpleNamespace(width=24), output_width=7)
SAMPLE_LOG = """\
# set_msg_config -id {Synth 8-327} -new_severity ERROR   (a command Vivado echoes: no message)
INFO: [Synth 8-6157] synthesizing module 'btsee_axis_last' [/b/src/axis_last.sv:7]
CRITICAL WARNING: [Synth 8-4445] could not open $readmem data file 'w0.dat'; please make sure the file is added to project and has read permission, ignoring [/b/src/layer0.sv:41]
WARNING: [Synth 8-327] inferring latch for variable 'state_reg' ["C:/b/src/exit.sv":88]
CRITICAL WARNING: [Synth 8-6859] multi-driven net on pin Q with 1st driver pin 'design_i/q_reg/Q' [/b/src/top.sv:12]
ERROR: [DRC MDRV-1] Multiple Driver Nets: Net design_i/n0 has multiple drivers: a/O, and b/O.
WARNING: [Synth 8-7129] Port batch[31] in module btsee_axis_last is either unconnected or has no load
"""
EXPECTED_PROBLEMS = [
    "/b/src/layer0.sv:41: $readmem data file not found (Synth 8-4445): could not open $readmem data file 'w0.dat'; "
    "please make sure the file is added to project and has read permission, ignoring",
    "C:/b/src/exit.sv:88: inferred latch (Synth 8-327): inferring latch for variable 'state_reg'",
    "/b/src/top.sv:12: multi-driven net (Synth 8-6859): multi-driven net on pin Q with 1st driver pin "
    "'design_i/q_reg/Q'",
    "{log}:6: multi-driven net (DRC MDRV-1): Multiple Driver Nets: Net design_i/n0 has multiple drivers: a/O, and b/O.",
]


def build_folder(tmp_path: Path, board_name: str) -> Path:
    """A build folder's scripts for `board_name` (the sources are names only: the stubs never
    open them)."""
    board = load_board(board_name)
    folder = tmp_path / board_name
    folder.mkdir()
    shutil.copyfile(TCL_HELPERS, folder / TCL_HELPERS.name)
    (folder / "block_design.tcl").write_text(block_design_tcl(DESIGN, board, board.clock_period_ns))
    (folder / "build.tcl").write_text(build_tcl(board, ["layer0.sv", "axis_last.sv", "btsee_bd_design.v"],
                                                ["w0.dat"]))
    return folder


@pytest.mark.parametrize("board_name", available())
def test_the_block_design_uses_only_names_finn_plus_uses(board_name):
    """Every IP, rule and CONFIG property of our block design is one finn-plus's Zynq shell
    uses, or one listed in OUR_EXTRA_* with the reason: a misspelt name fails here."""
    board = load_board(board_name)
    tcl = block_design_tcl(DESIGN, board, board.clock_period_ns)
    finn = finn_plus_names()
    ips, properties = our_names(tcl)
    assert ips and properties
    assert ips - finn.ips - set(OUR_EXTRA_IPS) == set()
    assert properties - finn.properties - set(OUR_EXTRA_PROPERTIES) == set()
    assert pinned_versions(tcl) == []  # every IP version looked up with btsee_vlnv
    assert f"btsee_ip xilinx.com:ip:{'processing_system7' if board.ps == 'ps7' else 'zynq_ultra_ps_e'}:* ps" in tcl
    width = "PCW_S_AXI_HP0_DATA_WIDTH" if board.ps == "ps7" else "PSU__SAXIGP2__DATA_WIDTH"
    assert f"CONFIG.{width} {{{board.dma_port_width}}}" in tcl
    assert f"CONFIG.c_m_axi_mm2s_data_width {{{board.dma_port_width}}}" in tcl  # the DMA at the port's width


def test_every_listed_extra_is_needed():
    """The exceptions stay honest: each is used by some board's block design and finn-plus
    really lacks it."""
    used_ips, used_properties = set(), set()
    for name in available():
        board = load_board(name)
        ips, properties = our_names(block_design_tcl(DESIGN, board, board.clock_period_ns))
        used_ips |= ips
        used_properties |= properties
    finn = finn_plus_names()
    assert set(OUR_EXTRA_IPS) <= used_ips and not set(OUR_EXTRA_IPS) & finn.ips
    assert set(OUR_EXTRA_PROPERTIES) <= used_properties and not set(OUR_EXTRA_PROPERTIES) & finn.properties


def test_board_parts_are_finn_plus_board_parts():
    finn = finn_plus_names()
    for name in available():
        board = load_board(name)
        assert BOARD_PARTS[board.finn_board] == finn.board_parts[board.finn_board], name
        assert f"btsee_use_board_part {{{BOARD_PARTS[board.finn_board]}}}" in build_tcl(board, ["a.sv"], [])


def test_btsee_vlnv_picks_the_newest_version(tmp_path):
    script = tmp_path / "vlnv.tcl"
    script.write_text(f"source {TCL_HELPERS}\nputs \"VLNV [btsee_vlnv xilinx.com:ip:axi_dma:*]\"\n")
    r = run_stubbed(script, tmp_path)
    assert r.returncode == 0, r.output
    assert "VLNV xilinx.com:ip:axi_dma:1.10" in r.output  # 1.10 after 1.9: a dictionary sort, not ASCII


@pytest.mark.parametrize("board_name,preset", [("pynq-z2", True), ("pynq-z2", False), ("zcu104", True),
                                               ("kv260", False)])
def test_build_tcl_runs_in_order_with_or_without_the_board_part(board_name, preset, tmp_path):
    folder = build_folder(tmp_path, board_name)
    r = run_stubbed(folder / "build.tcl", tmp_path, {} if preset else {"STUB_NO_BOARD_PART": "1"})
    assert r.returncode == 0, r.output
    names = r.names()
    order = ["create_project", "get_board_parts", "add_files", "create_bd_design", "create_bd_cell",
             "connect_bd_intf_net", "assign_bd_address", "validate_bd_design", "save_bd_design", "make_wrapper",
             "generate_target", "launch_runs", "wait_on_run", "open_run", "report_timing_summary", "file_copy"]
    firsts = [names.index(n) for n in order]
    assert firsts == sorted(firsts), dict(zip(order, firsts))
    assert [c[-1] for c in r.calls if c[0] == "create_bd_cell"] == [
        "ps", "clock", "reset", "control", "memory", "dma", "batch", "design"]
    assert [c for c in r.calls if c[0] == "launch_runs"][0][1] == "synth_1"
    board_part = [c for c in r.calls if c[:2] == ["set_property", "board_part"]]
    assert bool(board_part) == preset
    automation = [c for c in r.calls if c[0] == "apply_bd_automation"]
    ps7 = load_board(board_name).ps == "ps7"
    assert len(automation) == (1 if ps7 or preset else 0)  # ps7 always (DDR, FIXED_IO); ZynqMP for the preset
    if automation:
        assert f"apply_board_preset {1 if preset else 0}" in " ".join(automation[0])
    assert "btsee: timing met" in r.output and (folder / "timing_summary.rpt").is_file()
    assert [Path(c[-1]).suffix for c in r.calls if c[0] == "file_copy"] == [".bit", ".hwh"]
    assert not (folder / "gate.txt").exists()


@pytest.mark.parametrize("wns,tns,whs,check", [("-0.412", "-3.100", "0.021", "setup"),
                                               ("0.000", "-0.050", "0.021", "setup"),
                                               ("0.512", "0.000", "-0.030", "hold")])
def test_negative_slack_stops_the_build_with_one_line(wns, tns, whs, check, tmp_path):
    folder = build_folder(tmp_path, "pynq-z2")
    r = run_stubbed(folder / "build.tcl", tmp_path, {"STUB_WNS": wns, "STUB_TNS": tns, "STUB_WHS": whs})
    assert r.returncode == 1
    lines = [line for line in r.output.splitlines() if line.startswith("btsee: timing")]
    assert len(lines) == 1, r.output
    line = lines[0]
    assert f"timing not met ({check})" in line and f"{WORST_START} -> " in line and WORST_END in line
    assert f"slack {wns if check == 'setup' else whs} ns" in line
    report = folder / "timing_summary.rpt"
    assert report.is_file() and str(report.resolve()) in line  # the report is kept and named
    assert (folder / "gate.txt").read_text().splitlines() == [line]
    assert "file_copy" not in r.names()
    assert f"FAILED: {line}" in r.output  # the script's error is that same line
    summary = timing_summary(report.read_text())
    assert summary is not None and timing_line(summary, report.resolve()) == line  # the Python twin words it alike


@pytest.mark.parametrize("message,kind,stage", [
    ("CRITICAL WARNING: [Synth 8-4445] could not open $readmem data file 'w0.dat'; please make sure the file is "
     "added to project and has read permission, ignoring [/b/src/layer0.sv:41]", "$readmem data file not found",
     "synthesis"),
    ("WARNING: [Synth 8-327] inferring latch for variable 'state_reg' [/b/src/exit.sv:88]", "inferred latch",
     "synthesis"),
    ("CRITICAL WARNING: [Synth 8-3352] multi-driven net n0 with 1st driver pin 'q_reg/Q' [/b/src/top.sv:12]",
     "multi-driven net", "synthesis"),
])
def test_a_log_problem_stops_the_build_after_synthesis(message, kind, stage, tmp_path):
    folder = build_folder(tmp_path, "pynq-z2")
    log = folder / "vivado" / "btsee_bitstream.runs" / "synth_1" / "runme.log"
    log.parent.mkdir(parents=True)
    log.write_text(f"INFO: [Synth 8-6157] synthesizing module 'x'\n{message}\n")
    r = run_stubbed(folder / "build.tcl", tmp_path)
    assert r.returncode == 1
    lines = [line for line in r.output.splitlines() if line.startswith("btsee: ")]
    assert lines[-1].startswith(f"btsee: {stage} log gate: /b/src/") and f": {kind} (" in lines[-1], r.output
    assert [c[1] for c in r.calls if c[0] == "launch_runs"] == ["synth_1"]  # no implementation
    assert (folder / "gate.txt").read_text().splitlines() == [lines[-1]]


def test_the_log_scan_python_and_tcl_agree(tmp_path):
    log = tmp_path / "runme.log"
    log.write_text(SAMPLE_LOG)
    expected = [p.replace("{log}", str(log)) for p in EXPECTED_PROBLEMS]
    assert log_problems(SAMPLE_LOG, str(log)) == expected
    script = tmp_path / "scan.tcl"
    script.write_text(f"source {TCL_HELPERS}\nforeach p [btsee_log_problems {log}] {{ puts \"PROBLEM $p\" }}\n")
    r = run_stubbed(script, tmp_path)
    assert r.returncode == 0, r.output
    assert [line[8:] for line in r.output.splitlines() if line.startswith("PROBLEM ")] == expected
    assert log_problems("WARNING: [Synth 8-7129] Port x is unconnected\nbtsee: log gate: x.sv:1: inferred latch "
                        "(Synth 8-327): inferring latch\n", "a.log") == []  # our own gate line is no new problem


def test_timing_summary_reads_the_report():
    text = TIMING_REPORT % ("-0.412", "-3.100", "0.021", "0.000", "-0.412", "0.021")
    s = timing_summary(text)
    assert s is not None and (s.wns, s.tns, s.whs, s.ths) == (-0.412, -3.1, 0.021, 0.0)
    assert s.worst_setup == (f"design/design_i/{WORST_START}", f"design/design_i/{WORST_END}", -0.412)
    assert s.failing() == "setup"
    met = timing_summary(TIMING_REPORT % ("0.512", "0.000", "0.021", "0.000", "0.512", "0.021"))
    assert met is not None and met.failing() is None and timing_line(met, "r.rpt") is None
    assert timing_summary("no table here") is None


FAKE_VIVADO = """#!/bin/sh
# a stand-in for vivado -mode batch ... -source build.tcl, run in the build folder
echo "****** Vivado v2023.2 (64-bit)"
echo "btsee: synthesis"
echo "[Tue Jan  2 10:00:00 2024] Launched synth_1..."
echo "INFO: [Common 17-83] some detail nobody needs on the console"
echo "[Tue Jan  2 10:05:00 2024] synth_1 finished"
%s
"""


def fake_build(tmp_path: Path, body: str) -> tuple[BuildFolder, str]:
    folder = tmp_path / "build"
    folder.mkdir()
    vivado = tmp_path / "vivado"
    vivado.write_text(FAKE_VIVADO % body)
    vivado.chmod(vivado.stat().st_mode | stat.S_IEXEC)
    build = BuildFolder(folder, folder / "build.tcl", folder / "block_design.tcl", [],
                        folder / "btsee_bitstream.bit", folder / "btsee_bitstream.hwh")
    return build, str(vivado)


def test_run_vivado_streams_progress_and_succeeds(tmp_path):
    build, vivado = fake_build(tmp_path, "echo bits > btsee_bitstream.bit; echo hwh > btsee_bitstream.hwh")
    (build.folder / "timing_summary.rpt").write_text("stale")  # from an earlier build: removed first
    seen: list[str] = []
    run_vivado(build, vivado, seen.append)
    assert seen == ["btsee: synthesis", "[Tue Jan  2 10:00:00 2024] Launched synth_1...",
                    "[Tue Jan  2 10:05:00 2024] synth_1 finished"]
    assert "some detail nobody needs" in (build.folder / "vivado_console.log").read_text()
    assert not (build.folder / "timing_summary.rpt").exists()


@pytest.mark.parametrize("body,expected", [
    ("echo 'btsee: timing not met (setup): WNS -0.412 ns' | tee gate.txt; exit 1",
     "Vivado failed (exit status 1) on {build}: btsee: timing not met (setup): WNS -0.412 ns;"),
    ("printf '%s' \"$REPORT\" > timing_summary.rpt; touch btsee_bitstream.bit btsee_bitstream.hwh",
     "btsee: timing not met (setup): WNS -0.412 ns, TNS -3.100 ns; worst path design/design_i/a_reg/C -> "
     "design/design_i/b_reg/D, slack -0.412 ns; report {folder}/timing_summary.rpt; log"),
    ("mkdir -p vivado/btsee_bitstream.runs/synth_1; echo \"WARNING: [Synth 8-327] inferring latch for variable "
     "'q_reg' [/b/src/exit.sv:88]\" > vivado/btsee_bitstream.runs/synth_1/runme.log; exit 1",
     "btsee: log gate: /b/src/exit.sv:88: inferred latch (Synth 8-327): inferring latch for variable 'q_reg'"),
    ("exit 0", "Vivado finished but wrote no {folder}/btsee_bitstream.bit"),
])
def test_run_vivado_fails_with_the_line_that_says_why(body, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("REPORT", TIMING_REPORT % ("-0.412", "-3.100", "0.021", "0.000", "-0.412", "0.021"))
    build, vivado = fake_build(tmp_path, body)
    with pytest.raises(VivadoError) as e:
        run_vivado(build, vivado, lambda line: None)
    assert expected.format(build=build.build_script, folder=build.folder) in str(e.value)
    assert os.path.isfile(build.folder / "vivado_console.log")
