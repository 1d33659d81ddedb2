"""Integer exit thresholds, the ExitDecision op (numpy model and qonnx op), the artifact."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from onnx import TensorProto, helper

from hw.exit_decision import DOMAIN, decide, make_node
from hw.thresholds import (ThresholdsError, integer_threshold, integer_thresholds, load_artifact,
                           make_artifact, model_hash)


def test_integer_threshold_rule_holds_exactly():
    # m * s >= t  <=>  m >= integer_threshold(t, s), checked in exact rationals for float32
    # scales like Brevitas' and thresholds on and next to the grid.
    rng = np.random.default_rng(0)
    for _ in range(300):
        s = float(np.float32(rng.uniform(1e-3, 0.5)))
        m0 = int(rng.integers(0, 200))
        for t in (m0 * s, np.nextafter(m0 * s, np.inf), np.nextafter(m0 * s, -np.inf), rng.uniform(0, 60)):
            it = integer_threshold(float(t), s)
            for m in range(max(0, it - 3), it + 4):
                assert (Fraction(m) * Fraction(s) >= Fraction(float(t))) == (m >= it)
    assert integer_threshold(float("inf"), 0.1) is None
    with pytest.raises(ValueError):
        integer_threshold(1.0, 0.0)


def test_decide_by_hand():
    logits = np.array([[3, 7, 7, 1],    # tie -> class 1, margin 0
                       [0, 9, 2, 1],    # class 1, margin 7
                       [5, 0, 0, 0],    # class 0, margin 5; class 0 never exits
                       [0, 0, 1, 4]])   # class 3, margin 3 == threshold -> exits
    out = decide(logits, [None, 6, 0, 3], "margin")
    assert out.tolist() == [[1, 0, 0], [1, 1, 7], [0, 0, 5], [3, 1, 3]]
    assert decide(logits, [1, 1, 1, 1], "top")[:, 2].tolist() == [7, 9, 5, 4]
    with pytest.raises(ValueError, match="integer"):
        decide(logits + 0.5, [1, 1, 1, 1], "margin")


def test_exit_decision_runs_in_qonnx():
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    thresholds = [4, None, 2, 9, 0]
    node = make_node("logits", "decision", thresholds, "margin", name="exit0_decision")
    graph = helper.make_graph([node], "exit", [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [64, 5])],
                              [helper.make_tensor_value_info("decision", TensorProto.FLOAT, [64, 3])])
    model = ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                                  helper.make_opsetid(DOMAIN, 1)]))
    model = model.transform(InferShapes())
    logits = np.random.default_rng(1).integers(-20, 20, (64, 5)).astype(np.float32)
    got = execute_onnx(model, {"logits": logits})["decision"]
    assert np.array_equal(got.astype(np.int64), decide(logits, thresholds, "margin"))


def test_artifact_roundtrip_and_checks(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"weights")
    sha = model_hash(tmp_path / "model.pt")
    exits = [{"point": "block1", "score": "margin", "scale": 0.03125,
              "thresholds": integer_thresholds(np.array([0.5, np.inf, 0.0]), 0.03125),
              "float_thresholds": [0.5, None, 0.0]}]
    doc = make_artifact(sha, 3, exits)
    assert doc["exits"][0]["thresholds"] == [16, None, 0]
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps(doc))
    assert load_artifact(path, sha, 3, 1)["exits"][0]["point"] == "block1"
    with pytest.raises(ThresholdsError, match="thresholds.json: model_sha256"):
        load_artifact(path, "0" * 64, 3, 1)
    with pytest.raises(ThresholdsError, match="num_classes"):
        load_artifact(path, sha, 10, 1)
    soft = make_artifact(sha, 3, [dict(exits[0], score="softmax", scale=None, thresholds=None)])
    path.write_text(json.dumps(soft))
    with pytest.raises(ThresholdsError, match=r"exits\[0\].thresholds: no integer thresholds"):
        load_artifact(path, sha, 3, 1)
    path.write_text(json.dumps(doc)[:40])
    with pytest.raises(ThresholdsError, match="thresholds.json: not a readable"):
        load_artifact(path, sha, 3, 1)
