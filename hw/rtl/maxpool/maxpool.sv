// Streaming max pool of the btsee toolkit, for FINN's Pool (MaxPool), which has HLS only.
//
// Input: FINN's depthwise sliding-window stream, (OH, OW, C/PE, K, PE): every KERNEL
// consecutive words hold one window position each of the same PE channels. Output: one
// word per KERNEL input words, the element-wise maximum, (OH, OW, C/PE, PE). Values are
// BITS wide, value 0 in the lowest bits, signed when SIGNED = 1.
// AXI-Stream with backpressure: a window's last word is taken only when the output
// register is free or being emptied in the same cycle; one word per cycle at full rate.
// Python model: hw/rtl/maxpool/model.py (the golden simulator's max).
module btsee_maxpool #(
  parameter int PE = 1,
  parameter int BITS = 4,
  parameter int KERNEL = 4,
  parameter bit SIGNED = 0,
  localparam int W = (PE * BITS + 7) / 8 * 8
)(
  input  logic ap_clk,
  input  logic ap_rst_n,
  input  logic [W-1:0] in0_V_TDATA,
  input  logic in0_V_TVALID,
  output logic in0_V_TREADY,
  output logic [W-1:0] out0_V_TDATA,
  output logic out0_V_TVALID,
  input  logic out0_V_TREADY
);
  localparam int CW = KERNEL > 1 ? $clog2(KERNEL) : 1;
  logic [PE*BITS-1:0] running;   // the max so far over the window's words
  logic [PE*BITS-1:0] merged;    // running max with the word being taken
  logic [PE*BITS-1:0] result;
  logic [CW-1:0] position;       // which word of the window comes next
  logic valid;

  for (genvar p = 0; p < PE; p++) begin : g_lane
    logic [BITS-1:0] a, b;
    logic b_wins;
    assign a = running[p*BITS +: BITS];
    assign b = in0_V_TDATA[p*BITS +: BITS];
    assign b_wins = SIGNED ? ($signed(b) > $signed(a)) : (b > a);
    assign merged[p*BITS +: BITS] = (position == 0 || b_wins) ? b : a;
  end

  assign in0_V_TREADY = !valid || out0_V_TREADY;
  assign out0_V_TVALID = valid;
  assign out0_V_TDATA = W'(result);

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      position <= '0;
      valid <= 1'b0;
      running <= '0;
      result <= '0;
    end else begin
      if (valid && out0_V_TREADY) valid <= 1'b0;
      if (in0_V_TVALID && in0_V_TREADY) begin
        if (position == CW'(KERNEL - 1)) begin
          result <= merged;
          valid <= 1'b1;
          position <= '0;
        end else begin
          running <= merged;
          position <= position + 1'b1;
        end
      end
    end
  end
endmodule
