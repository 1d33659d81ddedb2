"""How a netlist's C++ is optimized: for a quick build, or for a fast run when the run is
long enough to pay for the slower build (`hw.rtl.netlist.compile_flags`)."""
from __future__ import annotations

from hw.rtl.netlist import FAST_BUILD, FAST_RUN, compile_flags


def test_short_runs_build_fast_and_long_runs_run_fast():
    """The default run's netlists as `make demo` and `make bench` simulate them: backbone_2
    (4 MB) on 20 images of 18,456 cycles builds fast; backbone_final (15 MB) on 20 images of
    26,000 cycles, and any segment on 100 images, run fast; so does the whole design's
    netlist (45 MB) on 200 images of 6,000 cycles."""
    assert compile_flags(4_000_000, 20 * 18_456) == FAST_BUILD
    assert compile_flags(15_000_000, 20 * 26_000) == FAST_RUN
    assert compile_flags(4_000_000, 100 * 18_456) == FAST_RUN
    assert compile_flags(45_000_000, 200 * 6_000) == FAST_RUN


def test_a_small_netlist_on_a_short_run_builds_fast():
    """A small netlist on a few thousand cycles: the build dominates."""
    assert compile_flags(500_000, 50_000) == FAST_BUILD
    assert FAST_BUILD != FAST_RUN
