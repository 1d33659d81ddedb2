"""The exit decision on a head's integer logits: argmax, score and comparator.

`decide` is the functional model (numpy) that the golden simulator and the RTL's golden
vectors use; `ExitDecision` is the same computation as a qonnx custom op (domain
`hw.exit_decision`), so an exported graph can carry the decision and qonnx's
`execute_onnx` runs it. Scores: 'margin' (top-2 logit difference) or 'top' (largest
logit). The rules (argmax ties to the lowest index, `score >= threshold`) come from
`calib.rules`, written once.
"""
from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from calib.rules import predicted_class, top2_margin

HW_SCORES = ("margin", "top")
DOMAIN = "hw.exit_decision"


def integer_score(logits: np.ndarray, kind: str) -> np.ndarray:
    """(N, K) integer logits -> (N,) int64 score."""
    z = logits.astype(np.int64)
    if kind == "margin":
        return top2_margin(z)
    if kind == "top":
        return z.max(axis=1)
    raise ValueError(f"hardware score must be one of {HW_SCORES}, got {kind!r}")


def decide(logits: np.ndarray, thresholds: list[int | None], kind: str) -> np.ndarray:
    """(N, K) integer logits -> (N, 3) int64 rows (class, exits 0/1, score)."""
    if logits.ndim != 2 or logits.shape[1] != len(thresholds):
        raise ValueError(f"logits of shape {logits.shape} for {len(thresholds)} class thresholds")
    if not np.array_equal(logits, np.round(logits)):
        raise ValueError("the exit decision takes integer logits")
    cls = predicted_class(logits.astype(np.int64))  # (N,)
    score = integer_score(logits, kind)  # (N,)
    enabled = np.array([t is not None for t in thresholds])  # (K,)
    table = np.array([0 if t is None else t for t in thresholds], np.int64)  # (K,)
    leave = enabled[cls] & (score >= table[cls])  # (N,) the comparator
    return np.stack([cls, leave.astype(np.int64), score], axis=1)


class ExitDecision(CustomOp):
    """Inputs: integer logits (N, K). Output: (N, 3) rows (class, exits, score).

    Attributes: thresholds (ints, K), enabled (ints, K: 0 = the class never exits),
    score ('margin' or 'top').
    """

    def get_nodeattr_types(self):
        return {"thresholds": ("ints", True, []), "enabled": ("ints", True, []),
                "score": ("s", True, "margin", set(HW_SCORES))}

    def _table(self) -> list[int | None]:
        t, e = self.get_nodeattr("thresholds"), self.get_nodeattr("enabled")
        if len(t) != len(e):
            raise ValueError(f"ExitDecision node {self.onnx_node.name!r}: {len(t)} thresholds, "
                             f"{len(e)} enabled flags")
        return [int(v) if on else None for v, on in zip(t, e)]

    def make_shape_compatible_op(self, model):
        n = model.get_tensor_shape(self.onnx_node.input[0])[0]
        return self.make_const_shape_op([n, 3])

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0], DataType["INT32"])

    def execute_node(self, context, graph):
        node = self.onnx_node
        out = decide(context[node.input[0]], self._table(), self.get_nodeattr("score"))
        context[node.output[0]] = out.astype(np.float32)

    def verify_node(self):
        msgs = []
        try:
            self._table()
            msgs.append("thresholds and enabled flags agree")
        except ValueError as e:
            msgs.append(str(e))
        return msgs


def make_node(logits: str, output: str, thresholds: list[int | None], score: str, name: str = ""):
    """An ExitDecision ONNX node for these integer thresholds (None = never exits)."""
    return helper.make_node("ExitDecision", [logits], [output], domain=DOMAIN, name=name,
                            thresholds=[0 if t is None else int(t) for t in thresholds],
                            enabled=[int(t is not None) for t in thresholds], score=score)


custom_op = {"ExitDecision": ExitDecision}
