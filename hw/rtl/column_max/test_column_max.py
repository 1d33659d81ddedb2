"""Block test of column_max.sv in Verilator against its Python model, on real head inputs
of the default run (head_0's two poolings on 40 test images: 1,200 columns of 30 rows, and
40 whole maps of 28 positions), with random stalls on both sides, a reset in the middle of a
row, the full-rate cycle count, and its cost against FINN's tall window."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw.rtl.column_max.model import VECTORS, column_max, geometry, row_stream, stream_column_max
from hw.rtl.stream import TESTBENCH_TOP, simulate, stream_testbench, word_width
from hw.rtl.tools import verilate

SOURCE = Path(__file__).with_name("column_max.sv")
BITS = 4
COLUMN_MAX_MAX_LEVELS = 16  # cells between registers in the block RAM configurations (measured 9 at most)
CASES = {  # name: (vector, PE, whole map, signed)
    "rows_pe1": ("rows", 1, False, False),  # head_0's row pooling as the default folds it
    "rows_pe4": ("rows", 4, False, False),
    "rows_pe16_signed": ("rows", 16, False, True),
    "row_pairs_pe4": ("row_pairs", 4, False, False),  # 2 rows a frame: the result bank fills up
    "whole_map_pe1": ("columns", 1, True, False),  # the pooling over the convolution's columns
    "whole_map_pe8_signed": ("columns", 8, True, True),
    "whole_map_pe32": ("columns", 32, True, False),  # one word a row: the word just merged is read back
}


def _maps(vector: str, signed: bool) -> np.ndarray:
    """(N, H, W, C) codes of a vector; "row_pairs": the row pooling's maps cut into frames
    of two rows, so that a slow output fills the block's result bank."""
    d = np.load(VECTORS)
    fmap = (d["rows"].reshape(-1, 2, *d["rows"].shape[2:]) if vector == "row_pairs" else d[vector]).astype(np.int64)
    return fmap - 8 if signed else fmap


def _params(pe: int, rows: int, words: int, signed: bool, style: str = "auto") -> str:
    return (f"#(.PE({pe}), .BITS({BITS}), .ROWS({rows}), .WORDS({words}), "
            f'.SIGNED({int(signed)}), .RAM_STYLE("{style}"))')


def _dut(pe: int, rows: int, words: int, signed: bool, style: str = "auto") -> str:
    return f"btsee_column_max {_params(pe, rows, words, signed, style)}"


def _binary(tmp_path: Path, pe: int, rows: int, words: int, signed: bool) -> Path:
    width = word_width(pe, BITS)
    tb = tmp_path / "tb.sv"
    tb.write_text(stream_testbench(_dut(pe, rows, words, signed), width, width))
    return verilate(TESTBENCH_TOP, [tb, SOURCE], tmp_path / "build")


@pytest.mark.parametrize("name", sorted(CASES))
def test_stream_model_is_the_golden_pooling(name):
    """The block's word model, put back in NHWC, is the golden simulator's ColumnMax."""
    vector, pe, whole, signed = CASES[name]
    fmap = _maps(vector, signed)
    n, h, w, c = fmap.shape
    rows, words = geometry(h, w, c, pe, whole)
    out = stream_column_max(row_stream(fmap, pe), rows, words).reshape(n, 1, 1 if whole else w, c)
    assert np.array_equal(out, column_max(fmap, whole))


@pytest.mark.parametrize("name", sorted(CASES))
def test_column_max_block_with_stalls_and_reset(name, tmp_path):
    vector, pe, whole, signed = CASES[name]
    fmap = _maps(vector, signed)
    _, h, w, c = fmap.shape
    rows, words = geometry(h, w, c, pe, whole)
    binary = _binary(tmp_path, pe, rows, words, signed)
    stream = row_stream(fmap, pe)  # (n_in, PE)
    expected = stream_column_max(stream, rows, words)  # (n_out, PE)
    for seed, (in_stall, out_stall) in enumerate([(0, 0), (30, 45), (70, 10), (0, 85)], start=1):
        run = simulate(binary, tmp_path / f"run{seed}", stream, BITS, len(expected), pe, BITS, signed,
                       seed=seed, in_stall=in_stall, out_stall=out_stall,
                       reset_at=rows * words * 2 + words // 2 + 1,  # the middle of a row of the third frame
                       max_cycles=50 * len(stream))
        assert np.array_equal(run.codes, expected), f"{name}, stalls {in_stall}/{out_stall}%"


def test_full_rate_without_stalls(tmp_path):
    """One input word per cycle when neither side stalls: ROWS x WORDS cycles a frame."""
    fmap = _maps("rows", False)
    _, h, w, c = fmap.shape
    rows, words = geometry(h, w, c, 4, False)
    binary = _binary(tmp_path, 4, rows, words, False)
    stream = row_stream(fmap, 4)
    run = simulate(binary, tmp_path / "run", stream, BITS, len(stream) // rows, 4, BITS, False,
                   frame_words=words)
    assert run.cycles_per_frame() == rows * words


@pytest.mark.parametrize("style", ["block", "distributed"])
def test_block_synthesizes_small(style, tmp_path):
    """Yosys for xc7, head_0's row pooling (30 rows of 480 words, PE 1), its two memories in
    block RAM (as the conversion places memories of 1 Kb and more) or in LUTs: far below
    FINN's tall window for the same pooling (about 1,200 LUT and 640 LUTRAM synthesized)."""
    from hw.rtl.synth import synthesize_files

    width = word_width(1, BITS)
    wrapper = tmp_path / "block_top.sv"
    dut = _dut(1, 30, 480, False, style)
    wrapper.write_text(
        f"module block_top(input ap_clk, input ap_rst_n, input [{width - 1}:0] in0_V_TDATA, input in0_V_TVALID,\n"
        f"  output in0_V_TREADY, output [{width - 1}:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY);\n"
        f"  {dut} block (.*);\nendmodule\n")
    r = synthesize_files("block_top", [SOURCE, wrapper], tmp_path / "synth")["resources"]
    assert r["DSP"] == 0
    if style == "block":
        assert r["BRAM18"] == 2 and r["LUTRAM"] == 0 and 0 < r["LUT"] < 100, r
    else:
        assert r["BRAM18"] == 0 and 0 < r["LUT"] + r["LUTRAM"] < 400, r


@pytest.mark.parametrize("name", sorted(CASES))
def test_block_ram_style_maps_to_block_ram(name, tmp_path):
    """RAM_STYLE "block" (the conversion's choice for memories of 1 Kb and more) puts the
    memories in RAMB18E1/RAMB36E1 for every geometry of the block test, no LUTRAM: each is
    read straight into a register. With WORDS = 1 only the result bank is a memory (the
    running max is the register itself). Its depth (hw/rtl/depth.py) is reported."""
    from hw.rtl.block_depth import block_depth, summary

    vector, pe, whole, signed = CASES[name]
    _, h, w, c = _maps(vector, signed).shape
    rows, words = geometry(h, w, c, pe, whole)
    r = block_depth("btsee_column_max", _params(pe, rows, words, signed, "block"), tmp_path / "synth",
                    source=SOURCE)
    print(f"{name} (ROWS {rows}, WORDS {words}): {summary(r)}; {r['resources']}")
    block_rams = r["design_cells"].get("RAMB18E1", 0) + r["design_cells"].get("RAMB36E1", 0)
    assert block_rams >= (2 if words > 1 else 1) and r["resources"]["LUTRAM"] == 0, r["design_cells"]
    assert 0 < r["levels"] <= COLUMN_MAX_MAX_LEVELS, summary(r)
