// Streaming global sum pool of the btsee toolkit, for FINN's GlobalAccPool, which has HLS only.
//
// Input: an NHWC feature map as FINN streams it, (PIXELS, CHANNELS/PE, PE): for each of the
// PIXELS = H*W pixels its FOLDS = CHANNELS/PE words, each holding PE channel values of
// IN_BITS bits (value 0 in the lowest bits, two's complement when IN_SIGNED = 1).
// Output: after a frame's last pixel, FOLDS words (1, 1, CHANNELS/PE, PE): word f holds the
// sums over all pixels of channels f*PE .. f*PE+PE-1, OUT_BITS each (value 0 lowest; two's
// complement when the input is signed). OUT_BITS is FINN's output width, which holds every
// possible sum, so the sums wrap never. Padding bits of both words: the input's are ignored,
// the output's are zero.
// The FOLDS partial sums live in a memory (one word of PE sums per fold, read asynchronously
// at the fold address and written back: distributed RAM); pixel 0 overwrites a fold's word
// instead of adding to it, so the memory needs no clearing between frames or after reset.
// AXI-Stream with backpressure: a last-pixel word is taken only when the output register is
// free or being emptied in the same cycle; the other words are taken whenever they come.
// One word per cycle at full rate (a frame in PIXELS*FOLDS cycles): the sums of frame n
// leave while its last pixel arrives, so frame n+1 follows without a gap.
// Reset (ap_rst_n low, synchronous) restarts at pixel 0, fold 0 with the output empty.
// Python model: hw/rtl/global_acc_pool/model.py (stream_sums; channel_sums for the golden simulator).
module btsee_global_acc_pool #(
  parameter int PE = 1,
  parameter int IN_BITS = 4,
  parameter bit IN_SIGNED = 0,
  parameter int OUT_BITS = 12,
  parameter int CHANNELS = 8,
  parameter int PIXELS = 256,
  localparam int IW = (PE * IN_BITS + 7) / 8 * 8,
  localparam int OW = (PE * OUT_BITS + 7) / 8 * 8
)(
  input  logic ap_clk,
  input  logic ap_rst_n,
  input  logic [IW-1:0] in0_V_TDATA,
  input  logic in0_V_TVALID,
  output logic in0_V_TREADY,
  output logic [OW-1:0] out0_V_TDATA,
  output logic out0_V_TVALID,
  input  logic out0_V_TREADY
);
  localparam int FOLDS = CHANNELS / PE;
  localparam int FW = FOLDS > 1 ? $clog2(FOLDS) : 1;    // fold counter width
  localparam int PW = PIXELS > 1 ? $clog2(PIXELS) : 1;  // pixel counter width
  localparam int SW = PE * OUT_BITS;                    // one word of PE sums

  logic [SW-1:0] sums [FOLDS];   // partial sums per fold: the distributed RAM
  logic [SW-1:0] stored;         // sums[fold], read asynchronously
  logic [SW-1:0] added;          // stored (or 0 at pixel 0) plus the word being taken
  logic [SW-1:0] result;         // the output register
  logic [FW-1:0] fold;
  logic [PW-1:0] pixel;
  logic first_pixel, last_pixel, last_fold, take, valid;

  if (PE < 1 || CHANNELS % PE != 0) begin : g_bad_pe
    $error("btsee_global_acc_pool: PE %0d does not divide CHANNELS %0d", PE, CHANNELS);
  end
  if (OUT_BITS < IN_BITS) begin : g_bad_width
    $error("btsee_global_acc_pool: OUT_BITS %0d < IN_BITS %0d", OUT_BITS, IN_BITS);
  end

  assign first_pixel = pixel == '0;
  assign last_pixel = pixel == PW'(PIXELS - 1);
  assign last_fold = fold == FW'(FOLDS - 1);
  assign stored = sums[fold];

  for (genvar p = 0; p < PE; p++) begin : g_lane
    logic [IN_BITS-1:0] value;
    logic negative;
    logic [OUT_BITS-1:0] extended;  // value sign- or zero-extended
    assign value = in0_V_TDATA[p*IN_BITS +: IN_BITS];
    assign negative = IN_SIGNED && value[IN_BITS-1];
    assign extended = OUT_BITS'({{OUT_BITS{negative}}, value});
    assign added[p*OUT_BITS +: OUT_BITS] = (first_pixel ? '0 : stored[p*OUT_BITS +: OUT_BITS]) + extended;
  end

  assign in0_V_TREADY = !last_pixel || !valid || out0_V_TREADY;
  assign take = in0_V_TVALID && in0_V_TREADY;
  assign out0_V_TVALID = valid;
  assign out0_V_TDATA = OW'(result);

  always_ff @(posedge ap_clk) begin  // the memory: no reset, pixel 0 overwrites
    if (take && !last_pixel) sums[fold] <= added;
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      fold <= '0;
      pixel <= '0;
      valid <= 1'b0;
      result <= '0;
    end else begin
      if (valid && out0_V_TREADY) valid <= 1'b0;
      if (take) begin
        if (last_pixel) begin
          result <= added;
          valid <= 1'b1;
        end
        if (last_fold) begin
          fold <= '0;
          pixel <= last_pixel ? '0 : pixel + 1'b1;
        end else begin
          fold <= fold + 1'b1;
        end
      end
    end
  end
endmodule
