"""The width converter's resource patch (`hw.rtl.patches.dwc_vector_of_least_common_multiple`):
FINN's dwc_axi.sv and the patched copy, each simulated in Verilator on the same random
bits with the same random stalls and a reset mid-stream, give the same words at the same
cycles, and those words are the input bits cut anew; Yosys maps the patched one to far
fewer LUTs."""
from __future__ import annotations

from math import lcm
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_same_words_and_cycles, finn_rtllib

from hw.rtl import patches
from hw.rtl.stream import TESTBENCH_TOP, simulate, stream_testbench, word_width
from hw.rtl.tools import verilate

PAIRS = [(112, 14), (4, 24), (16, 36)]
"""(IBITS, OBITS): head_0's 8:1 converter after its PE = 8 MVU, 1:6 before an MVU, and a
fractional ratio (the generator splits those, dwc_axi takes them too)."""


def _sources(folder: Path, patched: bool, ibits: int, obits: int) -> list[Path]:
    """The wrapper with the stream testbench's ports, dwc_axi.sv (FINN's or patched) and vpc.sv."""
    folder.mkdir(parents=True, exist_ok=True)
    dwc = finn_rtllib("dwc", "hdl", "dwc_axi.sv").read_text()
    (folder / "dwc_axi.sv").write_text(patches.patch_library_file("dwc_axi.sv", dwc) if patched else dwc)
    (folder / "vpc.sv").write_text(patches.patch_library_file("vpc.sv", finn_rtllib("dwc", "hdl", "vpc.sv").read_text()))
    iw, ow = word_width(ibits, 1), word_width(obits, 1)
    (folder / "dwc_dut.sv").write_text(f"""module dwc_dut(input logic ap_clk, ap_rst_n,
  input logic [{iw - 1}:0] in0_V_TDATA, input logic in0_V_TVALID, output logic in0_V_TREADY,
  output logic [{ow - 1}:0] out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY);
  dwc_axi #(.IBITS({ibits}), .OBITS({obits})) dwc (.ap_clk, .ap_rst_n,
    .s_axis_tready(in0_V_TREADY), .s_axis_tvalid(in0_V_TVALID), .s_axis_tdata(in0_V_TDATA),
    .m_axis_tready(out0_V_TREADY), .m_axis_tvalid(out0_V_TVALID), .m_axis_tdata(out0_V_TDATA));
endmodule
""")
    return [folder / "vpc.sv", folder / "dwc_axi.sv", folder / "dwc_dut.sv"]


def _runs(folder: Path, patched: bool, ibits: int, obits: int, bits: np.ndarray) -> list:
    """Free-running, and with 30/45 % stalls and a reset after a third of the words."""
    tb = folder / "tb.sv"
    sources = _sources(folder, patched, ibits, obits)
    tb.write_text(stream_testbench("dwc_dut", word_width(ibits, 1), word_width(obits, 1)))
    binary = verilate(TESTBENCH_TOP, [tb, *sources], folder / "build")
    n_out = bits.size // obits
    per_vector = lcm(ibits, obits) // obits
    return [simulate(binary, folder / f"run{seed}", bits, 1, n_out, obits, 1, False, frame_words=per_vector,
                     seed=seed, in_stall=stall[0], out_stall=stall[1], reset_at=reset,
                     max_cycles=50 * n_out + 1000)
            for seed, (stall, reset) in enumerate([((0, 0), 0), ((30, 45), len(bits) // 3 + 1)], start=1)]


@pytest.mark.parametrize("ibits,obits", PAIRS)
def test_the_patched_converter_streams_as_finns_at_the_same_cycles(ibits, obits, tmp_path):
    rng = np.random.default_rng(ibits * 1000 + obits)
    vectors = 24
    bits = rng.integers(0, 2, (vectors * lcm(ibits, obits) // ibits, ibits))  # (input words, IBITS)
    expected = bits.reshape(-1, obits)  # the same bits, OBITS to a word
    assert_same_words_and_cycles(_runs(tmp_path / "finn", False, ibits, obits, bits),
                                 _runs(tmp_path / "patched", True, ibits, obits, bits), expected, vectors)


def test_the_patched_converter_costs_a_fraction_of_the_luts(tmp_path):
    """backbone_1's 208 -> 13 bit converter of the default run."""
    from hw.rtl.synth import synthesize_files

    luts = {}
    for patched in (False, True):
        folder = tmp_path / ("patched" if patched else "finn")
        sources = _sources(folder / "src", patched, 208, 13)
        luts[patched] = synthesize_files("dwc_dut", sources, folder / "synth")["resources"]["LUT"]
    assert luts[True] < 0.25 * luts[False], luts
