"""Block test of residual_add.sv in Verilator against its Python model: random codes over
the full range of each width (no residual-branch codes are stored: the default run has no
ResNet), the extreme sums in every run, random stalls on both inputs and the output, a
reset in the middle of the stream, full rate, and one input far behind the other. A
checker around the block stops the simulation when one input is taken without the other,
an offered output word is withdrawn or changed, or a padding bit is set."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hw.rtl.residual_add.model import add_streams, fits, out_bits, value_range
from hw.rtl.stream import TESTBENCH_TOP, Port, multi_stream_testbench, simulate_streams
from hw.rtl.tools import verilate

SOURCE = Path(__file__).with_name("residual_add.sv")
WORDS = 4000
STALLS = [(0, 0, 0), (30, 50, 45), (70, 10, 20)]  # % of cycles in0, in1 hold back, out0 refuses
SKEWS = [(0, 90, 0), (90, 0, 0), (0, 90, 30)]  # one input far behind the other


@dataclass(frozen=True)
class Case:
    """One parameter set of the block: PE lanes, lhs (a) and rhs (b) formats, output width."""

    pe: int
    a_bits: int
    a_signed: bool
    b_bits: int
    b_signed: bool
    out_bits: int

    @property
    def out_signed(self) -> bool:
        return self.a_signed or self.b_signed

    def dut(self, module: str) -> str:
        return (f"{module} #(.PE({self.pe}), .A_BITS({self.a_bits}), .A_SIGNED({int(self.a_signed)}), "
                f".B_BITS({self.b_bits}), .B_SIGNED({int(self.b_signed)}), .OUT_BITS({self.out_bits}))")

    def ports(self) -> tuple[Port, Port, Port]:
        return (Port("in0_V", self.pe, self.a_bits, self.a_signed), Port("in1_V", self.pe, self.b_bits, self.b_signed),
                Port("out0_V", self.pe, self.out_bits, self.out_signed))


CASES = {
    "resnet_pe1_int8": Case(1, 8, True, 8, True, 9),  # a ResNet-8 block's join: INT8 + INT8 -> INT9
    "pe4_int8": Case(4, 8, True, 8, True, 9),
    "pe3_uint4": Case(3, 4, False, 4, False, 5),  # UINT4 + UINT4 -> UINT5, 12- and 15-bit words padded
    "pe2_uint4_int5": Case(2, 4, False, 5, True, 6),  # mixed: lhs unsigned, rhs signed
    "pe8_int8_uint8": Case(8, 8, True, 8, False, 10),  # wide, mixed the other way round
}

CHECKER = """
module add_checked #(
  parameter int PE = 1, parameter int A_BITS = 8, parameter bit A_SIGNED = 1,
  parameter int B_BITS = 8, parameter bit B_SIGNED = 1, parameter int OUT_BITS = 9,
  localparam int AW = (PE * A_BITS + 7) / 8 * 8, localparam int BW = (PE * B_BITS + 7) / 8 * 8,
  localparam int OW = (PE * OUT_BITS + 7) / 8 * 8
)(
  input logic ap_clk, input logic ap_rst_n,
  input logic [AW-1:0] in0_V_TDATA, input logic in0_V_TVALID, output logic in0_V_TREADY,
  input logic [BW-1:0] in1_V_TDATA, input logic in1_V_TVALID, output logic in1_V_TREADY,
  output logic [OW-1:0] out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY
);
  btsee_residual_add #(.PE(PE), .A_BITS(A_BITS), .A_SIGNED(A_SIGNED), .B_BITS(B_BITS),
                       .B_SIGNED(B_SIGNED), .OUT_BITS(OUT_BITS)) add (.*);
  logic held = 1'b0;  // an output word was offered and not taken in the last cycle
  logic [OW-1:0] held_data;
  always @(posedge ap_clk) begin
    if (ap_rst_n) begin
      if ((in0_V_TVALID && in0_V_TREADY) != (in1_V_TVALID && in1_V_TREADY))
        $fatal(1, "add_checked: one input word taken without the other");
      if (held && !(out0_V_TVALID && out0_V_TDATA == held_data))
        $fatal(1, "add_checked: an offered output word was withdrawn or changed");
      if (out0_V_TVALID && (out0_V_TDATA >> (PE * OUT_BITS)) != '0)
        $fatal(1, "add_checked: padding bits set");
    end
    held <= ap_rst_n && out0_V_TVALID && !out0_V_TREADY;
    held_data <= out0_V_TDATA;
  end
endmodule
"""


def _codes(case: Case, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(WORDS, PE) lhs and rhs codes: the extreme pairs first (min+min, max+max, min+max,
    max+min, 0+0) in every lane, then random codes over each width's full range."""
    rng = np.random.default_rng(seed)
    (a_lo, a_hi), (b_lo, b_hi) = value_range(case.a_bits, case.a_signed), value_range(case.b_bits, case.b_signed)
    a = rng.integers(a_lo, a_hi, size=(WORDS, case.pe), endpoint=True)  # (WORDS, PE)
    b = rng.integers(b_lo, b_hi, size=(WORDS, case.pe), endpoint=True)
    extremes = np.array([(a_lo, b_lo), (a_hi, b_hi), (a_lo, b_hi), (a_hi, b_lo), (0, 0)])  # (5, 2)
    a[:len(extremes)], b[:len(extremes)] = extremes[:, :1], extremes[:, 1:]
    return a, b


@pytest.fixture(scope="module")
def binaries(tmp_path_factory):
    """{case name: simulation binary}, each built once on first use."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            case, folder = CASES[name], tmp_path_factory.mktemp(name)
            tb = folder / "tb.sv"
            tb.write_text(multi_stream_testbench(case.dut("add_checked"), list(case.ports()[:2]), [case.ports()[2]]))
            (folder / "checker.sv").write_text(CHECKER)
            built[name] = verilate(TESTBENCH_TOP, [tb, folder / "checker.sv", SOURCE], folder / "build")
        return built[name]

    return get


def _run(binary: Path, workdir: Path, case: Case, a: np.ndarray, b: np.ndarray, stalls: tuple[int, int, int],
         seed: int, reset_at: int = 0, every: int = 0):
    """The block's simulation on lhs codes a and rhs codes b (WORDS, PE)."""
    in0, in1, out = case.ports()
    return simulate_streams(binary, workdir, {in0: a, in1: b}, {out: len(a)},
                            stalls=dict(zip(("in0_V", "in1_V", "out0_V"), stalls)), every={"out0_V": every},
                            seed=seed, reset_at=reset_at, max_cycles=200 * len(a))


def test_model_is_the_golden_add():
    """add_streams is the golden simulator's ElementwiseAdd of two streams."""
    from onnx import helper

    from hw.golden import _elementwise_add

    node = helper.make_node("ElementwiseAdd", ["lhs", "rhs"], ["out"], lhs_shape=[1, 8, 8, 16],
                            rhs_shape=[1, 8, 8, 16], lhs_style="input", rhs_style="input")
    a, b = _codes(CASES["pe4_int8"], 0)
    assert np.array_equal(add_streams(a, b), _elementwise_add(node, "test")(a, b))
    with pytest.raises(ValueError):
        add_streams(a, b[:-1])


def test_out_bits_is_the_narrowest_that_fits():
    """Over all small formats: out_bits fits, one bit less does not, and `fits` agrees with
    the sums enumerated."""
    for a_bits in range(1, 6):
        for b_bits in range(1, 6):
            for a_signed in (False, True):
                for b_signed in (False, True):
                    w = out_bits(a_bits, a_signed, b_bits, b_signed)
                    signed = a_signed or b_signed
                    assert fits(w, signed, a_bits, a_signed, b_bits, b_signed)
                    assert w == 1 or not fits(w - 1, signed, a_bits, a_signed, b_bits, b_signed)
                    sums = np.add.outer(np.arange(*np.add(value_range(a_bits, a_signed), (0, 1))),
                                        np.arange(*np.add(value_range(b_bits, b_signed), (0, 1))))  # (|A|, |B|)
                    for bits in range(1, w + 2):
                        lo, hi = value_range(bits, signed)
                        assert fits(bits, signed, a_bits, a_signed, b_bits, b_signed) == \
                            bool(lo <= sums.min() and sums.max() <= hi)
    assert out_bits(8, True, 8, True) == 9 and out_bits(4, False, 4, False) == 5
    assert out_bits(4, False, 5, True) == 6 and out_bits(8, True, 8, False) == 10
    assert not fits(9, True, 8, True, 8, False)  # INT8 + UINT8 needs INT10: 127 + 255 = 382


@pytest.mark.parametrize("lhs,rhs", [("INT8", "INT8"), ("UINT4", "UINT4"), ("UINT4", "INT5"), ("UINT8", "INT8")])
def test_finn_out_dtype_fits(lhs, rhs):
    """finn-plus's ElementwiseAdd out_dtype (what the generator passes as OUT_BITS) holds
    every sum for the cases of this test; the narrowest width, signed when an input is."""
    from onnx import helper
    from finn.custom_op.fpgadataflow.elementwise_binary import ElementwiseAdd
    from qonnx.core.datatype import DataType

    node = helper.make_node("ElementwiseAdd", ["lhs", "rhs"], ["out"], lhs_dtype=lhs, rhs_dtype=rhs, out_dtype="",
                            lhs_shape=[1, 4], rhs_shape=[1, 4], lhs_style="input", rhs_style="input")
    out = ElementwiseAdd(node)._derive_out_dtype(None)
    a, b = DataType[lhs], DataType[rhs]
    args = (a.bitwidth(), a.signed(), b.bitwidth(), b.signed())
    assert fits(out.bitwidth(), out.signed(), *args)
    assert (out.bitwidth(), out.signed()) == (out_bits(*args), a.signed() or b.signed())


@pytest.mark.parametrize("name", list(CASES))
def test_residual_add_with_stalls_and_reset(name, binaries, tmp_path):
    case = CASES[name]
    for seed, stalls in enumerate(STALLS, start=1):
        a, b = _codes(case, seed)
        expected = add_streams(a, b)  # (WORDS, PE)
        assert fits(case.out_bits, case.out_signed, case.a_bits, case.a_signed, case.b_bits, case.b_signed)
        run = _run(binaries(name), tmp_path / f"run{seed}", case, a, b, stalls, seed, reset_at=WORDS // 2 + 3)
        assert np.array_equal(run.outputs["out0_V"], expected), f"{name}, stalls {stalls} %"


@pytest.mark.parametrize("name", ["resnet_pe1_int8", "pe8_int8_uint8"])
def test_full_rate_without_stalls(name, binaries, tmp_path):
    """No stalls: N words out in N consecutive cycles, one cycle after the first pair is taken."""
    case = CASES[name]
    a, b = _codes(case, 7)
    run = _run(binaries(name), tmp_path / "run", case, a, b, (0, 0, 0), seed=7, every=1)
    assert np.array_equal(run.outputs["out0_V"], add_streams(a, b))
    cycles = run.cycles["out0_V"]  # (WORDS,) the cycle of every output word
    assert np.array_equal(cycles - run.start_cycle, np.arange(WORDS) + 1)


@pytest.mark.parametrize("name", list(CASES))
def test_one_input_far_behind(name, binaries, tmp_path):
    """One input stalled 90 % of the cycles, the other free: the sums still exact and in order."""
    case = CASES[name]
    for seed, stalls in enumerate(SKEWS, start=11):
        a, b = _codes(case, seed)
        run = _run(binaries(name), tmp_path / f"run{seed}", case, a, b, stalls, seed)
        assert np.array_equal(run.outputs["out0_V"], add_streams(a, b)), f"{name}, stalls {stalls} %"
