"""axis_last.sv in Verilator against its model: words pass unchanged (zero-extended) in
order and TLAST marks every batch-th word, with random stalls on both sides."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from hw.rtl.tools import run_tool, verilate
from hw.vivado.model import last_flags

HERE = Path(__file__).parent
TESTBENCH = """
module axis_last_tb;
  logic clk = 0, rst_n = 0;
  logic [@IN@-1:0] s_data; logic s_valid, s_ready;
  logic [@OUT@-1:0] m_data; logic m_valid, m_ready, m_last;
  int sent = 0, got = 0, seed, cycles = 0;
  btsee_axis_last #(.IN_WIDTH(@IN@), .OUT_WIDTH(@OUT@)) dut(.ap_clk(clk), .ap_rst_n(rst_n), .batch(@BATCH@),
    .s_axis_tdata(s_data), .s_axis_tvalid(s_valid), .s_axis_tready(s_ready),
    .m_axis_tdata(m_data), .m_axis_tvalid(m_valid), .m_axis_tready(m_ready), .m_axis_tlast(m_last));
  assign s_data = @IN@'(sent * 7 + 3);
  initial begin
    if (!$value$plusargs("seed=%d", seed)) seed = 1;
    void'($urandom(seed));
    s_valid = 0; m_ready = 0;
    repeat (3) begin #1 clk = 1; #1 clk = 0; end
    rst_n = 1;
    while (got < @WORDS@ && cycles < 100 * @WORDS@) begin
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


@pytest.mark.parametrize("in_width,out_width,batch,stall", [(4, 8, 5, 30), (8, 8, 0, 40)])
def test_axis_last_marks_every_batch(in_width, out_width, batch, stall, tmp_path):
    words = 150
    tb = tmp_path / "tb.sv"
    tb.write_text(TESTBENCH.replace("@IN@", str(in_width)).replace("@OUT@", str(out_width))
                  .replace("@BATCH@", f"32'd{batch}").replace("@WORDS@", str(words)).replace("@STALL@", str(stall)))
    binary = verilate("axis_last_tb", [tb, HERE / "axis_last.sv"], tmp_path / "build")
    log = tmp_path / "sim.log"
    run_tool([str(binary), "+seed=3"], "the Verilator simulation", tb, log, tmp_path)
    rows = [tuple(map(int, m.groups())) for m in re.finditer(r"word (\d+) (\d+)", log.read_text())]
    data = np.array([r[0] for r in rows])
    last = np.array([r[1] for r in rows], bool)
    assert len(rows) == words
    assert np.array_equal(data, (np.arange(words) * 7 + 3) % (1 << in_width))
    assert np.array_equal(last, last_flags(words, batch))
