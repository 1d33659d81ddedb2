"""Tests of hw/rtl/depth.py: the ltp listing's parser on a real listing and on broken ones,
the depth of a known deep chain (a 32-bit add feeding a compare) against its pipelined
version, the instances found in generated text, and the depth of our blocks (the exit
decision unit as the multi-exit design instantiates it, the glue with its defaults)."""
from __future__ import annotations

import numpy as np
import pytest

from hw.rtl.block_depth import block_depth, block_depths, block_depths_of, deepest_per_module, summary
from hw.rtl.depth import (OUR_BLOCKS, SEQUENTIAL_CELLS, DepthError, our_instances, parameter_overrides, parse_ltp,
                          read_ltp)

# A real ltp.txt (column_max, PE 1, 480 words, block RAM), the dump's parameters and
# connections cut short: what LTP_SCRIPT writes.
REAL_LTP = r"""
3. Executing LTP pass (find longest path).

Longest topological path in btsee_column_max (length=9):
    0: \result_valid
    1: $techmap23525$abc$23507$lut$aiger23506$652.A [0] (via $auto$abc_ops_reintegrate.cc:694:reintegrate$23517)
    2: $abc$23507$aiger$i341 (via $auto$alumacc.cc:578:replace_alu$1228.genblk1.slice[0].genblk1.carry4)
    3: $abc$23507$aiger$i349 (via $auto$alumacc.cc:578:replace_alu$1228.genblk1.slice[1].genblk1.carry4)
    4: $techmap23526$abc$23507$lut$aiger23506$655.A [3] (via $auto$alumacc.cc:578:replace_alu$1228.genblk1.slice[2].genblk1.carry4)
    5: $techmap23530$auto$abc_ops_reintegrate.cc:694:reintegrate$23516.A [4] (via $abc$23507$lut$aiger23506$655)
    6: $abc$23507$aiger$o244 (via $auto$abc_ops_reintegrate.cc:694:reintegrate$23516)
    7: $abc$23507$aiger$i561 (via $auto$maccmap.cc:240:synth$1741.genblk1.slice[0].genblk1.carry4)
    8: $abc$23507$aiger$i569 (via $auto$maccmap.cc:240:synth$1741.genblk1.slice[1].genblk1.carry4)
    9: $abc$23507$aiger$i574 (via $auto$maccmap.cc:240:synth$1741.genblk1.slice[2].genblk1.carry4)


  wire \result_valid

  wire width 6 $techmap23530$auto$abc_ops_reintegrate.cc:694:reintegrate$23516.A

  cell \CARRY4 $auto$maccmap.cc:240:synth$1741.genblk1.slice[2].genblk1.carry4
    connect \CI $abc$23507$aiger$i569
  end

  cell \CARRY4 $auto$maccmap.cc:240:synth$1741.genblk1.slice[1].genblk1.carry4
  end

  cell \CARRY4 $auto$maccmap.cc:240:synth$1741.genblk1.slice[0].genblk1.carry4
  end

  cell \LUT2 $auto$abc_ops_reintegrate.cc:694:reintegrate$23517
    parameter \INIT 4'1000
  end

  cell \LUT4 $abc$23507$lut$aiger23506$655
  end

  cell \LUT6 $auto$abc_ops_reintegrate.cc:694:reintegrate$23516
  end

  cell \CARRY4 $auto$alumacc.cc:578:replace_alu$1228.genblk1.slice[2].genblk1.carry4
  end

  cell \CARRY4 $auto$alumacc.cc:578:replace_alu$1228.genblk1.slice[1].genblk1.carry4
  end

  cell \CARRY4 $auto$alumacc.cc:578:replace_alu$1228.genblk1.slice[0].genblk1.carry4
  end

  connect \out0_V_TVALID \result_valid
"""

EXIT_DECISION_MAX_LEVELS = 8  # scan / score / decide pipeline; 11 before it
ADDER = """module adder_compare #(parameter bit PIPELINED = 0) (input logic clk, input logic [31:0] a_in, b_in,
  input logic [31:0] c_in, d_in, e_in, f_in, output logic y);
  logic [31:0] a, b, c, d, e, f, d2, e2, f2;
  logic sel;
  always_ff @(posedge clk) begin
    a <= a_in; b <= b_in; c <= c_in; d <= d_in; e <= e_in; f <= f_in;
    if (PIPELINED) begin
      sel <= a + b > c; d2 <= d; e2 <= e; f2 <= f;
      y <= (sel ? d2 : e2) > f2;
    end else
      y <= ((a + b > c) ? d : e) > f;
  end
endmodule
"""


def test_parse_a_real_listing():
    r = parse_ltp(REAL_LTP)
    assert r["levels"] == 9
    assert r["path"] == ["LUT2", "CARRY4", "CARRY4", "CARRY4", "LUT4", "LUT6", "CARRY4", "CARRY4", "CARRY4"]
    assert r["cells"] == {"LUT2": 1, "CARRY4": 6, "LUT4": 1, "LUT6": 1}
    assert (r["lut"], r["carry4"], r["muxf"], r["carry_chain"]) == (3, 6, 0, 3)
    assert r["from"] == "\\result_valid" and r["module"] == "btsee_column_max"


def test_broken_listings_name_the_file(tmp_path):
    with pytest.raises(DepthError, match="nowhere/ltp.txt"):
        read_ltp(tmp_path / "nowhere" / "ltp.txt")
    broken = tmp_path / "ltp.txt"
    broken.write_text("Yosys died before the ltp pass\n")
    with pytest.raises(DepthError, match=str(broken)):
        read_ltp(broken)
    no_dump = REAL_LTP.split("\n\n\n")[0]  # the listing without the cell dump: no types
    with pytest.raises(DepthError, match="x.txt: the path's cell"):
        parse_ltp(no_dump, "x.txt")
    with pytest.raises(DepthError, match="x.txt: malformed path step"):
        parse_ltp(REAL_LTP.replace("    5: ", "    7: "), "x.txt")


def test_every_sequential_cell_of_the_resource_count_ends_a_path():
    from hw.rtl.synth import CELL_RESOURCES

    stateful = {c for c, (kind, _) in CELL_RESOURCES.items() if kind != "LUT"}
    assert stateful == set(SEQUENTIAL_CELLS)


def test_a_deep_chain_and_its_pipelined_version(tmp_path):
    """A 32-bit add feeding a compare whose result selects the operand of a second compare,
    between registers: the second compare's chain waits for the first one's result. With
    that result registered, one chain (chains fed bit by bit overlap instead: an add straight
    into a compare is barely deeper than the compare)."""
    source = tmp_path / "adder_compare.sv"
    source.write_text(ADDER)
    deep = block_depth("adder_compare", "", tmp_path / "deep", source=source)
    piped = block_depth("adder_compare", "#(.PIPELINED(1))", tmp_path / "piped", source=source)
    print(summary(deep), "|", summary(piped))
    assert deep["carry4"] >= 10 and deep["carry_chain"] >= 8  # 32 bits: 8 CARRY4 a chain, then more
    assert piped["carry4"] <= 10 and piped["levels"] < deep["levels"] - 4  # measured 11 against 17


def test_instances_in_generated_text(tmp_path):
    """What hw/rtl/multi_exit.py and hw/rtl/segment.py write, and a FINN wrapper of the
    column max: distinct (module, parameters), whitespace-free, declarations skipped."""
    from hw.rtl.exit_decision.model import parameters
    from hw.rtl.multi_exit import _Top
    from hw.rtl.block_instances import queue_instance

    top = _Top()
    top.instance("btsee_fork", "fork0_i", {"in0_V": "a", "out0_V": "b", "out1_V": "c"}, "#(.WIDTH(16))")
    top.instance("btsee_fork", "fork1_i", {"in0_V": "d", "out0_V": "e", "out1_V": "f"}, "#(.WIDTH(16))")
    top.instance("btsee_exit_decision", "decision0_i", {"in0_V": "g", "out0_V": "h"},
                 parameters([3, None, -2], 8, "margin"))
    top.instance("btsee_fork", "fork2_i", {"in0_V": "a", "out0_V": "b", "out1_V": "c"})
    multi = tmp_path / "btsee_multi_exit.sv"
    multi.write_text("module btsee_multi_exit (input ap_clk);\n" + "\n".join(top.lines) +
                     "\n  // btsee_queue #(.WIDTH(1)) commented_i (\n  /* btsee_maxpool x_i ( */\nendmodule\n")
    segment = tmp_path / "segment_backbone_0.sv"
    segment.write_text(queue_instance("MVAU_rtl_0_fifo", 24, 36, "s0", "an MVU's input FIFO"))
    wrapper = tmp_path / "ColumnMax_0.sv"
    wrapper.write_text('module ColumnMax_0 (input ap_clk);\n  btsee_column_max #(.PE(4), .BITS(4), .ROWS(30), '
                       '.WORDS(120), .SIGNED(0), .RAM_STYLE("block")) impl (.*);\nendmodule\n'
                       "module btsee_column_max #(parameter int PE = 1) ();\nendmodule\n")
    found = our_instances([multi, segment, wrapper])
    assert found == [
        ("btsee_fork", "#(.WIDTH(16))"),
        ("btsee_exit_decision", "#(.K(3),.LOGIT_BITS(8),.TOP_SCORE(0),.ENABLED(3'b101),.THRESHOLDS(30'h3fe00003))"),
        ("btsee_fork", ""),
        ("btsee_queue", "#(.WIDTH(24),.DEPTH(36))"),
        ("btsee_column_max", '#(.PE(4),.BITS(4),.ROWS(30),.WORDS(120),.SIGNED(0),.RAM_STYLE("block"))'),
    ]
    assert parameter_overrides(found[4][1])[-1] == ("RAM_STYLE", '"block"')
    with pytest.raises(DepthError, match="only named parameters"):
        parameter_overrides("#(8, 16)")


def test_exit_decision_unit_is_shallow(tmp_path):
    """The unit as the multi-exit design instantiates it (K = 10, 16-bit logits, head 0's
    calibrated thresholds): at most EXIT_DECISION_MAX_LEVELS cells between registers."""
    from hw.rtl.exit_decision.model import VECTORS, parameters

    d = np.load(VECTORS)
    table = [int(t) if on else None for t, on in zip(d["head0_thresholds"], d["head0_enabled"])]
    assert len(table) == 10
    r = block_depth("btsee_exit_decision", parameters(table, 16, "margin"), tmp_path / "unit")
    print(summary(r))
    assert r["resources"]["LUT"] > 0 and r["resources"]["BRAM18"] == r["resources"]["DSP"] == 0
    assert 0 < r["levels"] <= EXIT_DECISION_MAX_LEVELS, summary(r)


def test_glue_blocks_with_default_parameters(tmp_path):
    """Every block but the two above, through block_depths on a text instantiating each
    with its defaults: each synthesizes alone and has a path of at least one cell."""
    glue = [m for m in OUR_BLOCKS if m not in ("btsee_exit_decision", "btsee_column_max")]
    text = tmp_path / "glue.sv"
    text.write_text("\n".join(f"  {m} {m}_i (.*);" for m in glue))
    results = block_depths([text], tmp_path / "blocks")
    assert [r["module"] for r in results] == glue
    for r in results:
        print(summary(r), r["resources"])
        assert r["levels"] >= 1 and r["resources"]["DSP"] == 0, summary(r)
    assert set(deepest_per_module(results)) == set(glue)


def test_one_run_for_all_blocks_gives_each_block_alone_its_levels(tmp_path):
    """block_depths_of synthesizes the blocks together, each a module of its own: the
    levels, FFs, block RAMs and DSPs of four blocks as the default design instantiates them
    equal those of each block synthesized alone as the top level, and their LUTs are within
    3 % (ABC's mapping moves a little with the names around it)."""
    import json

    from hw.rtl.depth import LTP_FILE, LTP_SCRIPT
    from hw.rtl.synth import resources_from_cells, synthesis_commands
    from hw.rtl.tools import yosys

    jobs = [("btsee_queue", "#(.WIDTH(8),.DEPTH(576))"),
            ("btsee_column_max", '#(.PE(4),.BITS(4),.ROWS(30),.WORDS(120),.SIGNED(0),.RAM_STYLE("block"))'),
            ("btsee_exit_buffer", "#(.WIDTH(8),.BITS(4),.FRAME(9216),.DEPTH(73728),.DECISION_WIDTH(24),.EXIT_BIT(4))"),
            ("btsee_axis_last", "")]
    together = block_depths_of(jobs, tmp_path / "together")
    for (module, params), r in zip(jobs, together):
        alone = tmp_path / f"alone_{module}"
        alone.mkdir()
        source = OUR_BLOCKS[module]
        (alone / source.name).write_text(source.read_text())
        overrides = "".join(f" -G {n}={v}" for n, v in parameter_overrides(params))
        (alone / "a.ys").write_text(synthesis_commands(module, f"{overrides} {source.name}".strip(), alone)
                                    + "tee -q -o stat.json stat -json\n" + LTP_SCRIPT)
        yosys(alone / "a.ys", alone, alone / "yosys.log", source)
        depth = read_ltp(alone / LTP_FILE)
        cells = {k: int(v) for k, v in json.loads((alone / "stat.json").read_text())["design"]
                 ["num_cells_by_type"].items()}
        assert (r["module"], r["levels"]) == (module, depth["levels"]), (summary(r), summary(depth))
        ref = resources_from_cells(cells, "alone")
        assert all(r["resources"][k] == ref[k] for k in ("FF", "BRAM18", "DSP")), (module, r["resources"], ref)
        assert abs(r["resources"]["LUT"] - ref["LUT"]) <= 0.03 * ref["LUT"] + 1, (module, r["resources"], ref)
