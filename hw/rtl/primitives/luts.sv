// LUT1..LUT6 and LUT6_2 for simulating Yosys xc7 netlists in Verilator, written for this
// project. Same names, ports and INIT parameter as Xilinx's primitives (UG953): output O is
// INIT bit {I(k-1), ..., I1, I0}; LUT6_2's O6 is INIT bit {I5..I0} and O5 is INIT bit
// {I4..I0} of the lower half. Yosys's cells_sim.v models each as a tree of 2:1 muxes over
// slices of INIT, which Verilator evaluates step by step for every one of a netlist's tens
// of thousands of LUTs each cycle; one indexed bit select of a constant simulates 3-6x faster
// (measured on the default run's netlists) and is checked against cells_sim.v on every
// input by hw/rtl/primitives/test_lut_models.py.
module LUT1 (output O, input I0);
  parameter [1:0] INIT = 2'h0;
  assign O = INIT[I0];
endmodule

module LUT2 (output O, input I0, I1);
  parameter [3:0] INIT = 4'h0;
  assign O = INIT[{I1, I0}];
endmodule

module LUT3 (output O, input I0, I1, I2);
  parameter [7:0] INIT = 8'h0;
  assign O = INIT[{I2, I1, I0}];
endmodule

module LUT4 (output O, input I0, I1, I2, I3);
  parameter [15:0] INIT = 16'h0;
  assign O = INIT[{I3, I2, I1, I0}];
endmodule

module LUT5 (output O, input I0, I1, I2, I3, I4);
  parameter [31:0] INIT = 32'h0;
  assign O = INIT[{I4, I3, I2, I1, I0}];
endmodule

module LUT6 (output O, input I0, I1, I2, I3, I4, I5);
  parameter [63:0] INIT = 64'h0;
  assign O = INIT[{I5, I4, I3, I2, I1, I0}];
endmodule

module LUT6_2 (output O6, output O5, input I0, I1, I2, I3, I4, I5);
  parameter [63:0] INIT = 64'h0;
  assign O6 = INIT[{I5, I4, I3, I2, I1, I0}];
  assign O5 = INIT[{1'b0, I4, I3, I2, I1, I0}];
endmodule
