// Black-box declarations of the two Xilinx 7-series primitives that finn-rtllib's MVU
// instantiates for synthesis (DSP48E1, LUT6_2). yosys-slang must see every module's ports
// and parameters to elaborate an instance; Yosys keeps these as cells of the same names,
// which the resource count reads (hw/rtl/synth.py). Port widths and parameter names follow
// Xilinx's 7-series library guide (UG953); the defaults are never used.
(* blackbox *)
module DSP48E1 #(
  parameter A_INPUT = "DIRECT", parameter B_INPUT = "DIRECT", parameter USE_DPORT = "FALSE",
  parameter USE_MULT = "MULTIPLY", parameter USE_SIMD = "ONE48", parameter AUTORESET_PATDET = "NO_RESET",
  parameter [47:0] MASK = 48'h3fffffffffff, parameter [47:0] PATTERN = 48'h0,
  parameter SEL_MASK = "MASK", parameter SEL_PATTERN = "PATTERN", parameter USE_PATTERN_DETECT = "NO_PATDET",
  parameter integer ACASCREG = 1, parameter integer ADREG = 1, parameter integer ALUMODEREG = 1,
  parameter integer AREG = 1, parameter integer BCASCREG = 1, parameter integer BREG = 1,
  parameter integer CARRYINREG = 1, parameter integer CARRYINSELREG = 1, parameter integer CREG = 1,
  parameter integer DREG = 1, parameter integer INMODEREG = 1, parameter integer MREG = 1,
  parameter integer OPMODEREG = 1, parameter integer PREG = 1
)(
  output [29:0] ACOUT, output [17:0] BCOUT, output CARRYCASCOUT, output MULTSIGNOUT, output [47:0] PCOUT,
  output OVERFLOW, output PATTERNBDETECT, output PATTERNDETECT, output UNDERFLOW,
  output [3:0] CARRYOUT, output [47:0] P,
  input [29:0] ACIN, input [17:0] BCIN, input CARRYCASCIN, input MULTSIGNIN, input [47:0] PCIN,
  input CLK, input [3:0] ALUMODE, input [2:0] CARRYINSEL, input [4:0] INMODE, input [6:0] OPMODE,
  input [29:0] A, input [17:0] B, input [47:0] C, input CARRYIN, input [24:0] D,
  input CEA1, input CEA2, input CEAD, input CEALUMODE, input CEB1, input CEB2, input CEC, input CECARRYIN,
  input CECTRL, input CED, input CEINMODE, input CEM, input CEP,
  input RSTA, input RSTB, input RSTC, input RSTD, input RSTALLCARRYIN, input RSTALUMODE, input RSTCTRL,
  input RSTINMODE, input RSTM, input RSTP
);
endmodule

(* blackbox *)
module LUT6_2 #(parameter [63:0] INIT = 64'h0) (
  output O6, output O5, input I0, input I1, input I2, input I3, input I4, input I5
);
endmodule
