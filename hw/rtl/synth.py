"""Yosys synthesis of a generated segment, a block, or the multi-exit top level with its
segments as black boxes (the exit glue) for Xilinx 7-series (`synth_xilinx -family xc7`):
the resources read from its cell counts, the mapped netlist kept (`hw.rtl.netlist`
simulates it) and its deepest register-to-register path in cells (`hw.rtl.depth`).
Synthesis only: no place and route, no timing; BRAM is inferred by Yosys from the weight
memories.

Resource units (xc7 slices): LUT counts logic LUTs (LUT1..LUT6, LUT6_2, INV); LUTRAM counts
the LUTs that distributed RAM and shift registers occupy (RAM64M = 4, RAM64X1D = 2,
SRLC32E = 1, ...); FF the flip-flops; DSP the DSP48E1 slices; BRAM18 the 18 Kb block RAMs
(a RAMB36E1 is two).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from hw.rtl.depth import LTP_FILE, ltp_script, read_ltp
from hw.rtl.segment import DSP_STUBS, SegmentRtl
from hw.rtl.tools import RtlToolError, yosys

FAMILY = "xc7"
CELL_RESOURCES: dict[str, tuple[str, int]] = {
    **{f"LUT{k}": ("LUT", 1) for k in range(1, 7)}, "LUT6_2": ("LUT", 1), "INV": ("LUT", 1),
    "RAM32M": ("LUTRAM", 4), "RAM32M16": ("LUTRAM", 8), "RAM64M": ("LUTRAM", 4), "RAM64M8": ("LUTRAM", 8),
    "RAM32X1D": ("LUTRAM", 2), "RAM64X1D": ("LUTRAM", 2), "RAM128X1D": ("LUTRAM", 4), "RAM256X1D": ("LUTRAM", 8),
    "RAM32X1S": ("LUTRAM", 1), "RAM64X1S": ("LUTRAM", 1), "RAM128X1S": ("LUTRAM", 2), "RAM256X1S": ("LUTRAM", 4),
    "SRL16E": ("LUTRAM", 1), "SRLC16E": ("LUTRAM", 1), "SRLC32E": ("LUTRAM", 1),
    **{ff: ("FF", 1) for ff in ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")},
    "DSP48E1": ("DSP", 1), "RAMB18E1": ("BRAM18", 1), "RAMB36E1": ("BRAM18", 2),
}
"""Cell type -> (resource, units per cell)."""
NOT_COUNTED = ("BUFG", "CARRY4", "MUXF7", "MUXF8", "IBUF", "OBUF")
"""Cells that use no resource of the report (carry chains and muxes sit beside the LUTs)."""
RESOURCE_KEYS = ("LUT", "LUTRAM", "FF", "DSP", "BRAM18")
BMUX_TO_SHIFTX = Path(__file__).with_name("bmux_to_shiftx.v")
"""Techmap rule run before synth_xilinx: variable-index reads as $shiftx, so Yosys infers
shift registers (SRL16E/SRLC32E) where it would build flip-flops and multiplexers."""
NETLIST = "netlist.v"
"""The mapped netlist each synthesis keeps in its folder (xc7 primitives as cells, memory
images baked into INIT parameters): what `hw.rtl.netlist` simulates."""


def lut_sites(resources: dict) -> int:
    """LUT sites used: logic LUTs + LUTs as distributed RAM and shift registers (LUTRAM)."""
    return int(resources["LUT"]) + int(resources.get("LUTRAM", 0))


def resources_from_cells(cells: dict[str, int], where: str) -> dict[str, int]:
    """{resource: count} from Yosys's cell counts; an unknown cell type is an RtlToolError
    (it would silently go uncounted)."""
    out = dict.fromkeys(RESOURCE_KEYS, 0)
    for cell, n in cells.items():
        if cell in CELL_RESOURCES:
            key, units = CELL_RESOURCES[cell]
            out[key] += units * int(n)
        elif cell not in NOT_COUNTED:
            raise RtlToolError(f"{where}: Yosys left a cell of type {cell!r} that the resource count does "
                               "not know")
    return out


READ_SLANG = "read_slang -j 1 -D SYNTHESIS --ignore-assertions --allow-use-before-declare"
"""How every synthesis of ours reads SystemVerilog (yosys-slang)."""


def synthesis_commands(top: str, read_args: str, out_dir: Path) -> str:
    """The Yosys commands every synthesis of ours starts with: yosys-slang reads
    `read_args` (options and files) with top `top`, our techmap rule (copied into out_dir)
    rewrites its variable-index reads, and synth_xilinx maps the flattened design."""
    shutil.copyfile(BMUX_TO_SHIFTX, Path(out_dir) / BMUX_TO_SHIFTX.name)
    return (f"{READ_SLANG} --top {top} {read_args}\n"
            f"techmap -map {BMUX_TO_SHIFTX.name}\n"
            f"synth_xilinx -family {FAMILY} -noiopad -flatten -top {top}\n")


def synthesize_glue(design, segment_tops: list[str], out_dir: Path) -> dict:
    """The multi-exit design's top level with its segments as black boxes: the resources of
    everything but the segments (decision units, forks, buffers, queues, merge, width
    converters), as `synthesize`."""
    src = design.out_dir / "src"
    return synthesize_files(design.top, [src / n for n in design.sources], out_dir,
                            subject=src / f"{design.top}.sv", blackboxes=tuple(segment_tops))


def synthesize(rtl: SegmentRtl, out_dir: Path) -> dict:
    """Synthesizes the segment in out_dir (its sources and memory images copied there);
    returns {"resources": {LUT, LUTRAM, FF, DSP, BRAM18}, "cells": Yosys's counts, "depth":
    its deepest register-to-register path (`hw.rtl.depth.parse_ltp`)}. The log is
    out_dir/yosys.log, the cell counts out_dir/stat.json, the mapped netlist
    out_dir/netlist.v, the path out_dir/ltp.txt."""
    src = rtl.out_dir / "src"
    return synthesize_files(rtl.top, [src / n for n in rtl.sources], out_dir,
                            data_files=[src / n for n in rtl.data_files], subject=src / f"{rtl.top}.sv")


def synthesize_files(top: str, sources: list[Path], out_dir: Path, *, data_files: list[Path] = (),
                     subject: Path | None = None, blackboxes: tuple[str, ...] = ()) -> dict:
    """Synthesizes module `top` of `sources` for xc7 in out_dir (everything copied there:
    the WebAssembly Yosys reads relative paths only); as `synthesize`. The modules named in
    `blackboxes` are not elaborated: their instances count nothing (the rest of the design
    is costed alone)."""
    out_dir = Path(out_dir).absolute()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for path in [*sources, *data_files, DSP_STUBS]:
        shutil.copyfile(path, out_dir / Path(path).name)
    subject = subject or Path(sources[-1])
    names = " ".join(Path(p).name for p in sources)
    script = out_dir / "synth.ys"
    script.write_text(
        "# Generated by hw/rtl/synth.py\n"
        + synthesis_commands(top, "".join(f"--blackboxed-module {b} " for b in blackboxes)
                             + f"{DSP_STUBS.name} {names}", out_dir)
        + "tee -q -o stat.json stat -json\n"
        f"write_verilog -noattr {NETLIST}\n" + ltp_script(tuple(blackboxes)))
    yosys(script, out_dir, out_dir / "yosys.log", subject)
    stat = out_dir / "stat.json"
    if not stat.is_file():
        raise RtlToolError(f"{subject}: Yosys wrote no {stat}")
    design = json.loads(stat.read_text()).get("design", {})
    cells = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    counted = {c: n for c, n in cells.items() if c.lstrip("\\") not in blackboxes}
    return {"resources": resources_from_cells(counted, str(stat)), "cells": cells,
            "depth": read_ltp(out_dir / LTP_FILE)}
