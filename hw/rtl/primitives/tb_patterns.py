"""Test patterns shared by the primitive models' testbenches: a 32-bit hash that the Python
side and the SystemVerilog testbenches compute alike, words built from it, and running a
verilated testbench."""
from __future__ import annotations

import subprocess
from pathlib import Path

M32 = 0xFFFFFFFF
MODES = ("READ_FIRST", "WRITE_FIRST", "NO_CHANGE")
"""Block-RAM write modes (what a read during a write returns)."""


def mix(x: int) -> int:
    """A 32-bit integer hash; the testbenches compute the same in SystemVerilog."""
    for _ in range(2):
        x ^= x >> 16
        x = (x * 0x045D9F3B) & M32
    return x ^ (x >> 16)


MIX_SV = """  function automatic [31:0] mix(input [31:0] x);
    reg [31:0] y;
    y = x ^ (x >> 16); y = y * 32'h045d9f3b; y = y ^ (y >> 16); y = y * 32'h045d9f3b; mix = y ^ (y >> 16);
  endfunction
  function automatic [71:0] word72(input integer i, input integer c);
    word72 = {mix(i * 65536 + c * 4 + 2), mix(i * 65536 + c * 4 + 1), mix(i * 65536 + c * 4)};
  endfunction
"""


def word72(i: int, c: int) -> int:
    """72 pseudo-random bits (word72 in the testbenches): data in [63:0], parity in [71:64]."""
    k = (i * 65536 + c * 4) & M32
    return mix(k) | mix((k + 1) & M32) << 32 | (mix((k + 2) & M32) & 0xFF) << 64


def mask(n: int) -> int:
    return (1 << n) - 1


def split(w: int) -> tuple[int, int]:
    """(data bits, parity bits) of a port of width w."""
    return (w, 0) if w <= 4 else (w // 9 * 8, w // 9)


def run_testbench(binary: Path, cwd: Path) -> str:
    """The binary's stdout; its failure fails the test with the end of its stderr."""
    r = subprocess.run([str(binary)], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout
