"""Tests of bram.sv, the RAMB18E1/RAMB36E1 models (hw/rtl/primitives), in Verilator: they
read a known INIT/INITP pattern back in every width (1, 2, 4, 9, 18, 36 TDP; SDP 36/72), on
both ports, with and without the output register; INIT_*/SRVAL_* values, enable,
RSTRAM/RSTREG/REGCE; writes with byte enables read back, across widths, under READ_FIRST,
WRITE_FIRST and NO_CHANGE; all against a Python model of Xilinx's layout (UG473) written
apart from bram.sv. Also the library's assembly and an unmodelled configuration.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest

from hw.rtl.primitives import cells_sim, extract_modules, netlist_library, strip_modules
from hw.rtl.primitives.tb_patterns import M32, MIX_SV, MODES, mask, mix, run_testbench, split, word72
from hw.rtl.tools import RtlToolError, verilate

SHIFT = {1: 0, 2: 1, 4: 2, 9: 3, 18: 4, 36: 5, 72: 6}
"""Address pins below the word address, per width (UG473)."""



class RefMem:
    """Xilinx's block-RAM content model: data bit i (INIT_xx bit i - 256*xx), parity bit j of
    data byte j (INITP_xx); width w <= 4 reads data bits w*a.., width 9n bytes n*a.. with
    their parity bits. Values are (data, parity) integers."""

    def __init__(self, data: bytes, parity: np.ndarray):
        self.bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")
        self.par = parity.astype(np.uint8).copy()

    @staticmethod
    def _int(bits: np.ndarray) -> int:
        return int.from_bytes(np.packbits(bits, bitorder="little").tobytes(), "little")

    def read(self, w: int, a: int) -> tuple[int, int]:
        if w <= 4:
            return self._int(self.bits[a * w:(a + 1) * w]), 0
        n = w // 9
        return self._int(self.bits[a * n * 8:(a + 1) * n * 8]), self._int(self.par[a * n:(a + 1) * n])

    def write(self, w: int, a: int, data: int, par: int, lanes: int) -> None:
        """Lane k (byte k of a wide word; the whole of a narrow one) is written if lanes bit k."""
        if w <= 4 and lanes & 1:
            self.bits[a * w:(a + 1) * w] = [(data >> t) & 1 for t in range(w)]
        for k in range(w // 9):
            if (lanes >> k) & 1:
                b = a * (w // 9) + k
                self.bits[8 * b:8 * b + 8] = [(data >> (8 * k + t)) & 1 for t in range(8)]
                self.par[b] = (par >> k) & 1

    def read_all(self, w: int) -> list[tuple[int, int]]:
        nd, npar = split(w)
        weights = np.uint64(1) << np.arange(max(nd, 1), dtype=np.uint64)
        d = (self.bits.reshape(-1, nd).astype(np.uint64) * weights[:nd]).sum(1)
        p = (self.par.reshape(-1, npar).astype(np.uint64) * weights[:npar]).sum(1) if npar else np.zeros_like(d)
        return list(zip(d.tolist(), p.tolist()))


# ---------------------------------------------------------------- bram.sv on its own

@dataclass(frozen=True)
class Cfg:
    """One block RAM of the direct testbench: TDP ports A/B of widths wa/wb, or SDP with
    read width wa (port A) and write width wb (port B); big: RAMB36E1 (else RAMB18E1)."""
    big: bool
    sdp: bool
    wa: int
    wb: int
    reg: int
    mode: str

    prim = property(lambda self: "RAMB36E1" if self.big else "RAMB18E1")
    nbytes = property(lambda self: 4096 if self.big else 2048)
    dp = property(lambda self: 32 if self.big else 16)
    """Data pins per port."""

    def depth(self, w: int) -> int:
        return self.nbytes * 8 // w if w <= 4 else self.nbytes // (w // 9)

    def width(self, port: int) -> int:
        return self.wb if port else self.wa

    def reads(self, port: int) -> bool:
        return not (self.sdp and port)

    def wide(self, port: int) -> bool:
        """The port spreads over both ports' pins (SDP 36/72)."""
        return self.sdp and self.width(port) == (72 if self.big else 36)


CONFIGS = [Cfg(p, sdp, wa, wb, reg, MODES[i % 3]) for i, (p, sdp, wa, wb, reg) in enumerate(
    [(False, False, w, w, r) for w in (1, 2, 4, 9, 18) for r in (0, 1)] + [(False, True, 36, 36, r) for r in (0, 1)]
    + [(True, False, w, w, r) for w in (1, 2, 4, 9, 18, 36) for r in (0, 1)] + [(True, True, 72, 72, r) for r in (0, 1)]
    + [(False, False, 18, 4, 0), (True, False, 1, 36, 1), (False, True, 36, 9, 0), (True, True, 4, 72, 1)])]
NW = 2048
"""Words written per write phase (at most)."""
PHASE0 = [(1, 1, 1, 1), (0, 0, 0, 0), (1, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 1), (0, 1, 0, 0),
          (0, 0, 0, 1)]
"""Phase 0's edges (EN, RSTRAM, RSTREG, REGCE); edge 3 reads word 3, the others word 0: reset,
EN off, a read with REGCE off, REGCE off, REGCE on, RSTREG, RSTRAM without EN, REGCE on."""


def _values(i: int, c: Cfg) -> dict[str, int]:
    bits = 36 if c.big else 18
    return {k: (mix(i * 8 + j) | mix(i * 8 + j + 4) << 32) & mask(bits)
            for j, k in enumerate(("INIT_A", "INIT_B", "SRVAL_A", "SRVAL_B"))}


def _port_value(c: Cfg, port: int, lo: int, hi: int) -> tuple[int, int]:
    """(data, parity) a port starts with / resets to, from INIT_*/SRVAL_* (lo: *_A, hi: *_B):
    {parity, data} per width; the wide SDP port has lo as its low half, hi as its high half."""
    w = c.width(port)
    halves = [lo, hi] if c.wide(port) else [lo if port == 0 else hi]
    nd, npar = split(w // len(halves))
    return (sum((v & mask(nd)) << nd * k for k, v in enumerate(halves)),
            sum((v >> nd & mask(npar)) << npar * k for k, v in enumerate(halves)))


def _init_params(data: bytes, parity: np.ndarray, nbytes: int) -> str:
    init = [f".INIT_{x:02X}(256'h{int.from_bytes(data[32 * x:32 * x + 32], 'little'):064x})"
            for x in range(nbytes // 32)]
    initp = [f".INITP_{x:02X}(256'h{RefMem._int(parity[256 * x:256 * x + 256]):064x})" for x in range(nbytes // 256)]
    return ", ".join(init + initp)


def _address(c: Cfg, w: int, word: str) -> str:
    return f"(({word}) << {SHIFT[w]}) | (c & {mask(SHIFT[w])}) | {1 << 15 if c.big else 0}"


def _write_pins(i: int, c: Cfg, p: int) -> str:
    """SV statements driving port p's data and write-enable pins with word72(i, c) and the
    lanes of the write phases (wide widths: every 4th word some lanes off; narrow: every
    8th word no write)."""
    s, w = f"_{i}", c.width(p)
    (nd, npar), n, dp, pp = split(w), max(w // 9, 1), c.dp, c.dp // 8
    wen = (4 if c.big else 2) if p == 0 else (8 if c.big else 4)
    we = f"{{{wen // n}{{lanes[{n - 1}:0]}}}}" if w >= 18 else f"{{{wen}{{c % 8 != 7}}}}"
    if c.wide(p):
        pins = (f"d0{s} = v[{dp - 1}:0]; d1{s} = v[{2 * dp - 1}:{dp}]; p0{s} = v[{63 + pp}:64]; "
                f"p1{s} = v[{63 + 2 * pp}:{64 + pp}];")
    else:
        pins = f"d{p}{s} = v[{nd - 1}:0];" + (f" p{p}{s} = v[{63 + npar}:64];" if npar else "")
    return f"v = word72({i}, c); lanes = c % 4 == 3 ? mix({i} * 65536 + c * 4 + 3) : 32'hff; {pins} w{p}{s} = {we};"


def _lanes(i: int, c: Cfg, w: int, cyc: int) -> int:
    if w < 18:
        return int(cyc % 8 != 7)
    return (mix((i * 65536 + cyc * 4 + 3) & M32) if cyc % 4 == 3 else 0xFF) & mask(w // 9)


def _direct_testbench(data: bytes, parity: np.ndarray) -> str:
    """All CONFIGS block RAMs on one clock. Phases (printed 'phase inst port cycle value'):
    0 INIT, RSTRAM+RSTREG, EN off, REGCE off, REGCE on, RSTREG; 1 both ports read every word;
    2 the write port (TDP A, SDP B) writes; 3 the other port reads every word; 4 TDP: B
    writes; 5 TDP: A reads every word. A write phase first reads word 0 twice."""
    dmax = max(c.depth(c.width(p)) for c in CONFIGS for p in (0, 1))
    decl, inst, shows, body = [], [], [], {k: [] for k in range(6)}
    for i, c in enumerate(CONFIGS):
        s, dp, pp = f"_{i}", c.dp, c.dp // 8
        decl.append(f"  reg e0{s} = 0, e1{s} = 0, r0{s} = 0, r1{s} = 0, g0{s} = 0, g1{s} = 0, c0{s} = 0, c1{s} = 0;\n"
                    f"  reg [1:0] sh{s} = 0; reg [15:0] a0{s} = 0, a1{s} = 0; reg [{dp - 1}:0] d0{s} = 0, d1{s} = 0;\n"
                    f"  reg [{pp - 1}:0] p0{s} = 0, p1{s} = 0; reg [{pp - 1}:0] w0{s} = 0; reg [{2 * pp - 1}:0] w1{s} = 0;\n"
                    f"  wire [{dp - 1}:0] q0{s}, q1{s}; wire [{pp - 1}:0] qp0{s}, qp1{s};")
        bits = 36 if c.big else 18
        params = (f'.RAM_MODE("{"SDP" if c.sdp else "TDP"}"), .READ_WIDTH_A({c.wa}), .READ_WIDTH_B({0 if c.sdp else c.wb}), '
                  f".WRITE_WIDTH_A({0 if c.sdp else c.wa}), .WRITE_WIDTH_B({c.wb}), .DOA_REG({c.reg}), .DOB_REG({c.reg}), "
                  f'.WRITE_MODE_A("{c.mode}"), .WRITE_MODE_B("{c.mode}"), '
                  + ", ".join(f".{k}({bits}'h{x:x})" for k, x in _values(i, c).items()))
        a14 = "" if c.big else "[13:0]"
        inst.append(f"  {c.prim} #({params}, `INIT{bits}) u{s} (\n"
                    f"    .CLKARDCLK(clk), .CLKBWRCLK(clk), .ENARDEN(e0{s}), .ENBWREN(e1{s}), .REGCEAREGCE(g0{s}),\n"
                    f"    .REGCEB(g1{s}), .RSTRAMARSTRAM(r0{s}), .RSTRAMB(r1{s}), .RSTREGARSTREG(c0{s}), .RSTREGB(c1{s}),\n"
                    f"    .ADDRARDADDR(a0{s}{a14}), .ADDRBWRADDR(a1{s}{a14}), .DIADI(d0{s}), .DIBDI(d1{s}), .DIPADIP(p0{s}),\n"
                    f"    .DIPBDIP(p1{s}), .WEA(w0{s}), .WEBWE(w1{s}), .DOADO(q0{s}), .DOBDO(q1{s}), .DOPADOP(qp0{s}),\n"
                    f"    .DOPBDOP(qp1{s}));")
        out = [f"{{qp1{s}, qp0{s}, q1{s}, q0{s}}}" if c.wide(0) else f"{{qp0{s}, q0{s}}}", f"{{qp1{s}, q1{s}}}"]
        for p in (0, 1):
            if c.reads(p):
                shows.append(f"    if (sh{s}[{p}]) $display(\"%0d {i} {p} %0d %h\", phase, c, {out[p]});")
            body[0].append(f"    {{e{p}{s}, r{p}{s}, c{p}{s}, g{p}{s}}} = ctl; sh{s} = 2'b11; "
                           f"a{p}{s} = {_address(c, c.width(p), 'c == 3 ? 3 : 0')};")

        def sweep(p: int) -> str:
            d = c.depth(c.width(p))
            word = f"c % {d}" if p == 0 else f"{d - 1} - c % {d}"
            return (f"    {{e{p}{s}, g{p}{s}, sh{s}[{p}]}} = {{3{{c <= {d}}}}}; "
                    f"a{p}{s} = {_address(c, c.width(p), word)};")

        def write(p: int) -> str:
            d = c.depth(c.width(p))
            nw, word = min(d, NW), ("c * 7" if p == 0 else "c * 5 + 3")
            return (f"    {{e{p}{s}, g{p}{s}}} = {{2{{c < {nw}}}}}; sh{s}[{p}] = c >= 0 && c < {nw};\n"
                    f"    if (c < 0) a{p}{s} = {_address(c, c.width(p), '0')};\n"
                    f"    else if (c < {nw}) begin a{p}{s} = {_address(c, c.width(p), f'({word}) % {d}')};\n"
                    f"      {_write_pins(i, c, p)}\n    end else begin w0{s} = 0; w1{s} = 0; end")
        body[1].append(sweep(0) + ("" if c.sdp else "\n" + sweep(1)))
        body[2].append(write(1 if c.sdp else 0))
        body[3].append(sweep(0 if c.sdp else 1))
        if not c.sdp:
            body[4].append(write(1))
            body[5].append(sweep(0))
    idle = " ".join(f"{{e0_{i}, e1_{i}, g0_{i}, g1_{i}, w0_{i}, w1_{i}, r0_{i}, r1_{i}, c0_{i}, c1_{i}, sh_{i}}} = 0;"
                    for i in range(len(CONFIGS)))

    def loop(phase: int, lo: int, hi: int) -> str:
        return (f"    phase = {phase}; {idle}\n    for (c = {lo}; c <= {hi}; c = c + 1) begin\n"
                + "\n".join(body[phase]) + "\n      tick; show_all;\n    end\n")
    p0 = "".join(f"    c = {k}; ctl = 4'b{''.join(map(str, ctl))};\n" + "\n".join(body[0]) + "\n    tick; show_all;\n"
                 for k, ctl in enumerate(PHASE0, start=1))
    return (f"`define INIT18 {_init_params(data, parity, 2048)}\n`define INIT36 {_init_params(data, parity, 4096)}\n"
            "module tb;\n  reg clk = 0;\n  integer c, phase;\n  reg [3:0] ctl;\n  reg [71:0] v;\n  reg [31:0] lanes;\n"
            + MIX_SV + "\n".join(decl) + "\n" + "\n".join(inst) + "\n"
            "  task tick; begin #1 clk = 1; #1 clk = 0; end endtask\n"
            "  task show_all; begin\n" + "\n".join(shows) + "\n  end endtask\n"
            "  initial begin\n    #1 phase = 0; c = 0;\n" + " ".join(f"sh_{i} = 2'b11;" for i in range(len(CONFIGS)))
            + "\n    show_all;\n" + p0 + loop(1, 0, dmax) + loop(2, -2, NW - 1) + loop(3, 0, dmax)
            + loop(4, -2, NW - 1) + loop(5, 0, dmax) + "    $finish;\n  end\nendmodule\n")


class PortSim:
    """One port of a block RAM as Xilinx documents it (latch, optional output register)."""

    def __init__(self, mem: RefMem, c: Cfg, p: int, init: tuple[int, int], srval: tuple[int, int]):
        self.mem, self.w, self.mode, self.reg, self.srval = mem, c.width(p), c.mode, c.reg, srval
        self.read, self.lat, self.oreg = c.reads(p), init, init

    def out(self) -> tuple[int, int]:
        return self.oreg if self.reg else self.lat

    def edge(self, en: int, rstram: int, rstreg: int, regce: int, a: int,
             wr: tuple[int, int, int] | None = None) -> tuple[int, int]:
        old = self.mem.read(self.w, a) if self.read else (0, 0)
        writing = bool(en and wr and wr[2])
        if writing:
            self.mem.write(self.w, a, *wr)
        new = self.mem.read(self.w, a) if self.read else (0, 0)
        prev = self.lat
        if en and rstram:
            self.lat = self.srval
        elif en and self.read and not (self.mode == "NO_CHANGE" and writing):
            self.lat = new if self.mode == "WRITE_FIRST" else old
        if self.reg and rstreg:
            self.oreg = self.srval
        elif self.reg and regce:
            self.oreg = prev
        return self.out()


def _expected_direct(data: bytes, parity: np.ndarray) -> dict[tuple[int, int, int], list]:
    """{(phase, inst, port): [(data, parity) per printed cycle; None where not checked]}, the
    testbench's lines as the Python model predicts them."""
    exp: dict[tuple[int, int, int], list] = {}
    for i, c in enumerate(CONFIGS):
        mem = RefMem(data[:c.nbytes], parity[:c.nbytes])
        v = _values(i, c)
        ports = {p: PortSim(mem, c, p, _port_value(c, p, v["INIT_A"], v["INIT_B"]),
                            _port_value(c, p, v["SRVAL_A"], v["SRVAL_B"])) for p in (0, 1)}
        for p, port in ports.items():
            outs = [port.out()]
            for k, (en, rstram, rstreg, regce) in enumerate(PHASE0, start=1):
                outs.append(port.edge(en, rstram, rstreg, regce, 3 if k == 3 else 0))
            if port.read:
                exp[0, i, p] = outs

        def sweep(phase: int, p: int) -> None:
            w = c.width(p)
            table, lat = mem.read_all(w), 1 + c.reg
            d = c.depth(w)
            words = [(cyc if p == 0 else d - 1 - cyc) % d for cyc in range(d + 1)]  # as the testbench's sweep
            exp[phase, i, p] = [table[words[cyc - lat + 1]] if cyc >= lat - 1 else None for cyc in range(d + 1)]

        def write(phase: int, p: int) -> None:
            port, w = ports[p], c.width(p)
            port.lat = port.oreg = mem.read(w, 0) if port.read else (0, 0)
            nd, npar = split(w)
            outs = []
            for cyc in range(min(c.depth(w), NW)):
                x = word72(i, cyc)
                outs.append(port.edge(1, 0, 0, 1, (cyc * 7 if p == 0 else cyc * 5 + 3) % c.depth(w),
                                      (x & mask(nd), (x >> 64) & mask(npar), _lanes(i, c, w, cyc))))
            if port.read:
                exp[phase, i, p] = outs

        sweep(1, 0)
        if not c.sdp:
            sweep(1, 1)
        write(2, 1 if c.sdp else 0)
        sweep(3, 0 if c.sdp else 1)
        if not c.sdp:
            write(4, 1)
            sweep(5, 0)
    return exp


def _parse_direct(text: str) -> dict[tuple[int, int, int], list]:
    got: dict[tuple[int, int, int], list] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 5 and f[0].isdigit():
            (ph, i, p), v, c = map(int, f[:3]), int(f[4], 16), CONFIGS[int(f[1])]
            (nd, npar), pins = split(c.width(p)), c.dp * (1 + c.wide(p))  # data pins, then parity pins
            got.setdefault((ph, i, p), []).append((v & mask(nd), (v >> pins) & mask(npar)))
    return got


def _pattern() -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(473)
    return rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), rng.integers(0, 2, 4096, dtype=np.uint8)


def test_bram_model_reads_writes_every_width_and_mode(tmp_path):
    """Every CONFIGS block RAM prints what the Python model of Xilinx's layout predicts, line
    for line: INIT pattern in every width on both ports, INIT/SRVAL, EN, REGCE, RSTREG,
    writes (byte lanes, skipped writes) under READ_FIRST/WRITE_FIRST/NO_CHANGE, mixed widths."""
    data, parity = _pattern()
    (tmp_path / "tb.sv").write_text(_direct_testbench(data, parity))
    binary = verilate("tb", [tmp_path / "tb.sv", *netlist_library(tmp_path / "lib")], tmp_path / "build")
    got, exp = _parse_direct(run_testbench(binary, tmp_path)), _expected_direct(data, parity)
    assert set(got) == set(exp)
    bad = []
    for key, want in exp.items():
        have = got[key]
        assert len(have) == len(want), key
        wrong = [k for k, (h, x) in enumerate(zip(have, want)) if x is not None and h != x]
        if wrong:
            bad.append(f"{key} {CONFIGS[key[1]]}: {len(wrong)} wrong, first at {wrong[0]}: "
                       f"{have[wrong[0]]} != {want[wrong[0]]}")
    assert not bad, "\n".join(bad[:20])


def test_library_files(tmp_path):
    """netlist_library: cells_sim.v without its empty block RAMs and its LUTs, then luts.sv
    and bram.sv (each RAMB module defined once); strip_modules / extract_modules name a module they lack."""
    lib = netlist_library(tmp_path)
    text = "".join(p.read_text() for p in lib)
    assert [p.name for p in lib] == ["xc7_cells_sim.v", "luts.sv", "bram.sv"]
    for name in ("RAMB18E1", "RAMB36E1"):
        assert len(re.findall(rf"^module {name}\b", text, re.M)) == 1
    assert re.search(r"^module DSP48A\b", text, re.M) is None
    assert re.search(r"^module DSP48E1\b", text, re.M) and re.search(r"^module FDRE\b", text, re.M)
    assert cells_sim().is_file()
    with pytest.raises(RtlToolError):
        extract_modules(["NO_SUCH_CELL"])
    with pytest.raises(RtlToolError):
        strip_modules("module A; endmodule\n", ("B",))


def test_unmodelled_configuration_stops_the_simulation(tmp_path):
    """A width or mode bram.sv does not model ends the simulation with an error (Verilator's
    -Wno-fatal would let an elaboration-time check pass), instead of reading garbage."""
    (tmp_path / "tb.sv").write_text(
        "module tb;\n  wire [15:0] q;\n  RAMB18E1 #(.READ_WIDTH_A(36)) u (.CLKARDCLK(1'b0), .ADDRARDADDR(14'b0),"
        " .DOADO(q));\n  initial #1 $finish;\nendmodule\n")
    binary = verilate("tb", [tmp_path / "tb.sv", *netlist_library(tmp_path / "lib")], tmp_path / "build")
    r = subprocess.run([str(binary)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "is not modelled" in r.stdout + r.stderr
