"""Block test of maxpool.sv in Verilator against its Python model, on real feature maps
(backbone_0's outputs on default-run test images), with random stalls on both sides and a
reset in the middle of the stream."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw.rtl.maxpool.model import FEATURE_MAPS, pooled, stream_max, window_stream
from hw.rtl.stream import TESTBENCH_TOP, simulate, stream_testbench, word_width
from hw.rtl.tools import verilate

SOURCE = Path(__file__).with_name("maxpool.sv")
CASES = {  # name: (kernel, PE, signed)
    "head_row_window_30x1_pe2": ((30, 1), 2, False),  # head_0's row pooling of a 30x30 map
    "pool_2x2_pe4": ((2, 2), 4, False),
    "pool_2x2_pe16_signed": ((2, 2), 16, True),
}
BITS = 4


def _feature_maps(signed: bool) -> np.ndarray:
    fmap = np.load(FEATURE_MAPS)["backbone_0"].astype(np.int64)  # (N, 30, 30, 16) codes 0..15
    return fmap - 8 if signed else fmap


def test_model_matches_the_golden_layout():
    """The block's stream model, put back in (N, OH, OW, C), is the golden max pool."""
    fmap = _feature_maps(False)
    for kernel, pe, _ in CASES.values():
        n, h, w, c = fmap.shape
        oh, ow = h // kernel[0], w // kernel[1]
        out = stream_max(window_stream(fmap, kernel, pe), kernel[0] * kernel[1])  # (words, PE)
        out = out.reshape(n, oh, ow, c // pe, pe).reshape(n, oh, ow, c)
        assert np.array_equal(out, pooled(fmap, kernel))


@pytest.mark.parametrize("name", sorted(CASES))
def test_maxpool_block_with_stalls_and_reset(name, tmp_path):
    kernel, pe, signed = CASES[name]
    width = word_width(pe, BITS)
    dut = f"btsee_maxpool #(.PE({pe}), .BITS({BITS}), .KERNEL({kernel[0] * kernel[1]}), .SIGNED({int(signed)}))"
    tb = tmp_path / "tb.sv"
    tb.write_text(stream_testbench(dut, width, width))
    binary = verilate(TESTBENCH_TOP, [tb, SOURCE], tmp_path / "build")
    words = window_stream(_feature_maps(signed), kernel, pe)  # (n_in, PE)
    expected = stream_max(words, kernel[0] * kernel[1])  # (n_out, PE)
    for seed, (in_stall, out_stall) in enumerate([(0, 0), (30, 45), (70, 10)], start=1):
        run = simulate(binary, tmp_path / f"run{seed}", words, BITS, len(expected), pe, BITS, signed,
                       seed=seed, in_stall=in_stall, out_stall=out_stall, reset_at=len(words) // 3 + 1,  # mid-window
                       max_cycles=50 * len(words))
        assert np.array_equal(run.codes, expected), f"{name}, stalls {in_stall}/{out_stall}%"


def test_full_rate_without_stalls(tmp_path):
    """One input word per cycle when neither side stalls: a frame of K words per output."""
    kernel, pe = (2, 2), 4
    width = word_width(pe, BITS)
    tb = tmp_path / "tb.sv"
    tb.write_text(stream_testbench(f"btsee_maxpool #(.PE({pe}), .BITS({BITS}), .KERNEL(4))", width, width))
    binary = verilate(TESTBENCH_TOP, [tb, SOURCE], tmp_path / "build")
    words = window_stream(_feature_maps(False), kernel, pe)
    per_frame = len(words) // 4 // 4  # output words per image
    run = simulate(binary, tmp_path / "run", words, BITS, len(words) // 4, pe, BITS, False,
                   frame_words=per_frame)
    assert run.cycles_per_frame() == per_frame * 4
