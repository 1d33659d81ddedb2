"""Block test of exit_decision.sv in Verilator against its model (the golden rule), on
1,200 real test images per head of the default run with its calibrated thresholds: random
stalls on both sides, a reset in the middle of an image, ties, and the cycle count of a
unit that never stalls on its own; and on synthetic logits for K = 2, 6, 10 and 100
classes with ties and the widest scores."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw.rtl.exit_decision.model import VECTORS, class_bits, decisions, parameters, unpack_result
from hw.rtl.stream import TESTBENCH_TOP, simulate, stream_testbench, word_width
from hw.rtl.tools import verilate

SOURCE = Path(__file__).with_name("exit_decision.sv")
LOGIT_BITS = 16
K = 10


def _head(i: int) -> tuple[np.ndarray, list[int | None]]:
    d = np.load(VECTORS)
    table = [int(t) if on else None for t, on in zip(d[f"head{i}_thresholds"], d[f"head{i}_enabled"])]
    return d[f"head{i}_logits"].astype(np.int64), table


def _unit(tmp_path: Path, thresholds: list[int | None], kind: str = "margin") -> Path:
    out_w = word_width(1, class_bits(len(thresholds)) + 1 + LOGIT_BITS + 2)
    tmp_path.mkdir(parents=True, exist_ok=True)
    tb = tmp_path / "tb.sv"
    tb.write_text(stream_testbench(f"btsee_exit_decision {parameters(thresholds, LOGIT_BITS, kind)}",
                                   word_width(1, LOGIT_BITS), out_w))
    return verilate(TESTBENCH_TOP, [tb, SOURCE], tmp_path / "build")


def _run(binary: Path, folder: Path, logits: np.ndarray, **kw) -> tuple[np.ndarray, object]:
    """(N, K) logits through the unit -> (N, 3) rows (class, exits, score) and the run."""
    k = logits.shape[1]
    out_bits = class_bits(k) + 1 + LOGIT_BITS + 2
    run = simulate(binary, folder, logits.reshape(-1, 1), LOGIT_BITS, len(logits), 1, out_bits, False,
                   frame_words=1, max_cycles=100 * logits.size, **kw)
    return unpack_result(run.codes[:, 0], k, LOGIT_BITS), run


@pytest.mark.parametrize("head", [0, 1, 2])
def test_unit_equals_the_golden_rule_with_stalls_and_reset(head, tmp_path):
    logits, thresholds = _head(head)
    expected = decisions(logits, thresholds, "margin")
    assert 0 < expected[:, 1].sum() < len(expected)  # real data: some images exit, some do not
    binary = _unit(tmp_path, thresholds)
    for seed, (in_stall, out_stall) in enumerate([(0, 0), (30, 45), (70, 10), (5, 90)], start=1):
        got, _ = _run(binary, tmp_path / f"run{seed}", logits, seed=seed, in_stall=in_stall,
                      out_stall=out_stall, reset_at=logits.size // 3 + 4)  # mid-image
        assert np.array_equal(got, expected), f"head {head}, stalls {in_stall}/{out_stall} %"


def test_ties_go_to_the_lowest_index_and_top_score(tmp_path):
    rng = np.random.default_rng(0)
    logits = rng.integers(-3, 4, size=(500, K))  # many ties
    logits[0] = 7  # all equal: class 0, margin 0
    logits[1] = [-(1 << 15)] * (K - 1) + [(1 << 15) - 1]  # the widest margin 16-bit logits allow
    thresholds = [0, 1, None, 2, -1, 3, 0, None, 1, 2]
    for kind in ("margin", "top"):
        binary = _unit(tmp_path / kind, thresholds, kind)
        got, _ = _run(binary, tmp_path / kind / "run", logits, seed=3, in_stall=20, out_stall=20)
        assert np.array_equal(got, decisions(logits, thresholds, kind)), kind
    assert got[0, 0] == 0


@pytest.mark.parametrize("k", [2, 6, 10, 100])
def test_every_class_count_with_ties_and_the_widest_scores(k, tmp_path):
    """The unit for K classes (its threshold table sized by K, not by a default) equals the
    golden rule under stalls and a mid-image reset: ties, the widest margin and top logit
    16-bit logits allow, and thresholds at both ends of the score range."""
    rng = np.random.default_rng(k)
    lo, hi = -(1 << (LOGIT_BITS - 1)), (1 << (LOGIT_BITS - 1)) - 1
    logits = rng.integers(-3, 4, size=(max(300, 3000 // k), k))  # many ties
    logits[1::7] = rng.integers(lo, hi + 1, size=logits[1::7].shape)  # the whole range
    logits[0] = hi  # all equal: class 0, margin 0
    logits[2] = lo
    logits[2, -1] = hi  # the widest margin, on the last class
    logits[3] = lo
    logits[3, k // 2] = hi
    score_max = 1 << LOGIT_BITS
    choices = [None, 0, 1, 2, -1, score_max, -score_max, score_max + 5, hi]  # some beyond the range
    thresholds = [choices[i] for i in rng.integers(0, len(choices), size=k)]
    thresholds[k - 1] = hi - lo  # the widest margin exits exactly at its threshold
    for kind in ("margin", "top"):
        binary = _unit(tmp_path / kind, thresholds, kind)
        expected = decisions(logits, thresholds, kind)
        assert 0 < expected[:, 1].sum() < len(expected), kind  # some exit, some do not
        got, _ = _run(binary, tmp_path / kind / "run", logits, seed=k, in_stall=25, out_stall=40,
                      reset_at=logits.size // 2 + k // 2)  # mid-image
        assert np.array_equal(got, expected), f"K={k}, {kind}"
    assert expected[0, 0] == 0 and expected[2, 0] == k - 1 and expected[3, 0] == k // 2


@pytest.mark.parametrize("table", ["class 0 alone", "the last class alone", "every class"])
def test_a_table_enabling_class_0_alone(table, tmp_path):
    """Tables whose ENABLED word is 1 (or all ones) with every threshold 0: Verilator 5.48
    took an override of 1 for a default of '1 and built the default unit (every class
    exits) when THRESHOLDS kept its default too. A tiny run calibrated such an exit."""
    enabled = {"class 0 alone": [0], "the last class alone": [K - 1], "every class": range(K)}[table]
    thresholds = [0 if c in enabled else None for c in range(K)]
    logits = np.random.default_rng(11).integers(-50, 50, size=(200, K))
    expected = decisions(logits, thresholds, "margin")
    got, _ = _run(_unit(tmp_path, thresholds), tmp_path / "run", logits, seed=2, in_stall=20, out_stall=20)
    assert np.array_equal(got, expected), table


def test_one_logit_per_cycle_without_stalls_of_its_own(tmp_path):
    logits, thresholds = _head(0)
    binary = _unit(tmp_path, thresholds)
    got, run = _run(binary, tmp_path / "run", logits)
    assert np.array_equal(got, decisions(logits, thresholds, "margin"))
    assert np.all(np.diff(run.frame_end_cycles) == K)  # a decision every K cycles, every image


def test_backpressure_stalls_only_the_last_logit(tmp_path):
    """While a result waits for the output, the next image's logits keep coming: with the
    output ready half of the cycles, images still take K cycles each on average."""
    logits, thresholds = _head(1)
    binary = _unit(tmp_path, thresholds)
    got, run = _run(binary, tmp_path / "run", logits, seed=5, out_stall=50)
    assert np.array_equal(got, decisions(logits, thresholds, "margin"))
    assert np.diff(run.frame_end_cycles).mean() < K + 0.1


def test_unit_synthesizes_to_logic_only(tmp_path):
    """Yosys for xc7: LUTs and flip-flops, no DSP or block RAM (the comparator and the
    running max are logic); the threshold table is constants."""
    from hw.rtl.synth import synthesize_files

    _, thresholds = _head(0)
    out_w = word_width(1, class_bits(K) + 1 + LOGIT_BITS + 2)
    wrapper = tmp_path / "unit_top.sv"
    wrapper.write_text(
        f"module unit_top(input ap_clk, input ap_rst_n, input [{LOGIT_BITS - 1}:0] in0_V_TDATA, input in0_V_TVALID,\n"
        f"  output in0_V_TREADY, output [{out_w - 1}:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY);\n"
        f"  btsee_exit_decision {parameters(thresholds, LOGIT_BITS, 'margin')} unit (.*);\nendmodule\n")
    r = synthesize_files("unit_top", [SOURCE, wrapper], tmp_path / "synth")["resources"]
    assert r["LUT"] > 0 and r["FF"] > 0
    assert r["DSP"] == 0 and r["BRAM18"] == 0
