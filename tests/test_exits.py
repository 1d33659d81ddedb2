"""Exit heads, the feature cache, BTS-EE filtering and the exits/calibrate/evaluate steps."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from btsee.config import load_config
from btsee.run_folder import THRESHOLDS_FILE, load_logits, read_thresholds
from calib.cascade import calibrate_in_sequence
from calib.cpm import CalibrationPolicy, class_precision
from calib.rules import exit_score, exits, predicted_class
from conftest import ROOT
from qat.data import ImageSet
from qat.image_fit import ImageFit, fit_images
from qat.exit_training import HeadTraining, SplitData, fit_exits, head_logits, train_head
from qat.feature_cache import build_cache
from qat.heads import ExitHead, HeadSpec
from qat.models import ModelSpec, build_backbone, load_backbone
from qat.train import InputScaling


@pytest.fixture(scope="module")
def small(fmnist):
    """A W4A4 CNV (untrained but with moved BN statistics) and 600 real images."""
    torch.manual_seed(0)
    model = build_backbone(ModelSpec(name="cnv", width=0.125))
    tr = fmnist["train"]
    data = ImageSet(fit_images(tr.images[:600], ImageFit(32)), tr.labels[:600], tr.classes)
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(data.images[:200]).float() / 255)  # non-trivial BN statistics
    return model.eval(), data


def test_cache_equals_live_features_exactly(small):
    model, data = small
    points = ["block1", "block2", "block4"]
    cache, logits = build_cache(model, data, points, InputScaling(), batch_size=128)
    with torch.no_grad():
        live, live_logits = model.forward_with_exits(torch.from_numpy(data.images).float() / 255, points)
    for p in points:
        head = ExitHead(HeadSpec(tuple(live[p].shape[1:]), 10))
        assert cache[p].codes.dtype == torch.uint8  # compact: 4-bit codes in bytes
        assert torch.equal(cache[p].batch(slice(None)), head.row_pool(live[p]))
    assert np.array_equal(logits, live_logits.numpy())


def test_head_is_small_and_runs_pooled_or_not():
    spec = HeadSpec((16, 30, 30), 10, reduce_channels=8, conv_channels=(16,))
    head = ExitHead(spec).eval()
    # by hand: 1x1 reduce on (16, 1, 30): 30*8*16; (1,3) conv: 28*16*8*3; linear: 16*10
    assert head.macs() == 30 * 8 * 16 + 28 * 16 * 8 * 3 + 16 * 10
    x = torch.rand(4, 16, 30, 30)
    assert torch.equal(head(x), head.forward_pooled(head.row_pool(x)))


def _split(model, data, points, lo, hi):
    part = ImageSet(data.images[lo:hi], data.labels[lo:hi], data.classes)
    feats, logits = build_cache(model, part, points, InputScaling())
    return SplitData(feats, logits, part.labels)


def test_bts_filtering_uses_exactly_the_calibrated_decisions(small):
    model, data = small
    points = ["block1", "block2", "block3"]
    train, val = _split(model, data, points, 0, 400), _split(model, data, points, 400, 600)
    shapes = model.exit_point_shapes()
    specs = [HeadSpec(shapes[p], 10, 4, (8,)) for p in points]
    anchor = class_precision(predicted_class(val.backbone_logits), val.labels, 10)
    pol = CalibrationPolicy(margin=0.3, min_support=3)
    opts = HeadTraining(method="bts", epochs=1, batch_size=64)
    fitted = fit_exits(points, specs, train, val, pol, anchor, opts)
    # recompute, independently, which training samples each earlier head lets through
    still = np.ones(len(train.labels), bool)
    for k, (p, head, cal) in enumerate(zip(points, fitted.heads, fitted.calibrations)):
        assert np.array_equal(fitted.train_weights[k] > 0, still), f"head {k}"
        z = head_logits(head, train.features[p])
        still &= ~exits(exit_score(z, pol.score), predicted_class(z), cal.thresholds)
    assert fitted.train_sizes[0] == 400
    # the calibrate step's sequential calibration reproduces the thresholds used in training
    val_logits = [head_logits(h, val.features[p]) for h, p in zip(fitted.heads, points)]
    again = calibrate_in_sequence(val_logits, val.labels, anchor, pol)
    for a, b in zip(again, fitted.calibrations):
        assert np.array_equal(a.thresholds, b.thresholds)
    joint = fit_exits(points, specs, train, val, pol, anchor, replace(opts, method="joint"))
    assert all(w.sum() == 400 for w in joint.train_weights)
    soft = fit_exits(points, specs, train, val, pol, anchor, replace(opts, soft_weights=True))
    assert all(((w >= 0) & (w <= 1)).all() for w in soft.train_weights)


def test_head_training_lowers_the_loss_with_and_without_distillation(small):
    model, data = small
    train = _split(model, data, ["block2"], 0, 600)
    spec = HeadSpec(model.exit_point_shapes()["block2"], 10, 8, (16,))
    targets = torch.from_numpy(data.labels[:600])
    for distill in (None, 2.0):
        torch.manual_seed(0)
        head = ExitHead(spec)
        opts = HeadTraining(epochs=4, batch_size=64, lr=0.01, distill_temperature=distill)
        losses = train_head(head, train.features["block2"], targets, torch.ones(600), opts,
                            teacher=torch.from_numpy(train.backbone_logits))
        assert losses[-1] < losses[0], (distill, losses)


def test_exit_steps_report_and_agree(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    assert len(report["exit_fraction"]) == 4
    assert sum(report["exit_fraction"]) == pytest.approx(1.0)
    assert 0 < report["mac_fraction"] <= 1.0 + sum(report["exits"]["head_mac_fraction"])
    assert 0 <= report["accuracy"]["early_exit"] <= 1
    assert all(f <= 0.05 for f in report["exits"]["head_mac_fraction"])
    assert report["oracle"]["accuracy"] >= report["accuracy"]["backbone"]
    # the saved thresholds are what the calibration rule gives on the saved logits
    doc = json.loads((tiny_run / THRESHOLDS_FILE).read_text())
    pol = CalibrationPolicy(**doc["policy"])
    logits = load_logits(tiny_run, "val")
    assert logits.integer and pol.score == "margin"  # the tiny model is quantized
    heads, final = logits.for_score(pol.score)
    assert all(z.dtype == np.int64 for z in heads + [final])
    anchor = class_precision(predicted_class(final), logits.labels, final.shape[1])
    cals = calibrate_in_sequence(heads, logits.labels, anchor, pol)
    saved = read_thresholds(tiny_run)
    assert all(np.array_equal(a.thresholds, b) for a, b in zip(cals, saved))
    model = load_backbone(tiny_run / "backbone" / "model.pt")
    assert model.exit_points[:3] == doc["points"]
    assert (tiny_run / "evaluate" / "exits_by_class.png").exists()


def test_a_head_over_the_mac_budget_is_named(tiny_run_copy, tmp_path):
    from conftest import TINY_CONFIG, btsee, write_config

    values = json.loads(json.dumps(TINY_CONFIG))
    values["exits"].update(reduce_channels=None, conv_channels=[256, 256])
    cfg = write_config(tmp_path / "big.json", values)
    r = btsee("run", str(cfg), "--out", str(tiny_run_copy), "--from", "exits", check=False)
    assert r.returncode == 2 and "head at block1" in r.stderr and "max_head_mac_fraction" in r.stderr


def test_default_config_heads_fit_the_budget():
    cfg = load_config(ROOT / "configs" / "default.yaml")
    model = build_backbone(ModelSpec(name="cnv", channels=tuple(cfg.model.channels)))
    total = sum(model.segment_macs().values())
    shapes = model.exit_point_shapes()
    for p in cfg.exits.points:
        head = ExitHead(HeadSpec(shapes[p], 10, cfg.exits.reduce_channels, tuple(cfg.exits.conv_channels)))
        assert head.macs() <= cfg.exits.max_head_mac_fraction * total
