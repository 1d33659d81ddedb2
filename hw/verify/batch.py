"""Segment graphs made to run many images per execution.

The exported QONNX graphs and FINN's HW graphs are written for a batch of one image, and
qonnx's and FINN's `execute_onnx` spend most of their time per node and per call (an
onnxruntime session for each standard node, each time), not per image. `with_batch`
returns a copy that holds `n` images in every tensor: the batch axis of every declared
shape, the leading entry of Reshape targets, and the batch attributes of FINN's HW
layers (`numInputVectors`, `BatchSize`); the layers' own execution code is unchanged and
already computes over that axis, with one exception: qonnx's `Im2Col` (which FINN's
ConvolutionInputGenerator also executes through) interleaves the images of a batch
larger than one (its columns come out image-fastest and are read back image-slowest), so
`batch_safe_im2col` replaces its batch path with a gather of every window of every image
(one indexing operation per node instead of one im2col per image: about half the time of
a reference chain). `run_in_batches` feeds a graph slice by slice.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

BATCH_ATTRIBUTES = ("numInputVectors", "BatchSize")


def batch_safe_im2col() -> None:
    """Makes qonnx's Im2Col correct on a batch of images (see the module docstring); one
    image runs exactly as before, and a batch's first image is checked against qonnx's own
    execution of it (== on every value) each time. Idempotent; process-wide."""
    from qonnx.custom_op.general.im2col import Im2Col

    if getattr(Im2Col.execute_node, "batch_safe", False):
        return
    original = Im2Col.execute_node

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = context[node.input[0]]  # (N, H, W, C)
        if x.shape[0] == 1:
            return original(self, context, graph)
        first = dict(context)
        first[node.input[0]] = x[:1]
        original(self, first, graph)  # qonnx's own checks, and the reference for image 0
        out = _windows(x, self)
        if not np.array_equal(out[:1], first[node.output[0]]):
            raise AssertionError(f"{node.name or node.output[0]}: the batched Im2Col differs from qonnx's on "
                                 "the batch's first image")
        context[node.output[0]] = out

    execute_node.batch_safe = True
    execute_node.original = original
    Im2Col.execute_node = execute_node


def _windows(x: np.ndarray, op) -> np.ndarray:
    """(N, H, W, C) -> (N, OH, OW, kh * kw * C): every kernel window of every image, in
    qonnx's Im2Col layout ((kh, kw, C) innermost), from the node's stride, padding
    ([top, left, bottom, right]), pad value and dilation."""
    kh, kw = op.get_nodeattr("kernel_size")
    sh, sw = op.get_nodeattr("stride")
    dh, dw = op.get_nodeattr("dilations")
    top, left, bottom, right = op.get_nodeattr("pad_amount")
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=op.get_nodeattr("pad_value"))
    n, h, w, c = padded.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    rows = (np.arange(oh) * sh)[:, None] + np.arange(kh) * dh  # (OH, kh)
    cols = (np.arange(ow) * sw)[:, None] + np.arange(kw) * dw  # (OW, kw)
    win = padded[:, rows[:, None, :, None], cols[None, :, None, :], :]  # (N, OH, OW, kh, kw, C)
    return win.reshape(n, oh, ow, kh * kw * c)


def batch_size(model) -> int:
    """The number of images the graph's input holds."""
    return int(model.graph.input[0].type.tensor_type.shape.dim[0].dim_value)


def with_batch(model, n: int):
    """A copy of a one-image segment graph that runs `n` images at once."""
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    from hw.finn.convert import is_hw

    if batch_size(model) != 1:
        raise ValueError(f"the graph holds {batch_size(model)} images, not one")
    out = ModelWrapper(model.model.SerializeToString())
    graph = out.graph
    constants = {t.name for t in graph.initializer}
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        dims = vi.type.tensor_type.shape.dim
        if vi.name not in constants and len(dims) > 0 and dims[0].dim_value == 1:
            dims[0].dim_value = n
    for node in graph.node:
        if node.op_type == "Reshape":
            shape = out.get_initializer(node.input[1])
            if shape is not None and len(shape) > 0 and shape[0] == 1:
                shape = np.array(shape, np.int64)
                shape[0] = n
                out.set_initializer(node.input[1], shape)
        if is_hw(node):
            for attr in node.attribute:
                if attr.name not in BATCH_ATTRIBUTES:
                    continue
                value = helper.get_attribute_value(attr)
                if isinstance(value, list):
                    if value and value[0] == 1:
                        attr.CopyFrom(helper.make_attribute(attr.name, [n] + list(value[1:])))
                elif value == 1:
                    attr.CopyFrom(helper.make_attribute(attr.name, n))
    return out


def run_in_batches(model, x: np.ndarray, run: Callable[[object, np.ndarray], np.ndarray]) -> np.ndarray:
    """`run(model, slice)` over `x` (N, ...) in slices of the graph's batch size, the last
    one padded with zeros (its extra rows are dropped): the concatenated results."""
    b = batch_size(model)
    outs = []
    for i in range(0, len(x), b):
        part = x[i:i + b]
        if len(part) < b:
            part = np.concatenate([part, np.zeros((b - len(part),) + part.shape[1:], part.dtype)])
        outs.append(run(model, part)[:min(b, len(x) - i)])
    return np.concatenate(outs) if outs else np.zeros((0,), x.dtype)
