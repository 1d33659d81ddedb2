"""A residual segment's QONNX graph -> FINN HW layers (a ResNet's blocks), CPU only.

The chain conversion (`hw.finn.convert`) streamlines in one pass; a residual block needs
more, found by converting the ResNet-8 segments and checking each against qonnx's
execution of the exported graph:

* the scale `Mul`s that meet at a residual `Add` (both inputs share one quantizer scale)
  move behind it (MoveLinearPastEltwiseAdd) and a fork's input scale is copied onto both
  branches (MoveLinearPastFork), then absorbed into the next MultiThreshold; this and the
  layout Transposes moving through forks and joins need a few rounds: the lists are
  applied until the graph stops changing;
* the classifier's mean over the image (exported as ReduceMean) becomes GlobalAveragePool,
  then FINN's GlobalAccPool (a sum) during streamlining, so that its 1/(H x W) moves past
  the last MatMul into the output scale;
* to HW layers: the residual Add becomes ElementwiseAdd (finn-plus has no AddStreams), the
  fork DuplicateStreams, the padding of 3x3 convolutions FMPadding. Only an Add of two
  streams is converted: the output scale Mul stays in software, as in the chain flow.

finn-plus's own StreamlinePlus did not terminate on these graphs (it kept printing
"Bias not constant for Add_0"); the bounded fixpoint here does.
"""
from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation

from hw.finn.builder import quiet_finn_logger
from hw.finn.convert import DataflowError, mark_input, node_attributes, prefer_rtl, quiet_known_warnings, tidy

MAX_ROUNDS = 8
def is_residual(model) -> bool:
    """Whether the graph forks a stream or joins two (an Add of two non-constant inputs)."""
    for node in model.graph.node:
        if _joins_two_streams(model, node):
            return True
        if any(len(model.find_consumers(t) or []) > 1 for t in node.output):
            return True
    return False


class ReduceMeanToGlobalAveragePool(Transformation):
    """ReduceMean over the two spatial axes of an NCHW tensor, keeping them -> GlobalAveragePool
    (what FINN's InferGlobalAccPoolLayer converts)."""

    def apply(self, model):
        for i, node in enumerate(model.graph.node):
            if node.op_type != "ReduceMean":
                continue
            shape = model.get_tensor_shape(node.input[0])
            attrs = node_attributes(node)
            axes = attrs.get("axes")
            if axes is None and len(node.input) > 1:
                axes = model.get_initializer(node.input[1])
            if axes is None or shape is None or len(shape) != 4 or attrs.get("keepdims", 1) != 1:
                continue
            if sorted(int(a) % 4 for a in np.asarray(axes).reshape(-1)) != [2, 3]:
                continue
            pool = helper.make_node("GlobalAveragePool", [node.input[0]], [node.output[0]], name=f"{node.name}_gap")
            model.graph.node.insert(i, pool)
            model.graph.node.remove(node)
            return model, True
        return model, False


class MergeEqualTransposes(Transformation):
    """Transposes with the same permutation reading one tensor (MoveTransposePastFork gives
    each branch its own) -> one, whose output feeds all their readers."""

    def apply(self, model):
        graph = model.graph
        for tensor in [i.name for i in graph.input] + [t for n in graph.node for t in n.output]:
            groups: dict[tuple, list] = {}
            for n in model.find_consumers(tensor) or []:
                if n.op_type == "Transpose":
                    groups.setdefault(tuple(node_attributes(n)["perm"]), []).append(n)
            for group in groups.values():
                if len(group) < 2:
                    continue
                keep = group[0]
                for dup in group[1:]:
                    _reroute(model, dup.output[0], keep.output[0])
                    graph.node.remove(dup)
                return model, True
        return model, False


NCHW_TO_NHWC, NHWC_TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


class TransposeForkedInput(Transformation):
    """A segment that forks its own input (a ResNet stage cut right after the stem): the
    lowered convolution branch reads the NCHW input through a Transpose to NHWC, the
    shortcut reads it directly, and FINN's Transpose moves need a Transpose on every
    branch. -> one Transpose to NHWC at the input, feeding the branches that wanted NHWC,
    and a Transpose back to NCHW in front of each other reader, which the moves then carry
    through the shortcut's thresholds and the residual Add as for a fork inside the graph."""

    def apply(self, model):
        graph = model.graph
        for graph_input in graph.input:
            readers = model.find_consumers(graph_input.name) or []
            shape = model.get_tensor_shape(graph_input.name)
            if len(readers) < 2 or shape is None or len(shape) != 4:
                continue
            to_nhwc = [n for n in readers if n.op_type == "Transpose"
                       and tuple(node_attributes(n)["perm"]) == NCHW_TO_NHWC]
            if not to_nhwc or len(to_nhwc) == len(readers):
                continue  # nothing converts to NHWC, or one Transpose feeds it all (MergeEqualTransposes)
            keep = to_nhwc[0]
            for dup in to_nhwc[1:]:
                _reroute(model, dup.output[0], keep.output[0])
                graph.node.remove(dup)
            for k, reader in enumerate(n for n in readers if n not in to_nhwc):
                back = f"{graph_input.name}_nchw_{k}"
                node = helper.make_node("Transpose", [keep.output[0]], [back], perm=list(NHWC_TO_NCHW),
                                        name=f"{graph_input.name}_back_{k}")
                model.set_tensor_shape(back, shape)
                model.set_tensor_datatype(back, model.get_tensor_datatype(graph_input.name))
                graph.node.insert(list(graph.node).index(reader), node)
                reader.input[list(reader.input).index(graph_input.name)] = back
            return model, True
        return model, False


def _reroute(model, old: str, new: str) -> None:
    """Every reader of tensor `old` reads `new` instead."""
    for reader in model.find_consumers(old) or []:
        for k, name in enumerate(reader.input):
            if name == old:
                reader.input[k] = new


def _apply(model, transformations, input_type: str):
    for t in transformations:
        model = mark_input(model.transform(t), input_type)
    return model


def _until_unchanged(model, transformations, input_type: str, where: str):
    """The transformations applied in order, again and again, until the graph stops changing."""
    for _ in range(MAX_ROUNDS):
        before = model.model.SerializeToString()
        model = _apply(model, transformations, input_type)
        if model.model.SerializeToString() == before:
            return model
    raise DataflowError(f"{where}: streamlining did not settle in {MAX_ROUNDS} rounds")


def _residual_streamline():
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.reorder import (MoveLinearPastEltwiseAdd, MoveLinearPastFork,
                                                        MoveScalarLinearPastInvariants)

    return [absorb.AbsorbSignBiasIntoMultiThreshold(), absorb.AbsorbScalarBiasIntoMultiThreshold(),
            MoveLinearPastFork(), MoveScalarLinearPastInvariants(), Streamline(), MoveLinearPastEltwiseAdd(),
            absorb.AbsorbMulIntoMultiThreshold(), absorb.AbsorbAddIntoMultiThreshold()]


def streamline(model, input_type: str, where: str):
    """Scales, batch norms and biases into integer thresholds through forks and residual
    adds; convolutions lowered to NHWC MatMuls; the global average pool a GlobalAccPool."""
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.fpgadataflow.convert_to_hw.global_acc_pool import InferGlobalAccPoolLayer
    from finn.transformation.streamline.reorder import MakeMaxPoolNHWC, MoveTransposePastFork, MoveTransposePastJoinAdd
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames, RemoveUnusedTensors
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    model = _until_unchanged(model, _residual_streamline(), input_type, where)
    model = _apply(model, [LowerConvsToMatMul(), MakeMaxPoolNHWC(), absorb.AbsorbTransposeIntoMultiThreshold(),
                           MakeMaxPoolNHWC(), absorb.AbsorbConsecutiveTransposes()], input_type)
    model = _until_unchanged(model, _residual_streamline() + [
        TransposeForkedInput(), MoveTransposePastFork(), MoveTransposePastJoinAdd(),
        absorb.AbsorbTransposeIntoMultiThreshold(), absorb.AbsorbConsecutiveTransposes(), InferGlobalAccPoolLayer()],
        input_type, where)
    # once, after the loop: MoveTransposePastFork would split the merged Transposes again
    model = _apply(model, [MergeEqualTransposes(), GiveUniqueNodeNames(), GiveReadableTensorNames(),
                           RoundAndClipThresholds(), InferDataLayouts(), RemoveUnusedTensors()], input_type)
    return model


def _joins_two_streams(model, node) -> bool:
    return node.op_type == "Add" and all(model.get_initializer(t) is None for t in node.input)


def convert_to_hw(model, input_type: str, requant_bitwidth_threshold: int = 9):
    """Streamlined residual graph -> FINN HW layers (the chain's, plus ElementwiseAdd,
    DuplicateStreams, GlobalAccPool and FMPadding), RTL-ready as `hw.finn.convert.convert_to_hw`."""
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.duplicate_streams import InferDuplicateStreamsLayer
    from finn.transformation.fpgadataflow.convert_to_hw.elementwise_binary_operation import \
        InferElementwiseBinaryOperation
    from finn.transformation.fpgadataflow.convert_to_hw.global_acc_pool import InferGlobalAccPoolLayer
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
              InferThresholdingLayer(), InferQuantizedMatrixVectorActivation(), infer_column_max(), InferPool(), InferConvInpGen(),
              InferGlobalAccPoolLayer(), InferElementwiseBinaryOperation(_joins_two_streams),
              RemoveCNVtoFCFlatten(), AbsorbConsecutiveTransposes(), InferDuplicateStreamsLayer(),
              GiveUniqueNodeNames(), InferShapes(), InferDataTypes(), InferDataLayouts()):
        model = model.transform(t)
    return mark_input(prefer_rtl(model), input_type)


def to_hw(model, input_type: str, where: str = "segment"):
    """A residual segment's QONNX graph -> its FINN HW-layer graph (before SpecializeLayers)."""
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN

    with quiet_known_warnings(), quiet_finn_logger():  # streamlining skips every residual Add, in every round
        model = model.transform(ReduceMeanToGlobalAveragePool())
        model = mark_input(tidy(model.transform(ConvertQONNXtoFINN())), input_type)
        return convert_to_hw(streamline(model, input_type, where), input_type)
