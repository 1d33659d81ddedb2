// Exit decision unit of the btsee toolkit: the CPM comparator on a head's integer logits.
//
// Input: one signed LOGIT_BITS logit per word, K words per image (class 0 first). It keeps
// the running argmax (a later logit takes the lead only when strictly larger, so ties go
// to the lowest index) and the runner-up; after the K-th logit it emits one word:
//   bits [CW-1:0]       the predicted class
//   bit  CW             exits: ENABLED[class] and score >= THRESHOLDS[class]
//   bits [CW+1 +: SW]   the score, signed: top-2 margin (TOP_SCORE = 0) or the top logit
// THRESHOLDS is packed, class c in bits [c*SW +: SW], so its width follows the K given
// (an unpacked array parameter took its size from the default K in Verilator).
// ENABLED defaults to '0, not '1: Verilator 5.48 takes an override of 1 (K'b0...01) for the
// fill literal '1 and, when THRESHOLDS is left at its default too, builds the default
// module, so every class exits (a tiny run's table enabling class 0 alone at 0 showed it;
// test_a_table_enabling_class_0_alone).
//
// Pipeline, so that no register-to-register path is longer than one compare or one
// subtraction (FINN's layers close 100 MHz with paths of that depth):
//   scan:   the running max and runner-up, one logit per cycle (compare -> select);
//   score:  top - runner (or top), and the class's threshold and enable looked up;
//   decide: score >= threshold, the output word registered.
// Each stage holds one image and moves on when the next is free, so a result waiting for
// the output stalls nothing until three images are pending: one logit per cycle, and TREADY
// drops only on a K-th logit that finds every stage full. AXI-Stream both sides.
// Python model: hw/rtl/exit_decision/model.py (calib.rules.decide, the golden simulator's).
module btsee_exit_decision #(
  parameter int K = 10,
  parameter int LOGIT_BITS = 16,
  parameter bit TOP_SCORE = 0,
  parameter logic [K-1:0] ENABLED = '0,
  parameter logic [K*(LOGIT_BITS+2)-1:0] THRESHOLDS = '0,
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
  // scan stage: the image being read
  logic [CW-1:0] position;                    // index of the logit taken next
  logic signed [LOGIT_BITS-1:0] best, runner;
  logic [CW-1:0] best_index;
  logic has_runner;
  // score stage: a whole image's top two
  logic top_valid;
  logic signed [LOGIT_BITS-1:0] top_best, top_runner;
  logic [CW-1:0] top_index;
  // decide stage: its score and its class's threshold
  logic score_valid;
  logic signed [SW-1:0] score, threshold;
  logic enabled;
  logic [CW-1:0] score_index;
  // output register
  logic valid;
  logic [OUT_W-1:0] result;

  // the scan state after taking logit v at `position`
  logic signed [LOGIT_BITS-1:0] v, next_best, next_runner;
  logic [CW-1:0] next_index;
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

  // each stage moves on when the one after it is empty or moving on
  logic out_free, decide_free, score_free;
  assign out_free = !valid || out0_V_TREADY;
  assign decide_free = !score_valid || out_free;
  assign score_free = !top_valid || decide_free;

  assign in0_V_TREADY = !last || score_free;
  assign take = in0_V_TVALID && in0_V_TREADY;
  assign out0_V_TVALID = valid;
  assign out0_V_TDATA = result;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      position <= '0;
      has_runner <= 1'b0;
      best <= '0; runner <= '0; best_index <= '0;
      top_valid <= 1'b0; top_best <= '0; top_runner <= '0; top_index <= '0;
      score_valid <= 1'b0; score <= '0; threshold <= '0; enabled <= 1'b0; score_index <= '0;
      valid <= 1'b0; result <= '0;
    end else begin
      // decide -> output
      if (out_free) begin
        valid <= score_valid;
        if (score_valid) result <= OUT_W'({score, enabled && (score >= threshold), score_index});
      end
      // score -> decide (K >= 2: a whole image always leaves a runner-up)
      if (decide_free) begin
        score_valid <= top_valid;
        if (top_valid) begin
          score <= TOP_SCORE ? SW'(top_best) : SW'(top_best) - SW'(top_runner);
          threshold <= THRESHOLDS[top_index * SW +: SW];
          enabled <= ENABLED[top_index];
          score_index <= top_index;
        end
      end
      // scan -> score
      if (score_free) top_valid <= 1'b0;
      if (take) begin
        best <= next_best; runner <= next_runner; best_index <= next_index;
        has_runner <= position != 0;
        if (last) begin
          position <= '0;
          has_runner <= 1'b0;
          top_valid <= 1'b1;
          top_best <= next_best; top_runner <= next_runner; top_index <= next_index;
        end else begin
          position <= position + 1'b1;
        end
      end
    end
  end
endmodule
