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
FAST_RUN = ("--output-split-cfuncs", "1000", "-CFLAGS", "-O1")
"""A netlist's C++ is large (one statement per cell). Without optimization it builds
fastest; with -O1 it simulates about three times faster, and split into functions of at
most 1,000 statements its build stays moderate (unsplit, GCC's -O1 build of
backbone_final took 225 s). Measured here on the default run's backbone_final netlist
(15 MB) over 20 images with stalls (520,000 frame cycles): -O0 72 s build + 106 s
simulation, FAST_RUN 113 s + 32 s."""

FAST_RUN_CYCLES = 400_000
"""Frame cycles (frames x cycles per frame) from which FAST_RUN pays: its extra build and
the simulation it saves both grow with the netlist, so the break-even is a run length
(about 290,000 cycles by the measurements above)."""


def compile_flags(simulated_cycles: float) -> tuple[str, ...]:
    """FAST_RUN for a run of at least FAST_RUN_CYCLES frame cycles, else FAST_BUILD."""
    return FAST_RUN if simulated_cycles >= FAST_RUN_CYCLES else FAST_BUILD


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
    flags = compile_flags(simulated_cycles)
    binary, compiled = verilate_cached(top, testbench, [*library, *netlists], build, flags=flags)
    return binary, compiled, flags[-1]
