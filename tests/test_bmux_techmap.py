"""The synthesis script's techmap rule `hw/rtl/bmux_to_shiftx.v`: every $bmux that
yosys-slang makes of a variable-index read becomes $shiftx cells computing the same
function, proved by Yosys's SAT solver on a miter of the design before and after, for
one-bit entries, packed words and a two-entry select. A shift register read at a moving
address then synthesizes to SRL16E primitives, as Yosys's own frontend gets it."""
from __future__ import annotations

import shutil

from hw.rtl.synth import BMUX_TO_SHIFTX, synthesize_files
from hw.rtl.tools import yosys

SHAPES = """module shapes(input logic [2:0] a, input logic [7:0] r1, input logic [3:0][2:0] r3,
              input logic [1:0][4:0] r5, output logic q1, output logic [2:0] q3, output logic [4:0] q5);
  assign q1 = r1[a];        // 8 one-bit entries
  assign q3 = r3[a[2:1]];   // 4 entries of 3 bits
  assign q5 = r5[a[0]];     // 2 entries of 5 bits
endmodule
"""

PROOF = f"""read_slang -j 1 shapes.sv --top shapes
proc
opt_clean
select -assert-count 3 t:$bmux
copy shapes gate
techmap -map {BMUX_TO_SHIFTX.name} gate
select -assert-none gate/t:$bmux
select -assert-min 3 gate/t:$shiftx
rename shapes gold
miter -equiv -flatten -make_assert gold gate miter
sat -verify -prove-asserts miter
"""


def test_the_rule_keeps_every_function(tmp_path):
    (tmp_path / "shapes.sv").write_text(SHAPES)
    shutil.copyfile(BMUX_TO_SHIFTX, tmp_path / BMUX_TO_SHIFTX.name)
    (tmp_path / "prove.ys").write_text(PROOF)
    yosys(tmp_path / "prove.ys", tmp_path, tmp_path / "yosys.log", tmp_path / "shapes.sv")  # fails unless proved
    assert "SAT proof finished - no model found: SUCCESS!" in (tmp_path / "yosys.log").read_text()


def test_a_shift_register_read_at_a_moving_address_becomes_srls(tmp_path):
    (tmp_path / "srl.sv").write_text("""module srl(input logic clk, en, input logic [3:0] d, input logic [2:0] a,
           output logic [3:0] q);
  for (genvar i = 0; i < 4; i++) begin : lane
    logic [6:0] r;
    always_ff @(posedge clk) if (en) r <= {r[5:0], d[i]};
    assign q[i] = r[a];
  end
endmodule
""")
    cells = synthesize_files("srl", [tmp_path / "srl.sv"], tmp_path / "synth")["cells"]
    assert cells.get("SRL16E", 0) + cells.get("SRLC32E", 0) == 4, cells
    assert not any(c.startswith("FD") for c in cells), cells
