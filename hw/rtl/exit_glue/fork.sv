// Stream fork of the btsee toolkit: every input word to both outputs (FINN's
// DuplicateStreams has HLS only). Each output takes the word in its own cycle; the input
// word is released once both have it. No buffering: at most one word in flight, full rate
// when both outputs are ready. AXI-Stream with backpressure.
// Python model: hw/rtl/exit_glue/model.py (`fork`).
module btsee_fork #(
  parameter int WIDTH = 8
)(
  input  logic ap_clk,
  input  logic ap_rst_n,
  input  logic [WIDTH-1:0] in0_V_TDATA,
  input  logic in0_V_TVALID,
  output logic in0_V_TREADY,
  output logic [WIDTH-1:0] out0_V_TDATA,
  output logic out0_V_TVALID,
  input  logic out0_V_TREADY,
  output logic [WIDTH-1:0] out1_V_TDATA,
  output logic out1_V_TVALID,
  input  logic out1_V_TREADY
);
  logic [1:0] sent;  // the output has taken the current input word already
  wire done0 = sent[0] || out0_V_TREADY;
  wire done1 = sent[1] || out1_V_TREADY;

  assign out0_V_TDATA = in0_V_TDATA;
  assign out1_V_TDATA = in0_V_TDATA;
  assign out0_V_TVALID = in0_V_TVALID && !sent[0];
  assign out1_V_TVALID = in0_V_TVALID && !sent[1];
  assign in0_V_TREADY = done0 && done1;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n || (in0_V_TVALID && in0_V_TREADY)) sent <= 2'b00;
    else if (in0_V_TVALID) sent <= {done1, done0};
  end
endmodule
