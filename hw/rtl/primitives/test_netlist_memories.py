"""Yosys's block-RAM mapping against the primitive models: ROMs and RAMs of many shapes
synthesized with `synth_xilinx -family xc7` must map to RAMB18E1/RAMB36E1 (else the test
fails), and their netlist, simulated with `netlist_library`, reads every word as expected and
as the behavioural RTL does. The check has teeth: the same netlist on cells_sim.v's empty
block RAMs fails it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hw.rtl.primitives import extract_modules, netlist_library
from hw.rtl.primitives.tb_patterns import MIX_SV, MODES, mask, mix, run_testbench, word72
from hw.rtl.tools import verilate, yosys


@dataclass(frozen=True)
class Mem:
    """A memory of the synthesized design: a ROM, or a RAM whose read during a write gives the
    old word (rf), the new word (wf), keeps the output (nc), has 4 byte enables (be), or has
    its own read address (sdp)."""
    kind: str
    depth: int
    width: int
    name = property(lambda self: f"{self.kind}_{self.depth}x{self.width}")
    abits = property(lambda self: (self.depth - 1).bit_length())

    def content(self) -> list[int]:
        rng = np.random.default_rng(self.depth * 100 + self.width)
        return [int.from_bytes(rng.bytes(9), "little") & mask(self.width) for _ in range(self.depth)]


MEMS = [Mem("rom", d, w) for d, w in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1),
                                      (512, 72), (1024, 36), (2048, 18), (8192, 4), (16384, 2), (32768, 1),
                                      (65536, 1))] + \
       [Mem("rf", 1024, 18), Mem("wf", 4096, 9), Mem("nc", 4096, 4), Mem("be", 1024, 32), Mem("sdp", 512, 72)]
WRITES = 4096
"""Cycles of the write phase (a = cycle: every RAM word written at least once)."""


def _design() -> str:
    """Module `mems`: every MEMS memory (block RAM style, content from <name>.hex), read
    address a (sdp: ra), write enable we, data wd, byte enables be, output q_<name>."""
    ports, body = [], []
    for m in MEMS:
        n, w, a = m.name, m.width, f"a[{m.abits - 1}:0]"
        ports.append(f"output reg [{w - 1}:0] q_{n}")
        body.append(f'  (* ram_style = "block" *) reg [{w - 1}:0] {n} [0:{m.depth - 1}];\n'
                    f'  initial $readmemh("{n}.hex", {n});')
        write = f"if (we) {n}[{a}] <= wd[{w - 1}:0];"
        body.append("  always @(posedge clk) " + {
            "rom": f"q_{n} <= {n}[{a}];",
            "rf": f"begin {write} q_{n} <= {n}[{a}]; end",
            "wf": f"if (we) begin {n}[{a}] <= wd[{w - 1}:0]; q_{n} <= wd[{w - 1}:0]; end else q_{n} <= {n}[{a}];",
            "nc": f"{write} else q_{n} <= {n}[{a}];",
            "be": f"begin for (int b = 0; b < 4; b++) if (we && be[b]) {n}[{a}][8 * b +: 8] <= wd[8 * b +: 8]; "
                  f"q_{n} <= {n}[{a}]; end",
            "sdp": f"begin {write} q_{n} <= {n}[ra[{m.abits - 1}:0]]; end"}[m.kind])
    return ("module mems(input clk, input [15:0] a, input [15:0] ra, input we, input [71:0] wd, input [7:0] be,\n  "
            + ",\n  ".join(ports) + ");\n" + "\n".join(body) + "\nendmodule\n")


def _mems_testbench(extra: str = "") -> str:
    """Phases (lines 'R|W|V cycle q...'): R reads every address (a = ra = cycle), W writes
    word72(99, cycle) at a = cycle (ra = cycle - 1, be from mix), V reads every address."""
    qs = ", ".join(f"q_{m.name}" for m in MEMS)
    fmt = " ".join("%h" for _ in MEMS)
    decl = "\n".join(f"  wire [{m.width - 1}:0] q_{m.name};" for m in MEMS)
    conn = ", ".join(f".q_{m.name}(q_{m.name})" for m in MEMS)
    dmax = max(m.depth for m in MEMS)
    return ("module tb;\n  reg clk = 0, we = 0;\n  reg [15:0] a = 0, ra = 0;\n  reg [71:0] wd = 0;\n  reg [7:0] be = 0;\n"
            f"  integer c;\n{MIX_SV}{decl}\n  mems dut(.clk(clk), .a(a), .ra(ra), .we(we), .wd(wd), .be(be), {conn});\n"
            "  task tick; begin #1 clk = 1; #1 clk = 0; end endtask\n"
            f"{extra}  initial begin\n    #1;\n"
            f"    for (c = 0; c < {dmax}; c = c + 1) begin a = c; ra = c; tick; $display(\"R %0d {fmt}\", c, {qs}); end\n"
            f"    we = 1;\n    for (c = 0; c < {WRITES}; c = c + 1) begin\n      a = c; ra = c - 1; wd = word72(99, c);"
            f" be = mix(c);\n      tick; $display(\"W %0d {fmt}\", c, {qs});\n    end\n    we = 0;\n"
            f"    for (c = 0; c < {WRITES}; c = c + 1) begin a = c; ra = c; tick; $display(\"V %0d {fmt}\", c, {qs}); end\n"
            "    $finish;\n  end\nendmodule\n")


def _expected_mems() -> dict[str, list[list[int]]]:
    """{phase: rows of every MEMS output per cycle}, by the memories' RTL semantics."""
    dmax = max(m.depth for m in MEMS)
    rows: dict[str, list[list[int]]] = {"R": [], "W": [], "V": []}
    cols = []
    for m in MEMS:
        mem = m.content()
        col = {"R": [mem[c % m.depth] for c in range(dmax)]}
        q, out = col["R"][-1], []
        for c in range(WRITES):
            a, wd, be = c % m.depth, word72(99, c) & mask(m.width), mix(c) & 0xF
            old, ra = mem[a], (c - 1) % m.depth
            if m.kind == "rom":
                q = mem[a]
            elif m.kind == "sdp":
                q = mem[ra]
                mem[a] = wd
            elif m.kind == "be":
                q = old
                mem[a] = sum((wd if be >> b & 1 else old) & (0xFF << 8 * b) for b in range(4))
            else:
                mem[a] = wd
                q = {"rf": old, "wf": wd, "nc": q}[m.kind]
            out.append(q)
        col["W"] = out
        col["V"] = [mem[c % m.depth] for c in range(WRITES)]
        cols.append(col)
    for ph in rows:
        rows[ph] = [list(r) for r in zip(*(col[ph] for col in cols))]
    return rows


def _parse_mems(text: str) -> dict[str, list[list[int]]]:
    rows: dict[str, list[list[int]]] = {"R": [], "W": [], "V": []}
    for line in text.splitlines():
        f = line.split()
        if f and f[0] in rows and len(f) == len(MEMS) + 2:
            rows[f[0]].append([int(x, 16) for x in f[2:]])
    return rows


def _mismatches(got: dict[str, list[list[int]]], exp: dict[str, list[list[int]]]) -> dict[str, int]:
    """{memory name: words that differ from the expected} over all phases (a missing row
    counts as wrong in every memory)."""
    bad = dict.fromkeys((m.name for m in MEMS), 0)
    for ph, want in exp.items():
        have = got.get(ph, [])
        for r, row in enumerate(want):
            for k, (m, x) in enumerate(zip(MEMS, row)):
                bad[m.name] += r >= len(have) or have[r][k] != x
    return {k: v for k, v in bad.items() if v}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory) -> Path:
    """A folder with mems.sv, its .hex files and Yosys's xc7 netlist.v and stat.json."""
    work = tmp_path_factory.mktemp("mems")
    (work / "mems.sv").write_text(_design())
    for m in MEMS:
        (work / f"{m.name}.hex").write_text("\n".join(f"{x:x}" for x in m.content()) + "\n")
    (work / "synth.ys").write_text("read_slang -j 1 --top mems mems.sv\n"
                                   "synth_xilinx -family xc7 -noiopad -flatten -top mems\n"
                                   "tee -q -o stat.json stat -json\nwrite_verilog -noattr netlist.v\n")
    yosys(work / "synth.ys", work, work / "yosys.log", work / "mems.sv")
    return work


def _brams(netlist: str) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """{memory name: [(cell type, parameters)]} of the block RAMs in a netlist."""
    out: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for m in re.finditer(r"\b(RAMB18E1|RAMB36E1) #\((.*?)\) \\?(\S+)\s*\(", netlist, re.S):
        params = dict(re.findall(r"\.(\w+)\(([^()]*)\)", m.group(2)))
        out.setdefault(m.group(3).split(".")[0], []).append((m.group(1), params))
    return out


def _num(x: str) -> int:
    return int(re.sub(r".*'s?d", "", x))


def bram_usage(work: Path) -> dict[str, list[tuple[str, str, int, str]]]:
    """{memory: [(cell, RAM_MODE, width, RAM_EXTENSION_A)]}: how Yosys mapped each memory
    (width: the read width, or the write width of a RAM's SDP write port if wider)."""
    return {name: [(cell, p["RAM_MODE"].strip('"'), max(_num(p["READ_WIDTH_A"]), _num(p["WRITE_WIDTH_B"])),
                    p.get("RAM_EXTENSION_A", '"NONE"').strip('"')) for cell, p in cells]
            for name, cells in _brams((work / "netlist.v").read_text()).items()}


def test_yosys_maps_every_memory_to_block_ram(synthesized):
    """Every MEMS memory became RAMB18E1/RAMB36E1 cells (no LUT RAM anywhere), and between
    them the widths 1..72 of both primitives and all three write modes were used."""
    cells = json.loads((synthesized / "stat.json").read_text())["design"]["num_cells_by_type"]
    assert not [c for c in cells if re.match(r"RAM\d|SRL", c)], cells  # no LUT RAM, no shift registers
    usage = bram_usage(synthesized)
    print("\n".join(f"{k}: {v}" for k, v in usage.items()))
    assert set(usage) == {m.name for m in MEMS}, f"not block RAM: {sorted({m.name for m in MEMS} - set(usage))}"
    assert sum(len(v) for v in usage.values()) == int(cells.get("RAMB18E1", 0)) + int(cells.get("RAMB36E1", 0))
    brams = [p for cs in _brams((synthesized / "netlist.v").read_text()).values() for _, p in cs]
    assert {p["WRITE_MODE_A"].strip('"') for p in brams if _num(p["WRITE_WIDTH_A"])} == set(MODES)
    assert {(u[0], u[2]) for us in usage.values() for u in us} == \
        {("RAMB18E1", w) for w in (1, 2, 4, 9, 18, 36)} | {("RAMB36E1", w) for w in (1, 2, 4, 9, 18, 36, 72)}


@pytest.fixture(scope="module")
def expected_mems() -> dict[str, list[list[int]]]:
    return _expected_mems()


def test_netlist_with_bram_model_reads_every_word(synthesized, expected_mems, tmp_path):
    """The Yosys netlist on netlist_library reads every word of every memory as expected
    (ROM contents, initial RAM contents, reads during writes, written words)."""
    lib = netlist_library(tmp_path / "lib")
    (tmp_path / "tb.sv").write_text(_mems_testbench())
    binary = verilate("tb", [tmp_path / "tb.sv", synthesized / "netlist.v", *lib], tmp_path / "build")
    got = _parse_mems(run_testbench(binary, tmp_path))
    assert _mismatches(got, expected_mems) == {}


LUT_DSP_CHECK = """  // extract_modules' DSP48E1 and LUT6_2: P = A * B (no registers), O6/O5 from INIT
  reg [29:0] da = 0; reg [17:0] db = 0; reg [5:0] li = 0; wire [47:0] dp; wire o6, o5;
  DSP48E1 #(.AREG(0), .BREG(0), .MREG(0), .PREG(0), .ACASCREG(0), .BCASCREG(0), .CREG(0), .DREG(0), .ADREG(0),
            .ALUMODEREG(0), .CARRYINREG(0), .CARRYINSELREG(0), .INMODEREG(0), .OPMODEREG(0)) dsp (
    .A(da), .B(db), .C(48'b0), .D(25'b0), .OPMODE(7'b0000101), .ALUMODE(4'b0), .INMODE(5'b0), .CARRYINSEL(3'b0),
    .CARRYIN(1'b0), .CLK(clk), .P(dp), .ACIN(30'b0), .BCIN(18'b0), .PCIN(48'b0), .CARRYCASCIN(1'b0),
    .MULTSIGNIN(1'b0), .CEA1(1'b0), .CEA2(1'b0), .CEAD(1'b0), .CEALUMODE(1'b0), .CEB1(1'b0), .CEB2(1'b0),
    .CEC(1'b0), .CECARRYIN(1'b0), .CECTRL(1'b0), .CED(1'b0), .CEINMODE(1'b0), .CEM(1'b0), .CEP(1'b0),
    .RSTA(1'b0), .RSTB(1'b0), .RSTC(1'b0), .RSTD(1'b0), .RSTALLCARRYIN(1'b0), .RSTALUMODE(1'b0),
    .RSTCTRL(1'b0), .RSTINMODE(1'b0), .RSTM(1'b0), .RSTP(1'b0));
  LUT6_2 #(.INIT(64'h0123456789abcdef)) lut (.I0(li[0]), .I1(li[1]), .I2(li[2]), .I3(li[3]), .I4(li[4]),
    .I5(li[5]), .O6(o6), .O5(o5));
  initial begin : dsp_lut
    integer k;
    for (k = 0; k < 64; k = k + 1) begin
      da = 30'(mix(k) & 32'h1ffffff); db = 18'(mix(k + 100)); li = k[5:0];
      #1 $display("D %0d %h %h %h %0d %0d", k, da, db, dp, o6, o5);
    end
  end
"""


def test_rtl_and_extracted_dsp_lut(synthesized, expected_mems, tmp_path):
    """The behavioural RTL of `mems` gives the same reads (the expectation is the RTL's
    meaning), and extract_modules' DSP48E1 / LUT6_2 compute A*B and INIT[I]."""
    src = tmp_path / "prims.v"
    src.write_text(extract_modules(["DSP48E1", "LUT6_2"]))
    (tmp_path / "tb.sv").write_text(_mems_testbench(LUT_DSP_CHECK))
    binary = verilate("tb", [tmp_path / "tb.sv", synthesized / "mems.sv", src], tmp_path / "build")
    out = run_testbench(binary, synthesized)  # $readmemh reads the .hex files there
    assert _mismatches(_parse_mems(out), expected_mems) == {}
    lines = [f.split() for f in out.splitlines() if f.startswith("D ")]
    assert len(lines) == 64
    for _, k, a, b, p, o6, o5 in lines:
        a_, b_ = int(a, 16), int(b, 16) - (int(b, 16) >> 17 << 18)  # A[24:0] and B are signed
        a_ -= (a_ >> 24) << 25
        assert int(p, 16) == (a_ * b_) & mask(48), (k, a, b, p)
        assert int(o6) == (0x0123456789ABCDEF >> int(k)) & 1
        assert int(o5) == (0x0123456789ABCDEF >> (int(k) & 31)) & 1


def test_empty_cells_sim_bram_fails_the_check(synthesized, expected_mems, tmp_path):
    """Teeth: the same netlist on cells_sim.v's own RAMB18E1/RAMB36E1 (no behaviour) reads
    zeros, and the check of test_netlist_with_bram_model_reads_every_word flags every memory."""
    lib = netlist_library(tmp_path / "lib", bram_model=False)
    assert "module RAMB18E1" in lib[0].read_text() and [p.name for p in lib] == ["xc7_cells_sim.v", "luts.sv"]
    (tmp_path / "tb.sv").write_text(_mems_testbench())
    binary = verilate("tb", [tmp_path / "tb.sv", synthesized / "netlist.v", *lib], tmp_path / "build")
    got = _parse_mems(run_testbench(binary, tmp_path))
    bad = _mismatches(got, expected_mems)
    assert set(bad) == {m.name for m in MEMS}, bad
    assert all(v == 0 for row in got["R"] for v in row)  # the empty model outputs zeros
