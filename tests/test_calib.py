"""CPM, the exit rules and the cascade metrics on hand-made score tables (numpy only)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from calib.cascade import Costs, calibrate_in_sequence, oracle, run_cascade, summarize
from calib.cpm import (CalibrationPolicy, class_precision, cpm_calibrate, lowest_threshold,
                       precision_bar)
from calib.rules import NEVER, exit_score, exits, max_softmax, predicted_class, top2_margin


def test_argmax_ties_go_to_the_lowest_index_and_margin_is_zero():
    logits = np.array([[3, 7, 7, 1], [5, 5, 5, 5], [0, 2, 1, 9]])
    assert predicted_class(logits).tolist() == [1, 0, 3]
    assert top2_margin(logits).tolist() == [0, 0, 7]
    assert top2_margin(logits).dtype == logits.dtype  # integers stay integers


def test_exit_rule_is_greater_or_equal():
    thresholds = np.array([2.0, NEVER])
    assert exits(np.array([2.0, 1.999, 5.0]), np.array([0, 0, 1]), thresholds).tolist() == [True, False, False]


def test_max_softmax_by_hand():
    # logits (0, ln 3): softmax = (1/4, 3/4)
    assert max_softmax(np.array([[0.0, np.log(3.0)]]))[0] == pytest.approx(0.75, abs=1e-12)
    assert exit_score(np.array([[1, 4, 2]]), "margin")[0] == 2
    with pytest.raises(ValueError, match="score kind"):
        exit_score(np.zeros((1, 2)), "entropy")


def test_lowest_threshold_by_hand_with_ties():
    # sorted scores 5, 4, 4, 3, 2 with correctness 1, 1, 0, 1, 0; bar 0.75.
    # prefixes ending between distinct scores: {5}: 1/1, {5,4,4}: 2/3, {..,3}: 3/4, {..,2}: 3/5
    scores = np.array([4, 2, 5, 3, 4])
    correct = np.array([True, False, True, True, False])
    assert lowest_threshold(scores, correct, 0.75, 1) == 3
    assert lowest_threshold(scores, correct, 0.75, 4) == 3
    assert lowest_threshold(scores, correct, 0.75, 5) == NEVER  # below minimum support
    # without the tie rule, threshold 4 would look like 2/2 = 1.0; with it {5,4,4} is 2/3
    assert lowest_threshold(scores, correct, 0.9, 1) == 5
    assert lowest_threshold(scores, correct, 1.01, 1) == NEVER


def test_cpm_per_class_cases():
    # class 0: clears its bar; class 1: too few samples; class 2: never predicted;
    # class 3: predicted often but never precise enough.
    pred = np.array([0, 0, 0, 0, 1, 3, 3, 3])
    labels = np.array([0, 0, 0, 1, 1, 0, 0, 3])
    scores = np.array([9, 8, 7, 1, 9, 9, 8, 1])
    anchor = np.array([0.9, 0.9, 0.9, 0.9])
    cal = cpm_calibrate(scores, pred, labels, anchor, margin=0.0, min_support=2)
    assert cal.thresholds[0] == 7  # {9, 8, 7} all right; adding score 1 gives 3/4 < 0.9
    assert cal.thresholds[1] == NEVER and cal.support[1] == 1
    assert cal.thresholds[2] == NEVER and cal.support[2] == 0
    assert cal.thresholds[3] == NEVER
    looser = cpm_calibrate(scores, pred, labels, anchor, margin=0.2, min_support=2)
    assert looser.thresholds[0] == 1  # bar 0.7: 3/4 = 0.75 passes


def test_all_classes_exit_when_the_head_is_always_right():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    scores = rng.random(len(labels))
    cal = cpm_calibrate(scores, labels.copy(), labels, np.full(4, 0.95), margin=0.0, min_support=20)
    assert np.isfinite(cal.thresholds).all()
    for c in range(4):  # the lowest score of each class: everything exits
        assert cal.thresholds[c] == scores[labels == c].min()


def test_thresholds_meet_their_bar_on_the_calibration_set():
    rng = np.random.default_rng(1)
    n, k = 3000, 5
    labels = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.8, labels, rng.integers(0, k, n))
    scores = rng.random(n) + (pred == labels) * 0.5
    anchor = class_precision(pred, labels, k)
    for mode, margin in (("additive", 0.02), ("multiplicative", 0.05), ("additive", -0.05)):
        cal = cpm_calibrate(scores, pred, labels, anchor, margin, mode, min_support=20)
        bar = precision_bar(anchor, margin, mode)
        for c in range(k):
            take = (pred == c) & (scores >= cal.thresholds[c])
            if np.isfinite(cal.thresholds[c]):
                assert take.sum() >= 20
                assert (labels[take] == c).mean() >= bar[c]


def test_class_precision_by_hand():
    prec = class_precision(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 3)
    assert prec[0] == 0.5 and prec[1] == pytest.approx(2 / 3) and np.isnan(prec[2])


def test_cascade_and_mac_fraction_by_hand():
    # backbone 100 MACs; exit 0 after 10 MACs (head 5), exit 1 after 40 (head 5).
    costs = Costs(100, (10, 40), (5, 5))
    assert costs.per_exit().tolist() == [15, 50, 110]
    pred = [np.array([0, 1, 1, 0]), np.array([1, 1, 0, 0])]
    score = [np.array([5, 1, 2, 9]), np.array([0, 7, 7, 0])]
    thr = [np.array([4.0, 3.0]), np.array([6.0, 6.0])]
    final = np.array([2, 2, 2, 2])
    exit_at, out = run_cascade(pred, score, thr, final)
    assert exit_at.tolist() == [0, 1, 1, 0]
    assert out.tolist() == [0, 1, 0, 0]
    labels = np.array([0, 1, 1, 2])
    res = summarize(exit_at, out, labels, costs, 3)
    assert res["accuracy"] == 0.5
    assert res["exit_fraction"] == [0.5, 0.5, 0.0]
    assert res["mac_fraction"] == pytest.approx((15 + 50 + 50 + 15) / 4 / 100)
    assert res["exit_fraction_by_class"][1][1] == 1.0  # both class-1 samples left at exit 1
    # oracle: head 0 is right on samples 0-2; sample 3 (label 2) goes on to the final classifier
    best = oracle(pred, final, labels, costs, 3)
    assert best["exit_fraction"] == [0.75, 0.0, 0.25] and best["accuracy"] == 1.0
    assert best["mac_fraction"] == pytest.approx((15 * 3 + 110) / 4 / 100)


def test_sequential_calibration_uses_only_survivors():
    labels = np.array([0, 0, 1, 1])
    # first head: class 0 for all, margins 9, 9 (right), 4, 1 (wrong) -> exits samples 0, 1
    first = np.array([[9.0, 0.0], [9.0, 0.0], [4.0, 0.0], [1.0, 0.0]])
    second = np.array([[0.0, 9.0]] * 4)  # predicts class 1 everywhere
    policy = CalibrationPolicy("cpm", "margin", margin=0.0, min_support=1)
    anchor = np.array([1.0, 1.0])
    cals = calibrate_in_sequence([first, second], labels, anchor, policy)
    assert cals[0].thresholds[0] == 9.0
    # on survivors 2 and 3 the second head is always right: class 1 exits at margin 9
    assert cals[1].thresholds[1] == 9.0 and cals[1].support[1] == 2


def test_global_policy_sets_one_threshold():
    cal = CalibrationPolicy("global", "softmax", global_threshold=0.8).calibrate(
        np.array([0.9]), np.array([1]), np.array([1]), np.array([0.9, 0.9, 0.9]))
    assert cal.thresholds.tolist() == [0.8, 0.8, 0.8]


def test_calib_does_not_import_torch():
    code = ("import sys, calib, calib.cpm, calib.cascade, calib.rules; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'brevitas')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_negative_margins_are_capped_at_precision_one():
    bar = precision_bar(np.array([0.99, 0.8, np.nan]), -0.03, "additive")
    assert bar[0] == 1.0 and bar[1] == pytest.approx(0.83) and np.isnan(bar[2])
    assert precision_bar(np.array([0.99]), -0.05, "multiplicative")[0] == 1.0
