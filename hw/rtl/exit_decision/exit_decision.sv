// Exit decision unit of the btsee toolkit: the CPM comparator on a head's integer logits.
//
// Input: one signed LOGIT_BITS logit per word, K words per image (class 0 first). It keeps
// the running argmax (a later logit takes the lead only when strictly larger, so ties go
// to the lowest index) and the runner-up; after the K-th logit it emits one word:
//   bits [CW-1:0]       the predicted class
//   bit  CW             exits: ENABLED[class] and score >= THRESHOLDS[class]
//   bits [CW+1 +: SW]   the score, signed: top-2 margin (TOP_SCORE = 0) or the top logit
// One logit per cycle and no stalls of its own: TREADY drops only on a K-th logit while the
// previous result still waits for the output (backpressure). AXI-Stream both sides.
// Python model: hw/rtl/exit_decision/model.py (calib.rules.decide, the golden simulator's).
module btsee_exit_decision #(
  parameter int K = 10,
  parameter int LOGIT_BITS = 16,
  parameter bit TOP_SCORE = 0,
  parameter logic [K-1:0] ENABLED = '1,
  parameter logic signed [LOGIT_BITS+1:0] THRESHOLDS [K] = '{default: 0},
  localparam int CW = K > 1 ? $clog2(K) : 1,
  localparam int SW = LOGIT_BITS + 2,
  localparam int IN_W = (LOGIT_BITS + 7) / 8 * 8,
  localparam int OUT_W = (CW + 1 + SW + 7) / 8 * 8
)(
  input  logic ap_clk,
  input  logic ap_rst_n,
  input  logic [IN_W-1:0] in0_V_TDATA,
  input  logic in0_V_TVALID,
  output logic in0_V_TREADY,
  output logic [OUT_W-1:0] out0_V_TDATA,
  output logic out0_V_TVALID,
  input  logic out0_V_TREADY
);
  logic [CW-1:0] position;                    // index of the logit taken next
  logic signed [LOGIT_BITS-1:0] best, runner;
  logic [CW-1:0] best_index;
  logic has_runner;
  logic valid;
  logic [OUT_W-1:0] result;

  // the state after taking logit v at `position`
  logic signed [LOGIT_BITS-1:0] v, next_best, next_runner;
  logic [CW-1:0] next_index;
  logic signed [SW-1:0] score;
  logic last, take;
  assign v = in0_V_TDATA[LOGIT_BITS-1:0];
  assign last = position == CW'(K - 1);
  always_comb begin
    next_best = best; next_index = best_index; next_runner = runner;
    if (position == 0) begin
      next_best = v; next_index = '0;
    end else if (v > best) begin
      next_best = v; next_index = position; next_runner = best;
    end else if (!has_runner || v > runner) begin
      next_runner = v;
    end
  end
  // K >= 2: the K-th logit always leaves a runner-up
  assign score = TOP_SCORE ? SW'(next_best) : SW'(next_best) - SW'(next_runner);

  assign in0_V_TREADY = !last || !valid || out0_V_TREADY;
  assign take = in0_V_TVALID && in0_V_TREADY;
  assign out0_V_TVALID = valid;
  assign out0_V_TDATA = result;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      position <= '0;
      valid <= 1'b0;
      has_runner <= 1'b0;
      best <= '0; runner <= '0; best_index <= '0; result <= '0;
    end else begin
      if (valid && out0_V_TREADY) valid <= 1'b0;
      if (take) begin
        best <= next_best; runner <= next_runner; best_index <= next_index;
        has_runner <= position != 0;
        if (last) begin
          position <= '0;
          has_runner <= 1'b0;
          valid <= 1'b1;
          result <= OUT_W'({score, ENABLED[next_index] && (score >= THRESHOLDS[next_index]), next_index});
        end else begin
          position <= position + 1'b1;
        end
      end
    end
  end
endmodule
