"""Stream packing of the RTL simulations: FINN's layout (value 0 in the lowest bits, two's
complement), round trips, and the errors for words a simulation left undriven."""
from __future__ import annotations

import numpy as np
import pytest

from hw.rtl.stream import StreamRun, pack_hex, unpack_hex, word_width


@pytest.mark.parametrize("elems,bits,signed", [(1, 8, False), (2, 4, False), (9, 8, False), (16, 4, True),
                                               (3, 15, True), (64, 4, False)])
def test_pack_unpack_round_trip(elems, bits, signed):
    rng = np.random.default_rng(elems * 100 + bits)
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    codes = rng.integers(lo, hi, size=(50, elems))
    text = pack_hex(codes, bits)
    assert np.array_equal(unpack_hex(text, elems, bits, signed), codes)


def test_value_zero_sits_in_the_lowest_bits():
    assert pack_hex(np.array([[1, 2]]), 4) == b"21\n"
    assert pack_hex(np.array([[-1, 0, 5]]), 4) == b"50f\n"
    assert np.array_equal(unpack_hex(b"50f\n", 3, 4, True), [[-1, 0, 5]])


def test_word_width_pads_to_bytes():
    assert word_width(9, 8) == 72 and word_width(2, 4) == 8 and word_width(1, 15) == 16 and word_width(3, 3) == 16


def test_undriven_bits_are_an_error():
    with pytest.raises(ValueError, match="X or Z"):
        unpack_hex(b"0x\n", 2, 4, False)


def test_cycles_per_frame_is_the_steady_interval():
    assert StreamRun(np.zeros((0, 1)), np.array([500, 600, 700, 800])).cycles_per_frame() == 100
    assert StreamRun(np.zeros((0, 1)), np.array([500])).cycles_per_frame() == 500


PASS_THROUGH = """module pass_dut (
  input ap_clk, input ap_rst_n,
  input [15:0] in0_V_TDATA, input in0_V_TVALID, output in0_V_TREADY,
  output [15:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY);
  assign out0_V_TDATA = in0_V_TDATA;
  assign out0_V_TVALID = in0_V_TVALID;
  assign in0_V_TREADY = out0_V_TREADY;
endmodule
"""


@pytest.fixture(scope="module")
def pass_through(tmp_path_factory):
    """A wire from in0_V to out0_V, compiled inside the one-stream testbench."""
    from hw.rtl.stream import TESTBENCH_TOP, stream_testbench
    from hw.rtl.tools import verilate

    folder = tmp_path_factory.mktemp("pass")
    (folder / "pass_dut.sv").write_text(PASS_THROUGH)
    (folder / "tb.sv").write_text(stream_testbench("pass_dut", 16, 16))
    return verilate(TESTBENCH_TOP, [folder / "tb.sv", folder / "pass_dut.sv"], folder / "build")


def test_the_testbench_passes_every_word_under_stalls_and_a_reset(pass_through, tmp_path):
    from hw.rtl.stream import simulate

    words = np.random.default_rng(3).integers(-128, 128, size=(60, 2))  # 60 words of two signed bytes
    free = simulate(pass_through, tmp_path / "free", words, 8, 60, 2, 8, True, frame_words=6)
    assert np.array_equal(free.codes, words)
    assert np.array_equal(np.diff(free.frame_end_cycles), np.full(9, 6))  # a word a cycle, a frame per 6
    stalled = simulate(pass_through, tmp_path / "stalled", words, 8, 60, 2, 8, True, frame_words=6,
                       in_stall=40, out_stall=40, reset_at=25, seed=7)
    assert np.array_equal(stalled.codes, words)  # only what comes after the reset, all of it, in order
    assert len(stalled.frame_end_cycles) == 10 and stalled.cycles_per_frame() > 6
    none = simulate(pass_through, tmp_path / "none", words, 8, 60, 2, 8, True, frame_words=0)
    assert len(none.frame_end_cycles) == 0


def test_a_stuck_simulation_names_what_came_out(pass_through, tmp_path):
    from hw.rtl.stream import simulate
    from hw.rtl.tools import RtlToolError

    words = np.zeros((60, 2), np.int64)
    with pytest.raises(RtlToolError, match=r"no end after \d+ cycles: out0_V \d+ of 61 words"):
        simulate(pass_through, tmp_path / "stuck", words, 8, 61, 2, 8, True, max_cycles=200)
