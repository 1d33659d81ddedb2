"""How a netlist's C++ is optimized: for a quick build, or for a fast run when the run is
long enough to pay for the slower build (`hw.rtl.netlist.compile_flags`)."""
from __future__ import annotations

from hw.rtl.netlist import FAST_BUILD, FAST_RUN, compile_flags


def test_long_runs_run_fast_and_short_ones_build_fast():
    """The default run's netlists over 20 images (`make demo`): backbone_final (26,000
    cycles a frame) runs fast, backbone_1 (14,161) builds fast; over 100 (`make bench`)
    both run fast, and so does the whole design over 200 images of about 6,000 cycles."""
    assert compile_flags(20 * 26_000) == FAST_RUN
    assert compile_flags(20 * 14_161) == FAST_BUILD
    assert compile_flags(100 * 14_161) == FAST_RUN
    assert compile_flags(200 * 5_949) == FAST_RUN


def test_the_fast_run_is_optimized_and_split_for_gcc():
    """-O1 on C++ functions of at most 1,000 statements; -O0 otherwise."""
    assert FAST_RUN[-2:] == ("-CFLAGS", "-O1") and "--output-split-cfuncs" in FAST_RUN
    assert FAST_BUILD == ("-CFLAGS", "-O0")
