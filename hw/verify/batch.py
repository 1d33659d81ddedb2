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
`batch_safe_im2col` makes it run image by image. `run_in_batches` feeds a graph slice by
slice.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

BATCH_ATTRIBUTES = ("numInputVectors", "BatchSize")


def batch_safe_im2col() -> None:
    """Makes qonnx's Im2Col execute each image of a batch on its own (see the module
    docstring); one image runs exactly as before. Idempotent; process-wide."""
    from qonnx.custom_op.general.im2col import Im2Col

    if getattr(Im2Col.execute_node, "batch_safe", False):
        return
    original = Im2Col.execute_node

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = context[node.input[0]]
        if x.shape[0] == 1:
            return original(self, context, graph)
        rows = []
        for image in x:
            one = dict(context)
            one[node.input[0]] = image[None]
            original(self, one, graph)
            rows.append(one[node.output[0]])
        context[node.output[0]] = np.concatenate(rows)

    execute_node.batch_safe = True
    execute_node.original = original
    Im2Col.execute_node = execute_node


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
