"""Reference graphs run many images per execution: the same results as one image at a
time, for the exported graphs (float64 exactly; float32 up to its rounding, so on the
integer codes) and FINN's HW graphs."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("finn")

from hw.verify.batch import batch_safe_im2col, run_in_batches, with_batch  # noqa: E402


def _segment(run, name):
    manifest = json.loads((run / "dataflow" / "manifest.json").read_text())
    return next(s for s in manifest["segments"] if s["name"] == name)


def _codes(rng, n, model):
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][1:]
    top = model.get_tensor_datatype(model.graph.input[0].name).max()
    return rng.integers(0, top + 1, (n, *shape)).astype(np.float32)


@pytest.mark.parametrize("engine", ["qonnx-float64", "qonnx-float32", "finn"])
@pytest.mark.parametrize("name", ["backbone_0", "head_0", "backbone_final"])
def test_a_batched_graph_equals_one_image_at_a_time(tiny_run, engine, name):
    from qonnx.core.modelwrapper import ModelWrapper

    from hw.verify.exact_qonnx import widen_to_float64

    batch_safe_im2col()
    seg = _segment(tiny_run, name)
    if engine == "finn":
        from finn.core.onnx_exec import execute_onnx

        model = ModelWrapper(str(tiny_run / seg["hw_file"]))
    else:
        from qonnx.core.onnx_exec import execute_onnx

        model = ModelWrapper(str(tiny_run / seg["qonnx_file"]))
        model = widen_to_float64(model) if engine == "qonnx-float64" else model
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    x = _codes(np.random.default_rng(1), 11, model)  # 11 = 4 + 4 + 3: the last slice padded
    if engine == "qonnx-float64":
        x = x.astype(np.float64)
    one = np.concatenate([execute_onnx(model, {iname: x[i:i + 1]})[oname] for i in range(len(x))])
    batched = with_batch(model, 4)
    many = run_in_batches(batched, x, lambda m, part: execute_onnx(m, {iname: part})[oname])
    assert many.shape == one.shape
    if engine == "qonnx-float32":  # onnxruntime sums a batch in another order: compare the codes
        from hw.export import integer_codes

        one, many = (integer_codes(v, seg["output_scale"], name) for v in (one, many))
    assert np.array_equal(many, one)


def test_qonnx_im2col_mixes_the_images_of_a_batch():
    """Why `batch_safe_im2col` exists: qonnx's own Im2Col on two different images gives
    another result for the second than on that image alone; the batch-safe one does not."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.general.im2col import Im2Col
    from qonnx.util.basic import qonnx_make_model

    batch_safe_im2col()
    node = helper.make_node("Im2Col", ["x"], ["y"], domain="qonnx.custom_op.general", stride=[1, 1],
                            kernel_size=[2, 2], input_shape="(1,3,3,2)")
    graph = helper.make_graph([node], "im2col",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2, 2, 8])])
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_tensor_datatype("x", DataType["UINT8"])
    x = np.arange(36, dtype=np.float32).reshape(2, 3, 3, 2)
    op = Im2Col(node)

    def run(execute, images):
        context = {"x": images, "y": None}
        execute(op, context, model.graph)
        return context["y"]

    alone = [run(Im2Col.execute_node.original, x[i:i + 1]) for i in range(2)]
    assert not np.array_equal(run(Im2Col.execute_node.original, x), np.concatenate(alone))
    assert np.array_equal(run(Im2Col.execute_node, x), np.concatenate(alone))


@pytest.mark.parametrize("kernel, stride, pad, dilation, shape", [
    ([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], (5, 6, 6, 3)),   # padded, the default conv
    ([3, 3], [2, 2], [0, 1, 1, 0], [1, 1], (3, 7, 7, 2)),   # strided, uneven padding
    ([2, 2], [1, 1], [0, 0, 0, 0], [2, 2], (4, 6, 5, 4)),   # dilated, not square
    ([1, 3], [1, 1], [0, 1, 0, 1], [1, 1], (3, 1, 8, 5)),   # a 1D conv as (1, W)
    ([1, 1], [1, 1], [0, 0, 0, 0], [1, 1], (2, 4, 4, 6)),   # pointwise
])
def test_the_batched_im2col_equals_qonnx_image_by_image(kernel, stride, pad, dilation, shape):
    """Every window of every image of a batch as qonnx's Im2Col gives it for that image alone
    (==), with padding (value 3), strides, dilation and a dummy height."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.general.im2col import Im2Col, compute_conv_output_dim
    from qonnx.util.basic import qonnx_make_model

    batch_safe_im2col()
    n, h, w, c = shape
    oh = compute_conv_output_dim(h, kernel[0], stride[0], pad[0] + pad[2], dilation[0])
    ow = compute_conv_output_dim(w, kernel[1], stride[1], pad[1] + pad[3], dilation[1])
    node = helper.make_node("Im2Col", ["x"], ["y"], domain="qonnx.custom_op.general", stride=stride,
                            kernel_size=kernel, pad_amount=pad, pad_value=3, dilations=dilation,
                            input_shape=f"(1,{h},{w},{c})")
    graph = helper.make_graph([node], "im2col", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, h, w, c])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             [n, oh, ow, kernel[0] * kernel[1] * c])])
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_tensor_datatype("x", DataType["UINT8"])
    x = np.random.default_rng(5).integers(0, 256, shape).astype(np.float32)
    op = Im2Col(node)

    def run(execute, images):
        context = {"x": images, "y": None}
        execute(op, context, model.graph)
        return context["y"]

    alone = np.concatenate([run(Im2Col.execute_node.original, x[i:i + 1]) for i in range(n)])
    batched = run(Im2Col.execute_node, x)
    assert batched.shape == alone.shape == (n, oh, ow, kernel[0] * kernel[1] * c)
    assert np.array_equal(batched, alone)
