"""Timing depth without Vivado: the longest register-to-register path of a design mapped by
Yosys for xc7, counted in cells (LUTs, CARRY4s, MUXF7/8), from Yosys's `ltp` pass.

`ltp` finds the longest topological path through the selected cells. Its `-noff` excludes
only Yosys's internal flip-flop types, so `LTP_SCRIPT` deselects every sequential or memory
cell `synth_xilinx` maps to (`SEQUENTIAL_CELLS`) and the clock buffer: a path then starts at
a register output or an input port and ends at a register input or an output port. A
distributed RAM's or shift register's asynchronous read (address -> data) is cut there too,
so paths through one are counted from or to the RAM. Levels are cell counts, not delays
(there is no place and route here): a guide to compare designs and to find deep logic.

`our_instances` lists the instances of our blocks (`btsee_*`, `OUR_BLOCKS`) in generated
sources with their parameters; `hw.rtl.block_depth` synthesizes each as a module of its
own and reports its depth and resources.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from hw.rtl.tools import RtlToolError

HERE = Path(__file__).parent
OUR_BLOCKS: dict[str, Path] = {
    "btsee_maxpool": HERE / "maxpool" / "maxpool.sv",
    "btsee_column_max": HERE / "column_max" / "column_max.sv",
    "btsee_exit_decision": HERE / "exit_decision" / "exit_decision.sv",
    "btsee_fork": HERE / "exit_glue" / "fork.sv",
    "btsee_exit_buffer": HERE / "exit_glue" / "exit_buffer.sv",
    "btsee_queue": HERE / "exit_glue" / "queue.sv",
    "btsee_exit_merge": HERE / "exit_glue" / "exit_merge.sv",
    "btsee_axis_last": HERE.parent / "vivado" / "axis_last.sv",
    "btsee_residual_add": HERE / "residual_add" / "residual_add.sv",
    "btsee_global_acc_pool": HERE / "global_acc_pool" / "global_acc_pool.sv",
}
"""Our blocks: module name -> its source (one file, no dependencies)."""

SEQUENTIAL_CELLS: tuple[str, ...] = (
    "FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE", "DSP48E1", "RAMB18E1", "RAMB36E1",
    "RAM32M", "RAM32M16", "RAM64M", "RAM64M8", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1D",
    "RAM32X1S", "RAM64X1S", "RAM128X1S", "RAM256X1S", "SRL16E", "SRLC16E", "SRLC32E")
"""The xc7 cells with state that synth_xilinx maps to: the ends of a path."""
LTP_FILE = "ltp.txt"


def ltp_script(boundaries: tuple[str, ...] = (), module: str | None = None, out: str = LTP_FILE) -> str:
    """Yosys commands, after synth_xilinx (flattened): the deepest path into `out`, `ltp`'s
    listing (bit by bit, each step `via` a cell) followed by the RTLIL dump of the path's
    cells, which gives each cell's type. Paths end at SEQUENTIAL_CELLS, the clock buffer and
    the cells of type `boundaries` (black boxes, such as the segments in the exit glue).
    With `module`, only that module of a design of several is searched."""
    selection = f"{module + '/' if module else ''}* " + " ".join(
        f"t:{c} %d" for c in (*SEQUENTIAL_CELLS, "BUFG", *boundaries))
    return (f"tee -q -o {out} ltp -noff {selection}\n"
            f"ltp -noff -select {selection}\n"
            f"tee -q -a {out} dump\n"
            "select -clear\n")


LTP_SCRIPT = ltp_script()
"""`ltp_script()` for a design without black boxes."""

LUT_CELLS = frozenset({*(f"LUT{k}" for k in range(1, 7)), "LUT6_2"})
MUXF_CELLS = frozenset({"MUXF7", "MUXF8"})

_HEADER = re.compile(r"^Longest topological path in (\S+) \(length=(-?\d+)\):\s*$", re.M)
_STEP = re.compile(r"^\s*(\d+): (.*?)(?: \(via (.+)\))?\s*$")
_CELL = re.compile(r"^\s*cell\s+(\S+)\s+(\S+)\s*$", re.M)


class DepthError(RtlToolError):
    """An ltp listing is missing or malformed, or an instance cannot be synthesized alone."""


def _unescape(name: str) -> str:
    """An RTLIL name as `ltp` prints it (log_id): public names without their backslash."""
    return name[1:] if name.startswith("\\") else name


def parse_ltp(text: str, where: str = LTP_FILE) -> dict:
    """The deepest path of LTP_SCRIPT's output `text` (`where` names it in errors):
    {"levels": cells on the path, "path": their types in order, "cells": {type: count},
    "lut", "carry4", "muxf", "inv": counts, "carry_chain": longest run of consecutive
    CARRY4, "from"/"to": the signals it starts and ends at, "module"}."""
    headers = list(_HEADER.finditer(text))
    if len(headers) != 1:
        raise DepthError(f"{where}: expected one 'Longest topological path' listing of a flattened "
                         f"design, found {len(headers)}")
    module, length = headers[0].group(1), int(headers[0].group(2))
    types = {_unescape(n): _unescape(t) for t, n in _CELL.findall(text)}
    signals: list[str] = []
    path: list[str] = []
    for line in text[headers[0].end():].splitlines():
        if not line.strip():
            if signals:
                break
            continue
        if line.strip().startswith("ff:"):
            continue
        m = _STEP.match(line)
        if m is None or int(m.group(1)) != len(signals):
            raise DepthError(f"{where}: malformed path step {line.strip()!r}")
        signals.append(m.group(2))
        if m.group(3) is not None:
            if m.group(3) not in types:
                raise DepthError(f"{where}: the path's cell {m.group(3)!r} is not in the cell dump "
                                 "(was it written by LTP_SCRIPT?)")
            path.append(types[m.group(3)])
        elif len(signals) > 1:
            raise DepthError(f"{where}: path step {len(signals) - 1} names no cell")
    if len(path) != max(length, 0):
        raise DepthError(f"{where}: the path lists {len(path)} cells, its header says {length}")
    run = chain = 0
    for t in path:
        run = run + 1 if t == "CARRY4" else 0
        chain = max(chain, run)
    cells = dict(Counter(path))
    return {"module": module, "levels": len(path), "path": path, "cells": cells,
            "lut": sum(n for t, n in cells.items() if t in LUT_CELLS), "carry4": cells.get("CARRY4", 0),
            "muxf": sum(n for t, n in cells.items() if t in MUXF_CELLS), "inv": cells.get("INV", 0),
            "carry_chain": chain, "from": signals[0] if signals else "", "to": signals[-1] if signals else ""}


def read_ltp(path: Path) -> dict:
    """parse_ltp of the file LTP_SCRIPT wrote; a missing file is a DepthError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DepthError(f"{path}: no ltp listing (Yosys did not write it)")
    return parse_ltp(path.read_text(errors="replace"), str(path))


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", " ", text, flags=re.S))


def _balanced(text: str, start: int) -> int:
    """The index just after the parenthesis closing the one at text[start]."""
    depth, i, in_string = 0, start, False
    while i < len(text):
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise DepthError(f"unbalanced parentheses after {text[start:start + 60]!r}")


def _normalize(params: str) -> str:
    """Parameter text with the whitespace outside string literals removed."""
    parts = re.split(r'("(?:[^"\\]|\\.)*")', params)
    return "".join(p if p.startswith('"') else re.sub(r"\s+", "", p) for p in parts)


_INSTANCE = re.compile(r"\b(btsee_\w+)\s*(#\s*\()?")


def our_instances(files: Iterable[Path]) -> list[tuple[str, str]]:
    """The distinct (module, parameter text) pairs of our blocks instantiated in `files`,
    in order of first appearance; the text is `#(...)` without whitespace, or "" for an
    instance with the default parameters. Declarations and other modules are skipped."""
    found: dict[tuple[str, str], None] = {}
    for f in files:
        text = _strip_comments(Path(f).read_text(errors="replace"))
        pos = 0
        while (m := _INSTANCE.search(text, pos)) is not None:
            pos = m.end()
            module = m.group(1)
            if module not in OUR_BLOCKS or re.search(r"\bmodule\s*$", text[:m.start()]):
                continue
            params = ""
            if m.group(2):
                end = _balanced(text, m.end() - 1)
                params, pos = _normalize(text[m.start(2):end]), end
            if re.match(r"\s*\w+\s*(\[[^\]]*\]\s*)?\(", text[pos:]):  # an instance name, then its ports
                found[(module, params)] = None
    return list(found)


def parameter_overrides(params: str) -> list[tuple[str, str]]:
    """[(name, value)] of a named parameter list `#(.NAME(value), ...)`; "" gives []."""
    params = _normalize(params)
    if not params:
        return []
    m = re.fullmatch(r"#\((.*)\)", params, re.S)
    if m is None:
        raise DepthError(f"not a parameter list: {params!r}")
    body, out, i = m.group(1), [], 0
    while i < len(body):
        n = re.compile(r"\.(\w+)\(").match(body, i)
        if n is None:
            raise DepthError(f"{params!r}: only named parameters (.NAME(value)) are supported")
        end = _balanced(body, n.end() - 1)
        value = body[n.end():end - 1]
        if not value or re.search(r"\s", value):
            raise DepthError(f"{params!r}: parameter {n.group(1)} has an empty value or one with spaces")
        out.append((n.group(1), value))
        i = end + 1 if body[end:end + 1] == "," else end
        if end < len(body) and body[end] != ",":
            raise DepthError(f"{params!r}: expected ',' after parameter {n.group(1)}")
    return out
