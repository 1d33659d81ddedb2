"""The bitstream build folder for the multi-exit design, and running Vivado on it.

`write_build_folder` lays out, for one board:

- src/: the whole design's generated SystemVerilog and memory images (every layer is RTL:
  no HLS step) and the stream tail `axis_last.sv`;
- finn/<segment>.json: FINN's build configuration of each segment with its chosen folding
  (`folding_config` as FINN's auto_folding_config.json writes it), to rebuild a segment
  with finn-plus on its own;
- src/btsee_bd_design.v: the Verilog top the block design instantiates (the design and
  the stream tail behind s_axis/m_axis ports);
- block_design.tcl: the Vivado block design, laid out the way finn-plus lays out its Zynq
  shell (MakeZYNQProject): the processing system (ps7 or zynq_ultra_ps_e, with the board's
  preset when Vivado has the board part), a clocking wizard making the design clock from the
  PS's 100 MHz, a reset block, an AXI interconnect for the control registers, a SmartConnect
  to the PS's high-performance port, an AXI DMA streaming pixels in and decisions out, an AXI
  GPIO that sets the batch size (TLAST), the design; every IP at the newest version this
  Vivado has (`btsee_vlnv`: no version pinned);
- build.tcl: makes the project, sources the block design, runs synthesis and implementation
  to write_bitstream, stops at the log gate (a `$readmem` file not found, a latch, a
  multi-driven net) and the timing gate (negative WNS/TNS or WHS/THS, the worst path named),
  and copies the .bit and .hwh next to it;
- btsee.tcl: the Tcl helpers both scripts source (this folder's btsee.tcl).

`run_vivado` runs build.tcl when Vivado is on PATH (version checked), streams its output to
vivado_console.log and prints the progress lines; a failure is a VivadoError with the gate's
line, else the first log problem or the timing line (checks.py), else the log.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from calib.atomic import atomic_write_json, atomic_write_text
from calib.errors import BtseeError
from hw.vivado.checks import build_log_problems, timing_line, timing_summary

HERE = Path(__file__).parent
AXIS_LAST = HERE / "axis_last.sv"
TCL_HELPERS = HERE / "btsee.tcl"
PROJECT = "btsee_bitstream"
BD_NAME = "btsee_bd"
MIN_VIVADO = (2022, 1)
"""The oldest Vivado the scripts are written for (finn-plus needs 2022.2 or later)."""
DMA_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)
DMA_LENGTH_BITS = 26
"""Width of the AXI DMA's transfer length register: at most 2**26 - 1 bytes per transfer."""
PS_CLOCK_MHZ = 100
"""The PS's PL clock, the clocking wizard's reference (finn-plus's choice)."""
BUILD_JOBS = 4
GATE_FILE = "gate.txt"
"""Where build.tcl writes the line it stops with (a failed run, the log or timing gate)."""
TIMING_REPORT = "timing_summary.rpt"
CONSOLE_LOG = "vivado_console.log"

BOARD_PARTS = {
    "Pynq-Z1": "www.digilentinc.com:pynq-z1:part0:1.0",
    "Pynq-Z2": "tul.com.tw:pynq-z2:part0:1.0",
    "Ultra96-V2": "avnet.com:ultra96v2:part0:1.2",
    "ZCU104": "xilinx.com:zcu104:part0:1.1",
    "KV260_SOM": "xilinx.com:kv260_som:part0:1.3",
}
"""Vivado board part per FINN board name (finn-plus's Zynq shell template sets the same ones;
tests check it). Boards without one get explicit PS settings and no board preset."""


class VivadoError(BtseeError):
    """Vivado missing, too old, failed, or finished without the expected files."""


@dataclass(frozen=True)
class BuildFolder:
    folder: Path
    build_script: Path
    block_design: Path
    sources: list[Path]
    bitstream: Path
    """Where the .bit lands once built (folder/<PROJECT>.bit)."""
    hardware_handoff: Path
    """Where the .hwh lands once built."""

    @property
    def gate_file(self) -> Path:
        return self.folder / GATE_FILE

    @property
    def timing_report(self) -> Path:
        return self.folder / TIMING_REPORT

    @property
    def runs(self) -> Path:
        """The Vivado project's runs folder (synth_1, impl_1, the IP's out-of-context runs)."""
        return self.folder / "vivado" / f"{PROJECT}.runs"


def dma_width(bits: int) -> int:
    """The narrowest AXI DMA stream width that holds `bits`."""
    for w in DMA_WIDTHS:
        if w >= bits:
            return w
    raise VivadoError(f"a stream of {bits} bits is wider than AXI DMA's {DMA_WIDTHS[-1]}")


WRAPPER = "btsee_bd_design"
"""The Verilog-2001 top the block design instantiates: IP Integrator's module references take
Verilog or VHDL tops, not SystemVerilog, and infer AXI-Stream interfaces from s_axis_*/m_axis_*."""


def wrapper_verilog(design) -> str:
    """The block design's module: the multi-exit design and btsee_axis_last behind AXI-Stream
    ports Vivado infers (s_axis pixels in, m_axis decisions out with TLAST every `batch`); the
    clock and reset carry the interface attributes IP Integrator reads."""
    w_in, w_dec = design.input.width, design.output_width
    w_dma_in, w_out = dma_width(w_in), dma_width(w_dec)
    return f"""// Generated by hw/vivado/project.py: {design.top} and btsee_axis_last behind AXI-Stream ports
// for the block design (a Verilog top: IP Integrator's module references take no SystemVerilog top).
module {WRAPPER} (
  (* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 ap_clk CLK",
     X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF s_axis:m_axis, ASSOCIATED_RESET ap_rst_n" *)
  input ap_clk,
  (* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 ap_rst_n RST", X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)
  input ap_rst_n,
  input [31:0] batch,
  input [{w_dma_in - 1}:0] s_axis_tdata, input s_axis_tvalid, output s_axis_tready,
  output [{w_out - 1}:0] m_axis_tdata, output m_axis_tvalid, input m_axis_tready, output m_axis_tlast
);
  wire [{w_dec - 1}:0] decision_tdata;
  wire decision_tvalid, decision_tready;
  {design.top} design_i (
    .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
    .in0_V_TDATA(s_axis_tdata[{w_in - 1}:0]), .in0_V_TVALID(s_axis_tvalid), .in0_V_TREADY(s_axis_tready),
    .out0_V_TDATA(decision_tdata), .out0_V_TVALID(decision_tvalid), .out0_V_TREADY(decision_tready));
  btsee_axis_last #(.IN_WIDTH({w_dec}), .OUT_WIDTH({w_out})) last_i (
    .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .batch(batch),
    .s_axis_tdata(decision_tdata), .s_axis_tvalid(decision_tvalid), .s_axis_tready(decision_tready),
    .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready),
    .m_axis_tlast(m_axis_tlast));
endmodule
"""


@dataclass(frozen=True)
class PsPorts:
    """The processing system's IP and the pins the shell wires (finn-plus's names)."""
    ip: str
    clock: str
    resetn: str
    master: str
    master_clock: str
    slave: str
    slave_clock: str


PS_PORTS = {
    "ps7": PsPorts("processing_system7", "FCLK_CLK0", "FCLK_RESET0_N", "M_AXI_GP0", "M_AXI_GP0_ACLK", "S_AXI_HP0",
                   "S_AXI_HP0_ACLK"),
    "zynq_ultra_ps_e": PsPorts("zynq_ultra_ps_e", "pl_clk0", "pl_resetn0", "M_AXI_HPM0_FPD", "maxihpm0_fpd_aclk",
                               "S_AXI_HP0_FPD", "saxihp0_fpd_aclk"),
}


def ps_settings(board) -> dict[str, str]:
    """The PS properties set after the preset: one general-purpose master (the control
    registers) and one high-performance slave of the board's width (the DMA), every other
    AXI port off, the PL clock at PS_CLOCK_MHZ."""
    width = str(board.dma_port_width)
    if board.ps == "ps7":
        return {"PCW_USE_M_AXI_GP0": "1", "PCW_USE_M_AXI_GP1": "0", "PCW_USE_S_AXI_GP0": "0",
                "PCW_USE_S_AXI_GP1": "0", "PCW_USE_S_AXI_ACP": "0", "PCW_USE_S_AXI_HP0": "1",
                "PCW_S_AXI_HP0_DATA_WIDTH": width, "PCW_USE_S_AXI_HP1": "0", "PCW_USE_S_AXI_HP2": "0",
                "PCW_USE_S_AXI_HP3": "0", "PCW_FPGA0_PERIPHERAL_FREQMHZ": str(PS_CLOCK_MHZ)}
    return {"PSU__USE__M_AXI_GP0": "1", "PSU__USE__M_AXI_GP1": "0", "PSU__USE__M_AXI_GP2": "0",
            "PSU__USE__S_AXI_GP0": "0", "PSU__USE__S_AXI_GP1": "0", "PSU__USE__S_AXI_GP2": "1",
            "PSU__SAXIGP2__DATA_WIDTH": width, "PSU__USE__S_AXI_GP3": "0", "PSU__USE__S_AXI_GP4": "0",
            "PSU__USE__S_AXI_GP5": "0", "PSU__USE__S_AXI_GP6": "0", "PSU__OVERRIDE__BASIC_CLOCK": "0",
            "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ": str(PS_CLOCK_MHZ)}


def _props(props: dict[str, str]) -> str:
    return "[list " + " ".join(f"CONFIG.{k} {{{v}}}" for k, v in props.items()) + "]"


def dma_settings(design, board) -> dict[str, str]:
    """AXI DMA in simple mode (no scatter-gather): stream widths from the design, the
    memory-mapped width the board's high-performance port width (wider when a stream is)."""
    w_in, w_out = dma_width(design.input.width), dma_width(design.output_width)
    return {"c_include_sg": "0", "c_sg_length_width": str(DMA_LENGTH_BITS),
            "c_m_axis_mm2s_tdata_width": str(w_in), "c_m_axi_mm2s_data_width": str(max(board.dma_port_width, w_in)),
            "c_s_axis_s2mm_tdata_width": str(w_out),
            "c_m_axi_s2mm_data_width": str(max(board.dma_port_width, w_out)),
            "c_mm2s_burst_size": "16", "c_s2mm_burst_size": "16"}


def block_design_tcl(design, board, clock_ns: float) -> str:
    """The block design script (sourced by build.tcl inside the project, which sets
    btsee_board_preset; alone it sources btsee.tcl and uses the explicit PS settings)."""
    ps = PS_PORTS[board.ps]
    clock_mhz = 1000.0 / clock_ns
    automation = "make_external \"FIXED_IO, DDR\" apply_board_preset $btsee_board_preset Master Disable Slave Disable" \
        if board.ps == "ps7" else "apply_board_preset 1"
    preset = [f"apply_bd_automation -rule xilinx.com:bd_rule:{ps.ip} -config [list {automation}] $ps"]
    if board.ps != "ps7":  # ZynqMP: the rule only applies the preset; DDR and MIO stay inside the PS
        preset = [f"if {{$btsee_board_preset}} {{ {preset[0]} }}"]
    clock = "[get_bd_pins clock/clk_out1]"
    lines = [
        f"# Generated by hw/vivado/project.py for {board.name} ({board.part}): the multi-exit design "
        f"{design.top} between an AXI DMA and the {board.ps} processing system, laid out like finn-plus's Zynq shell.",
        "if {[info commands btsee_vlnv] eq \"\"} { source [file join [file dirname [info script]] btsee.tcl] }",
        "if {![info exists btsee_board_preset]} { set btsee_board_preset 0 }",
        f"create_bd_design {BD_NAME}",
        "# the processing system: the board's preset when the project has its board part, then only the "
        "ports the shell uses",
        f"set ps [btsee_ip xilinx.com:ip:{ps.ip}:* ps]",
        *preset,
        f"set_property -dict {_props(ps_settings(board))} $ps",
        f"# the design clock ({clock_mhz:g} MHz) from the PS's {PS_CLOCK_MHZ} MHz, and its resets",
        "set clock [btsee_ip xilinx.com:ip:clk_wiz:* clock]",
        "set_property -dict [list CONFIG.PRIM_IN_FREQ.VALUE_SRC PROPAGATED CONFIG.PRIM_SOURCE {No_buffer} "
        f"CONFIG.PRIMITIVE {{PLL}} CONFIG.CLKOUT1_REQUESTED_OUT_FREQ {{{clock_mhz:g}}} CONFIG.USE_LOCKED {{true}} "
        "CONFIG.USE_RESET {true} CONFIG.RESET_TYPE {ACTIVE_LOW} CONFIG.RESET_PORT {resetn}] $clock",
        "set reset [btsee_ip xilinx.com:ip:proc_sys_reset:* reset]",
        f"connect_bd_net [get_bd_pins ps/{ps.clock}] [get_bd_pins clock/clk_in1]",
        f"connect_bd_net [get_bd_pins ps/{ps.resetn}] [get_bd_pins clock/resetn] [get_bd_pins reset/ext_reset_in]",
        f"connect_bd_net {clock} [get_bd_pins reset/slowest_sync_clk]",
        "connect_bd_net [get_bd_pins clock/locked] [get_bd_pins reset/dcm_locked]",
        "# control registers (AXI-Lite) through an AXI interconnect, DMA memory traffic through a SmartConnect",
        "set control [btsee_ip xilinx.com:ip:axi_interconnect:* control]",
        "set_property -dict [list CONFIG.NUM_MI {2}] $control",
        "set memory [btsee_ip xilinx.com:ip:smartconnect:* memory]",
        "set_property -dict [list CONFIG.NUM_SI {2}] $memory",
        "set dma [btsee_ip xilinx.com:ip:axi_dma:* dma]",
        f"set_property -dict {_props(dma_settings(design, board))} $dma",
        "set batch [btsee_ip xilinx.com:ip:axi_gpio:* batch]",
        "set_property -dict [list CONFIG.C_GPIO_WIDTH {32} CONFIG.C_ALL_OUTPUTS {1} "
        "CONFIG.C_DOUT_DEFAULT {0x00000001}] $batch",
        f"set design [create_bd_cell -type module -reference {WRAPPER} design]",
        f"connect_bd_intf_net [get_bd_intf_pins ps/{ps.master}] [get_bd_intf_pins control/S00_AXI]",
        "connect_bd_intf_net [get_bd_intf_pins control/M00_AXI] [get_bd_intf_pins dma/S_AXI_LITE]",
        "connect_bd_intf_net [get_bd_intf_pins control/M01_AXI] [get_bd_intf_pins batch/S_AXI]",
        "connect_bd_intf_net [get_bd_intf_pins dma/M_AXI_MM2S] [get_bd_intf_pins memory/S00_AXI]",
        "connect_bd_intf_net [get_bd_intf_pins dma/M_AXI_S2MM] [get_bd_intf_pins memory/S01_AXI]",
        f"connect_bd_intf_net [get_bd_intf_pins memory/M00_AXI] [get_bd_intf_pins ps/{ps.slave}]",
        "connect_bd_intf_net [get_bd_intf_pins dma/M_AXIS_MM2S] [get_bd_intf_pins design/s_axis]",
        "connect_bd_intf_net [get_bd_intf_pins design/m_axis] [get_bd_intf_pins dma/S_AXIS_S2MM]",
        "connect_bd_net [get_bd_pins batch/gpio_io_o] [get_bd_pins design/batch]",
        "# one clock for everything in the fabric, interconnect and peripheral resets from the reset block",
        f"connect_bd_net {clock} [get_bd_pins ps/{ps.master_clock}] [get_bd_pins ps/{ps.slave_clock}] "
        "[get_bd_pins control/ACLK] [get_bd_pins control/S00_ACLK] [get_bd_pins control/M*_ACLK] "
        "[get_bd_pins memory/aclk] [get_bd_pins dma/s_axi_lite_aclk] [get_bd_pins dma/m_axi_mm2s_aclk] "
        "[get_bd_pins dma/m_axi_s2mm_aclk] [get_bd_pins batch/s_axi_aclk] [get_bd_pins design/ap_clk]",
        "connect_bd_net [get_bd_pins reset/interconnect_aresetn] [get_bd_pins control/ARESETN] "
        "[get_bd_pins memory/aresetn]",
        "connect_bd_net [get_bd_pins reset/peripheral_aresetn] [get_bd_pins control/S00_ARESETN] "
        "[get_bd_pins control/M*_ARESETN] [get_bd_pins dma/axi_resetn] [get_bd_pins batch/s_axi_aresetn] "
        "[get_bd_pins design/ap_rst_n]",
        "assign_bd_address",
        "validate_bd_design",
        "save_bd_design",
    ]
    return "\n".join(lines) + "\n"


def build_tcl(board, sources: list[str], memories: list[str]) -> str:
    """The static build script: project (with the board part when Vivado has it), sources and
    memory images, block design, synthesis, the log gate, implementation to write_bitstream,
    the log and timing gates, and the .bit and .hwh copied into the build folder."""
    files = " ".join(f"$here/src/{s}" for s in sources)
    images = " ".join(f"$here/src/{m}" for m in memories)
    runs = f"$here/vivado/{PROJECT}.runs"
    return "\n".join([
        f"# Generated by hw/vivado/project.py for {board.name}: vivado -mode batch -source build.tcl (in this "
        "folder).",
        f"# A failed run, a log problem or unmet timing stops it with one line, also written to {GATE_FILE}.",
        "set here [file normalize [file dirname [info script]]]",
        "source $here/btsee.tcl",
        f"set btsee_gate_file $here/{GATE_FILE}",
        "file delete -force $btsee_gate_file",
        f"create_project {PROJECT} $here/vivado -part {board.part} -force",
        f"set btsee_board_preset [btsee_use_board_part {{{BOARD_PARTS.get(board.finn_board, '')}}}]",
        "set_property target_language Verilog [current_project]",
        f"add_files -norecurse [list {files}]",
        f"add_files -norecurse [list {images}]",
        "set_property file_type {Memory Initialization Files} [get_files *.dat]",
        "update_compile_order -fileset sources_1",
        "source $here/block_design.tcl",
        f"make_wrapper -files [get_files {BD_NAME}.bd] -top",
        f"add_files -norecurse $here/vivado/{PROJECT}.gen/sources_1/bd/{BD_NAME}/hdl/{BD_NAME}_wrapper.v",
        f"set_property top {BD_NAME}_wrapper [current_fileset]",
        f"generate_target all [get_files {BD_NAME}.bd]",
        "puts \"btsee: synthesis\"",
        f"launch_runs synth_1 -jobs {BUILD_JOBS}",
        "wait_on_run synth_1",
        f"btsee_log_gate synthesis {runs}",
        "btsee_run_gate synth_1 synthesis",
        "puts \"btsee: implementation and bitstream\"",
        f"launch_runs impl_1 -to_step write_bitstream -jobs {BUILD_JOBS}",
        "wait_on_run impl_1",
        f"btsee_log_gate implementation {runs}",
        "btsee_run_gate impl_1 implementation",
        "open_run impl_1",
        f"btsee_timing_gate impl_1 $here/{TIMING_REPORT}",
        f"file copy -force $here/vivado/{PROJECT}.runs/impl_1/{BD_NAME}_wrapper.bit $here/{PROJECT}.bit",
        f"file copy -force $here/vivado/{PROJECT}.gen/sources_1/bd/{BD_NAME}/hw_handoff/{BD_NAME}.hwh "
        f"$here/{PROJECT}.hwh",
        f"puts \"btsee: built $here/{PROJECT}.bit and $here/{PROJECT}.hwh\"",
        "",
    ])


def write_build_folder(design, board, clock_ns: float, segments: list[dict], run: Path, folder: Path) -> BuildFolder:
    """The build folder for `design` (a MultiExitRtl) on `board`; `segments` are the fold
    manifest's entries (folded graph, estimate reports) relative to the run folder `run`."""
    src = folder / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    names = []
    for path in [*design.paths(), AXIS_LAST]:
        shutil.copyfile(path, src / path.name)
        names.append(path.name)
    atomic_write_text(src / f"{WRAPPER}.v", wrapper_verilog(design))
    names.append(f"{WRAPPER}.v")
    memories = []
    for data in design.data_files:  # memory images, read by $readmemh (Vivado: added to the project)
        shutil.copyfile(design.out_dir / "src" / data, src / Path(data).name)
        memories.append(Path(data).name)
    finn = folder / "finn"
    finn.mkdir(exist_ok=True)
    for seg in segments:
        folding_file = run / seg["estimate"]["report_dir"] / "auto_folding_config.json"
        atomic_write_json(finn / f"{seg['name']}.json", {
            "model": seg["hw_file"], "folded_model": seg["folded_file"], "board": board.finn_board,
            "fpga_part": board.part, "synth_clk_period_ns": clock_ns,
            "target_fps": seg["estimate"]["target_fps"], "cycles_per_frame": seg["estimate"]["cycles_per_frame"],
            "folding_config": json.loads(folding_file.read_text()),
            "note": "FINN's DataflowBuildConfig fields; btsee builds the whole design from its own RTL (src/)"})
    shutil.copyfile(TCL_HELPERS, folder / TCL_HELPERS.name)
    atomic_write_text(folder / "block_design.tcl", block_design_tcl(design, board, clock_ns))
    atomic_write_text(folder / "build.tcl", build_tcl(board, names, memories))
    return BuildFolder(folder, folder / "build.tcl", folder / "block_design.tcl", [src / n for n in names],
                       folder / f"{PROJECT}.bit", folder / f"{PROJECT}.hwh")


def vivado_version(vivado: str) -> tuple[int, int]:
    """(year, release) of the Vivado at `vivado`; older than MIN_VIVADO is a VivadoError."""
    out = subprocess.run([vivado, "-version"], check=True, capture_output=True, text=True).stdout
    m = re.search(r"Vivado v(\d{4})\.(\d)", out)
    if not m:
        raise VivadoError(f"{vivado} -version printed no version: {out[:200]!r}")
    version = (int(m.group(1)), int(m.group(2)))
    if version < MIN_VIVADO:
        raise VivadoError(f"{vivado} is Vivado {version[0]}.{version[1]}; the build needs "
                          f"{MIN_VIVADO[0]}.{MIN_VIVADO[1]} or later")
    return version


PROGRESS = re.compile(r"^(btsee: |ERROR: |\[.*\] (Launched|Waiting for)|\[.*\] \S+ finished)")
"""The console lines run_vivado prints while Vivado runs (all of them go to the console log)."""


def build_failure(build: BuildFolder) -> str | None:
    """Why the build in `build` failed, from what it left: the gate's line (build.tcl's own
    checks), else the first problem in its logs, else unmet timing in its report; None when
    none of them says anything."""
    gate = build.gate_file.read_text().strip().splitlines() if build.gate_file.is_file() else []
    if gate:
        return gate[0]
    logs = [build.folder / "vivado.log", *sorted(build.runs.glob("*/runme.log"))]
    if problems := build_log_problems(logs):
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"btsee: log gate: {problems[0]}{more}"
    if build.timing_report.is_file() and (summary := timing_summary(build.timing_report.read_text())):
        return timing_line(summary, build.timing_report)
    return None


def run_vivado(build: BuildFolder, vivado: str, echo: Callable[[str], None] | None = None) -> None:
    """Runs build.tcl in batch mode: every console line goes to vivado_console.log, the
    progress lines (PROGRESS) to `echo` (print by default). A failed run, a log problem, unmet
    timing, or no .bit or .hwh afterwards is a VivadoError with the one line that says so."""
    echo = echo or (lambda line: print(f"  vivado: {line}", flush=True))
    log, console = build.folder / "vivado.log", build.folder / CONSOLE_LOG
    for stale in (build.gate_file, build.timing_report):
        stale.unlink(missing_ok=True)
    cmd = [vivado, "-mode", "batch", "-nojournal", "-log", str(log), "-source", str(build.build_script)]
    with open(console, "w") as out, subprocess.Popen(cmd, cwd=build.folder, stdout=subprocess.PIPE,
                                                     stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            out.flush()
            if PROGRESS.match(line):
                echo(line.rstrip())
    why = build_failure(build)
    if proc.returncode != 0:
        raise VivadoError(f"Vivado failed (exit status {proc.returncode}) on {build.build_script}: "
                          f"{why or 'see the log'}; log {log}")
    if why:
        raise VivadoError(f"{why}; log {log}")
    for path in (build.bitstream, build.hardware_handoff):
        if not path.is_file() or path.stat().st_size == 0:
            raise VivadoError(f"Vivado finished but wrote no {path}; see {log}")
