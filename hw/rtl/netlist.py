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

FAST_BUILD = ("-CFLAGS", "-O0")
FAST_RUN = ("-CFLAGS", "-O1")
"""A netlist's C++ is large (one statement per cell). Without optimization it builds in
about half the time; with -O1 it simulates about four times faster. Measured here on the
default run's netlists: -O0 builds in about 2 s per MB of netlist plus 5 s and simulates
about 10 s per MB per million cycles (stalled); -O1 adds about 1.2 times that build."""


def compile_flags(netlist_bytes: int, simulated_cycles: float) -> tuple[str, ...]:
    """FAST_RUN when the -O1 build pays for itself over `simulated_cycles` (frames x cycles
    per frame) of a netlist of `netlist_bytes`, else FAST_BUILD: by the measurements above,
    when 7.5 s x MB x Mcycles saved exceed 2.4 s x MB + 6 s of extra build."""
    mb, mcycles = netlist_bytes / 1e6, simulated_cycles / 1e6
    return FAST_RUN if 7.5 * mb * mcycles > 2.4 * mb + 6 else FAST_BUILD


def compile_netlists(top: str, testbench: str, netlists: list[Path], build: Path,
                     simulated_cycles: float) -> tuple[Path, bool, str]:
    """The simulation binary of `testbench` over the netlists (module `top` among them),
    compiled in `build` once per content fingerprint with `compile_flags` for a run of
    `simulated_cycles`; (binary, whether it was compiled now, the C++ optimization flag).
    A missing netlist is an RtlToolError naming it (the synth step writes them)."""
    for path in netlists:
        if not Path(path).is_file():
            raise RtlToolError(f"{path}: no netlist; rerun the synth step (it keeps each netlist)")
    library = netlist_library(build.parent / "netlist_models")
    flags = compile_flags(sum(Path(p).stat().st_size for p in netlists), simulated_cycles)
    binary, compiled = verilate_cached(top, testbench, [*library, *netlists], build, flags=flags)
    return binary, compiled, flags[-1]
