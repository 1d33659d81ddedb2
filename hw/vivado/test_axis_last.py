"""axis_last.sv in Verilator against its model: words pass unchanged (zero-extended) in
order and TLAST marks every batch-th word, with random stalls on both sides; a transfer
aborted part-way (the batch size changed mid-transfer, or a reset) is followed by a smaller
batch size and TLAST still comes."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from hw.rtl.tools import run_tool, verilate
from hw.vivado.model import last_flags, tlast_flags

HERE = Path(__file__).parent
TESTBENCH = """
module axis_last_tb;
  logic clk = 0, rst_n = 0, did_reset = 0;
  logic [31:0] batch;
  logic [@IN@-1:0] s_data; logic s_valid, s_ready;
  logic [@OUT@-1:0] m_data; logic m_valid, m_ready, m_last;
  int sent = 0, got = 0, seed, cycles = 0;
  btsee_axis_last #(.IN_WIDTH(@IN@), .OUT_WIDTH(@OUT@)) dut(.ap_clk(clk), .ap_rst_n(rst_n), .batch(batch),
    .s_axis_tdata(s_data), .s_axis_tvalid(s_valid), .s_axis_tready(s_ready),
    .m_axis_tdata(m_data), .m_axis_tvalid(m_valid), .m_axis_tready(m_ready), .m_axis_tlast(m_last));
  assign s_data = @IN@'(sent * 7 + 3);
  initial begin
    if (!$value$plusargs("seed=%d", seed)) seed = 1;
    void'($urandom(seed));
    s_valid = 0; m_ready = 0; batch = @BATCH@;
    repeat (3) begin #1 clk = 1; #1 clk = 0; end
    rst_n = 1;
    while (got < @WORDS@ && cycles < 100 * @WORDS@) begin
      if (sent == @CHANGE_AT@ && batch != @NEW_BATCH@) begin  // the driver rewrites the batch GPIO
        s_valid = 0; batch = @NEW_BATCH@;                     // between transfers: no word meanwhile
        repeat (2) begin #1 clk = 1; #1 clk = 0; end
      end
      if (sent == @RESET_AT@ && !did_reset) begin  // abort: the design held in reset, no words
        s_valid = 0; rst_n = 0;
        repeat (2) begin #1 clk = 1; #1 clk = 0; end
        rst_n = 1; did_reset = 1;
      end
      s_valid = sent < @WORDS@ && ($urandom % 100) >= @STALL@;
      m_ready = ($urandom % 100) >= @STALL@;
      #1;
      if (m_valid && m_ready) begin $display("word %0d %0d", m_data, m_last); got++; end
      if (s_valid && s_ready) sent++;
      clk = 1; #1 clk = 0; cycles++;
    end
    $finish;
  end
endmodule
"""


def simulate(tmp_path: Path, *, in_width: int, out_width: int, batch: int, words: int, stall: int,
             new_batch: int | None = None, change_at: int | None = None, reset_at: int = -1,
             design: Path = HERE / "axis_last.sv") -> tuple[np.ndarray, np.ndarray]:
    """Runs the testbench on `design`: (data, tlast) of every output word; the batch input is
    `batch` until `change_at` words have passed, `new_batch` from then on; a reset before word
    `reset_at` (-1: none)."""
    values = {"@IN@": in_width, "@OUT@": out_width, "@BATCH@": f"32'd{batch}", "@WORDS@": words,
              "@STALL@": stall, "@NEW_BATCH@": f"32'd{batch if new_batch is None else new_batch}",
              "@CHANGE_AT@": words if change_at is None else change_at, "@RESET_AT@": reset_at}
    text = TESTBENCH
    for key, value in values.items():
        text = text.replace(key, str(value))
    tb = tmp_path / "tb.sv"
    tb.write_text(text)
    binary = verilate("axis_last_tb", [tb, design], tmp_path / "build")
    log = tmp_path / "sim.log"
    run_tool([str(binary), "+seed=3"], "the Verilator simulation", tb, log, tmp_path)
    rows = [tuple(map(int, m.groups())) for m in re.finditer(r"word (\d+) (\d+)", log.read_text())]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows], bool)


@pytest.mark.parametrize("in_width,out_width,batch,stall", [(4, 8, 5, 30), (8, 8, 0, 40)])
def test_axis_last_marks_every_batch(in_width, out_width, batch, stall, tmp_path):
    words = 150
    data, last = simulate(tmp_path, in_width=in_width, out_width=out_width, batch=batch, words=words, stall=stall)
    assert len(data) == words
    assert np.array_equal(data, (np.arange(words) * 7 + 3) % (1 << in_width))
    assert np.array_equal(last, last_flags(words, batch))


@pytest.mark.parametrize("case,batch,new_batch,change_at,reset_at,first_last", [
    # an aborted transfer of 10 left 7 words counted; the driver shrinks the batch to 4 (3, 1, 0)
    ("shrink below the count", 10, 4, 7, -1, 7),
    ("shrink to 3, count 4", 10, 3, 4, -1, 4),
    ("shrink to 1", 10, 1, 5, -1, 5),
    ("shrink to 0 (counts as 1)", 10, 0, 5, -1, 5),
    # the design reset after the abort: the count restarts, the smaller batch counts from 0
    ("reset, then shrink", 10, 4, 7, 7, 10),
    ("grow mid-transfer", 4, 10, 2, -1, 9),
])
def test_tlast_comes_after_an_aborted_transfer_and_a_smaller_batch(case, batch, new_batch, change_at, reset_at,
                                                                  first_last, tmp_path):
    words = 40
    data, last = simulate(tmp_path, in_width=8, out_width=8, batch=batch, words=words, stall=30,
                          new_batch=new_batch, change_at=change_at, reset_at=reset_at)
    assert len(data) == words, case
    assert np.array_equal(data, (np.arange(words) * 7 + 3) % 256), case
    batches = [batch if i < change_at else new_batch for i in range(words)]
    expected = tlast_flags(batches, [reset_at] if reset_at >= 0 else [])
    assert int(np.flatnonzero(expected[change_at:])[0]) + change_at == first_last, case  # the model's own check
    assert np.array_equal(last, expected), (case, np.flatnonzero(last).tolist(), np.flatnonzero(expected).tolist())
    # after the first TLAST of the new size, one every max(new_batch, 1) words
    assert np.diff(np.flatnonzero(last[first_last:])).tolist() == [max(new_batch, 1)] * (
        len(np.flatnonzero(last[first_last:])) - 1), case


def test_the_model_matches_last_flags_for_a_fixed_batch():
    for batch in (0, 1, 2, 5, 17):
        assert np.array_equal(tlast_flags([batch] * 60), last_flags(60, batch)), batch
