"""Test support for the Vivado scripts without Vivado (used by hw/vivado/test_project.py and
tests/test_deploy.py):

- `run_stubbed`: runs a script under tclsh with a stand-in for every Vivado command it calls,
  each call recorded; the timing numbers the stand-ins report come from the environment;
- `finn_plus_names`: the IPs, block automation rules, CONFIG properties and board parts that
  finn-plus's Zynq shell templates use, read from the installed finn package, so that our
  block design is checked against names a proven shell uses;
- `OUR_EXTRA_*`: what we use that finn-plus does not, each with the reason.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

VIVADO_COMMANDS = [
    "create_project", "set_property", "add_files", "update_compile_order", "create_bd_design", "create_bd_cell",
    "apply_bd_automation", "get_bd_intf_pins", "get_bd_pins", "get_bd_cells", "connect_bd_intf_net",
    "connect_bd_net", "assign_bd_address", "validate_bd_design", "save_bd_design", "make_wrapper", "get_files",
    "generate_target", "launch_runs", "wait_on_run", "get_runs", "current_project", "current_fileset", "open_run",
    "set_param"]
"""Stand-ins that record the call and return their own name."""
STUBS = r"""
set calls {}
foreach cmd {%(commands)s} {
  proc $cmd {args} [format {lappend ::calls [list %%s {*}$args]; return %%s} $cmd $cmd]
}
foreach {name value} {WNS 0.512 TNS 0.000 WHS 0.021 THS 0.000} {
  set ::stub($name) $value
  if {[info exists ::env(STUB_$name)]} { set ::stub($name) $::env(STUB_$name) }
}
proc get_ipdefs {args} {
  lappend ::calls [list get_ipdefs {*}$args]
  set pattern [lindex $args end]
  return [list [string map {* 1.9} $pattern] [string map {* 1.10} $pattern]]
}
proc get_board_parts {args} {
  lappend ::calls [list get_board_parts {*}$args]
  return [expr {[info exists ::env(STUB_NO_BOARD_PART)] ? "" : [lindex $args end]}]
}
proc get_param {args} { return {} }
proc get_timing_paths {args} {
  lappend ::calls [list get_timing_paths {*}$args]
  return [expr {"-hold" in $args ? "hold_path" : "setup_path"}]
}
proc get_property {name args} {
  lappend ::calls [list get_property $name {*}$args]
  set object [lindex $args end]
  switch -glob -- $name {
    VLNV { return $object }
    PROGRESS { return "100%%" }
    STARTPOINT_PIN { return "design/design_i/%(start)s" }
    ENDPOINT_PIN { return "design/design_i/%(end)s" }
    SLACK { if {$object eq "hold_path"} { return $::stub(WHS) } else { return $::stub(WNS) } }
    STATS.* { return $::stub([string range $name 6 end]) }
    default { return {} }
  }
}
proc report_timing_summary {args} {
  lappend ::calls [list report_timing_summary {*}$args]
  set out [open [lindex $args [expr {[lsearch $args -file] + 1}]] w]
  puts $out [format {%(report)s} $::stub(WNS) $::stub(TNS) $::stub(WHS) $::stub(THS) $::stub(WNS) $::stub(WHS)]
  close $out
}
rename file _file
proc file {sub args} {
  if {$sub eq "copy"} { lappend ::calls [list file_copy {*}$args]; return }
  return [_file $sub {*}$args]
}
set status [catch {source [lindex $argv 0]} message]
foreach c $calls { puts "CALL $c" }
if {$status} { puts "FAILED: $message"; exit 1 }
"""
WORST_START, WORST_END = "a_reg/C", "b_reg/D"
TIMING_REPORT = """Timing Report (a stand-in in report_timing_summary's layout)
------------------------------------------------------------------------------------------------
| Design Timing Summary
| ---------------------
------------------------------------------------------------------------------------------------

    WNS(ns)      TNS(ns)  TNS Failing Endpoints  TNS Total Endpoints      WHS(ns)      THS(ns)  THS Failing Endpoints  THS Total Endpoints
    -------      -------  ---------------------  -------------------      -------      -------  ---------------------  -------------------
     %s       %s                      3                 5467        %s        %s                      0                 5467

Clock       WNS(ns)      TNS(ns)
-----       -------      -------
clk_out1    0.000        0.000

Max Delay Paths
--------------------------------------------------------------------------------------
Slack (VIOLATED) :        %sns  (required time - arrival time)
  Source:                 design/design_i/a_reg/C
                            (rising edge-triggered cell FDRE clocked by clk_out1)
  Destination:            design/design_i/b_reg/D

Min Delay Paths
--------------------------------------------------------------------------------------
Slack (VIOLATED) :        %sns  (arrival time - required time)
  Source:                 design/design_i/a_reg/C
  Destination:            design/design_i/b_reg/D
"""


@dataclass
class StubRun:
    calls: list[list[str]]
    output: str
    returncode: int

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def tclsh() -> str:
    """tclsh on PATH (scripts/setup.sh installs the tcl package)."""
    found = shutil.which("tclsh")
    if found is None:
        raise RuntimeError("tclsh is missing: scripts/setup.sh installs the tcl package")
    return found


def run_stubbed(script: Path, workdir: Path, env: dict[str, str] | None = None) -> StubRun:
    """Runs `script` under tclsh with the Vivado stand-ins (STUB_WNS, STUB_TNS, STUB_WHS,
    STUB_THS, STUB_NO_BOARD_PART in `env` set what they report)."""
    stub = workdir / "stubs.tcl"
    stub.write_text(STUBS % {"commands": " ".join(VIVADO_COMMANDS), "start": WORST_START, "end": WORST_END,
                             "report": TIMING_REPORT})
    r = subprocess.run([tclsh(), str(stub), str(script)], capture_output=True, text=True, cwd=workdir,
                       env={**os.environ, **(env or {})})
    calls = [line[5:].split() for line in r.stdout.splitlines() if line.startswith("CALL ")]
    return StubRun(calls, r.stdout + r.stderr, r.returncode)


@dataclass(frozen=True)
class FinnNames:
    ips: set[tuple[str, str]]
    """(ip or bd_rule, name) of every IP and block automation rule."""
    properties: set[str]
    """Every CONFIG.<name> (without CONFIG.)."""
    board_parts: dict[str, str]
    """FINN board name -> the board part its Zynq shell sets."""


VLNV = re.compile(r"xilinx\.com:(ip|bd_rule):(\w+)")
PROPERTY = re.compile(r"CONFIG\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")


def finn_plus_files() -> list[Path]:
    """finn-plus's shell templates and the code that fills them, in the installed finn package."""
    spec = importlib.util.find_spec("finn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("finn-plus is not installed (a dependency in pyproject.toml)")
    root = Path(next(iter(spec.submodule_search_locations)))
    return [root / "transformation" / "fpgadataflow" / "templates.py",
            root / "transformation" / "fpgadataflow" / "make_zynq_proj.py",
            root / "custom_op" / "fpgadataflow" / "templates.py"]


def finn_plus_names() -> FinnNames:
    """The names finn-plus's Zynq shell uses, read from its installed sources."""
    text = "\n".join(p.read_text() for p in finn_plus_files())
    ips = {(kind, name) for kind, name in VLNV.findall(text)}
    ips |= {("ip", name) for name in re.findall(r"get_ipdefs -filter \{NAME == (\w+)\}", text)}  # clk_wiz
    ips |= {("ip", name) for name in re.findall(r"create_ip -name (\w+) -vendor xilinx\.com -library ip", text)}
    shell = finn_plus_files()[0].read_text()
    parts = {}
    for m in re.finditer(r'\$BOARD == "([^"]+)"\}\s*\{(.*?)\}', shell, re.S):
        if part := re.search(r"set_property board_part (\S+)", m[2]):
            parts[m[1]] = part[1]
    return FinnNames(ips, set(PROPERTY.findall(text)), parts)


OUR_EXTRA_IPS = {
    ("ip", "axi_dma"): "the board driver streams through AXI DMA with pynq's DMA driver; finn-plus streams "
                       "through its own HLS IODMA blocks instead",
}
OUR_EXTRA_PROPERTIES = {
    "PCW_USE_M_AXI_GP0": "finn-plus relies on the board preset enabling GP0; without a board part there is none",
    **{p: "PS port clean-up: ports the shell does not use are off even when a board preset enabled them"
       for p in ("PCW_USE_M_AXI_GP1", "PCW_USE_S_AXI_GP0", "PCW_USE_S_AXI_GP1", "PCW_USE_S_AXI_ACP",
                 "PCW_USE_S_AXI_HP1", "PCW_USE_S_AXI_HP2", "PCW_USE_S_AXI_HP3", "PSU__USE__S_AXI_GP0",
                 "PSU__USE__S_AXI_GP1", "PSU__USE__S_AXI_GP4", "PSU__USE__S_AXI_GP5", "PSU__USE__S_AXI_GP6")},
    "PCW_S_AXI_HP0_DATA_WIDTH": "the HP port width comes from the board file (dma_port_width); finn-plus keeps "
                                "the PS default, which is the same 64 bits",
    "PSU__SAXIGP2__DATA_WIDTH": "the HP port width comes from the board file (dma_port_width); finn-plus keeps "
                                "the PS default, which is the same 128 bits",
    "c_include_sg": "AXI DMA in simple mode (no scatter-gather); finn-plus has no AXI DMA",
    "c_sg_length_width": "AXI DMA's transfer length register at its widest (2**26 - 1 bytes); finn-plus has no "
                         "AXI DMA",
}


def our_names(tcl: str) -> tuple[set[tuple[str, str]], set[str]]:
    """(IPs and rules, CONFIG properties) a generated block design script uses."""
    return set(VLNV.findall(tcl)), set(PROPERTY.findall(tcl))


def pinned_versions(tcl: str) -> list[str]:
    """Every IP VLNV in `tcl` with a version written out (the shell looks versions up)."""
    return re.findall(r"xilinx\.com:ip:\w+:\d[\w.]*", tcl)
