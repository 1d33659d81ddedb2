// Decision queue of the btsee toolkit: a small first-in first-out stream buffer in
// distributed RAM (asynchronous read), DEPTH words of WIDTH bits, full rate both ways.
// `peak` reports the most words held at once since reset (the buffer sizing reads it).
// AXI-Stream with backpressure. Python model: hw/rtl/exit_glue/model.py (`queue`).
module btsee_queue #(
  parameter int WIDTH = 8,
  parameter int DEPTH = 16,
  localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1,
  localparam int CW = $clog2(DEPTH + 1)
)(
  input  logic ap_clk,
  input  logic ap_rst_n,
  input  logic [WIDTH-1:0] in0_V_TDATA,
  input  logic in0_V_TVALID,
  output logic in0_V_TREADY,
  output logic [WIDTH-1:0] out0_V_TDATA,
  output logic out0_V_TVALID,
  input  logic out0_V_TREADY,
  output logic [CW-1:0] peak
);
  logic [WIDTH-1:0] memory [DEPTH];
  logic [AW-1:0] write_at, read_at;
  logic [CW-1:0] held;
  wire push = in0_V_TVALID && in0_V_TREADY;
  wire pop = out0_V_TVALID && out0_V_TREADY;
  assign in0_V_TREADY = held != CW'(DEPTH);
  assign out0_V_TVALID = held != '0;
  assign out0_V_TDATA = memory[read_at];

  always_ff @(posedge ap_clk) begin
    if (push) memory[write_at] <= in0_V_TDATA;
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      write_at <= '0; read_at <= '0; held <= '0; peak <= '0;
    end else begin
      if (push) write_at <= write_at == AW'(DEPTH - 1) ? '0 : write_at + 1'b1;
      if (pop) read_at <= read_at == AW'(DEPTH - 1) ? '0 : read_at + 1'b1;
      held <= held + CW'(push) - CW'(pop);
      if (held > peak) peak <= held;
    end
  end
endmodule
