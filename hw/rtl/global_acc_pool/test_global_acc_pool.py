"""Block test of global_acc_pool.sv in Verilator against its Python model, on real feature
maps (the codes feeding a ResNet-8's GlobalAccPool on test images), with random stalls on
both sides and a reset in the middle of a frame; the model against FINN's GlobalAccPool."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw.rtl.global_acc_pool.model import FEATURE_MAPS, channel_sums, out_bits, pool_stream, stream_sums
from hw.rtl.stream import TESTBENCH_TOP, simulate, stream_testbench, word_width
from hw.rtl.tools import verilate

SOURCE = Path(__file__).with_name("global_acc_pool.sv")
IN_BITS = 4
CHANNELS = 16
PIXELS = 16 * 16
CASES = {  # name: (PE, signed)
    "pe1": (1, False),
    "pe2": (2, False),
    "pe16_full": (CHANNELS, False),
    "pe4_signed": (4, True),
}
STALLS = [(0, 0), (30, 45), (70, 10)]  # % input, % output


def _feature_maps(signed: bool) -> np.ndarray:
    """(N, 16, 16, 16) int64 codes: UINT4 as stored, or INT4 (less 2**(IN_BITS-1)) when signed."""
    fmap = np.load(FEATURE_MAPS)["pool_input"].astype(np.int64)
    assert fmap.shape[1:] == (16, 16, CHANNELS) and 0 <= fmap.min() and fmap.max() < 1 << IN_BITS
    return fmap - (1 << (IN_BITS - 1)) if signed else fmap


def _finn_op(fmap: np.ndarray, pe: int, idt: str):
    """FINN's GlobalAccPool node for an (N, H, W, C) map of datatype `idt`."""
    import onnx.helper
    from finn.custom_op.fpgadataflow.globalaccpool import GlobalAccPool

    n, h, w, c = fmap.shape
    node = onnx.helper.make_node("GlobalAccPool", ["x"], ["y"], domain="finn.custom_op.fpgadataflow",
                                 NumChannels=c, PE=pe, inputDataType=idt, numInputVectors=[n, h, w])
    return GlobalAccPool(node)


@pytest.fixture(scope="module")
def binaries(tmp_path_factory):
    """Verilator binary per (PE, signed, pixels), built once for the module."""
    built: dict[tuple[int, bool, int], Path] = {}

    def get(pe: int, signed: bool, pixels: int = PIXELS) -> Path:
        key = (pe, signed, pixels)
        if key not in built:
            ob = out_bits(IN_BITS, signed, pixels)
            dut = (f"btsee_global_acc_pool #(.PE({pe}), .IN_BITS({IN_BITS}), .IN_SIGNED({int(signed)}), "
                   f".OUT_BITS({ob}), .CHANNELS({CHANNELS}), .PIXELS({pixels}))")
            where = tmp_path_factory.mktemp(f"gap_pe{pe}_{'s' if signed else 'u'}_{pixels}")
            (where / "tb.sv").write_text(stream_testbench(dut, word_width(pe, IN_BITS), word_width(pe, ob)))
            built[key] = verilate(TESTBENCH_TOP, [where / "tb.sv", SOURCE], where / "build")
        return built[key]

    return get


@pytest.mark.parametrize("signed", [False, True])
def test_model_matches_finn_and_the_golden_sums(signed):
    """The block's stream model, put back in (N, C), is channel_sums and FINN's execute_node."""
    fmap = _feature_maps(signed)  # (N, H, W, C)
    n, h, w, c = fmap.shape
    sums = channel_sums(fmap)  # (N, C)
    op = _finn_op(fmap, 1, "INT4" if signed else "UINT4")
    context = {"x": fmap.astype(np.float32), "y": np.zeros(op.get_normal_output_shape(), np.float32)}
    op.execute_node(context, None)
    assert np.array_equal(context["y"].reshape(n, c), sums)
    assert np.array_equal(sums, fmap.sum(axis=(1, 2)))
    for pe, _ in CASES.values():
        out = stream_sums(pool_stream(fmap, pe), h * w, c // pe)  # (N * C/PE, PE)
        assert np.array_equal(out.reshape(n, c), sums)


@pytest.mark.parametrize("bits, signed, pixels", [(4, False, 256), (4, True, 256), (1, False, 1), (2, True, 1),
                                                  (4, False, 273), (4, True, 49), (8, True, 64), (3, False, 7)])
def test_out_bits_is_finns_rule(bits, signed, pixels):
    from qonnx.core.datatype import DataType

    idt = DataType[f"{'INT' if signed else 'UINT'}{bits}"]
    expected = DataType.get_smallest_possible(pixels * (idt.min() if signed else idt.max())).bitwidth()
    assert out_bits(bits, signed, pixels) == expected
    n = int(np.sqrt(pixels))
    if n * n == pixels:  # FINN's own node says the same
        op = _finn_op(np.zeros((1, n, n, 2)), 1, idt.name)
        assert op.get_output_datatype().bitwidth() == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_block_with_stalls_and_reset(name, binaries, tmp_path):
    pe, signed = CASES[name]
    folds = CHANNELS // pe
    ob = out_bits(IN_BITS, signed, PIXELS)
    binary = binaries(pe, signed)
    words = pool_stream(_feature_maps(signed), pe)  # (N * PIXELS * folds, PE)
    expected = stream_sums(words, PIXELS, folds)  # (N * folds, PE)
    frame = PIXELS * folds
    resets = [frame + frame // 3 + 1,  # in a frame's body
              2 * frame - max(1, folds // 2),  # in the last pixel's words (or just before them)
              3 * frame + 5]
    for seed, ((in_stall, out_stall), reset_at) in enumerate(zip(STALLS, resets), start=1):
        assert reset_at % frame, "the reset must fall inside a frame"
        run = simulate(binary, tmp_path / f"run{seed}", words, IN_BITS, len(expected), pe, ob, signed,
                       seed=seed, in_stall=in_stall, out_stall=out_stall, reset_at=reset_at,
                       max_cycles=50 * len(words))
        assert np.array_equal(run.codes, expected), f"{name}, stalls {in_stall}/{out_stall}%, reset at {reset_at}"
        padding = [int(t, 16) >> (pe * ob) for t in (tmp_path / f"run{seed}" / "out0_V.hex").read_text().split()]
        assert not any(padding), f"{name}: padding bits of the output word set"


@pytest.mark.parametrize("pe", [2, CHANNELS])
def test_full_rate_without_stalls(pe, binaries, tmp_path):
    """One input word per cycle when neither side stalls: PIXELS * FOLDS cycles per frame."""
    folds = CHANNELS // pe
    words = pool_stream(_feature_maps(False), pe)
    expected = stream_sums(words, PIXELS, folds)
    run = simulate(binaries(pe, False), tmp_path / "run", words, IN_BITS, len(expected), pe,
                   out_bits(IN_BITS, False, PIXELS), False, frame_words=folds, max_cycles=2 * len(words))
    assert np.array_equal(run.codes, expected)
    assert run.cycles_per_frame() == PIXELS * folds


@pytest.mark.parametrize("pe, signed, pixels", [(CHANNELS, False, 273), (4, True, PIXELS)])
def test_widest_sums(pe, signed, pixels, binaries, tmp_path):
    """Every input at its extreme: the sums reach OUT_BITS's extreme exactly (unsigned: 273 x 15
    = 4095, UINT12's maximum; signed: 256 x -8 = -2048, INT12's minimum; and 256 x 7), in
    frames of all-extreme words between frames of mixed ones."""
    folds = CHANNELS // pe
    ob = out_bits(IN_BITS, signed, pixels)
    lo, hi = (-(1 << (IN_BITS - 1)), (1 << (IN_BITS - 1)) - 1) if signed else (0, (1 << IN_BITS) - 1)
    rng = np.random.default_rng(7)
    frames = [np.full((pixels, CHANNELS), hi), rng.integers(lo, hi + 1, (pixels, CHANNELS)),
              np.full((pixels, CHANNELS), lo), np.full((pixels, CHANNELS), hi)]
    fmap = np.stack(frames)[:, :, None, :]  # (4, pixels, 1, C)
    words = pool_stream(fmap, pe)
    expected = stream_sums(words, pixels, folds)  # (4 * folds, PE)
    extreme = -(1 << (ob - 1)) if signed else (1 << ob) - 1  # OUT_BITS's extreme
    assert (expected == extreme).any()
    run = simulate(binaries(pe, signed, pixels), tmp_path / "run", words, IN_BITS, len(expected), pe, ob, signed,
                   seed=3, in_stall=20, out_stall=60, max_cycles=50 * len(words))
    assert np.array_equal(run.codes, expected)
