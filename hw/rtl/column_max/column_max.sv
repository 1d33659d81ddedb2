// Running column max of the btsee toolkit: the exit heads' row pooling in one pass.
//
// A head pools its input feature map (H, W, C) over the rows, to (1, W, C), then over the
// columns, to (1, 1, C). FINN builds each as a sliding window as tall (or wide) as the map
// feeding a Pool layer, which buffers the whole map. This block keeps one running maximum
// per (column, channel) instead, WORDS registers of PE values in distributed RAM:
//
//   input  (ROWS, WORDS, PE) words, in FINN's NHWC order (ROWS = H, WORDS = W*C/PE for the
//          row pooling; ROWS = H*W, WORDS = C/PE for a pooling over the whole map);
//   output (WORDS, PE): during the last row, max(running, input) word by word.
//
// Values are BITS wide, value 0 in the lowest bits, signed when SIGNED = 1.
// AXI-Stream with backpressure; rows before the last are always taken, a last-row word
// only when the output register is free or being emptied: one word per cycle at full rate.
// Python model: hw/rtl/column_max/model.py (the golden simulator's ColumnMax layer).
module btsee_column_max #(
  parameter int PE = 1,
  parameter int BITS = 4,
  parameter int ROWS = 2,
  parameter int WORDS = 1,
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
  localparam int RW = ROWS > 1 ? $clog2(ROWS) : 1;
  localparam int AW = WORDS > 1 ? $clog2(WORDS) : 1;
  logic [PE*BITS-1:0] running [WORDS];  // per (column, channel group): the max of the rows so far
  logic [PE*BITS-1:0] merged;            // running max with the word being taken
  logic [PE*BITS-1:0] result;
  logic [RW-1:0] row;
  logic [AW-1:0] word;
  logic valid;
  wire first_row = row == '0;
  wire last_row = row == RW'(ROWS - 1);
  wire take = in0_V_TVALID && in0_V_TREADY;

  for (genvar p = 0; p < PE; p++) begin : g_lane
    logic [BITS-1:0] a, b;
    logic b_wins;
    assign a = running[word][p*BITS +: BITS];
    assign b = in0_V_TDATA[p*BITS +: BITS];
    assign b_wins = SIGNED ? ($signed(b) > $signed(a)) : (b > a);
    assign merged[p*BITS +: BITS] = (first_row || b_wins) ? b : a;
  end

  assign in0_V_TREADY = !last_row || !valid || out0_V_TREADY;
  assign out0_V_TVALID = valid;
  assign out0_V_TDATA = W'(result);

  always_ff @(posedge ap_clk) begin  // the running maxima: no reset needed, row 0 overwrites
    if (take && !last_row) running[word] <= merged;
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      row <= '0;
      word <= '0;
      valid <= 1'b0;
      result <= '0;
    end else begin
      if (valid && out0_V_TREADY) valid <= 1'b0;
      if (take) begin
        if (last_row) begin
          result <= merged;
          valid <= 1'b1;
        end
        if (word == AW'(WORDS - 1)) begin
          word <= '0;
          row <= last_row ? '0 : row + 1'b1;
        end else begin
          word <= word + 1'b1;
        end
      end
    end
  end
endmodule
