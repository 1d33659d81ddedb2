// Exit merge of the btsee toolkit: one (class, exit index) word per image, in input order.
//
// in_V[k], k < EXITS: the decision words of exit k (btsee_exit_decision's: class in bits
// [CLASS_BITS-1:0], bit CLASS_BITS set when the image exits there); in_V[EXITS]: the
// final classifier's, which always decides. An image's decisions arrive in exit order on
// their streams, and images in input order on each stream, so the merge reads exit 0's
// next decision, and while the image does not exit there, the next exit's, until one
// takes it. Output word: {exit index, class}, padded to whole bytes.
// AXI-Stream with backpressure; a decision that does not exit is taken without waiting.
// Python model: hw/rtl/exit_glue/model.py (`exit_merge`).
module btsee_exit_merge #(
  parameter int EXITS = 3,
  parameter int CLASS_BITS = 4,
  parameter int DECISION_WIDTH = 24,
  localparam int N = EXITS + 1,
  localparam int IW = N > 1 ? $clog2(N) : 1,
  localparam int OUT_W = (IW + CLASS_BITS + 7) / 8 * 8
)(
  input  logic ap_clk,
  input  logic ap_rst_n,
  input  logic [N*DECISION_WIDTH-1:0] in_V_TDATA,  // stream k in bits [k*DECISION_WIDTH +: DECISION_WIDTH]
  input  logic [N-1:0] in_V_TVALID,
  output logic [N-1:0] in_V_TREADY,
  output logic [OUT_W-1:0] out0_V_TDATA,
  output logic out0_V_TVALID,
  input  logic out0_V_TREADY
);
  logic [IW-1:0] stage;  // the exit whose decision on the current image comes next
  logic valid;
  logic [OUT_W-1:0] result;
  wire [DECISION_WIDTH-1:0] decision = in_V_TDATA[stage*DECISION_WIDTH +: DECISION_WIDTH];
  wire leaves = decision[CLASS_BITS] || stage == IW'(EXITS);
  wire can_take = !leaves || !valid || out0_V_TREADY;
  wire take = in_V_TVALID[stage] && can_take;

  for (genvar k = 0; k < N; k++) begin : g_ready
    assign in_V_TREADY[k] = stage == IW'(k) && can_take;
  end
  assign out0_V_TVALID = valid;
  assign out0_V_TDATA = result;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      stage <= '0;
      valid <= 1'b0;
      result <= '0;
    end else begin
      if (valid && out0_V_TREADY) valid <= 1'b0;
      if (take) begin
        if (leaves) begin
          result <= OUT_W'({stage, decision[CLASS_BITS-1:0]});
          valid <= 1'b1;
          stage <= '0;
        end else begin
          stage <= stage + 1'b1;
        end
      end
    end
  end
endmodule
