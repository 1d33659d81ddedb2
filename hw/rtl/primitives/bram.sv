// Behavioural simulation models of the Xilinx 7-series block RAMs RAMB18E1 and RAMB36E1,
// written for this project (hw/rtl/primitives). Yosys's techlibs/xilinx/cells_sim.v declares
// both with ports, parameters and timing only (no behaviour: a netlist that uses them reads
// zeros); these modules keep its module names, ports and parameters so that a netlist from
// `synth_xilinx -family xc7` binds to them, and add the behaviour Xilinx documents (UG473,
// UG953):
//
// * memory: 16 Kb data + 2 Kb parity (RAMB18E1), 32 Kb + 4 Kb (RAMB36E1), initialized from
//   INIT_xx (data: bit i of INIT_xx is data bit 256*xx + i) and INITP_xx (parity: bit i of
//   INITP_xx is parity bit 256*xx + i, the parity bit of data byte 256*xx + i);
// * a port of width w in 1, 2, 4 holds the data bits w*a .. w*a+w-1 at word address a, taken
//   from the address pins ADDR[13:log2 w] (RAMB18E1) / ADDR[14:log2 w] (RAMB36E1);
//   a port of width 9*n (9, 18, 36, 72) holds data bytes n*a .. n*a+n-1 (on DO/DI bits
//   8k+7..8k) and their parity bits (on DOP/DIP bit k), address pins ADDR[..:3+log2 n];
// * RAM_MODE "TDP": two read/write ports (READ_WIDTH_*, WRITE_WIDTH_* 0 = unused, 1, 2, 4, 9,
//   18, and 36 on RAMB36E1); "SDP": port A reads (READ_WIDTH_A), port B writes
//   (WRITE_WIDTH_B), the 36-bit (RAMB18E1) / 72-bit (RAMB36E1) width spread over both ports'
//   pins: low half on DOADO/DIADI/DOPADOP/DIPADIP, high half on DOBDO/DIBDI/DOPBDOP/DIPBDIP;
//   a narrower SDP write takes its data from DIBDI/DIPBDIP, a narrower SDP read gives DOADO;
// * write enables: one bit per byte lane for widths 18 and up (port A: WEA, port B: WEBWE;
//   SDP 36/72: WEBWE[3:0]/[7:0]), WE[0] for widths 9 and below;
// * per port, at the rising clock edge (IS_*_INVERTED honoured) while EN: RSTRAM loads the
//   output latch with SRVAL; otherwise a read loads it: READ_FIRST the old word, WRITE_FIRST
//   the word after this port's write, NO_CHANGE keeps the latch during a write;
//   a write stores the enabled lanes (RSTRAM does not block a write);
// * DO*_REG = 1 adds the output register: RSTREG loads SRVAL (RSTREG_PRIORITY "RSTREG":
//   whatever REGCE; "REGCE": only with REGCE), else REGCE loads the latch;
// * the latch and the register start at INIT_A / INIT_B; SRVAL/INIT layout per width:
//   {parity bits, data bits} (SDP 36/72: *_A the low half, *_B the high half);
// * RAMB36E1 RAM_EXTENSION "LOWER"/"UPPER" (the 64K x 1 cascade): ADDR[15] selects the half
//   (upper: 1), the lower's latch leaves on CASCADEOUT*, the upper outputs CASCADEIN* when
//   the read had ADDR[15] = 0.
// Not modelled: ECC, FIFO, INIT_FILE (a width, mode, ECC or cascade setting outside the above
// stops the simulation at time 0 with $fatal), collision timing: two ports on one edge both
// see the memory before that edge's writes (a same-edge write by the other port is not
// visible: "old" data), and two writes to one bit keep the last.

// The shared memory array and both ports. Port p's pins are slice p of each bus; widths in
// bits (0: unused); MODE 0 WRITE_FIRST, 1 READ_FIRST, 2 NO_CHANGE; CASC 0 none, 1 lower,
// 2 upper; *_VAL = {dop[7:0], do[63:0]}.
module btsee_xc7_bram_core #(
  parameter integer NBYTES = 2048,
  parameter integer ABITS = 14,
  parameter [NBYTES*8-1:0] INIT_D = '0,
  parameter [NBYTES-1:0] INIT_P = '0,
  parameter integer RD_W_A = 0, parameter integer WR_W_A = 0,
  parameter integer RD_W_B = 0, parameter integer WR_W_B = 0,
  parameter integer MODE_A = 0, parameter integer MODE_B = 0,
  parameter integer REG_A = 0, parameter integer REG_B = 0,
  parameter integer RSTREG_FIRST_A = 1, parameter integer RSTREG_FIRST_B = 1,
  parameter integer CASC_A = 0, parameter integer CASC_B = 0,
  parameter [71:0] INIT_VAL_A = '0, parameter [71:0] INIT_VAL_B = '0,
  parameter [71:0] SR_VAL_A = '0, parameter [71:0] SR_VAL_B = '0
) (
  input [1:0] clk, input [1:0] en, input [1:0] rstram, input [1:0] rstreg, input [1:0] regce,
  input [31:0] addr, input [127:0] di, input [15:0] dip, input [15:0] we, input [1:0] casc_in,
  output [127:0] dout, output [15:0] doutp, output [1:0] casc_out
);
  reg mem_d [0:NBYTES*8-1];
  reg mem_p [0:NBYTES-1];

  initial begin : load
    integer i;
    for (i = 0; i < NBYTES * 8; i = i + 1) mem_d[i] = INIT_D[i];
    for (i = 0; i < NBYTES; i = i + 1) mem_p[i] = INIT_P[i];
  end

  // Bit base of a narrow (1, 2, 4) access, byte base of a wide (9*n) one.
  function automatic integer base(input [15:0] a, input integer w);
    integer bitaddr;
    bitaddr = {16'b0, a} & ((1 << ABITS) - 1);
    if (w <= 4) base = bitaddr & ~(w - 1);
    else base = (bitaddr >> 3) & ~(w / 9 - 1);
  endfunction

  genvar p;
  for (p = 0; p < 2; p = p + 1) begin : port
    localparam integer RW = p ? RD_W_B : RD_W_A;
    localparam integer WW = p ? WR_W_B : WR_W_A;
    localparam integer MODE = p ? MODE_B : MODE_A;
    localparam integer REG = p ? REG_B : REG_A;
    localparam integer RSTREG_FIRST = p ? RSTREG_FIRST_B : RSTREG_FIRST_A;
    localparam integer CASC = p ? CASC_B : CASC_A;
    localparam [71:0] IV = p ? INIT_VAL_B : INIT_VAL_A;
    localparam [71:0] SV = p ? SR_VAL_B : SR_VAL_A;
    localparam integer RN = RW / 9, WN = WW / 9;  // bytes per word (wide widths)

    wire [15:0] a = addr[16 * p +: 16];
    wire [63:0] wd = di[64 * p +: 64];
    wire [7:0] wdp = dip[8 * p +: 8];
    wire [7:0] wen = we[8 * p +: 8];
    wire half = CASC == 0 || (CASC == 1 && !a[15]) || (CASC == 2 && a[15]);
    wire [7:0] lanes = WW <= 9 ? {8{wen[0]}} : wen & ((8'd1 << WN) - 8'd1);
    wire wr = WW != 0 && en[p] && half && |lanes;

    reg [71:0] lat, oreg;
    reg sel;  // upper cascade half: the last read had ADDR[15] = 1
    initial {lat, oreg, sel} = {IV, IV, 1'b1};

    always @(posedge clk[p]) begin : access
      integer k, t, rb, wb, pos;
      reg [71:0] r;
      if (en[p]) begin
        rb = base(a, RW);
        wb = base(a, WW);
        r = '0;
        if (RW > 0 && RW <= 4)
          for (t = 0; t < RW; t = t + 1) r[t] = mem_d[rb + t];
        else if (RW > 4)
          for (k = 0; k < RN; k = k + 1) begin
            for (t = 0; t < 8; t = t + 1) r[8 * k + t] = mem_d[8 * (rb + k) + t];
            r[64 + k] = mem_p[rb + k];
          end
        if (MODE == 0 && wr) begin  // WRITE_FIRST: this port's write shows through
          if (WW <= 4)
            for (t = 0; t < WW; t = t + 1) begin
              pos = RW <= 4 ? wb + t - rb : (wb + t) / 8 - rb;
              if (RW <= 4 ? pos >= 0 && pos < RW : pos >= 0 && pos < RN)
                r[RW <= 4 ? pos : 8 * pos + (wb + t) % 8] = wd[t];
            end
          else
            for (k = 0; k < WN; k = k + 1)
              if (lanes[k])
                for (t = 0; t < 8; t = t + 1) begin
                  pos = 8 * (wb + k) + t;  // data bit
                  if (RW <= 4 && pos >= rb && pos < rb + RW) r[pos - rb] = wd[8 * k + t];
                  if (RW > 4 && wb + k >= rb && wb + k < rb + RN) begin
                    r[8 * (wb + k - rb) + t] = wd[8 * k + t];
                    r[64 + wb + k - rb] = wdp[k];
                  end
                end
        end
        if (rstram[p]) begin
          lat <= SV;
          sel <= 1'b1;
        end else if (RW != 0 && !(MODE == 2 && wr)) begin
          lat <= r;
          sel <= a[15];
        end
        if (wr) begin
          if (WW <= 4)
            for (t = 0; t < WW; t = t + 1) mem_d[wb + t] <= wd[t];
          else
            for (k = 0; k < WN; k = k + 1)
              if (lanes[k]) begin
                for (t = 0; t < 8; t = t + 1) mem_d[8 * (wb + k) + t] <= wd[8 * k + t];
                mem_p[wb + k] <= wdp[k];
              end
        end
      end
    end

    wire [71:0] lat_eff = CASC == 2 && !sel ? {71'b0, casc_in[p]} : lat;
    if (REG != 0) begin : out_reg
      always @(posedge clk[p])
        if (RSTREG_FIRST ? rstreg[p] : regce[p] && rstreg[p]) oreg <= SV;
        else if (regce[p]) oreg <= lat_eff;
    end
    wire [71:0] o = REG != 0 ? oreg : lat_eff;
    assign dout[64 * p +: 64] = o[63:0];
    assign doutp[8 * p +: 8] = o[71:64];
    assign casc_out[p] = lat[0];
  end
endmodule

// {dop, do} (btsee_xc7_bram_core's *_VAL) of an INIT_*/SRVAL_* value for a port of width w:
// the data bits low, the parity bits above them; sdp: the wide SDP read, lo/hi its halves.
`define BTSEE_BRAM_VALUE_FUNCTIONS \
  function automatic [71:0] pin_value(input [35:0] v, input integer w); \
    integer i, nd; \
    nd = w >= 9 ? w / 9 * 8 : w; \
    pin_value = '0; \
    for (i = 0; i < nd; i = i + 1) pin_value[i] = v[i]; \
    for (i = 0; i < w - nd; i = i + 1) pin_value[64 + i] = v[nd + i]; \
  endfunction \
  function automatic [71:0] sdp_value(input [35:0] lo, input [35:0] hi, input integer w); \
    reg [71:0] l, h; \
    l = pin_value(lo, w / 2); \
    h = pin_value(hi, w / 2); \
    sdp_value = '0; \
    sdp_value[63:0] = l[63:0] | (h[63:0] << (w / 18 * 8)); \
    sdp_value[71:64] = l[71:64] | (h[71:64] << (w / 18)); \
  endfunction \
  function automatic integer write_mode(input [8*12-1:0] s); \
    write_mode = s == "READ_FIRST" ? 1 : s == "NO_CHANGE" ? 2 : 0; \
  endfunction

module RAMB18E1 (
  input CLKARDCLK, input CLKBWRCLK, input ENARDEN, input ENBWREN, input REGCEAREGCE, input REGCEB,
  input RSTRAMARSTRAM, input RSTRAMB, input RSTREGARSTREG, input RSTREGB,
  input [13:0] ADDRARDADDR, input [13:0] ADDRBWRADDR, input [15:0] DIADI, input [15:0] DIBDI,
  input [1:0] DIPADIP, input [1:0] DIPBDIP, input [1:0] WEA, input [3:0] WEBWE,
  output [15:0] DOADO, output [15:0] DOBDO, output [1:0] DOPADOP, output [1:0] DOPBDOP
);
  parameter integer DOA_REG = 0;
  parameter integer DOB_REG = 0;
  parameter [17:0] INIT_A = 18'h0;
  parameter [17:0] INIT_B = 18'h0;
  parameter INIT_FILE = "NONE";
  parameter RAM_MODE = "TDP";
  parameter RDADDR_COLLISION_HWCONFIG = "DELAYED_WRITE";
  parameter integer READ_WIDTH_A = 0;
  parameter integer READ_WIDTH_B = 0;
  parameter RSTREG_PRIORITY_A = "RSTREG";
  parameter RSTREG_PRIORITY_B = "RSTREG";
  parameter SIM_COLLISION_CHECK = "ALL";
  parameter SIM_DEVICE = "VIRTEX6";
  parameter [17:0] SRVAL_A = 18'h0;
  parameter [17:0] SRVAL_B = 18'h0;
  parameter WRITE_MODE_A = "WRITE_FIRST";
  parameter WRITE_MODE_B = "WRITE_FIRST";
  parameter integer WRITE_WIDTH_A = 0;
  parameter integer WRITE_WIDTH_B = 0;
  parameter [0:0] IS_CLKARDCLK_INVERTED = 1'b0;
  parameter [0:0] IS_CLKBWRCLK_INVERTED = 1'b0;
  parameter [0:0] IS_ENARDEN_INVERTED = 1'b0;
  parameter [0:0] IS_ENBWREN_INVERTED = 1'b0;
  parameter [0:0] IS_RSTRAMARSTRAM_INVERTED = 1'b0;
  parameter [0:0] IS_RSTRAMB_INVERTED = 1'b0;
  parameter [0:0] IS_RSTREGARSTREG_INVERTED = 1'b0;
  parameter [0:0] IS_RSTREGB_INVERTED = 1'b0;
  parameter [255:0] INIT_00 = 256'h0, INIT_01 = 256'h0, INIT_02 = 256'h0, INIT_03 = 256'h0;
  parameter [255:0] INIT_04 = 256'h0, INIT_05 = 256'h0, INIT_06 = 256'h0, INIT_07 = 256'h0;
  parameter [255:0] INIT_08 = 256'h0, INIT_09 = 256'h0, INIT_0A = 256'h0, INIT_0B = 256'h0;
  parameter [255:0] INIT_0C = 256'h0, INIT_0D = 256'h0, INIT_0E = 256'h0, INIT_0F = 256'h0;
  parameter [255:0] INIT_10 = 256'h0, INIT_11 = 256'h0, INIT_12 = 256'h0, INIT_13 = 256'h0;
  parameter [255:0] INIT_14 = 256'h0, INIT_15 = 256'h0, INIT_16 = 256'h0, INIT_17 = 256'h0;
  parameter [255:0] INIT_18 = 256'h0, INIT_19 = 256'h0, INIT_1A = 256'h0, INIT_1B = 256'h0;
  parameter [255:0] INIT_1C = 256'h0, INIT_1D = 256'h0, INIT_1E = 256'h0, INIT_1F = 256'h0;
  parameter [255:0] INIT_20 = 256'h0, INIT_21 = 256'h0, INIT_22 = 256'h0, INIT_23 = 256'h0;
  parameter [255:0] INIT_24 = 256'h0, INIT_25 = 256'h0, INIT_26 = 256'h0, INIT_27 = 256'h0;
  parameter [255:0] INIT_28 = 256'h0, INIT_29 = 256'h0, INIT_2A = 256'h0, INIT_2B = 256'h0;
  parameter [255:0] INIT_2C = 256'h0, INIT_2D = 256'h0, INIT_2E = 256'h0, INIT_2F = 256'h0;
  parameter [255:0] INIT_30 = 256'h0, INIT_31 = 256'h0, INIT_32 = 256'h0, INIT_33 = 256'h0;
  parameter [255:0] INIT_34 = 256'h0, INIT_35 = 256'h0, INIT_36 = 256'h0, INIT_37 = 256'h0;
  parameter [255:0] INIT_38 = 256'h0, INIT_39 = 256'h0, INIT_3A = 256'h0, INIT_3B = 256'h0;
  parameter [255:0] INIT_3C = 256'h0, INIT_3D = 256'h0, INIT_3E = 256'h0, INIT_3F = 256'h0;
  parameter [255:0] INITP_00 = 256'h0, INITP_01 = 256'h0, INITP_02 = 256'h0, INITP_03 = 256'h0;
  parameter [255:0] INITP_04 = 256'h0, INITP_05 = 256'h0, INITP_06 = 256'h0, INITP_07 = 256'h0;

  `BTSEE_BRAM_VALUE_FUNCTIONS
  localparam bit SDP = RAM_MODE == "SDP";
  localparam bit WIDE_R = SDP && READ_WIDTH_A == 36, WIDE_W = SDP && WRITE_WIDTH_B == 36;
  function automatic bit known(input integer w);
    known = w == 0 || w == 1 || w == 2 || w == 4 || w == 9 || w == 18 || (SDP && w == 36);
  endfunction
  initial  // at run time: Verilator's -Wno-fatal would let an elaboration-time $fatal pass
    if (!(RAM_MODE == "TDP" || SDP) || !known(READ_WIDTH_A) || !known(READ_WIDTH_B) || !known(WRITE_WIDTH_A)
        || !known(WRITE_WIDTH_B))
      $fatal(1, "RAMB18E1 %m: RAM_MODE %s with widths read %0d/%0d, write %0d/%0d is not modelled", RAM_MODE,
             READ_WIDTH_A, READ_WIDTH_B, WRITE_WIDTH_A, WRITE_WIDTH_B);

  wire [127:0] dout;
  wire [15:0] doutp;
  btsee_xc7_bram_core #(
    .NBYTES(2048), .ABITS(14),
    .INIT_D({
      INIT_3F, INIT_3E, INIT_3D, INIT_3C, INIT_3B, INIT_3A, INIT_39, INIT_38,
      INIT_37, INIT_36, INIT_35, INIT_34, INIT_33, INIT_32, INIT_31, INIT_30,
      INIT_2F, INIT_2E, INIT_2D, INIT_2C, INIT_2B, INIT_2A, INIT_29, INIT_28,
      INIT_27, INIT_26, INIT_25, INIT_24, INIT_23, INIT_22, INIT_21, INIT_20,
      INIT_1F, INIT_1E, INIT_1D, INIT_1C, INIT_1B, INIT_1A, INIT_19, INIT_18,
      INIT_17, INIT_16, INIT_15, INIT_14, INIT_13, INIT_12, INIT_11, INIT_10,
      INIT_0F, INIT_0E, INIT_0D, INIT_0C, INIT_0B, INIT_0A, INIT_09, INIT_08,
      INIT_07, INIT_06, INIT_05, INIT_04, INIT_03, INIT_02, INIT_01, INIT_00
    }),
    .INIT_P({
      INITP_07, INITP_06, INITP_05, INITP_04, INITP_03, INITP_02, INITP_01, INITP_00
    }),
    .RD_W_A(READ_WIDTH_A), .WR_W_A(SDP ? 0 : WRITE_WIDTH_A),
    .RD_W_B(SDP ? 0 : READ_WIDTH_B), .WR_W_B(WRITE_WIDTH_B),
    .MODE_A(write_mode(WRITE_MODE_A)), .MODE_B(write_mode(WRITE_MODE_B)),
    .REG_A(DOA_REG), .REG_B(DOB_REG),
    .RSTREG_FIRST_A(RSTREG_PRIORITY_A != "REGCE"), .RSTREG_FIRST_B(RSTREG_PRIORITY_B != "REGCE"),
    .INIT_VAL_A(WIDE_R ? sdp_value(INIT_A, INIT_B, 36) : pin_value(INIT_A, READ_WIDTH_A)),
    .INIT_VAL_B(pin_value(INIT_B, READ_WIDTH_B)),
    .SR_VAL_A(WIDE_R ? sdp_value(SRVAL_A, SRVAL_B, 36) : pin_value(SRVAL_A, READ_WIDTH_A)),
    .SR_VAL_B(pin_value(SRVAL_B, READ_WIDTH_B))
  ) core (
    .clk({CLKBWRCLK ^ IS_CLKBWRCLK_INVERTED, CLKARDCLK ^ IS_CLKARDCLK_INVERTED}),
    .en({ENBWREN ^ IS_ENBWREN_INVERTED, ENARDEN ^ IS_ENARDEN_INVERTED}),
    .rstram({RSTRAMB ^ IS_RSTRAMB_INVERTED, RSTRAMARSTRAM ^ IS_RSTRAMARSTRAM_INVERTED}),
    .rstreg({RSTREGB ^ IS_RSTREGB_INVERTED, RSTREGARSTREG ^ IS_RSTREGARSTREG_INVERTED}),
    .regce({REGCEB, REGCEAREGCE}),
    .addr({2'b0, ADDRBWRADDR, 2'b0, ADDRARDADDR}),
    .di({WIDE_W ? {32'b0, DIBDI, DIADI} : {48'b0, DIBDI}, 48'b0, DIADI}),
    .dip({WIDE_W ? {4'b0, DIPBDIP, DIPADIP} : {6'b0, DIPBDIP}, 6'b0, DIPADIP}),
    .we({4'b0, WEBWE, 6'b0, WEA}),
    .casc_in(2'b0), .dout(dout), .doutp(doutp), .casc_out()
  );
  assign DOADO = dout[15:0];
  assign DOPADOP = doutp[1:0];
  assign DOBDO = WIDE_R ? dout[31:16] : dout[79:64];
  assign DOPBDOP = WIDE_R ? doutp[3:2] : doutp[9:8];
endmodule

module RAMB36E1 (
  output CASCADEOUTA, output CASCADEOUTB, output [31:0] DOADO, output [31:0] DOBDO,
  output [3:0] DOPADOP, output [3:0] DOPBDOP, output [7:0] ECCPARITY, output [8:0] RDADDRECC,
  output SBITERR, output DBITERR,
  input ENARDEN, input CLKARDCLK, input RSTRAMARSTRAM, input RSTREGARSTREG, input CASCADEINA,
  input REGCEAREGCE, input ENBWREN, input CLKBWRCLK, input RSTRAMB, input RSTREGB, input CASCADEINB,
  input REGCEB, input INJECTDBITERR, input INJECTSBITERR,
  input [15:0] ADDRARDADDR, input [15:0] ADDRBWRADDR, input [31:0] DIADI, input [31:0] DIBDI,
  input [3:0] DIPADIP, input [3:0] DIPBDIP, input [3:0] WEA, input [7:0] WEBWE
);
  parameter integer DOA_REG = 0;
  parameter integer DOB_REG = 0;
  parameter EN_ECC_READ = "FALSE";
  parameter EN_ECC_WRITE = "FALSE";
  parameter [35:0] INIT_A = 36'h0;
  parameter [35:0] INIT_B = 36'h0;
  parameter INIT_FILE = "NONE";
  parameter RAM_EXTENSION_A = "NONE";
  parameter RAM_EXTENSION_B = "NONE";
  parameter RAM_MODE = "TDP";
  parameter RDADDR_COLLISION_HWCONFIG = "DELAYED_WRITE";
  parameter integer READ_WIDTH_A = 0;
  parameter integer READ_WIDTH_B = 0;
  parameter RSTREG_PRIORITY_A = "RSTREG";
  parameter RSTREG_PRIORITY_B = "RSTREG";
  parameter SIM_COLLISION_CHECK = "ALL";
  parameter SIM_DEVICE = "VIRTEX6";
  parameter [35:0] SRVAL_A = 36'h0;
  parameter [35:0] SRVAL_B = 36'h0;
  parameter WRITE_MODE_A = "WRITE_FIRST";
  parameter WRITE_MODE_B = "WRITE_FIRST";
  parameter integer WRITE_WIDTH_A = 0;
  parameter integer WRITE_WIDTH_B = 0;
  parameter [0:0] IS_CLKARDCLK_INVERTED = 1'b0;
  parameter [0:0] IS_CLKBWRCLK_INVERTED = 1'b0;
  parameter [0:0] IS_ENARDEN_INVERTED = 1'b0;
  parameter [0:0] IS_ENBWREN_INVERTED = 1'b0;
  parameter [0:0] IS_RSTRAMARSTRAM_INVERTED = 1'b0;
  parameter [0:0] IS_RSTRAMB_INVERTED = 1'b0;
  parameter [0:0] IS_RSTREGARSTREG_INVERTED = 1'b0;
  parameter [0:0] IS_RSTREGB_INVERTED = 1'b0;
  parameter [255:0] INIT_00 = 256'h0, INIT_01 = 256'h0, INIT_02 = 256'h0, INIT_03 = 256'h0;
  parameter [255:0] INIT_04 = 256'h0, INIT_05 = 256'h0, INIT_06 = 256'h0, INIT_07 = 256'h0;
  parameter [255:0] INIT_08 = 256'h0, INIT_09 = 256'h0, INIT_0A = 256'h0, INIT_0B = 256'h0;
  parameter [255:0] INIT_0C = 256'h0, INIT_0D = 256'h0, INIT_0E = 256'h0, INIT_0F = 256'h0;
  parameter [255:0] INIT_10 = 256'h0, INIT_11 = 256'h0, INIT_12 = 256'h0, INIT_13 = 256'h0;
  parameter [255:0] INIT_14 = 256'h0, INIT_15 = 256'h0, INIT_16 = 256'h0, INIT_17 = 256'h0;
  parameter [255:0] INIT_18 = 256'h0, INIT_19 = 256'h0, INIT_1A = 256'h0, INIT_1B = 256'h0;
  parameter [255:0] INIT_1C = 256'h0, INIT_1D = 256'h0, INIT_1E = 256'h0, INIT_1F = 256'h0;
  parameter [255:0] INIT_20 = 256'h0, INIT_21 = 256'h0, INIT_22 = 256'h0, INIT_23 = 256'h0;
  parameter [255:0] INIT_24 = 256'h0, INIT_25 = 256'h0, INIT_26 = 256'h0, INIT_27 = 256'h0;
  parameter [255:0] INIT_28 = 256'h0, INIT_29 = 256'h0, INIT_2A = 256'h0, INIT_2B = 256'h0;
  parameter [255:0] INIT_2C = 256'h0, INIT_2D = 256'h0, INIT_2E = 256'h0, INIT_2F = 256'h0;
  parameter [255:0] INIT_30 = 256'h0, INIT_31 = 256'h0, INIT_32 = 256'h0, INIT_33 = 256'h0;
  parameter [255:0] INIT_34 = 256'h0, INIT_35 = 256'h0, INIT_36 = 256'h0, INIT_37 = 256'h0;
  parameter [255:0] INIT_38 = 256'h0, INIT_39 = 256'h0, INIT_3A = 256'h0, INIT_3B = 256'h0;
  parameter [255:0] INIT_3C = 256'h0, INIT_3D = 256'h0, INIT_3E = 256'h0, INIT_3F = 256'h0;
  parameter [255:0] INIT_40 = 256'h0, INIT_41 = 256'h0, INIT_42 = 256'h0, INIT_43 = 256'h0;
  parameter [255:0] INIT_44 = 256'h0, INIT_45 = 256'h0, INIT_46 = 256'h0, INIT_47 = 256'h0;
  parameter [255:0] INIT_48 = 256'h0, INIT_49 = 256'h0, INIT_4A = 256'h0, INIT_4B = 256'h0;
  parameter [255:0] INIT_4C = 256'h0, INIT_4D = 256'h0, INIT_4E = 256'h0, INIT_4F = 256'h0;
  parameter [255:0] INIT_50 = 256'h0, INIT_51 = 256'h0, INIT_52 = 256'h0, INIT_53 = 256'h0;
  parameter [255:0] INIT_54 = 256'h0, INIT_55 = 256'h0, INIT_56 = 256'h0, INIT_57 = 256'h0;
  parameter [255:0] INIT_58 = 256'h0, INIT_59 = 256'h0, INIT_5A = 256'h0, INIT_5B = 256'h0;
  parameter [255:0] INIT_5C = 256'h0, INIT_5D = 256'h0, INIT_5E = 256'h0, INIT_5F = 256'h0;
  parameter [255:0] INIT_60 = 256'h0, INIT_61 = 256'h0, INIT_62 = 256'h0, INIT_63 = 256'h0;
  parameter [255:0] INIT_64 = 256'h0, INIT_65 = 256'h0, INIT_66 = 256'h0, INIT_67 = 256'h0;
  parameter [255:0] INIT_68 = 256'h0, INIT_69 = 256'h0, INIT_6A = 256'h0, INIT_6B = 256'h0;
  parameter [255:0] INIT_6C = 256'h0, INIT_6D = 256'h0, INIT_6E = 256'h0, INIT_6F = 256'h0;
  parameter [255:0] INIT_70 = 256'h0, INIT_71 = 256'h0, INIT_72 = 256'h0, INIT_73 = 256'h0;
  parameter [255:0] INIT_74 = 256'h0, INIT_75 = 256'h0, INIT_76 = 256'h0, INIT_77 = 256'h0;
  parameter [255:0] INIT_78 = 256'h0, INIT_79 = 256'h0, INIT_7A = 256'h0, INIT_7B = 256'h0;
  parameter [255:0] INIT_7C = 256'h0, INIT_7D = 256'h0, INIT_7E = 256'h0, INIT_7F = 256'h0;
  parameter [255:0] INITP_00 = 256'h0, INITP_01 = 256'h0, INITP_02 = 256'h0, INITP_03 = 256'h0;
  parameter [255:0] INITP_04 = 256'h0, INITP_05 = 256'h0, INITP_06 = 256'h0, INITP_07 = 256'h0;
  parameter [255:0] INITP_08 = 256'h0, INITP_09 = 256'h0, INITP_0A = 256'h0, INITP_0B = 256'h0;
  parameter [255:0] INITP_0C = 256'h0, INITP_0D = 256'h0, INITP_0E = 256'h0, INITP_0F = 256'h0;

  `BTSEE_BRAM_VALUE_FUNCTIONS
  function automatic integer extension(input [8*5-1:0] s);
    extension = s == "LOWER" ? 1 : s == "UPPER" ? 2 : 0;
  endfunction
  localparam bit SDP = RAM_MODE == "SDP";
  localparam bit WIDE_R = SDP && READ_WIDTH_A == 72, WIDE_W = SDP && WRITE_WIDTH_B == 72;
  function automatic bit known(input integer w);
    known = w == 0 || w == 1 || w == 2 || w == 4 || w == 9 || w == 18 || w == 36 || (SDP && w == 72);
  endfunction
  initial begin  // at run time: Verilator's -Wno-fatal would let an elaboration-time $fatal pass
    if (!(RAM_MODE == "TDP" || SDP) || !known(READ_WIDTH_A) || !known(READ_WIDTH_B) || !known(WRITE_WIDTH_A)
        || !known(WRITE_WIDTH_B))
      $fatal(1, "RAMB36E1 %m: RAM_MODE %s with widths read %0d/%0d, write %0d/%0d is not modelled", RAM_MODE,
             READ_WIDTH_A, READ_WIDTH_B, WRITE_WIDTH_A, WRITE_WIDTH_B);
    if (EN_ECC_READ != "FALSE" || EN_ECC_WRITE != "FALSE") $fatal(1, "RAMB36E1 %m: ECC is not modelled");
    if (extension(RAM_EXTENSION_A) != extension(RAM_EXTENSION_B) || (extension(RAM_EXTENSION_A) != 0
        && (READ_WIDTH_A > 1 || READ_WIDTH_B > 1 || WRITE_WIDTH_A > 1 || WRITE_WIDTH_B > 1)))
      $fatal(1, "RAMB36E1 %m: RAM_EXTENSION %s/%s needs width 1 on both ports", RAM_EXTENSION_A, RAM_EXTENSION_B);
  end

  wire [127:0] dout;
  wire [15:0] doutp;
  wire [1:0] casc_out;
  btsee_xc7_bram_core #(
    .NBYTES(4096), .ABITS(15),
    .INIT_D({
      INIT_7F, INIT_7E, INIT_7D, INIT_7C, INIT_7B, INIT_7A, INIT_79, INIT_78,
      INIT_77, INIT_76, INIT_75, INIT_74, INIT_73, INIT_72, INIT_71, INIT_70,
      INIT_6F, INIT_6E, INIT_6D, INIT_6C, INIT_6B, INIT_6A, INIT_69, INIT_68,
      INIT_67, INIT_66, INIT_65, INIT_64, INIT_63, INIT_62, INIT_61, INIT_60,
      INIT_5F, INIT_5E, INIT_5D, INIT_5C, INIT_5B, INIT_5A, INIT_59, INIT_58,
      INIT_57, INIT_56, INIT_55, INIT_54, INIT_53, INIT_52, INIT_51, INIT_50,
      INIT_4F, INIT_4E, INIT_4D, INIT_4C, INIT_4B, INIT_4A, INIT_49, INIT_48,
      INIT_47, INIT_46, INIT_45, INIT_44, INIT_43, INIT_42, INIT_41, INIT_40,
      INIT_3F, INIT_3E, INIT_3D, INIT_3C, INIT_3B, INIT_3A, INIT_39, INIT_38,
      INIT_37, INIT_36, INIT_35, INIT_34, INIT_33, INIT_32, INIT_31, INIT_30,
      INIT_2F, INIT_2E, INIT_2D, INIT_2C, INIT_2B, INIT_2A, INIT_29, INIT_28,
      INIT_27, INIT_26, INIT_25, INIT_24, INIT_23, INIT_22, INIT_21, INIT_20,
      INIT_1F, INIT_1E, INIT_1D, INIT_1C, INIT_1B, INIT_1A, INIT_19, INIT_18,
      INIT_17, INIT_16, INIT_15, INIT_14, INIT_13, INIT_12, INIT_11, INIT_10,
      INIT_0F, INIT_0E, INIT_0D, INIT_0C, INIT_0B, INIT_0A, INIT_09, INIT_08,
      INIT_07, INIT_06, INIT_05, INIT_04, INIT_03, INIT_02, INIT_01, INIT_00
    }),
    .INIT_P({
      INITP_0F, INITP_0E, INITP_0D, INITP_0C, INITP_0B, INITP_0A, INITP_09, INITP_08,
      INITP_07, INITP_06, INITP_05, INITP_04, INITP_03, INITP_02, INITP_01, INITP_00
    }),
    .RD_W_A(READ_WIDTH_A), .WR_W_A(SDP ? 0 : WRITE_WIDTH_A),
    .RD_W_B(SDP ? 0 : READ_WIDTH_B), .WR_W_B(WRITE_WIDTH_B),
    .MODE_A(write_mode(WRITE_MODE_A)), .MODE_B(write_mode(WRITE_MODE_B)),
    .REG_A(DOA_REG), .REG_B(DOB_REG),
    .RSTREG_FIRST_A(RSTREG_PRIORITY_A != "REGCE"), .RSTREG_FIRST_B(RSTREG_PRIORITY_B != "REGCE"),
    .CASC_A(extension(RAM_EXTENSION_A)), .CASC_B(extension(RAM_EXTENSION_B)),
    .INIT_VAL_A(WIDE_R ? sdp_value(INIT_A, INIT_B, 72) : pin_value(INIT_A, READ_WIDTH_A)),
    .INIT_VAL_B(pin_value(INIT_B, READ_WIDTH_B)),
    .SR_VAL_A(WIDE_R ? sdp_value(SRVAL_A, SRVAL_B, 72) : pin_value(SRVAL_A, READ_WIDTH_A)),
    .SR_VAL_B(pin_value(SRVAL_B, READ_WIDTH_B))
  ) core (
    .clk({CLKBWRCLK ^ IS_CLKBWRCLK_INVERTED, CLKARDCLK ^ IS_CLKARDCLK_INVERTED}),
    .en({ENBWREN ^ IS_ENBWREN_INVERTED, ENARDEN ^ IS_ENARDEN_INVERTED}),
    .rstram({RSTRAMB ^ IS_RSTRAMB_INVERTED, RSTRAMARSTRAM ^ IS_RSTRAMARSTRAM_INVERTED}),
    .rstreg({RSTREGB ^ IS_RSTREGB_INVERTED, RSTREGARSTREG ^ IS_RSTREGARSTREG_INVERTED}),
    .regce({REGCEB, REGCEAREGCE}),
    .addr({ADDRBWRADDR, ADDRARDADDR}),
    .di({WIDE_W ? {DIBDI, DIADI} : {32'b0, DIBDI}, 32'b0, DIADI}),
    .dip({WIDE_W ? {DIPBDIP, DIPADIP} : {4'b0, DIPBDIP}, 4'b0, DIPADIP}),
    .we({WEBWE, 4'b0, WEA}),
    .casc_in({CASCADEINB, CASCADEINA}), .dout(dout), .doutp(doutp), .casc_out(casc_out)
  );
  assign DOADO = dout[31:0];
  assign DOPADOP = doutp[3:0];
  assign DOBDO = WIDE_R ? dout[63:32] : dout[95:64];
  assign DOPBDOP = WIDE_R ? doutp[7:4] : doutp[11:8];
  assign {CASCADEOUTB, CASCADEOUTA} = casc_out;
  assign ECCPARITY = 8'b0;
  assign RDADDRECC = 9'b0;
  assign {SBITERR, DBITERR} = 2'b0;
endmodule
