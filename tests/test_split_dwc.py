"""The generator's changes that bring the RTL to FINN's pace: fractional width converters
split in two, a one-vector FIFO in front of MVUs that replay their input, and in residual
segments a queue in front of every MVU and padding layer."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from hw.finn.split_dwc import DWC, SplitFractionalDWC
from hw.rtl.segment import RESIDUAL_MVU_QUEUE_VECTORS, input_queue, mvu_input_fifo_depth

DOMAIN = "finn.custom_op.fpgadataflow"


def _dwc_model(in_width: int, out_width: int) -> ModelWrapper:
    shape = [1, 4, 4, 36]  # 36 4-bit values per pixel: 16-bit words in, 36-bit out
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    node = helper.make_node(DWC, ["x"], ["y"], domain=DOMAIN, backend="fpgadataflow", inShape=shape,
                            outShape=shape, inWidth=in_width, outWidth=out_width, dataType="UINT4", name="dwc")
    model = ModelWrapper(helper.make_model(helper.make_graph([node], "g", [x], [y])))
    model.set_tensor_datatype("x", DataType["UINT4"])
    model.set_tensor_datatype("y", DataType["UINT4"])
    return model


def _widths(model) -> list[tuple[int, int]]:
    out = []
    for n in model.graph.node:
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        out.append((a["inWidth"], a["outWidth"]))
    return out


def test_a_fractional_converter_becomes_two_integer_ones():
    model = _dwc_model(16, 36).transform(SplitFractionalDWC())
    assert _widths(model) == [(16, 144), (144, 36)]
    first, second = model.graph.node
    assert first.output[0] == second.input[0] and first.input[0] == "x" and second.output[0] == "y"
    assert model.get_tensor_datatype(first.output[0]) == DataType["UINT4"]


def test_integer_ratios_are_left_alone():
    for widths in ((16, 32), (36, 4), (8, 8)):
        assert _widths(_dwc_model(*widths).transform(SplitFractionalDWC())) == [widths]


def test_the_split_graph_computes_the_same():
    from qonnx.core.onnx_exec import execute_onnx

    x = np.random.default_rng(0).integers(0, 16, (1, 4, 4, 36)).astype(np.float32)
    model = _dwc_model(16, 36).transform(SplitFractionalDWC())
    assert np.array_equal(execute_onnx(model, {"x": x})["y"], x)


class _Op:
    def __init__(self, folded_output=None, **attrs):
        self.attrs = attrs
        self.folded_output = folded_output

    def get_nodeattr(self, name):
        return self.attrs[name]

    def get_folded_output_shape(self):
        return self.folded_output


def test_fifo_depth_is_one_vector_when_the_mvu_replays_it_more_than_twice():
    assert mvu_input_fifo_depth(_Op(MW=144, MH=64, PE=8, SIMD=9)) == 16   # NF 8, SF 16: backbone_2
    assert mvu_input_fifo_depth(_Op(MW=144, MH=16, PE=8, SIMD=9)) == 0    # NF 2: no stall
    assert mvu_input_fifo_depth(_Op(MW=576, MH=128, PE=4, SIMD=9)) == 64  # NF 32, SF 64


def test_residual_segments_queue_every_mvu_and_padding_layer():
    mvu = _Op(MW=144, MH=16, PE=8, SIMD=9)  # NF 2, SF 16: no FIFO in a chain
    assert input_queue(mvu, "MVAU_rtl", residual=False)[0] == 0
    assert input_queue(mvu, "MVAU_rtl", residual=True)[0] == RESIDUAL_MVU_QUEUE_VECTORS * 16
    replaying = _Op(MW=576, MH=128, PE=4, SIMD=9)
    assert input_queue(replaying, "MVAU_rtl", residual=False)[0] == 64
    padding = _Op(folded_output=(1, 34, 34, 8, 2))  # one padded row: 34 pixels of 8 words
    assert input_queue(padding, "FMPadding_rtl", residual=True)[0] == 34 * 8
    assert input_queue(padding, "FMPadding_rtl", residual=False)[0] == 0
    assert input_queue(_Op(), "Thresholding_rtl", residual=True)[0] == 0
