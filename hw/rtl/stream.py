"""AXI-Stream simulation in Verilator: FINN's stream packing, the one generated testbench
(any number of input and output streams), and the runners that feed integer codes in and
read integer codes back.

Packing follows FINN's streams: a word carries `elems` values of `bits` bits each, value 0
in the lowest bits, two's complement when signed, the word padded to whole bytes.

The testbench (`multi_stream_testbench(dut, inputs, outputs, monitors)`, module
`stream_tb`) drives a DUT with FINN's port names (ap_clk, ap_rst_n,
<port>_TDATA/TVALID/TREADY). Each input is read from `<port>.hex` (one hex word per line,
`pack_hex`) and offered per clock unless a random stall (`+<port>_stall=%`) holds it back,
never withdrawing a word once offered (AXI-Stream's rule). Each output lowers TREADY at
random, writes its words to `<port>.hex` and the cycle of every N-th word
(`+<port>_every=N`) to `<port>.cycles`. A monitor records the words that pass an internal
stream of the DUT (`<prefix>_tdata/_tvalid/_tready` under the instance `dut`), so a whole
design's inner streams (a head's logits) can be checked too. The run ends when every
output has its `+<port>_words=N`. With `+reset_at=N` it pulses ap_rst_n low after N words
of the first input, replays every input from its start and keeps only what comes after the
reset. Cycles count from reset's end; `start.txt` holds the cycle the first input word was
taken. Its xorshift generator is seeded, so a run repeats exactly.

`stream_testbench` and `simulate` are the one-stream case (`in0_V` -> `out0_V`: a segment,
a block); `simulate_streams` runs any testbench.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.rtl.tools import RtlToolError, run_tool
from hw.steady_state import steady_interval  # noqa: F401  (the rule, re-exported for the RTL steps)

HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)
TESTBENCH_TOP = "stream_tb"
IN, OUT = "in0_V", "out0_V"  # FINN's stream names of a one-stream design
RESET_CYCLES = 8


def word_width(elems: int, bits: int) -> int:
    """Bits of a stream word: elems x bits padded to whole bytes (FINN's `_padded` widths)."""
    return (elems * bits + 7) // 8 * 8


def pack_hex(codes: np.ndarray, bits: int) -> bytes:
    """(n_words, elems) integer codes -> one hex word per line, value 0 in the lowest bits."""
    codes = np.asarray(codes, np.int64)  # (n, e)
    n, e = codes.shape
    if bits > 62:
        raise ValueError(f"{bits}-bit values are not packed")
    u = (codes & ((1 << bits) - 1)).astype(np.uint64)
    lsb_first = ((u[:, :, None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(np.uint8)  # (n, e, bits)
    nibbles = -(-e * bits // 4)
    flat = np.zeros((n, nibbles * 4), np.uint8)
    flat[:, :e * bits] = lsb_first.reshape(n, e * bits)
    values = flat.reshape(n, nibbles, 4) @ np.array([1, 2, 4, 8], np.uint8)  # (n, nibbles), low first
    text = np.empty((n, nibbles + 1), np.uint8)
    text[:, :nibbles] = HEX_DIGITS[values[:, ::-1]]
    text[:, nibbles] = ord("\n")
    return text.tobytes()


def unpack_hex(text: bytes, elems: int, bits: int, signed: bool, chunk: int = 1 << 18) -> np.ndarray:
    """Hex words, one per line (as the testbench writes them) -> (n_words, elems) int64,
    decoded `chunk` words at a time (bounded memory for millions of words)."""
    lines = text.split()
    if not lines:
        return np.zeros((0, elems), np.int64)
    width = len(lines[0])
    if width * 4 < elems * bits:
        raise ValueError(f"output words of {width * 4} bits cannot hold {elems} x {bits} bits")
    if any(len(t) != width for t in lines):
        raise ValueError("output words of different widths")
    weights = 1 << np.arange(bits, dtype=np.int64)
    parts = []
    for start in range(0, len(lines), chunk):
        block = b"".join(lines[start:start + chunk])
        if block.strip(b"0123456789abcdef"):
            raise ValueError("an output word holds X or Z bits (undriven)")
        chars = np.frombuffer(block, np.uint8).reshape(-1, width)
        values = np.where(chars >= ord("a"), chars - ord("a") + 10, chars - ord("0"))[:, ::-1]  # low nibble first
        bits_lsb = ((values[:, :, None] >> np.arange(4, dtype=np.uint8)) & 1).reshape(len(chars), width * 4)
        fields = bits_lsb[:, :elems * bits].reshape(len(chars), elems, bits)
        parts.append(fields.astype(np.int64) @ weights)  # (chunk, elems)
    out = np.concatenate(parts)
    if signed:
        out = np.where(out >= 1 << (bits - 1), out - (1 << bits), out)
    return out


@dataclass(frozen=True)
class Port:
    """One stream: the DUT's port prefix (`in0_V` -> in0_V_TDATA/TVALID/TREADY) and its
    word format (values per word, bits per value, signedness)."""

    name: str
    elems: int
    bits: int
    signed: bool = False

    @property
    def width(self) -> int:
        return word_width(self.elems, self.bits)


def multi_stream_testbench(dut: str, inputs: list[Port], outputs: list[Port],
                           monitors: dict[str, tuple[str, int]] | None = None) -> str:
    """The SystemVerilog testbench `stream_tb` around module `dut` (module docstring).
    `monitors`: {file name: (signal prefix inside the DUT, word width)}."""
    monitors = monitors or {}
    decl, conns, opens, drive, collect, watch = [], [], [], [], [], []
    for p in inputs:
        n = p.name
        decl.append(f"  logic [{p.width - 1}:0] {n}_data = '0, {n}_buf; logic {n}_valid = 1'b0, {n}_have = 1'b0, "
                    f"{n}_eof = 1'b0; wire {n}_ready; int {n}_file, {n}_stall; bit {n}_next;")
        conns.append(f".{n}_TDATA({n}_data), .{n}_TVALID({n}_valid), .{n}_TREADY({n}_ready)")
        opens.append(f'    if (!$value$plusargs("{n}_stall=%d", {n}_stall)) {n}_stall = 0;\n'
                     f'    {n}_file = $fopen("{n}.hex", "r");\n'
                     f'    if ({n}_file == 0) $fatal(1, "{TESTBENCH_TOP}: cannot read {n}.hex");')
        drive.append(f"""        {n}_next = {n}_valid && !{n}_ready;  // an offered word stays until it is taken
        if (!{n}_next) begin
          if (!{n}_have && !{n}_eof) begin
            if ($fscanf({n}_file, "%h\\n", {n}_buf) == 1) {n}_have = 1; else {n}_eof = 1;
          end
          if ({n}_have && roll() >= {n}_stall) begin
            {n}_data <= {n}_buf; {n}_next = 1; {n}_have = 0;
          end
        end
        {n}_valid <= {n}_next;""")
    for p in outputs:
        n = p.name
        decl.append(f"  wire [{p.width - 1}:0] {n}_data; wire {n}_valid; logic {n}_ready = 1'b0; "
                    f"int {n}_file, {n}_cyc, {n}_stall; longint {n}_want, {n}_got, {n}_every;")
        conns.append(f".{n}_TDATA({n}_data), .{n}_TVALID({n}_valid), .{n}_TREADY({n}_ready)")
        opens.append(f'    if (!$value$plusargs("{n}_stall=%d", {n}_stall)) {n}_stall = 0;\n'
                     f'    if (!$value$plusargs("{n}_every=%d", {n}_every)) {n}_every = 1;\n'
                     f'    if (!$value$plusargs("{n}_words=%d", {n}_want)) $fatal(1, "{TESTBENCH_TOP}: +{n}_words=N missing");')
        collect.append(f"""        if ({n}_valid && {n}_ready) begin
          $fwrite({n}_file, "%h\\n", {n}_data); {n}_got = {n}_got + 1;
          if ({n}_every > 0 && {n}_got % {n}_every == 0) $fwrite({n}_cyc, "%0d\\n", cycle);
        end
        {n}_ready <= {n}_got < {n}_want && roll() >= {n}_stall;""")
    for m, (prefix, _width) in monitors.items():
        decl.append(f"  int {m}_mon;")
        watch.append(f'      if (dut.{prefix}_tvalid && dut.{prefix}_tready) $fwrite({m}_mon, "%h\\n", dut.{prefix}_tdata);')
    reopen = [f'    {p.name}_file = $fopen("{p.name}.hex", "w"); {p.name}_cyc = $fopen("{p.name}.cycles", "w"); '
              f'{p.name}_got = 0;' for p in outputs]
    reopen += [f'    {m}_mon = $fopen("{m}.hex", "w");' for m in monitors]
    closes = [f"    $fclose({p.name}_file); $fclose({p.name}_cyc);" for p in outputs]
    closes += [f"    $fclose({m}_mon);" for m in monitors]
    rewind = [f"          $rewind({p.name}_file); {p.name}_have = 0; {p.name}_eof = 0; {p.name}_valid <= 1'b0;"
              for p in inputs]
    first = inputs[0].name
    done = " && ".join(f"{p.name}_got == {p.name}_want" for p in outputs)
    counts = ", ".join(f"{p.name}_got, {p.name}_want" for p in outputs)
    count_text = ", ".join(f"{p.name} %0d of %0d words" for p in outputs)
    nl = "\n"
    return f"""// Generated by hw/rtl/stream.py: AXI-Stream testbench with random stalls around {dut.split()[0]}.
`timescale 1ns/1ps
module {TESTBENCH_TOP};
  logic clk = 1'b0;
  logic rst_n = 1'b0;
  always #5 clk = ~clk;
{nl.join(decl)}
  int start_file, reset_hold;
  longint reset_at, max_cycles, cycle, taken_first;
  bit did_reset, started;
  int unsigned rng;

  {dut} dut (
    .ap_clk(clk), .ap_rst_n(rst_n),
    {(","+nl+"    ").join(conns)});

  function automatic int unsigned roll();  // xorshift32, 0..99
    rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
    return rng % 100;
  endfunction

  task automatic open_outputs();
{nl.join(reopen)}
    start_file = $fopen("start.txt", "w");
    started = 0; taken_first = 0;
  endtask

  task automatic close_outputs();
{nl.join(closes)}
    $fclose(start_file);
  endtask

  initial begin
    if (!$value$plusargs("reset_at=%d", reset_at)) reset_at = 0;
    if (!$value$plusargs("max_cycles=%d", max_cycles)) max_cycles = 0;
    if (!$value$plusargs("seed=%d", rng)) rng = 1;
    if (rng == 0) rng = 1;
{nl.join(opens)}
    open_outputs();
    reset_hold = {RESET_CYCLES};
    cycle = 0; did_reset = 0;
  end

  always @(posedge clk) begin
    if (max_cycles > 0 && cycle > max_cycles)
      $fatal(1, "{TESTBENCH_TOP}: no end after %0d cycles: {count_text}, %0d words of {first} taken",
             cycle, {counts}, taken_first);
    if (reset_hold > 0) begin
      reset_hold <= reset_hold - 1;
      rst_n <= (reset_hold == 1);
      cycle <= 0;
    end else begin
      cycle <= cycle + 1;
{nl.join(watch)}
      if ({first}_valid && {first}_ready) begin
        taken_first = taken_first + 1;
        if (!started) begin started = 1; $fwrite(start_file, "%0d\\n", cycle); end
      end
      if (!did_reset && reset_at > 0 && taken_first == reset_at) begin
        did_reset = 1; reset_hold <= {RESET_CYCLES}; rst_n <= 1'b0;
{nl.join(rewind)}
        close_outputs(); open_outputs();
      end else begin
{nl.join(collect)}
{nl.join(drive)}
        if ({done}) begin close_outputs(); $finish; end
      end
    end
  end
endmodule
"""


def stream_testbench(dut: str, in_width: int, out_width: int) -> str:
    """`multi_stream_testbench` for a DUT with one input stream `in0_V` and one output
    stream `out0_V` of the given word widths (bits, whole bytes as FINN pads them), as
    `simulate` runs it."""
    if in_width % 8 or out_width % 8:
        raise ValueError(f"{dut.split()[0]}: stream words of {in_width} and {out_width} bits are not whole bytes")
    return multi_stream_testbench(dut, [Port(IN, in_width, 1)], [Port(OUT, out_width, 1)])


@dataclass
class MultiStreamRun:
    """What a simulation returned: per output stream its codes (n_words, elems) and the
    cycle of every `every`-th word; per monitor the raw hex words; the first input word's
    cycle (cycles count from the end of reset)."""

    outputs: dict[str, np.ndarray]
    cycles: dict[str, np.ndarray]
    monitors: dict[str, bytes]
    start_cycle: int


def simulate_streams(binary: Path, workdir: Path, inputs: dict[Port, np.ndarray], outputs: dict[Port, int], *,
                     stalls: dict[str, int] | None = None, every: dict[str, int] | None = None,
                     monitors: tuple[str, ...] = (), seed: int = 1, reset_at: int = 0, max_cycles: int = 0,
                     subject: Path | None = None) -> MultiStreamRun:
    """Runs a `verilate`d `multi_stream_testbench` in `workdir` (where the design's data
    files lie): {input port: (n_words, elems) codes}, {output port: words expected};
    `stalls`: {port name: %}; `every`: {output name: N}, the cycle of every N-th word kept
    (default 1, 0: none). A failed or stuck simulation, or an output short of words, is an RtlToolError
    naming `subject` (default: the binary)."""
    subject = subject or binary
    workdir.mkdir(parents=True, exist_ok=True)
    for port, codes in inputs.items():
        (workdir / f"{port.name}.hex").write_bytes(pack_hex(codes, port.bits))
    args = [str(binary), f"+seed={seed}", f"+reset_at={reset_at}", f"+max_cycles={max_cycles}"]
    args += [f"+{name}_stall={pct}" for name, pct in (stalls or {}).items()]
    args += [f"+{name}_every={n}" for name, n in (every or {}).items()]
    args += [f"+{port.name}_words={n}" for port, n in outputs.items()]
    run_tool(args, "the Verilator simulation", subject, workdir / "simulation.log", workdir)
    result = MultiStreamRun({}, {}, {}, -1)
    for port, n in outputs.items():
        path = workdir / f"{port.name}.hex"
        if not path.is_file():
            raise RtlToolError(f"{subject}: the simulation wrote no {path}")
        try:
            codes = unpack_hex(path.read_bytes(), port.elems, port.bits, port.signed)
        except ValueError as e:
            raise RtlToolError(f"{subject}: {path}: {e}") from e
        if len(codes) != n:
            raise RtlToolError(f"{subject}: {port.name} returned {len(codes)} of {n} words "
                               f"(see {workdir / 'simulation.log'})")
        result.outputs[port.name] = codes
        result.cycles[port.name] = np.array((workdir / f"{port.name}.cycles").read_text().split(), np.int64)
    result.monitors = {m: (workdir / f"{m}.hex").read_bytes() for m in monitors}
    start = (workdir / "start.txt").read_text().split()
    result.start_cycle = int(start[0]) if start else -1
    return result


@dataclass
class StreamRun:
    """What a one-stream simulation returned: the output codes and the cycle at each frame's end."""

    codes: np.ndarray  # (n_out_words, elems) int64
    frame_end_cycles: np.ndarray  # (frames,) int64

    def cycles_per_frame(self) -> float:
        """The steady-state interval between frame ends (`steady_interval`)."""
        return steady_interval(self.frame_end_cycles)


def simulate(binary: Path, workdir: Path, in_codes: np.ndarray, in_bits: int, n_out_words: int,
             out_elems: int, out_bits: int, out_signed: bool, *, frame_words: int = 0, seed: int = 1,
             in_stall: int = 0, out_stall: int = 0, reset_at: int = 0, max_cycles: int = 0,
             subject: Path | None = None) -> StreamRun:
    """`simulate_streams` for a `stream_testbench`: (n_in_words, elems) codes into `in0_V`,
    `n_out_words` words out of `out0_V`, the cycle of every `frame_words`-th output word
    (a frame's end; none with 0)."""
    run = simulate_streams(binary, workdir, {Port(IN, in_codes.shape[1], in_bits): in_codes},
                           {Port(OUT, out_elems, out_bits, out_signed): n_out_words},
                           stalls={IN: in_stall, OUT: out_stall}, every={OUT: frame_words}, seed=seed,
                           reset_at=reset_at, max_cycles=max_cycles, subject=subject)
    return StreamRun(run.outputs[OUT], run.cycles[OUT])
