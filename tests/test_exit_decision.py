"""Integer exit thresholds, the exit rules (the vectorized rule of calib, the streaming
model of the exit unit and its qonnx op) against a per-image reference written from the
rules' definitions, and the thresholds artifact."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from onnx import TensorProto, helper

from calib.cascade import leave_at_first
from calib.rules import decide
from calib.thresholds import (ThresholdsError, integer_threshold, integer_thresholds, load_artifact,
                              make_artifact, model_hash)
from hw.exit_decision import DOMAIN, make_node, stream_decision


def reference_decision(row: list[int], thresholds: list[int | None], kind: str) -> tuple[int, int, int]:
    """The rule as written down (docs/design.md §6), one image, plain Python: the class is the
    first index holding the largest logit; the score is the largest minus the second
    largest value (margin) or the largest (top); the image exits when the class has a
    threshold and score >= threshold."""
    cls = row.index(max(row))
    ordered = sorted(row, reverse=True)
    score = ordered[0] - ordered[1] if kind == "margin" else ordered[0]
    t = thresholds[cls]
    return cls, int(t is not None and score >= t), score


def reference_cascade(takes: list[list[bool]], head_pred: list[list[int]], final_pred: list[int]
                      ) -> tuple[list[int], list[int]]:
    """Leave at the first exit: per image, the first head that takes it, else the final classifier."""
    exit_index, pred = [], []
    for n in range(len(final_pred)):
        for j in range(len(takes)):
            if takes[j][n]:
                exit_index.append(j)
                pred.append(head_pred[j][n])
                break
        else:
            exit_index.append(len(takes))
            pred.append(final_pred[n])
    return exit_index, pred


def tie_heavy_logits(rng, n: int, k: int) -> np.ndarray:
    """(n, k) integer logits from a narrow range, so ties for first and second are common."""
    return rng.integers(-3, 4, (n, k)).astype(np.int64)


@pytest.mark.parametrize("kind", ["margin", "top"])
def test_vectorized_rule_and_streaming_model_equal_the_reference(kind):
    rng = np.random.default_rng(7)
    for k in (2, 3, 10):
        logits = np.concatenate([tie_heavy_logits(rng, 400, k), rng.integers(-500, 500, (400, k))])
        thresholds = [None if rng.random() < 0.2 else int(rng.integers(-2, 6)) for _ in range(k)]
        want = [reference_decision(row.tolist(), thresholds, kind) for row in logits]
        assert decide(logits, thresholds, kind).tolist() == [list(w) for w in want]
        assert [stream_decision(row.tolist(), thresholds, kind) for row in logits] == want


def test_the_op_does_not_share_the_golden_rule(monkeypatch):
    """The chain compares the golden simulator's decisions with the op's, so the op must not
    run the same code: with every `decide` the project imports replaced by a wrong rule
    (ties to the highest index), the op still gives the reference's answers."""
    import sys

    def wrong(logits, thresholds, kind):
        flipped = np.asarray(logits)[:, ::-1]
        out = decide(flipped, thresholds[::-1], kind)
        out[:, 0] = logits.shape[1] - 1 - out[:, 0]
        return out

    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("calib", "hw") and getattr(module, "decide", None) is decide:
            monkeypatch.setattr(module, "decide", wrong)
    logits = np.array([[3, 7, 7, 1], [5, 5, 0, 0], [0, 2, 2, 2]], np.int64)
    thresholds = [0, 0, 0, 0]
    want = [list(reference_decision(r.tolist(), thresholds, "margin")) for r in logits]
    assert wrong(logits, thresholds, "margin").tolist() != want  # the stand-in really is wrong
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    node = make_node("logits", "decision", thresholds, "margin", name="exit_decision")
    graph = helper.make_graph([node], "exit",
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [3, 4])],
                              [helper.make_tensor_value_info("decision", TensorProto.FLOAT, [3, 3])])
    model = ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                                  helper.make_opsetid(DOMAIN, 1)]))
    got = execute_onnx(model, {"logits": logits.astype(np.float32)})["decision"]
    assert got.astype(np.int64).tolist() == want


def test_leave_at_first_equals_the_reference():
    rng = np.random.default_rng(3)
    n, exits = 500, 3
    takes = [rng.random(n) < p for p in (0.2, 0.4, 0.6)]
    head_pred = [rng.integers(0, 10, n) for _ in range(exits)]
    final_pred = rng.integers(0, 10, n)
    exit_index, pred = leave_at_first(takes, head_pred, final_pred)
    want_index, want_pred = reference_cascade([t.tolist() for t in takes], [p.tolist() for p in head_pred],
                                              final_pred.tolist())
    assert exit_index.tolist() == want_index and pred.tolist() == want_pred


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
