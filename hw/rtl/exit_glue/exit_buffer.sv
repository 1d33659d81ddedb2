// Conditional buffer of the btsee toolkit: holds a segment's output frames until the exit
// head on the same frames decides, then forwards a frame to the next segment (the image
// goes on) or drops it (the image exited), so exited images never enter later segments.
//
// in0_V: the segment's output words, FRAME words per image. in1_V: the head's decision
// words (btsee_exit_decision's), bit EXIT_BIT set when the image exits. out0_V: the frames
// of the images that go on, unchanged and in order.
// The words wait in a FIFO of DEPTH words (block RAM when large: synchronous read, one
// output register), of which only the low BITS bits are kept (the values; the rest of a
// FINN word is byte padding, sent as zeros). DEPTH >= FRAME keeps the fork in front of it
// from stalling the head while a decision is pending, so the design cannot deadlock; more
// decouples the segments.
// Python model: hw/rtl/exit_glue/model.py (`exit_buffer`).
module btsee_exit_buffer #(
  parameter int WIDTH = 8,
  parameter int BITS = WIDTH,
  parameter int FRAME = 4,
  parameter int DEPTH = 4,
  parameter int DECISION_WIDTH = 24,
  parameter int EXIT_BIT = 4
)(
  input  logic ap_clk,
  input  logic ap_rst_n,
  input  logic [WIDTH-1:0] in0_V_TDATA,
  input  logic in0_V_TVALID,
  output logic in0_V_TREADY,
  input  logic [DECISION_WIDTH-1:0] in1_V_TDATA,
  input  logic in1_V_TVALID,
  output logic in1_V_TREADY,
  output logic [WIDTH-1:0] out0_V_TDATA,
  output logic out0_V_TVALID,
  input  logic out0_V_TREADY
);
  if (DEPTH < FRAME) $error("btsee_exit_buffer: DEPTH %0d < FRAME %0d can deadlock", DEPTH, FRAME);
  localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
  localparam int FW = FRAME > 1 ? $clog2(FRAME) : 1;

  // FIFO: words in `memory`, the oldest one in the output register `head`
  logic [BITS-1:0] memory [DEPTH];
  logic [AW-1:0] write_at, read_at;
  logic [AW:0] stored;
  logic [BITS-1:0] head;
  logic head_valid, head_taken;
  wire push = in0_V_TVALID && in0_V_TREADY;
  wire fetch = stored != 0 && (!head_valid || head_taken);
  assign in0_V_TREADY = stored != (AW+1)'(DEPTH);

  always_ff @(posedge ap_clk) begin
    if (push) memory[write_at] <= in0_V_TDATA[BITS-1:0];
    if (fetch) head <= memory[read_at];
  end

  // the frame being released: forwarded (pass) or dropped, FRAME words
  logic releasing, dropping;
  logic [FW-1:0] left;  // words of the frame after the head word
  assign in1_V_TREADY = !releasing;
  assign head_taken = releasing && head_valid && (dropping || out0_V_TREADY);
  assign out0_V_TVALID = releasing && !dropping && head_valid;
  assign out0_V_TDATA = WIDTH'(head);

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      write_at <= '0; read_at <= '0; stored <= '0; head_valid <= 1'b0;
      releasing <= 1'b0; dropping <= 1'b0; left <= '0;
    end else begin
      if (push) write_at <= write_at == AW'(DEPTH - 1) ? '0 : write_at + 1'b1;
      if (fetch) read_at <= read_at == AW'(DEPTH - 1) ? '0 : read_at + 1'b1;
      stored <= stored + (AW+1)'(push) - (AW+1)'(fetch);
      if (fetch) head_valid <= 1'b1;
      else if (head_taken) head_valid <= 1'b0;
      if (!releasing && in1_V_TVALID) begin
        releasing <= 1'b1;
        dropping <= in1_V_TDATA[EXIT_BIT];
        left <= FW'(FRAME - 1);
      end else if (head_taken) begin
        if (left == '0) releasing <= 1'b0;
        else left <= left - 1'b1;
      end
    end
  end
endmodule
