"""`calib.diagnose`: why an exit takes (almost) nothing, on constructed logits whose
answer is known: a head that is right (pays), a head of noise (the head), too few
calibration images (the images), a class just short of its bar (the policy)."""
from __future__ import annotations

import numpy as np

from calib.cascade import calibrate_in_sequence, cascade_from_logits
from calib.cpm import CalibrationPolicy, class_precision
from calib.diagnose import ExitDiagnosis, best_precision, diagnose_exits
from calib.rules import predicted_class

CLASSES = ["a", "b", "c"]


def _logits_for(pred: np.ndarray, margin: np.ndarray, k: int = 3) -> np.ndarray:
    """(N, k) integer logits whose argmax is `pred` and top-2 margin is `margin`."""
    out = np.zeros((len(pred), k), np.int64)
    out[np.arange(len(pred)), pred] = margin
    return out


def _diagnose(head: np.ndarray, labels: np.ndarray, policy: CalibrationPolicy) -> ExitDiagnosis:
    final = _logits_for(labels, np.full(len(labels), 10))  # the backbone is always right
    anchor = class_precision(predicted_class(final), labels, 3)
    cals = calibrate_in_sequence([head], labels, anchor, policy)
    exit_at, _ = cascade_from_logits([head], [c.thresholds for c in cals], final, policy.score)
    return diagnose_exits(["block1"], [head], final, labels, exit_at, cals, CLASSES, policy.score,
                          policy.min_support, policy.class_confidence)[0]


def test_best_precision_is_the_best_cut_over_enough_samples():
    scores = np.array([9, 8, 7, 6, 5, 4], float)
    correct = np.array([1, 0, 1, 1, 1, 0], bool)
    assert best_precision(scores, correct, 1) == 1.0  # the top sample alone
    assert best_precision(scores, correct, 2) == 0.8  # 4 of the top 5 (top 2, 3, 4: 1/2, 2/3, 3/4)
    assert np.isnan(best_precision(scores, correct, 7))


def test_a_right_head_pays_and_gets_no_diagnosis():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    d = _diagnose(_logits_for(labels, rng.integers(1, 20, 600)), labels, CalibrationPolicy())
    assert d.taken == d.reaching == 600 and d.head_right == 600
    assert not d.takes_almost_nothing and d.limit == ""


def test_a_head_of_noise_is_the_limit():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 900)
    noise = rng.integers(0, 3, 900)  # right a third of the time, whatever the score
    d = _diagnose(_logits_for(noise, rng.integers(1, 20, 900)), labels, CalibrationPolicy())
    assert d.takes_almost_nothing and d.limit == "head"
    assert 0.25 < d.head_right / d.reaching < 0.42 and d.backbone_right == 900
    assert len(d.below_bar) == 3 and all(best < bar for _, best, bar in d.below_bar)
    assert "limited by the head" in d.line() and "backbone 100.0%" in d.line()


def test_too_few_calibration_images_are_the_limit():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 30)  # about 10 a class, under min_support 20
    d = _diagnose(_logits_for(labels, rng.integers(1, 20, 30)), labels, CalibrationPolicy(min_support=20))
    assert d.taken == 0 and d.limit == "images" and sorted(d.few_images) == CLASSES
    assert "min_support (20 now)" in d.advice
    with_guard = _diagnose(_logits_for(labels, rng.integers(1, 20, 30)), labels,
                           CalibrationPolicy(min_support=20, class_confidence=0.9))
    assert with_guard.provable is not None and with_guard.provable < 1.0  # 10 flawless images prove < 1


def test_a_class_just_short_of_its_bar_is_the_policy():
    labels = np.repeat([0, 1, 2], 200)
    pred = labels.copy()
    pred[::50] = (labels[::50] + 1) % 3  # 2 % wrong, and these with the highest scores
    margin = np.where(pred != labels, 1000, np.tile(np.arange(1, 201), 3))
    d = _diagnose(_logits_for(pred, margin), labels, CalibrationPolicy(margin=-0.0))  # bar: precision 1.0
    assert d.takes_almost_nothing and d.limit == "policy"
    assert all(bar - best <= 0.03 for _, best, bar in d.below_bar)
