"""The weight stream's resource patch (`hw.rtl.patches.memstream_output_shift_register_per_bit`):
FINN's memstream.sv and the patched copy, simulated in Verilator on the same weights with
the same random stalls and a reset mid-stream, give the same words at the same cycles
(the memory's words in order, over and over); and the patched one synthesizes its words
in flight to shift registers instead of flip-flops and multiplexers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import assert_same_words_and_cycles, finn_rtllib

from hw.rtl import patches
from hw.rtl.stream import TESTBENCH_TOP, simulate, stream_testbench, word_width
from hw.rtl.tools import verilate

DEPTH, WIDTH = 12, 20


def _weights() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 2, (DEPTH, WIDTH))  # (DEPTH, WIDTH) bits


def _sources(folder: Path, patched: bool) -> list[Path]:
    """memstream.sv (FINN's or patched), its weights, and a wrapper with the stream
    testbench's ports (input taken and ignored, output the weight stream)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = finn_rtllib("memstream", "hdl", "memstream.sv").read_text()
    (folder / "memstream.sv").write_text(patches.patch_library_file("memstream.sv", text) if patched else text)
    values = _weights() @ (1 << np.arange(WIDTH))  # (DEPTH,)
    (folder / "weights.dat").write_text("".join(f"{v:x}\n" for v in values))
    ow = word_width(WIDTH, 1)
    (folder / "mem_dut.sv").write_text(f"""module mem_dut(input logic ap_clk, ap_rst_n,
  input logic [7:0] in0_V_TDATA, input logic in0_V_TVALID, output logic in0_V_TREADY,
  output logic [{ow - 1}:0] out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY);
  assign in0_V_TREADY = 1'b1;
  memstream #(.SETS(1), .DEPTH({DEPTH}), .WIDTH({WIDTH}), .INIT_FILE("weights.dat")) mem (
    .clk(ap_clk), .rst(!ap_rst_n), .config_ce(1'b0), .config_we(1'b0), .config_address('0),
    .config_d0('0), .config_q0(), .config_rack(), .sidx('0), .svld(1'b0), .srdy(),
    .ordy(out0_V_TREADY), .ovld(out0_V_TVALID), .odat(out0_V_TDATA[{WIDTH - 1}:0]));
  assign out0_V_TDATA[{ow - 1}:{WIDTH}] = '0;
endmodule
""")
    return [folder / "memstream.sv", folder / "mem_dut.sv"]


def _runs(folder: Path, patched: bool, n_out: int) -> list:
    """Free-running, and with 30/45 % stalls and a reset after 40 input words."""
    sources = _sources(folder, patched)
    tb = folder / "tb.sv"
    tb.write_text(stream_testbench("mem_dut", 8, word_width(WIDTH, 1)))
    binary = verilate(TESTBENCH_TOP, [tb, *sources], folder / "build")
    ticks = np.zeros((4 * n_out, 1), np.int64)  # input words: only pace the reset
    runs = []
    for seed, (stall, reset) in enumerate([((0, 0), 0), ((30, 45), 40)], start=1):
        (folder / f"run{seed}").mkdir(parents=True, exist_ok=True)
        (folder / f"run{seed}" / "weights.dat").write_text((folder / "weights.dat").read_text())
        runs.append(simulate(binary, folder / f"run{seed}", ticks, 8, n_out, WIDTH, 1, False,
                             frame_words=DEPTH, seed=seed, in_stall=stall[0], out_stall=stall[1],
                             reset_at=reset, max_cycles=100 * n_out))
    return runs


def test_the_patched_stream_equals_finns_at_the_same_cycles(tmp_path):
    rounds = 8
    expected = np.tile(_weights(), (rounds, 1))  # the words in order, over and over
    assert_same_words_and_cycles(_runs(tmp_path / "finn", False, len(expected)),
                                 _runs(tmp_path / "patched", True, len(expected)), expected, rounds)


def test_the_patched_stream_keeps_its_words_in_shift_registers(tmp_path):
    from hw.rtl.synth import synthesize_files

    found = {}
    for patched in (False, True):
        folder = tmp_path / ("patched" if patched else "finn")
        sources = _sources(folder / "src", patched)
        found[patched] = synthesize_files("mem_dut", sources, folder / "synth",
                                          data_files=[folder / "src" / "weights.dat"])["resources"]
    assert found[True]["LUTRAM"] >= WIDTH  # one shift register per bit
    assert found[True]["FF"] < found[False]["FF"] - 4 * WIDTH, found
    assert found[True]["LUT"] + found[True]["LUTRAM"] < found[False]["LUT"] + found[False]["LUTRAM"], found
