"""Simulation of what Yosys built: the mapped netlists the `synth` step keeps
(`synth/<segment>/netlist.v`, `synth/exit_glue/netlist.v`), compiled in Verilator with
simulation models of every xc7 primitive they use (`hw.rtl.primitives.netlist_library`:
Yosys's `cells_sim.v` with behavioural block RAMs of ours in place of its empty ones).

A segment's netlist has the ports of its RTL top, so the same stream testbench drives it;
the whole design is the exit glue's netlist (its segments black boxes there) with every
segment's netlist under it. The memory images are baked into INIT parameters and logic,
so a netlist reads no `$readmem` file.
"""
from __future__ import annotations

from pathlib import Path

from hw.rtl.primitives import netlist_library
from hw.rtl.tools import RtlToolError, verilate_cached

NETLIST_FLAGS = ("-CFLAGS", "-O0")
"""The netlists' C++ is large (one statement per cell): compiled without optimization it
builds in about half the time, and the few images checked run fast enough."""


def compile_netlists(top: str, testbench: str, netlists: list[Path], build: Path) -> tuple[Path, bool]:
    """The simulation binary of `testbench` over the netlists (module `top` among them),
    compiled in `build` once per content fingerprint; (binary, whether it was compiled
    now). A missing netlist is an RtlToolError naming it (the synth step writes them)."""
    for path in netlists:
        if not Path(path).is_file():
            raise RtlToolError(f"{path}: no netlist; rerun the synth step (it keeps each netlist)")
    library = netlist_library(build.parent / "netlist_models")
    return verilate_cached(top, testbench, [*library, *netlists], build, flags=NETLIST_FLAGS)
