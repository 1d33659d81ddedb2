"""qonnx execution of an exported QONNX graph in float64: the chain's exact reference.

qonnx runs standard nodes with onnxruntime in the graph's float32 and casts every
`Quant` output to float32. On a value within about 1e-6 of a rounding boundary that
flips a code: on the default run, test image 493 reaches 1.4999994 x scale in float32
where the exact value of the graph's own parameters is 1.5000009 x scale (the golden
model and FINN's integer thresholds give the exact code, 2).

`widen_to_float64` returns a copy of the graph that qonnx's `execute_onnx` runs in
float64 with the same parameter values (float32 -> float64 is exact):

* initializers and value types become DOUBLE;
* Conv is lowered to Im2Col + MatMul by qonnx's own LowerConvsToMatMul, because
  onnxruntime has no float64 Conv kernel on the CPU;
* `Quant` nodes move to this module's domain, whose `Quant` is qonnx's IntQuant (same
  attributes, same `int_quant` arithmetic) without the float32 cast of its output.

Products of two float32 values are exact in float64 and a layer's sum of them errs by
about 1e-16 relatively, ten orders of magnitude below the float32 execution's error.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, numpy_helper
from qonnx.custom_op.general.intquant import IntQuant, int_quant

DOMAIN = "hw.verify.exact_qonnx"


class Float64Quant(IntQuant):
    """qonnx's IntQuant, returning its result in the precision of its inputs."""

    def execute_node(self, context, graph):
        node = self.onnx_node
        inp, scale, zeropt, bitwidth = (context[name] for name in node.input[:4])
        out = int_quant(inp, scale, zeropt, bitwidth, self.get_nodeattr("signed"),
                        self.get_nodeattr("narrow"), self.get_nodeattr("rounding_mode"))
        context[node.output[0]] = np.asarray(out, dtype=np.float64)


custom_op = {"Quant": Float64Quant}


def widen_to_float64(model):
    """A float64 copy of a cleaned QONNX graph (see the module docstring)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    wide = ModelWrapper(model.model.SerializeToString())
    wide = wide.transform(LowerConvsToMatMul()).transform(InferShapes())
    graph = wide.model.graph
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float64), init.name))
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.DOUBLE
    for node in graph.node:
        if node.op_type == "Quant":
            node.domain = DOMAIN
    if not any(o.domain == DOMAIN for o in wide.model.opset_import):
        wide.model.opset_import.append(__import__("onnx").helper.make_opsetid(DOMAIN, 1))
    return wide
