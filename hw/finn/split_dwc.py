"""Width converters with a fractional ratio split in two integer ones.

FINN's RTL width converter takes input only while it holds at most one output word's worth
and emits only while it holds at least one, so between widths that do not divide each other
(16 -> 36 bits: 4 values to 9) it idles in some cycles on one side: the producer in front of
it then runs at 3/4 of a word per cycle (backbone_1 of the default run: 37,842 cycles per
frame against 28,442 for its window generator alone). Two converters in -> lcm(in, out) ->
out each have an integer ratio and run at full rate; the values and their order are the
same. Apply after InsertDWC, before SpecializeLayers.
"""
from __future__ import annotations

import math

from onnx import helper
from qonnx.transformation.base import Transformation

DWC = "StreamingDataWidthConverter"


class SplitFractionalDWC(Transformation):
    """Each StreamingDataWidthConverter whose widths do not divide each other becomes
    in -> lcm(in, out) -> out."""

    def apply(self, model):
        graph = model.graph
        for node in list(graph.node):
            if node.op_type != DWC:
                continue
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            wide_in, wide_out = int(attrs["inWidth"]), int(attrs["outWidth"])
            if wide_in % wide_out == 0 or wide_out % wide_in == 0:
                continue
            middle = wide_in * wide_out // math.gcd(wide_in, wide_out)
            src = model.get_tensor_valueinfo(node.input[0])
            tensor = helper.make_tensor_value_info(model.make_new_valueinfo_name(), src.type.tensor_type.elem_type,
                                                   list(attrs["inShape"]))
            graph.value_info.append(tensor)
            model.set_tensor_datatype(tensor.name, model.get_tensor_datatype(node.input[0]))
            first = helper.make_node(DWC, [node.input[0]], [tensor.name], domain=node.domain,
                                     backend="fpgadataflow", inShape=list(attrs["inShape"]),
                                     outShape=list(attrs["inShape"]), inWidth=wide_in, outWidth=middle,
                                     dataType=attrs["dataType"], name=f"{node.name}_up")
            for a in node.attribute:
                if a.name == "inWidth":
                    a.i = middle
            node.input[0] = tensor.name
            graph.node.insert(list(graph.node).index(node), first)
            return model, True  # one at a time: the node list changed
        return model, False
