"""The exit decision unit's functional model, and the same as a qonnx custom op.

`stream_decision` is the model of the hardware exit unit, written from the rule's
definition and not from `calib.rules.decide`: it reads one integer logit per step,
keeping the running argmax (a later logit replaces it only when strictly larger, so ties
go to the lowest index) and the runner-up, then compares the score with the predicted
class's threshold (`>=`; a disabled class never exits). `ExitDecision` (domain
`hw.exit_decision`) executes it under qonnx's `execute_onnx`, so the chain compares the
golden simulator's vectorized rule against an independent implementation; the RTL unit
will be the third.
"""
from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from calib.rules import HW_SCORES

DOMAIN = "hw.exit_decision"


def stream_decision(logits: list[int], thresholds: list[int | None], kind: str) -> tuple[int, int, int]:
    """One image's K integer logits, one per step -> (class, exits 0/1, score)."""
    if kind not in HW_SCORES:
        raise ValueError(f"hardware score must be one of {HW_SCORES}, got {kind!r}")
    if len(logits) != len(thresholds) or len(logits) < 2:
        raise ValueError(f"{len(logits)} logits for {len(thresholds)} class thresholds (two or more)")
    best_index, best, runner_up = 0, int(logits[0]), None
    for k in range(1, len(logits)):
        v = int(logits[k])
        if v > best:  # strictly larger: an equal later logit never takes the lead
            best_index, best, runner_up = k, v, best
        elif runner_up is None or v > runner_up:
            runner_up = v
    score = best - runner_up if kind == "margin" else best
    threshold = thresholds[best_index]
    leaves = threshold is not None and score >= threshold
    return best_index, int(leaves), score


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
        logits = context[node.input[0]]  # (N, K)
        if not np.array_equal(logits, np.round(logits)):
            raise ValueError(f"ExitDecision node {node.name!r}: the exit decision takes integer logits")
        table, kind = self._table(), self.get_nodeattr("score")
        rows = [stream_decision([int(v) for v in row], table, kind) for row in logits]
        context[node.output[0]] = np.asarray(rows, np.float32).reshape(len(logits), 3)

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
