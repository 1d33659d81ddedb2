"""hw/verify/sanitize.py: the fast per-node sanitization gives what qonnx's gives, on
tensors that need nothing, tensors it rounds and tensors it refuses."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from qonnx.core.datatype import DataType
from qonnx.util.basic import get_execution_error_thresh
from qonnx.util.basic import sanitize_quant_values as qonnx_sanitize

from hw.verify.sanitize import fast_sanitize, sanitize_quant_values


class _Types:
    """The one thing sanitization asks of a model: each tensor's data type."""

    def __init__(self, types: dict[str, str]):
        self.types = types

    def get_tensor_datatype(self, name: str):
        return DataType[self.types[name]]


def _both(types: dict[str, str], context: dict[str, np.ndarray]):
    model = _Types(types)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = qonnx_sanitize(model, list(types), {k: v.copy() for k, v in context.items()})
        ours = sanitize_quant_values(model, list(types), {k: v.copy() for k, v in context.items()})
    return theirs, ours


def test_the_fast_sanitization_equals_qonnx_s():
    rng = np.random.default_rng(0)
    small = get_execution_error_thresh() / 4
    context = {
        "codes": rng.integers(0, 16, (2, 8, 5, 5)).astype(np.float32),  # UINT4, allowed: untouched
        "logits": rng.integers(-300, 300, (2, 10)).astype(np.float32),  # INT16
        "near": rng.integers(-8, 8, (3, 7)).astype(np.float32) + small,  # INT4, rounded by both
        "scaled": rng.normal(size=(4, 4)).astype(np.float32),  # FLOAT32: skipped
        "out_of_range": np.array([[20.0, 3.0]], np.float32),  # INT4 does not hold 20: unchanged by both
    }
    types = {"codes": "UINT4", "logits": "INT16", "near": "INT4", "scaled": "FLOAT32", "out_of_range": "INT4"}
    theirs, ours = _both(types, context)
    for name in types:
        assert np.array_equal(theirs[name], ours[name]), name
    assert not np.array_equal(ours["near"], context["near"])  # the case where something is rounded


def test_the_fast_sanitization_refuses_what_qonnx_refuses():
    far = {"x": np.array([[0.4, 1.0]], np.float32)}  # 0.4 from an integer: too far to round
    with pytest.raises(Exception, match="Rounding error is too high"):
        _both({"x": "INT4"}, far)
    with pytest.raises(Exception, match="Rounding error is too high"):
        sanitize_quant_values(_Types({"x": "INT4"}), ["x"], far)


def test_fast_sanitize_is_what_qonnx_executes():
    import qonnx.core.onnx_exec as onnx_exec

    fast_sanitize()
    fast_sanitize()  # idempotent
    assert onnx_exec.sanitize_quant_values is sanitize_quant_values
