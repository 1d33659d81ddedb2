"""Tests of luts.sv, the LUT1..LUT6 and LUT6_2 models that replace cells_sim.v's in a
netlist's simulation library (hw/rtl/primitives): in Verilator, side by side with Yosys's own
models (renamed REF_*), every output on every input for INITs of all zeros, all ones, single
bits and pseudo-random words; a deliberately wrong model must be caught by the same bench.
"""
from __future__ import annotations

import re

from hw.rtl.primitives import LUT_MODEL, LUT_REPLACED, cells_sim, extract_modules, netlist_library
from hw.rtl.primitives.tb_patterns import mix, run_testbench
from hw.rtl.tools import verilate

INPUTS = {"LUT1": 1, "LUT2": 2, "LUT3": 3, "LUT4": 4, "LUT5": 5, "LUT6": 6, "LUT6_2": 6}
OUTPUTS = {"LUT6_2": ("O6", "O5")}


def _inits(bits: int) -> list[int]:
    """All zeros, all ones, a few single bits, eight pseudo-random words (each `bits` wide)."""
    full = (1 << bits) - 1
    rand = [(mix(2 * i) | mix(2 * i + 1) << 32) & full for i in range(8)]
    return [0, full, 1, 1 << (bits - 1), 1 << (bits // 2), *rand]


def _testbench() -> tuple[str, int]:
    """(SystemVerilog of a bench comparing every model with its REF_ twin on every input, the
    number of comparisons it must report)."""
    lines, compares = ["module tb;", "  reg [5:0] x;", "  integer bad = 0, seen = 0;"], []
    for cell, k in INPUTS.items():
        pins = ", ".join(f".I{i}(x[{i}])" for i in range(k))
        for j, init in enumerate(_inits(1 << k)):
            for side in ("dut", "ref"):
                outs = ", ".join(f".{o}({side}_{cell}_{j}_{o})" for o in OUTPUTS.get(cell, ("O",)))
                lines.append(f"  wire {', '.join(f'{side}_{cell}_{j}_{o}' for o in OUTPUTS.get(cell, ('O',)))};")
                lines.append(f"  {'REF_' if side == 'ref' else ''}{cell} #(.INIT({1 << k}'h{init:x})) "
                             f"{side}_{cell}_{j} ({outs}, {pins});")
            compares += [(cell, k, j, o) for o in OUTPUTS.get(cell, ("O",))]
    lines += ["  initial begin", "    for (int v = 0; v < 64; v++) begin", "      x = v[5:0]; #1;"]
    for cell, k, j, o in compares:
        lines.append(f"      if (v < {1 << k}) begin seen++; if (dut_{cell}_{j}_{o} !== ref_{cell}_{j}_{o}) begin "
                     f"bad++; $display(\"MISMATCH {cell} {j} {o} input %0d\", v); end end")
    lines += ["    end", '    $display("COMPARED %0d MISMATCHES %0d", seen, bad);', "    $finish;", "  end",
              "endmodule"]
    return "\n".join(lines) + "\n", sum(1 << k for _, k, _, _ in compares)


def _run(tmp_path, dut_models: str) -> tuple[int, int, int]:
    """(comparisons made, mismatches, comparisons expected) with `dut_models` as the models."""
    tb, expected = _testbench()
    (tmp_path / "tb.sv").write_text(tb)
    (tmp_path / "dut.sv").write_text(dut_models)
    ref = extract_modules(list(LUT_REPLACED))
    (tmp_path / "ref.sv").write_text(re.sub(r"^module (LUT\w+)", r"module REF_\1", ref, flags=re.M))
    binary = verilate("tb", [tmp_path / "tb.sv", tmp_path / "dut.sv", tmp_path / "ref.sv"], tmp_path / "build")
    out = run_testbench(binary, tmp_path)
    m = re.search(r"COMPARED (\d+) MISMATCHES (\d+)", out)
    assert m, out[-2000:]
    return int(m.group(1)), int(m.group(2)), expected


def test_lut_models_equal_cells_sim_on_every_input(tmp_path):
    """luts.sv gives cells_sim.v's output for every LUT kind, INIT and input."""
    seen, bad, expected = _run(tmp_path, LUT_MODEL.read_text())
    assert seen == expected and bad == 0, f"{bad} of {seen} outputs differ (expected {expected} compared)"


def test_a_wrong_lut_model_is_caught(tmp_path):
    """The same bench fails a model that swaps two inputs of LUT6 and reads O5 from the upper half."""
    wrong = LUT_MODEL.read_text().replace("INIT[{I5, I4, I3, I2, I1, I0}];\nendmodule",
                                          "INIT[{I5, I4, I3, I2, I0, I1}];\nendmodule", 1)
    wrong = wrong.replace("INIT[{1'b0, I4", "INIT[{1'b1, I4")
    assert wrong.count("I0, I1}") == 1 and "1'b1, I4" in wrong
    seen, bad, expected = _run(tmp_path, wrong)
    assert seen == expected and bad > 0


def test_library_uses_our_luts(tmp_path):
    """netlist_library leaves every LUT out of cells_sim.v and defines it once, in luts.sv."""
    files = netlist_library(tmp_path)
    assert [p.name for p in files] == ["xc7_cells_sim.v", "luts.sv", "bram.sv"]
    text = "".join(p.read_text() for p in files)
    for cell in LUT_REPLACED:
        assert len(re.findall(rf"^module {cell}\b", text, re.M)) == 1, cell
        assert re.search(rf"^module {cell}\b", files[1].read_text(), re.M), cell
    assert re.search(r"^module LUT6\b", cells_sim().read_text(), re.M)  # what was removed was there
