"""The accuracy budget (calib/budget.py, calib/bounds.py): the confidence bounds, the guard
in CPM, the cascade's drop bound and the search, on small cases with a known answer; and
the calibrate step with calibration.max_drop on the tiny run."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from btsee.run_folder import load_logits
from calib.bounds import normal_quantile, paired_difference_upper, paired_score, wilson_lower, wilson_upper
from calib.budget import Outcome, cascade_outcome, cautious_to_bold, guarded_search, search_budget
from calib.cpm import lowest_threshold
from calib.rules import NEVER
from conftest import btsee, write_config, TINY_CONFIG


def test_the_bounds_match_known_values():
    z = normal_quantile(0.975)
    assert abs(z - 1.959963984540054) < 1e-9
    assert abs(normal_quantile(0.9) - 1.2815515655446004) < 1e-9
    # Wilson's interval for 8 of 10 at 95 % (two-sided): 0.4902 to 0.9433
    assert abs(float(wilson_lower(8, 10, z)) - 0.49016) < 1e-4
    assert abs(float(wilson_upper(8, 10, z)) - 0.94332) < 1e-4
    assert float(wilson_lower(0, 0, z)) == 0.0 and float(wilson_upper(0, 0, z)) == 1.0
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        normal_quantile(1.0)


def test_the_guard_raises_a_cpm_threshold_to_where_the_lower_bound_clears_the_bar():
    scores = np.arange(1, 41, dtype=np.float64)  # 40 samples, one per score
    correct = scores > 10  # the top 30 right, the 10 lowest wrong
    # plain: precision 30/33 = 0.909 >= 0.9 with the top 33 (down to score 8), 30/34 < 0.9
    assert lowest_threshold(scores, correct, 0.9, 1) == 8.0
    z = normal_quantile(0.9)
    expected = min(t for t in scores  # by brute force: the lowest t whose bound clears the bar
                   if wilson_lower(correct[scores >= t].sum(), (scores >= t).sum(), z) >= 0.9)
    assert lowest_threshold(scores, correct, 0.9, 1, z) == expected > 8.0
    assert lowest_threshold(scores, correct, 0.99, 1, z) == NEVER  # 30 of 30 right is not enough for 0.99


def test_the_cascade_drop_and_its_bound():
    labels = np.zeros(100, np.int64)
    backbone = np.zeros(100, np.int64)
    backbone[:5] = 1  # the backbone gets 95 right
    cascade = backbone.copy()
    cascade[10:13] = 2  # loses 3 the backbone got right
    cascade[0] = 0  # gains 1 the backbone got wrong
    macs = np.full(100, 40.0)
    plain = cascade_outcome(cascade, macs, backbone, labels, 100.0, None)
    assert plain == Outcome(2.0, 2.0, 0.4)
    guarded = cascade_outcome(cascade, macs, backbone, labels, 100.0, 0.9)
    z = normal_quantile(0.9)
    assert guarded.drop_bound_points == 100 * float(paired_difference_upper(3, 1, 100, z))
    assert guarded.drop_bound_points > 2.0 and guarded.drop_points == 2.0


def test_the_paired_bound_solves_its_score_equation():
    z = normal_quantile(0.9)
    # no discordant pair in n: the score equation reduces to d / (1 - d) = z^2 / n
    assert float(paired_difference_upper(0, 0, 100, z)) == pytest.approx(z * z / (100 + z * z), abs=1e-10)
    # at the bound the score statistic is -z, with p2 maximizing the likelihood by brute force
    b, c, n = 36, 17, 3000
    upper = float(paired_difference_upper(b, c, n, z))
    p2 = np.linspace(1e-7, (1 - upper) / 2 - 1e-7, 2_000_001)  # p1 = p2 + upper, p1 + 2 p2 < 1
    loglik = b * np.log(p2 + upper) + c * np.log(p2) + (n - b - c) * np.log(1 - 2 * p2 - upper)
    q = p2[np.argmax(loglik)]
    assert (b - c - n * upper) / np.sqrt(n * (2 * q + upper * (1 - upper))) == pytest.approx(-z, abs=1e-4)
    assert float(paired_score(b, c, n, upper)) == pytest.approx(-z, abs=1e-9)
    assert (b - c) / n < upper < float(paired_difference_upper(b + 1, c, n, z))


def test_the_paired_bound_errs_at_its_nominal_rate():
    # the drop exactly 1 point, gains rare: how often the 0.9 bound falls at or below the truth
    rng = np.random.default_rng(0)
    n, gained, drop = 3000, 0.004, 0.01
    counts = rng.multinomial(n, [gained + drop, gained, 1 - 2 * gained - drop], size=20000)
    below = np.mean(paired_difference_upper(counts[:, 0], counts[:, 1], n, normal_quantile(0.9)) <= drop)
    assert 0.09 <= below <= 0.11
    # a Wilson bound on b / (b + c), scaled by (b + c) / n, errs far more often here
    m = counts[:, 0] + counts[:, 1]
    scaled = (2 * wilson_upper(counts[:, 0], m, normal_quantile(0.9)) - 1) * m / n
    assert np.mean(scaled <= drop) > 0.13


def test_the_prediction_bound_covers_the_drop_of_a_finite_unseen_set():
    # 3,000 held-out pairs bound the drop 10,000 new pairs will show: both sets drawn at the
    # same true shares, the 0.9 prediction bound lies below the new set's drop ~10 % of the time
    rng = np.random.default_rng(1)
    n, future, shares = 3000, 10000, [0.02, 0.01, 0.97]  # lost, gained, neither
    seen = rng.multinomial(n, shares, size=20000)
    unseen = rng.multinomial(future, shares, size=20000)
    unseen_drop = (unseen[:, 0] - unseen[:, 1]) / future
    z = normal_quantile(0.9)
    predicted = paired_difference_upper(seen[:, 0], seen[:, 1], n, z, future)
    assert 0.09 <= np.mean(unseen_drop > predicted) <= 0.11
    # the bound on the expected drop ignores the new set's noise: sqrt(1 + 0.3) wider would be
    # right, so it errs ~13 % of the time against the new set's drop
    assert np.mean(unseen_drop > paired_difference_upper(seen[:, 0], seen[:, 1], n, z)) > 0.12


def test_the_prediction_bound_widens_as_the_unseen_set_shrinks():
    z = normal_quantile(0.9)
    expected = float(paired_difference_upper(36, 17, 3000, z))
    widths = [float(paired_difference_upper(36, 17, 3000, z, m)) for m in (100, 1000, 10000, 10 ** 12)]
    assert widths == sorted(widths, reverse=True) and widths[-1] == pytest.approx(expected, abs=1e-9)
    # it is the expected drop's bound at z sqrt(1 + n / m)
    assert widths[2] == float(paired_difference_upper(36, 17, 3000, z * np.sqrt(1.3)))
    with pytest.raises(ValueError, match="at least one new pair"):
        paired_difference_upper(36, 17, 3000, z, 0)


def test_the_search_finds_the_fewest_macs_within_the_budget():
    knobs = (0.0, 1.0, 2.0, 3.0)

    def measure(setting):  # exit 0's knob costs more accuracy per MAC saved than exit 1's (exact binary fractions)
        k0, k1 = setting
        drop = 0.25 + 0.5 * k0 + 0.125 * k1
        return Outcome(drop, drop, 1 - 0.125 * k0 - 0.0625 * k1)

    shared = search_budget(lambda ks: ks, measure, knobs, 2, max_drop=1.0)
    assert shared.knobs == [1.0, 1.0] and shared.outcome.mac_fraction == 0.8125
    best = min((s for s in itertools.product(knobs, repeat=2) if measure(s).drop_bound_points <= 1.0),
               key=lambda s: (measure(s).mac_fraction, measure(s).drop_points))
    per_exit = search_budget(lambda ks: ks, measure, knobs, 2, max_drop=1.0, per_exit=True)
    assert tuple(per_exit.knobs) == best == (1.0, 2.0)
    assert per_exit.calibrations == [1.0, 2.0] and per_exit.outcome.mac_fraction == 0.75
    assert search_budget(lambda ks: ks, measure, knobs, 2, max_drop=0.2) is None


def _linear_cascade(setting):  # exit 0's knob costs more accuracy per MAC saved than exit 1's
    k0, k1 = setting
    drop = 0.25 + 0.5 * k0 + 0.125 * k1
    return ("calibrated", setting), Outcome(drop, drop, 1 - 0.125 * k0 - 0.0625 * k1)


def test_the_path_takes_the_cheapest_step_first():
    knobs = (0.0, 1.0, 2.0, 3.0)  # from cautious to bold
    # exit 1 saves 0.0625 MACs per 0.125 points (0.5 per point), exit 0 0.125 per 0.5 (0.25)
    path = cautious_to_bold(_linear_cascade, knobs, 2, per_exit=True, stop_drop=10.0)
    assert path == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 3), (2, 3), (3, 3)]
    # it stops after the first setting past stop_drop: (0, 3) drops 0.625
    assert cautious_to_bold(_linear_cascade, knobs, 2, per_exit=True, stop_drop=0.5) == path[:4]
    assert cautious_to_bold(_linear_cascade, knobs, 2, per_exit=False, stop_drop=0.8) == [(0, 0), (1, 1)]


def test_the_guard_stops_at_the_first_failure():
    knobs = (0.0, 1.0, 2.0, 3.0)
    fails = {(0.0, 2.0)}  # held out, (0, 2) fails though the bolder (0, 3) would pass

    def check(cals):
        setting = cals[1]
        return Outcome(0.0, 2.0 if setting in fails else 0.0, _linear_cascade(setting)[1].mac_fraction)

    choice = guarded_search(lambda ks: ("calibrated", tuple(ks)), lambda cals: _linear_cascade(cals[1])[1], check,
                            knobs, 2, max_drop=1.0, per_exit=True)
    assert choice.knobs == [0.0, 1.0] and choice.calibrations == ("calibrated", (0.0, 1.0))
    assert [t["knobs"] for t in choice.tried] == [[0.0, 0.0], [0.0, 1.0], [0.0, 2.0]]
    fails.add((0.0, 0.0))
    assert guarded_search(lambda ks: ("calibrated", tuple(ks)), lambda cals: _linear_cascade(cals[1])[1], check,
                          knobs, 2, max_drop=1.0, per_exit=True) is None


def test_testing_in_order_keeps_the_confidence_that_taking_the_boldest_passing_spends():
    # five cautious settings within a 1-point budget, then twenty bolder ones at 1.2 points,
    # each measured on its own 3,000 held-out images; the guard at 0.9 may pick an
    # over-budget setting in about 10 % of the trials at most
    rng = np.random.default_rng(1)
    n, z = 3000, normal_quantile(0.9)
    true_drop = np.r_[np.linspace(0.0, 0.8, 5), np.full(20, 1.2)]  # points, cautious to bold
    knobs = tuple(float(k) for k in range(len(true_drop)))
    picked_over = {"guard": 0, "boldest passing": 0}
    trials = 300
    for _ in range(trials):
        counts = rng.multinomial(n, [0.006 + 0.0, 0.006, 0.988], size=len(true_drop))
        counts[:, 0] += rng.binomial(n, true_drop / 100)  # the drop's own losses on top
        bounds = 100 * paired_difference_upper(counts[:, 0], counts[:, 1], n, z)

        def check(cals, bounds=bounds):
            k = int(cals[0])
            return Outcome(0.0, float(bounds[k]), 1 - k / 50)

        def fit(cals):
            k = int(cals[0])
            return Outcome(float(true_drop[k]), float(true_drop[k]), 1 - k / 50)

        guard = guarded_search(lambda ks: ks, fit, check, knobs, 1, max_drop=1.0, stop_drop=10.0)
        boldest = search_budget(lambda ks: ks, check, knobs, 1, max_drop=1.0)
        picked_over["guard"] += guard is not None and true_drop[int(guard.knobs[0])] > 1.0
        picked_over["boldest passing"] += boldest is not None and true_drop[int(boldest.knobs[0])] > 1.0
    assert picked_over["guard"] / trials <= 0.1
    assert picked_over["boldest passing"] / trials > 0.3


def _one_head_split(head_right: np.ndarray, head_margin: np.ndarray):
    """SplitLogits of 3 classes: the backbone always right, one head right where `head_right`
    with top-2 margin `head_margin`."""
    from btsee.run_folder import SplitLogits

    n = len(head_right)
    labels = np.arange(n) % 3
    final = np.eye(3)[labels] * 5.0  # (N, 3)
    head_class = np.where(head_right, labels, (labels + 1) % 3)
    head = np.eye(3)[head_class] * head_margin[:, None]  # (N, 3): the margin between top and the rest
    return SplitLogits([head], final, labels, None, None)


def test_a_global_threshold_for_a_zero_budget_keeps_every_wrong_exit_out():
    from btsee.steps.calibration import budget_search
    from calib.cascade import Costs
    from calib.cpm import CalibrationPolicy

    right = np.arange(200) < 100
    margin = np.where(right, 4.0 + np.arange(200) * 0.01, 0.5 + (np.arange(200) - 100) * 0.01)  # wrong: below 1.5
    costs = Costs(backbone=100, to_exit=(30,), heads=(1,))
    cals, record = budget_search(_one_head_split(right, margin), CalibrationPolicy(policy="global"), costs, 0.0,
                                 per_exit=False)
    threshold = float(cals[0].thresholds[0])
    assert 1.49 < threshold <= 4.0  # above every wrong margin, at or below every right one
    assert record["drop_points"] == 0.0
    assert record["mac_fraction_validation"] == (100 * 31 + 100 * 101) / 200 / 100  # half leave after 31 MACs


def test_a_budget_nothing_meets_is_a_config_error_naming_it():
    from btsee.config import ConfigError
    from btsee.steps.calibration import budget_search
    from calib.cascade import Costs
    from calib.cpm import CalibrationPolicy

    wrong = np.zeros(200, bool)  # the head is always wrong: any exit costs accuracy
    split = _one_head_split(wrong, 1.0 + np.arange(200) * 0.01)
    with pytest.raises(ConfigError, match="calibration.max_drop 0.0: no global_threshold"):
        budget_search(split, CalibrationPolicy(policy="global"), Costs(100, (30,), (1,)), 0.0, per_exit=False)


def test_a_guard_whose_most_cautious_setting_fails_is_a_config_error_naming_it():
    from btsee.config import ConfigError
    from btsee.steps.calibration import budget_search
    from calib.cascade import Costs
    from calib.cpm import CalibrationPolicy

    split = _one_head_split(np.zeros(400, bool), 1.0 + np.arange(400) * 0.01)  # every exit is wrong
    with pytest.raises(ConfigError, match=r"calibration.max_drop 0.5: .* the most cautious global_threshold"):
        budget_search(split, CalibrationPolicy(policy="global"), Costs(100, (30,), (1,)), 0.5, per_exit=True,
                      holdout=0.5, drop_confidence=0.9)


def test_the_calibrate_step_meets_the_budget_on_the_tiny_run(tiny_run_copy):
    # 128 held-out images of weak tiny heads: a bound of a few points is what they can meet
    cfg = dict(TINY_CONFIG, calibration=dict(TINY_CONFIG["calibration"], max_drop=10.0, confidence=0.9,
                                             budget_search="per_exit"))
    path = write_config(tiny_run_copy / "budget.json", cfg)
    btsee("run", str(path), "--out", str(tiny_run_copy), "--from", "calibrate", "--to", "evaluate")
    doc = json.loads((tiny_run_copy / "calibrate" / "thresholds.json").read_text())
    budget = doc["budget"]
    assert budget["max_drop"] == 10.0 and budget["search"] == "per_exit" and budget["confidence"] == 0.9
    assert budget["holdout"] == 0.5  # the default fraction held out to measure the drop
    test_images = len(load_logits(tiny_run_copy, "test").labels)
    assert budget["guard_images"] == test_images  # the default: the promise is about the test split
    assert budget["drop_points"] <= budget["drop_bound_points"] <= 10.0
    assert len(budget["chosen"]) == len(doc["exits"])
    report = json.loads((tiny_run_copy / "report.json").read_text())
    assert report["calibration"]["budget"] == budget
