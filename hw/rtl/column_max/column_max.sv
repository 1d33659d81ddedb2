// Running column max of the btsee toolkit: the exit heads' row pooling in one pass.
//
// A head pools its input feature map (H, W, C) over the rows, to (1, W, C), then over the
// columns, to (1, 1, C). FINN builds each as a sliding window as tall (or wide) as the map
// feeding a Pool layer, which buffers the whole map. This block keeps one running maximum
// per (column, channel) instead, WORDS words of PE values (block or distributed RAM, RAM_STYLE):
//
//   input  (ROWS, WORDS, PE) words, in FINN's NHWC order (ROWS = H, WORDS = W*C/PE for the
//          row pooling; ROWS = H*W, WORDS = C/PE for a pooling over the whole map);
//   output (WORDS, PE): the last row's max(running, input) word by word.
//
// Values are BITS wide, value 0 in the lowest bits, signed when SIGNED = 1.
// The last row's maxima go to a second bank of WORDS words, which the output side empties
// while the next image's rows accumulate, so a slow consumer (a head's convolution) does
// not hold back the rows. AXI-Stream with backpressure: a last-row word is taken once the
// previous image's word in its slot has been sent; one word per cycle at full rate.
// Python model: hw/rtl/column_max/model.py (the golden simulator's ColumnMax layer).
module btsee_column_max #(
  parameter int PE = 1,
  parameter int BITS = 4,
  parameter int ROWS = 2,
  parameter int WORDS = 1,
  parameter bit SIGNED = 0,
  parameter string RAM_STYLE = "auto",  // the memories' synthesis hint: "block", "distributed" or "auto"
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
  localparam int HW = $clog2(WORDS + 1);
  // Both memories are read synchronously, memory straight into a register with nothing in
  // between (the block RAM read path: Vivado and Yosys fold that register into the RAM):
  // `running` one word ahead into `ahead`, `maxima` into the output register `result`. The
  // word read ahead is never the word being written (next_word != word when WORDS > 1), so
  // no forwarding is needed; with WORDS = 1 the running max is `ahead` itself, no memory.
  (* ram_style = RAM_STYLE *) logic [PE*BITS-1:0] maxima [WORDS];   // results waiting to be sent: a FIFO written by the last row
  logic [PE*BITS-1:0] ahead;             // running[word], read when the previous word was taken
  logic [PE*BITS-1:0] merged;            // running max with the word being taken
  logic [PE*BITS-1:0] result;            // the FIFO's oldest word, on the output
  logic [RW-1:0] row;
  logic [AW-1:0] word;                   // input position in the row (the FIFO's write slot in the last row)
  logic [AW-1:0] read_at;
  logic [HW-1:0] stored;                 // results in `maxima`, not counting the one in `result`
  logic result_valid;
  wire first_row = row == '0;
  wire last_row = row == RW'(ROWS - 1);
  wire take = in0_V_TVALID && in0_V_TREADY;
  wire give = out0_V_TVALID && out0_V_TREADY;
  wire write = take && last_row;
  wire fetch = stored != '0 && (!result_valid || give);
  wire [AW-1:0] next_word = word == AW'(WORDS - 1) ? '0 : word + 1'b1;

  for (genvar p = 0; p < PE; p++) begin : g_lane
    logic [BITS-1:0] a, b;
    logic b_wins;
    assign a = ahead[p*BITS +: BITS];
    assign b = in0_V_TDATA[p*BITS +: BITS];
    assign b_wins = SIGNED ? ($signed(b) > $signed(a)) : (b > a);
    assign merged[p*BITS +: BITS] = (first_row || b_wins) ? b : a;
  end

  assign in0_V_TREADY = !last_row || stored + HW'(result_valid) != HW'(WORDS);
  assign out0_V_TVALID = result_valid;
  assign out0_V_TDATA = W'(result);

  // the memories: no reset needed, row 0 and the last row overwrite
  if (WORDS > 1) begin : g_running
    (* ram_style = RAM_STYLE *) logic [PE*BITS-1:0] running [WORDS];  // per (column, channel group): the max of the rows so far
    always_ff @(posedge ap_clk) begin
      if (take && !last_row) running[word] <= merged;
      if (take) ahead <= running[next_word];
    end
  end else begin : g_one_word
    always_ff @(posedge ap_clk)
      if (take) ahead <= merged;  // the word just merged is the next word read
  end

  always_ff @(posedge ap_clk) begin
    if (write) maxima[word] <= merged;
    if (fetch) result <= maxima[read_at];
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      row <= '0;
      word <= '0;
      read_at <= '0;
      stored <= '0;
      result_valid <= 1'b0;
    end else begin
      if (take) begin
        word <= next_word;
        if (word == AW'(WORDS - 1)) row <= last_row ? '0 : row + 1'b1;
      end
      if (fetch) read_at <= read_at == AW'(WORDS - 1) ? '0 : read_at + 1'b1;
      stored <= stored + HW'(write) - HW'(fetch);
      if (fetch) result_valid <= 1'b1;
      else if (give) result_valid <= 1'b0;
    end
  end
endmodule
