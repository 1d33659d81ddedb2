"""FINN's float32 thresholds against exact ones: a constructed layer whose exact boundaries
sit a hair above an integer, where FINN's conversion takes the ceiling of a float32 value
that has already lost the hair, and `exact_thresholds` puts every threshold where exact
(50-digit decimal) arithmetic says the code changes."""
from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np
import pytest
from onnx import TensorProto, helper

pytest.importorskip("finn")

from hw.finn.convert import DataflowError, to_hw  # noqa: E402
from hw.finn.exact_thresholds import exact_thresholds  # noqa: E402

getcontext().prec = 50
C_IN, C_OUT, BITS, PLANTED_CODE = 8, 16, 4, 8
S_IN, S_W, S_ACT, EPS = np.float32(1 / 15), np.float32(0.0731), np.float32(0.173), np.float32(1e-5)


def _dec(x) -> Decimal:
    return Decimal(float(x))


def boundary(mean, gamma, beta, var, code: int) -> Decimal:
    """The exact accumulator at which the code reaches `code` (z = (code - 1/2) * s_act)."""
    t = (Decimal(code) - Decimal("0.5")) * _dec(S_ACT)
    sigma = (_dec(var) + _dec(EPS)).sqrt()
    return ((t - _dec(beta)) * sigma / _dec(gamma) + _dec(mean)) / (_dec(S_IN) * _dec(S_W))


def planted_layer():
    """Weights and batch-norm parameters (float32) with every channel's boundary for code
    PLANTED_CODE within 3e-5 above an integer n in 300..400, where float32 values are
    3.1e-5 apart, so none lies between n and the boundary. With beta 0, gamma is chosen so
    that the mean comes out small (its float32 steps then move the boundary by about 1e-6),
    the mean is solved for n + 1.5e-5, and the float32 means nearest to it are tried in
    turn until one's exact boundary lands in the window."""
    rng = np.random.default_rng(5)
    w_int = rng.integers(-7, 8, (C_OUT, C_IN, 1, 1))
    var = rng.uniform(0.5, 3.0, C_OUT).astype(np.float32)
    beta = np.zeros(C_OUT, np.float32)
    gamma, mean = np.zeros(C_OUT, np.float32), np.zeros(C_OUT, np.float32)
    s = _dec(S_IN) * _dec(S_W)
    t = (Decimal(PLANTED_CODE) - Decimal("0.5")) * _dec(S_ACT)
    for c in range(C_OUT):
        n = Decimal(300 + 5 * c)
        sigma = (_dec(var[c]) + _dec(EPS)).sqrt()
        gamma[c] = np.float32(float(t * sigma / (n * s - Decimal("0.05"))))
        target = np.float32(float((n + Decimal("1.5e-5")) * s - t * sigma / _dec(gamma[c])))
        below = above = target
        for step in range(400):
            m = below if step % 2 else above
            b = boundary(m, gamma[c], beta[c], var[c], PLANTED_CODE)
            if Decimal(0) < b - n < Decimal("3e-5"):
                mean[c] = m
                break
            if step % 2:
                below = np.nextafter(below, np.float32(-np.inf))
            else:
                above = np.nextafter(above, np.float32(np.inf))
        else:
            raise AssertionError(f"no float32 mean plants channel {c}'s boundary")
    return w_int, gamma, beta, mean, var


def layer_graph(w_int, gamma, beta, mean, var):
    """UINT4 codes -> Mul(s_in) -> 1x1 Conv (4-bit weights) -> BatchNorm -> ReLU -> 4-bit Quant."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    init = {"s_in": S_IN, "w": (w_int * S_W).astype(np.float32), "s_w": S_W, "zero": np.float32(0),
            "w_bits": np.float32(4), "gamma": gamma, "beta": beta, "mean": mean, "var": var,
            "s_act": S_ACT, "a_bits": np.float32(BITS)}
    nodes = [
        helper.make_node("Mul", ["global_in", "s_in"], ["x"]),
        helper.make_node("Quant", ["w", "s_w", "zero", "w_bits"], ["wq"], domain="qonnx.custom_op.general",
                         signed=1, narrow=1, rounding_mode="ROUND"),
        helper.make_node("Conv", ["x", "wq"], ["y"], kernel_shape=[1, 1], strides=[1, 1], pads=[0, 0, 0, 0],
                         dilations=[1, 1], group=1),
        helper.make_node("BatchNormalization", ["y", "gamma", "beta", "mean", "var"], ["z"],
                         epsilon=float(EPS)),
        helper.make_node("Relu", ["z"], ["r"]),
        helper.make_node("Quant", ["r", "s_act", "zero", "a_bits"], ["global_out"],
                         domain="qonnx.custom_op.general", signed=0, narrow=0, rounding_mode="ROUND"),
    ]
    graph = helper.make_graph(
        nodes, "planted", [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, C_IN, 4, 4])],
        [helper.make_tensor_value_info("global_out", TensorProto.FLOAT, [1, C_OUT, 4, 4])],
        [helper.make_tensor(k, TensorProto.FLOAT, np.shape(v), np.asarray(v).reshape(-1).tolist())
         for k, v in init.items()])
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_tensor_datatype("global_in", DataType["UINT4"])
    return model


def exact_codes(acc: np.ndarray, c: int, gamma, beta, mean, var) -> np.ndarray:
    """The exported layer's code for each accumulator of channel c, in 50-digit decimals:
    round half up of z / s_act, clipped to the 4-bit range (the ReLU included)."""
    sigma = (_dec(var[c]) + _dec(EPS)).sqrt()
    out = []
    for a in acc.tolist():
        z = _dec(gamma[c]) * (_dec(S_IN) * _dec(S_W) * a - _dec(mean[c])) / sigma + _dec(beta[c])
        q = int((z / _dec(S_ACT) + Decimal("0.5")).to_integral_value(rounding="ROUND_FLOOR"))
        out.append(min(max(q, 0), 2 ** BITS - 1))
    return np.array(out)


def test_float32_thresholds_miss_planted_boundaries_and_exact_ones_do_not():
    params = planted_layer()
    w_int, gamma, beta, mean, var = params
    qonnx = layer_graph(*params)
    hw = to_hw(qonnx, "UINT4")
    (mvau,) = [n for n in hw.graph.node if n.op_type == "MVAU"]
    (th,) = hw.find_consumers(mvau.output[0])  # RTL-ready: the thresholds are a layer of their own
    assert th.op_type == "Thresholding"
    finn = np.asarray(hw.get_initializer(th.input[1]), np.int64)  # (C_OUT, 15)
    hw, corrections = exact_thresholds(qonnx, hw, "planted")
    exact = np.asarray(hw.get_initializer(th.input[1]), np.int64)
    weights = np.asarray(hw.get_initializer(mvau.input[1]), np.int64)  # (C_IN, C_OUT), signs as FINN chose
    wrong_finn = 0
    for c in range(C_OUT):
        reach = int(np.abs(weights[:, c]).sum()) * 15
        acc = np.arange(-reach, reach + 1)  # every accumulator channel c can produce
        sign = 1 if np.array_equal(weights[:, c], w_int[c, :, 0, 0]) else -1
        want = exact_codes(sign * acc, c, gamma, beta, mean, var)
        assert np.array_equal((acc[:, None] >= exact[c][None]).sum(axis=1), want), c
        wrong_finn += int(np.sum((acc[:, None] >= finn[c][None]).sum(axis=1) != want))
    assert wrong_finn > 0, "FINN's float32 conversion got every planted boundary right"
    assert len(corrections) > 0 and all(abs(x["exact"] - x["finn"]) == 1 for x in corrections)
    assert {x["code"] for x in corrections} == {PLANTED_CODE}


def test_a_layer_that_does_not_match_the_export_is_named():
    params = planted_layer()
    qonnx = layer_graph(*params)
    hw = to_hw(qonnx, "UINT4")
    (mvau,) = [n for n in hw.graph.node if n.op_type == "MVAU"]
    w = np.asarray(hw.get_initializer(mvau.input[1])).copy()
    w[0, 3] += 1
    hw.set_initializer(mvau.input[1], w)
    with pytest.raises(DataflowError, match=r"planted: node 'MVAU_0'.*channel 3"):
        exact_thresholds(qonnx, hw, "planted")
