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
