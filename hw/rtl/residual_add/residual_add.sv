// Residual add of the btsee toolkit, for finn-plus's ElementwiseAdd of two input streams
// (lhs_style = rhs_style = "input", equal shapes: a ResNet block's join), which has HLS
// only on Zynq-7000.
//
// Inputs: in0 (the node's input 0, lhs) and in1 (input 1, rhs), PE values per word, value
// 0 in the lowest bits; in0's values are A_BITS wide, in1's B_BITS, each two's complement
// when its *_SIGNED = 1. Output: per lane a + b, OUT_BITS wide, two's complement when
// either input is signed; exact when OUT_BITS holds every sum (the generator passes FINN's
// out_dtype, checked by `fits` of the model). Word padding bits are zero.
// A join: a pair of words is taken only when both inputs offer one and the output register
// is free or being emptied in the same cycle; both TREADYs are then high together, never
// one alone. Registered output, AXI-Stream with backpressure; one word per cycle at full
// rate, one cycle of latency.
// Python model: hw/rtl/residual_add/model.py (`add_streams`, the golden simulator's add).
module btsee_residual_add #(
  parameter int PE = 1,
  parameter int A_BITS = 8,
  parameter bit A_SIGNED = 1,
  parameter int B_BITS = 8,
  parameter bit B_SIGNED = 1,
  parameter int OUT_BITS = 9,
  localparam int AW = (PE * A_BITS + 7) / 8 * 8,
  localparam int BW = (PE * B_BITS + 7) / 8 * 8,
  localparam int OW = (PE * OUT_BITS + 7) / 8 * 8
)(
  input  logic ap_clk,
  input  logic ap_rst_n,
  input  logic [AW-1:0] in0_V_TDATA,
  input  logic in0_V_TVALID,
  output logic in0_V_TREADY,
  input  logic [BW-1:0] in1_V_TDATA,
  input  logic in1_V_TVALID,
  output logic in1_V_TREADY,
  output logic [OW-1:0] out0_V_TDATA,
  output logic out0_V_TVALID,
  input  logic out0_V_TREADY
);
  // The lanes add in SW bits (wide enough for both inputs and the output), then keep the
  // low OUT_BITS: modulo 2**OUT_BITS, which is the exact sum whenever it fits.
  localparam int SW = A_BITS > B_BITS ? (A_BITS > OUT_BITS ? A_BITS : OUT_BITS)
                                      : (B_BITS > OUT_BITS ? B_BITS : OUT_BITS);

  logic [PE*OUT_BITS-1:0] sum;     // the sums of the words on offer
  logic [PE*OUT_BITS-1:0] result;  // the output register
  logic valid;
  logic space;                     // the output register can take a word this cycle

  for (genvar p = 0; p < PE; p++) begin : g_lane
    logic [A_BITS-1:0] a;
    logic [B_BITS-1:0] b;
    logic [SW-1:0] a_ext, b_ext, s;
    assign a = in0_V_TDATA[p*A_BITS +: A_BITS];
    assign b = in1_V_TDATA[p*B_BITS +: B_BITS];
    // sign or zero extension, chosen per input
    assign a_ext = A_SIGNED ? SW'($signed(a)) : SW'(a);
    assign b_ext = B_SIGNED ? SW'($signed(b)) : SW'(b);
    assign s = a_ext + b_ext;
    assign sum[p*OUT_BITS +: OUT_BITS] = s[OUT_BITS-1:0];
  end

  assign space = !valid || out0_V_TREADY;
  // each input is ready only when the other one offers a word: the pair goes together
  assign in0_V_TREADY = space && in1_V_TVALID;
  assign in1_V_TREADY = space && in0_V_TVALID;
  assign out0_V_TVALID = valid;
  assign out0_V_TDATA = OW'(result);

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      valid <= 1'b0;
    end else if (space) begin
      valid <= in0_V_TVALID && in1_V_TVALID;
    end
    if (space && in0_V_TVALID && in1_V_TVALID) result <= sum;
  end
endmodule
