// Yosys techmap rule of btsee (hw/rtl/synth.py runs it right after read_slang).
// yosys-slang elaborates a read at a variable index, `r[a]`, as a $bmux cell, where Yosys's
// own Verilog frontend makes a $shiftx; Yosys infers variable-length shift registers
// (xilinx_srl -variable: SRL16E, SRLC32E) from $shiftx cells only. This rule rewrites each
// $bmux as one $shiftx per output bit over that bit's column of entries:
//   Y[i] = A[S * WIDTH + i] = column_i[S],  column_i[k] = A[k * WIDTH + i].
// The function is the same for every S (A holds all 2**S_WIDTH entries); tests/test_bmux_techmap.py
// proves it with a SAT miter on several shapes.
(* techmap_celltype = "$bmux" *)
module _btsee_bmux_to_shiftx (A, S, Y);
  parameter WIDTH = 1;
  parameter S_WIDTH = 1;
  input [WIDTH*(1<<S_WIDTH)-1:0] A;
  input [S_WIDTH-1:0] S;
  output [WIDTH-1:0] Y;
  genvar i, k;
  generate for (i = 0; i < WIDTH; i = i + 1) begin : lane
    wire [(1<<S_WIDTH)-1:0] column;
    for (k = 0; k < (1<<S_WIDTH); k = k + 1) begin : entry
      assign column[k] = A[k*WIDTH + i];
    end
    \$shiftx #(.A_SIGNED(0), .B_SIGNED(0), .A_WIDTH(1<<S_WIDTH), .B_WIDTH(S_WIDTH), .Y_WIDTH(1))
      select (.A(column), .B(S), .Y(Y[i]));
  end endgenerate
endmodule
