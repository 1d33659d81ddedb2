// Stream tail of the btsee board shell: passes the multi-exit design's decision words to the
// output DMA, zero-extended from IN_WIDTH to OUT_WIDTH bits (the DMA takes 8, 16, 32, ...
// bit streams), and raises TLAST on every `batch`-th word so that each DMA transfer ends
// after one batch of images (AXI DMA's S2MM channel needs TLAST). `batch` comes from an
// AXI GPIO the driver writes before it starts the DMAs (the size is registered: it applies
// from the second clock after the write); 0 counts as 1. A reset restarts the count. TLAST
// comes once the words counted reach the batch size (`count >= size - 1`, not `==`): when a
// transfer is aborted part-way and the driver then shrinks the batch below the words
// already counted, the next word ends the transfer instead of TLAST never coming.
// Python model: hw/vivado/model.py (`tlast_flags`, `last_flags`).
module btsee_axis_last #(
  parameter int IN_WIDTH = 8,
  parameter int OUT_WIDTH = 8
)(
  input  logic ap_clk,
  input  logic ap_rst_n,
  input  logic [31:0] batch,
  input  logic [IN_WIDTH-1:0] s_axis_tdata,
  input  logic s_axis_tvalid,
  output logic s_axis_tready,
  output logic [OUT_WIDTH-1:0] m_axis_tdata,
  output logic m_axis_tvalid,
  input  logic m_axis_tready,
  output logic m_axis_tlast
);
  if (OUT_WIDTH < IN_WIDTH) $error("btsee_axis_last: OUT_WIDTH %0d < IN_WIDTH %0d", OUT_WIDTH, IN_WIDTH);
  logic [31:0] count;  // words sent in the current batch: at most the largest size - 1 seen
  logic [31:0] last_index;  // size - 1, registered (0 counts as 1, so it never wraps): the compare
                            // reads two registers, not the GPIO's value through a subtraction

  assign s_axis_tready = m_axis_tready;
  assign m_axis_tvalid = s_axis_tvalid;
  assign m_axis_tdata = OUT_WIDTH'(s_axis_tdata);
  assign m_axis_tlast = count >= last_index;

  always_ff @(posedge ap_clk) begin  // follows the GPIO every cycle, in reset too
    last_index <= batch == 0 ? 32'd0 : batch - 1;
  end
  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) count <= 0;
    else if (s_axis_tvalid && m_axis_tready) count <= m_axis_tlast ? 32'd0 : count + 1;
  end
endmodule
