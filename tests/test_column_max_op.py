"""The ColumnMax HW layer: which max pools the conversion maps to it, and its execution in
qonnx (the graph-level check the chain's FINN execution relies on)."""
from __future__ import annotations

import numpy as np
import pytest


def _pool_graph(shape: tuple[int, int, int, int], kernel: list[int]):
    """A graph of one MaxPoolNHWC over an NHWC UINT4 input."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    n, h, w, c = shape
    out = (n, h // kernel[0], w // kernel[1], c)
    node = helper.make_node("MaxPoolNHWC", ["x"], ["y"], domain="qonnx.custom_op.general", name="pool",
                            kernel_shape=kernel, strides=kernel, pads=[0, 0, 0, 0])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)])
    model = ModelWrapper(qonnx_make_model(graph)).transform(InferShapes())
    model.set_tensor_datatype("x", DataType["UINT4"])
    return model


@pytest.mark.parametrize("shape,kernel,whole", [((1, 6, 5, 3), [6, 1], 0), ((1, 1, 5, 3), [1, 5], 1),
                                                 ((1, 4, 4, 3), [4, 4], 1)])
def test_full_height_pools_become_column_max_and_execute_as_the_model(shape, kernel, whole):
    from qonnx.core.onnx_exec import execute_onnx

    from hw.finn.column_max_op import infer_column_max
    from hw.rtl.column_max.model import column_max

    model = _pool_graph(shape, kernel).transform(infer_column_max())
    (node,) = model.graph.node
    assert node.op_type == "ColumnMax" and node.domain == "finn.custom_op.fpgadataflow"
    x = np.random.default_rng(0).integers(0, 16, shape).astype(np.float32)
    y = execute_onnx(model, {"x": x})["y"]
    assert np.array_equal(y, column_max(x, bool(whole)))
    assert np.array_equal(y, x.max(axis=(1, 2), keepdims=True) if whole else x.max(axis=1, keepdims=True))


@pytest.mark.parametrize("shape,kernel", [((1, 4, 4, 3), [2, 2]), ((1, 6, 5, 3), [3, 1]), ((1, 6, 6, 3), [6, 2])])
def test_other_max_pools_stay_finn_s(shape, kernel):
    from hw.finn.column_max_op import infer_column_max

    model = _pool_graph(shape, kernel).transform(infer_column_max())
    assert [n.op_type for n in model.graph.node] == ["MaxPoolNHWC"]


def test_its_folding_meets_the_target_with_the_fewest_lanes():
    from hw.finn.column_max_op import infer_column_max
    from hw.finn.estimate import fold_column_max
    from qonnx.custom_op.registry import getCustomOp

    model = _pool_graph((1, 6, 5, 8), [6, 1]).transform(infer_column_max())
    op = getCustomOp(model.graph.node[0])
    assert op.get_exp_cycles() == 6 * 5 * 8  # PE 1: one value a cycle
    fold_column_max(model, 6 * 5 * 8 // 3)  # needs PE >= 3: the smallest divisor of 8 is 4
    assert op.get_nodeattr("PE") == 4 and op.get_exp_cycles() == 6 * 5 * 2
