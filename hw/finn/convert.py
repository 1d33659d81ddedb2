"""A segment's QONNX graph -> FINN HW-layer graph (docs/design.md §7), CPU only.

The sequence is FINN's (ConvertQONNXtoFINN, tidy, streamline, then the HW-layer
inference transformations) with two changes that measured runs needed:

* the graph input's integer datatype is re-marked after every transformation, because
  streamlining can drop the annotation (a head's UINT4 input turned FLOAT32);
* conversion stops before FINN's generic `step_convert_to_hw`, which would also turn the
  final scale `Mul` into an ElementwiseMul layer and a boundary Transpose into a Shuffle
  that the estimate steps never cost.

What may stay in software, outside the dataflow partition: layout `Transpose`s at the
graph's boundaries and the one scale `Mul` at its output. Any other node left over is
an op the flow cannot map: `check_hw_only` names it.

Python execution of the HW layers works before SpecializeLayers only; the graphs written
here are those, and the golden simulator reads its integer parameters from them.
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Iterator

import onnx

from calib.errors import BtseeError

HW_DOMAIN = "finn.custom_op.fpgadataflow"
SOFTWARE_OK = ("Transpose", "Mul")
QONNX_QUANT_OPS = ("Quant", "BipolarQuant", "Trunc", "MultiThreshold")


class DataflowError(BtseeError):
    """A graph the flow cannot read or map; the message names the file and node."""


def _open_segment_graph(path: Path, onnx_check: bool = True):
    """A segment graph file opened: readable ONNX (and valid to onnx's checker with
    `onnx_check`; FINN's HW graphs use op domains without an opset import, which it
    refuses) with one input and one output. Errors are DataflowErrors naming the file."""
    from qonnx.core.modelwrapper import ModelWrapper

    path = Path(path)
    if not path.is_file():
        raise DataflowError(f"{path}: no such file")
    try:
        proto = onnx.load(str(path))
        if onnx_check:
            onnx.checker.check_model(proto)
    except Exception as e:  # protobuf's DecodeError, onnx's ValidationError, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataflowError(f"{path}: not a readable ONNX model (truncated or corrupt?): {first}") from e
    model = ModelWrapper(proto)
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise DataflowError(f"{path}: a segment graph has one input and one output, this one has "
                            f"{len(model.graph.input)} and {len(model.graph.output)}")
    return model


def _check_input_type(model, path: Path, input_type: str | None) -> None:
    """A DataflowError naming the file unless the graph input is typed `input_type` (if given)."""
    if input_type is not None:
        iname = model.graph.input[0].name
        have = model.get_tensor_datatype(iname).name
        if have != input_type:
            raise DataflowError(f"{path}: input {iname!r} is typed {have}, the manifest says {input_type}")


def load_qonnx(path: Path, input_type: str | None = None):
    """Opens a QONNX file; a missing, truncated or non-QONNX file is a DataflowError.

    `input_type` (a qonnx DataType name), when given, is checked against the graph input's
    annotation.
    """
    model = _open_segment_graph(path)
    ops = {n.op_type for n in model.graph.node}
    if not ops & set(QONNX_QUANT_OPS):
        raise DataflowError(f"{path}: not a QONNX graph: it has no quantization node "
                            f"({', '.join(QONNX_QUANT_OPS)}); ops are {sorted(ops)}")
    _check_input_type(model, path, input_type)
    return model


def load_hw(path: Path, input_type: str | None = None):
    """Opens a HW-layer graph written by the `dataflow` step; a missing or unreadable file,
    or one with compute left in software, is a DataflowError naming the file (and node).
    `input_type`, when given, is checked against the graph input's annotation."""
    from hw.finn.column_max_op import register

    register()  # our HW layer, before anything looks its op up
    model = _open_segment_graph(path, onnx_check=False)
    check_hw_only(model, str(path))
    _check_input_type(model, path, input_type)
    return model


def mark_input(model, input_type: str):
    """The graph input annotated as `input_type` again, datatypes re-inferred."""
    from qonnx.core.datatype import DataType
    from qonnx.transformation.infer_datatypes import InferDataTypes

    model.set_tensor_datatype(model.graph.input[0].name, DataType[input_type])
    return model.transform(InferDataTypes())


def tidy(model):
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (GiveReadableTensorNames, GiveUniqueNodeNames,
                                              RemoveStaticGraphInputs)
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    for t in (InferShapes(), FoldConstants(), GiveUniqueNodeNames(), GiveReadableTensorNames(),
              InferDataTypes(), RemoveStaticGraphInputs()):
        model = model.transform(t)
    return model


KNOWN_WARNINGS = (
    "Assuming 4D input is NCHW",  # qonnx InferDataLayouts on the NCHW segment inputs, as meant
    "The GemmToMatMul transformation only offers explicit support for version 9",  # opset 20 Gemm
)


@contextlib.contextmanager
def quiet_known_warnings() -> Iterator[None]:
    """Hides the qonnx warnings that every conversion of these segments prints and that say
    nothing about them (KNOWN_WARNINGS); any other warning still shows."""
    with warnings.catch_warnings():
        for text in KNOWN_WARNINGS:
            warnings.filterwarnings("ignore", message=text, category=UserWarning)
        yield


def to_hw(model, input_type: str):
    """A chain segment's QONNX graph -> its FINN HW-layer graph (`qonnx_to_finn`,
    `streamline`, `convert_to_hw`), the input's datatype kept throughout. Graphs with
    forks or residual adds take `hw.finn.residual.to_hw`."""
    with quiet_known_warnings():
        return convert_to_hw(streamline(qonnx_to_finn(model, input_type), input_type), input_type)


def qonnx_to_finn(model, input_type: str):
    """ConvertQONNXtoFINN then tidy: a FINN-ONNX graph with MultiThresholds."""
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN

    return mark_input(tidy(model.transform(ConvertQONNXtoFINN())), input_type)


def streamline(model, input_type: str):
    """Scales and batch norms folded into integer thresholds, convolutions lowered to
    MatMul over NHWC im2col, max pools made NHWC."""
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.reorder import MakeMaxPoolNHWC, MoveScalarLinearPastInvariants
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
    from qonnx.transformation.general import RemoveUnusedTensors
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    for t in (absorb.AbsorbScalarBiasIntoMultiThreshold(), MoveScalarLinearPastInvariants(),
              Streamline(), LowerConvsToMatMul(), MakeMaxPoolNHWC(),
              absorb.AbsorbTransposeIntoMultiThreshold(), MakeMaxPoolNHWC(),
              absorb.AbsorbConsecutiveTransposes(), Streamline(), RoundAndClipThresholds(),
              InferDataLayouts(), RemoveUnusedTensors()):
        model = mark_input(model.transform(t), input_type)
    return model


def convert_to_hw(model, input_type: str, requant_bitwidth_threshold: int = 9):
    """Streamlined graph -> FINN HW layers (MVAU, ConvolutionInputGenerator, Thresholding,
    Pool), leaving only boundary Transposes and the output scale Mul in software.

    RTL-ready (`prefer_rtl`): thresholds become standalone Thresholding layers (inferred
    before the MVAUs, FINN's `standalone_thresholds` order), since an MVAU with embedded
    thresholds has no RTL variant; every HW layer prefers its RTL implementation."""
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
    from hw.finn.column_max_op import infer_column_max
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import \
        InferQuantizedMatrixVectorActivation
    from finn.transformation.fpgadataflow.convert_to_hw.requant import InferRequantLayer
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
    from finn.transformation.move_reshape import RemoveCNVtoFCFlatten
    from finn.transformation.streamline.absorb import AbsorbConsecutiveTransposes
    from qonnx.transformation.general import GiveUniqueNodeNames
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    for t in (InferRequantLayer(bitwidth_threshold=requant_bitwidth_threshold),
              InferThresholdingLayer(), InferQuantizedMatrixVectorActivation(), infer_column_max(), InferPool(),
              InferConvInpGen(), RemoveCNVtoFCFlatten(), AbsorbConsecutiveTransposes(),
              GiveUniqueNodeNames(), InferShapes(), InferDataTypes(), InferDataLayouts()):
        model = model.transform(t)
    return mark_input(prefer_rtl(model), input_type)


def prefer_rtl(model):
    """Every HW layer's `preferred_impl_style` set to "rtl", so that FINN's SpecializeLayers
    picks the RTL variant wherever one exists (MVAU_rtl, Thresholding_rtl, width
    converters; the sliding-window generator has RTL only). Layers without one (Pool,
    DuplicateStreams) still specialize to HLS, which the RTL flow replaces by blocks of ours."""
    from qonnx.custom_op.registry import getCustomOp

    for node in model.graph.node:
        if is_hw(node):
            getCustomOp(node).set_nodeattr("preferred_impl_style", "rtl")
    return model


def node_attributes(node) -> dict:
    """{name: value} of an ONNX node's attributes (strings decoded)."""
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def is_hw(node) -> bool:
    return node.domain.startswith(HW_DOMAIN)


def software_nodes(model) -> list:
    """The nodes outside FINN's HW domain."""
    return [n for n in model.graph.node if not is_hw(n)]


def check_hw_only(model, where: str) -> None:
    """Every compute node is a HW layer: only layout Transposes and the single output scale
    Mul may stay in software. Otherwise a DataflowError names the node."""
    out = model.graph.output[0].name
    left = [n for n in software_nodes(model) if n.op_type != "Transpose"
            and not (n.op_type == "Mul" and _feeds_output_only(model, n, out))]
    # name the ops that have no HW layer at all before a Mul that merely lost its place
    left.sort(key=lambda n: n.op_type in SOFTWARE_OK)
    if left:
        names = ", ".join(f"{n.name!r} ({n.op_type})" for n in left)
        raise DataflowError(f"{where}: node {names} has no FINN HW layer in this flow; the segment "
                            "cannot be mapped to the dataflow" if len(left) == 1 else
                            f"{where}: nodes {names} have no FINN HW layer in this flow; the segment "
                            "cannot be mapped to the dataflow")


def _feeds_output_only(model, node, out: str) -> bool:
    """A Mul by a constant whose result reaches the graph output through Transposes only."""
    if model.get_initializer(node.input[1]) is None:
        return False
    t = node.output[0]
    while t != out:
        consumers = model.find_consumers(t)
        if len(consumers) != 1 or consumers[0].op_type != "Transpose":
            return False
        t = consumers[0].output[0]
    return True


def output_scale_node(model):
    """The output scale Mul of a HW graph (the one check_hw_only lets through)."""
    muls = [n for n in software_nodes(model) if n.op_type == "Mul"]
    if len(muls) != 1:
        raise DataflowError(f"expected one output scale Mul, found {len(muls)}")
    return muls[0]
