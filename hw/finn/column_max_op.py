"""ColumnMax: a FINN HW layer of ours for the exit heads' row and column pooling.

A head pools its (H, W, C) input over the rows, then its (1, W', C) convolution output
over the columns. FINN maps either pooling to a sliding window as tall (or wide) as the
map feeding a Pool layer: the window buffers the map, the heads' costliest part for a
fraction of a percent of the MACs. ColumnMax keeps one running maximum per column and
channel instead (`hw/rtl/column_max/column_max.sv`).

* `InferColumnMax` (a qonnx transformation, run before FINN's InferPool) replaces every
  MaxPoolNHWC whose window spans the map's full height (and one column, or every column)
  with a ColumnMax node; other max pools stay FINN's.
* `ColumnMax` (HWCustomOp) gives FINN its shapes, stream widths, cycles and an estimate,
  and executes in Python through the block's model (the golden simulator's function).
* `ColumnMax_rtl` is what SpecializeLayers picks: `generate_hdl` writes a wrapper with
  FINN's port names around the block, so the segment generator instantiates it like any
  FINN RTL layer.

`register()` puts both ops into finn-plus's op dictionaries (idempotent). qonnx's lookup
finds them through `hw`'s domain aliases (`hw/__init__.py`); FINN's transformations read
the dictionaries directly, so the conversion, `load_hw` and the RTL generator register
first.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from hw.rtl.column_max.model import column_max, geometry

BLOCK_SOURCE = Path(__file__).parents[1] / "rtl" / "column_max" / "column_max.sv"
OP_TYPE = "ColumnMax"
BLOCK_RAM_BITS = 1024
"""From this size up (bits per memory) the block's two memories go to block RAM."""
_registered = False


def register() -> None:
    """ColumnMax and ColumnMax_rtl known to qonnx's getCustomOp (finn-plus's registries)."""
    global _registered
    if _registered:
        return
    import finn.custom_op.fpgadataflow as hw_ops
    import finn.custom_op.fpgadataflow.rtl as rtl_ops

    column_max_op, column_max_rtl = _classes()
    hw_ops.custom_op[OP_TYPE] = column_max_op
    rtl_ops.custom_op[OP_TYPE + "_rtl"] = column_max_rtl
    _registered = True


def _classes():
    """The two op classes, defined on first use (FINN imported only then)."""
    from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
    from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
    from qonnx.core.datatype import DataType

    class ColumnMax(HWCustomOp):
        """Max over the rows of an NHWC map (WholeMap = 0: (1, H, W, C) -> (1, 1, W, C)) or
        over the whole map (WholeMap = 1: -> (1, 1, 1, C)); PE channels per stream word."""

        def get_nodeattr_types(self):
            attrs = super().get_nodeattr_types()
            attrs.update({
                "ImgDim": ("ints", True, []),  # [H, W]
                "NumChannels": ("i", True, 0),
                "PE": ("i", False, 1),
                "WholeMap": ("i", False, 0, {0, 1}),
                "inputDataType": ("s", True, ""),
                # the two memories (running maxima, results being sent): "auto" puts them in
                # block RAM from BLOCK_RAM_BITS bits each, in LUTs below
                "ram_style": ("s", False, "auto", {"auto", "block", "distributed"}),
            })
            return attrs

        def memory_style(self) -> str:
            """"block" or "distributed": where the two memories of WORDS x PE values go."""
            style = self.get_nodeattr("ram_style")
            if style != "auto":
                return style
            _, words = self._geometry()
            return "block" if words * self.get_instream_width() >= BLOCK_RAM_BITS else "distributed"

        def _geometry(self) -> tuple[int, int]:
            h, w = self.get_nodeattr("ImgDim")
            return geometry(h, w, self.get_nodeattr("NumChannels"), self.get_nodeattr("PE"),
                            bool(self.get_nodeattr("WholeMap")))

        def get_normal_input_shape(self, ind=0):
            h, w = self.get_nodeattr("ImgDim")
            return (1, h, w, self.get_nodeattr("NumChannels"))

        def get_normal_output_shape(self, ind=0):
            _, w = self.get_nodeattr("ImgDim")
            return (1, 1, 1 if self.get_nodeattr("WholeMap") else w, self.get_nodeattr("NumChannels"))

        def get_folded_input_shape(self, ind=0):
            pe = self.get_nodeattr("PE")
            return (*self.get_normal_input_shape()[:-1], self.get_nodeattr("NumChannels") // pe, pe)

        def get_folded_output_shape(self, ind=0):
            pe = self.get_nodeattr("PE")
            return (*self.get_normal_output_shape()[:-1], self.get_nodeattr("NumChannels") // pe, pe)

        def get_input_datatype(self, ind=0):
            return DataType[self.get_nodeattr("inputDataType")]

        def get_output_datatype(self, ind=0):
            return self.get_input_datatype()

        def get_instream_width(self, ind=0):
            return self.get_nodeattr("PE") * self.get_input_datatype().bitwidth()

        def get_outstream_width(self, ind=0):
            return self.get_instream_width()

        def get_number_output_values(self):
            return int(np.prod(self.get_folded_output_shape()[:-1]))

        def make_shape_compatible_op(self, model):
            return super().make_const_shape_op(self.get_normal_output_shape())

        def infer_node_datatype(self, model):
            model.set_tensor_datatype(self.onnx_node.output[0], self.get_output_datatype())

        def verify_node(self):
            rows, words = self._geometry()  # raises when PE does not divide the channels
            return [f"ColumnMax: {rows} rows of {words} words"]

        def get_exp_cycles(self):
            rows, words = self._geometry()
            return rows * words  # one input word per cycle

        def bram_estimation(self, fpgapart=None):
            """Block RAM18 for the two memories when they go there (18 Kb each at most)."""
            _, words = self._geometry()
            if self.memory_style() != "block":
                return 0
            return 2 * -(-words * self.get_instream_width() // (18 * 1024))

        def lut_estimation(self, fpgapart=None):
            """A compare and a multiplexer per bit, the counters, and the two memories in
            distributed RAM (64 bits per LUT) unless they are in block RAM: a guide; the
            `synth` step measures."""
            _, words = self._geometry()
            bits = self.get_instream_width()
            memory = 0 if self.memory_style() == "block" else 2 * bits * -(-words // 64)
            return int(memory + 3 * bits + 32)

        def dsp_estimation(self, fpgapart=None):
            return 0

        def execute_node(self, context, graph):
            node = self.onnx_node
            x = context[node.input[0]]  # (1, H, W, C)
            out = column_max(x, bool(self.get_nodeattr("WholeMap")))
            context[node.output[0]] = out.astype(np.float32)

    class ColumnMax_rtl(ColumnMax, RTLBackend):  # noqa: N801 (FINN's naming of RTL variants)
        """ColumnMax as `btsee_column_max` behind a wrapper with FINN's port names."""

        def get_nodeattr_types(self):
            attrs = ColumnMax.get_nodeattr_types(self)
            attrs.update(RTLBackend.get_nodeattr_types(self))
            return attrs

        def generate_hdl(self, model, fpgapart, clk):
            gen = Path(self.get_nodeattr("code_gen_dir_ipgen"))
            shutil.copyfile(BLOCK_SOURCE, gen / BLOCK_SOURCE.name)
            rows, words = self._geometry()
            dt = self.get_input_datatype()
            name = self.onnx_node.name
            width = (self.get_instream_width() + 7) // 8 * 8
            (gen / f"{name}.sv").write_text(
                f"// Generated by hw/finn/column_max_op.py: {name} ({OP_TYPE}) as btsee_column_max.\n"
                f"module {name} (\n  input ap_clk,\n  input ap_rst_n,\n"
                f"  input [{width - 1}:0] in0_V_TDATA,\n  input in0_V_TVALID,\n  output in0_V_TREADY,\n"
                f"  output [{width - 1}:0] out0_V_TDATA,\n  output out0_V_TVALID,\n  input out0_V_TREADY\n);\n"
                f"  btsee_column_max #(.PE({self.get_nodeattr('PE')}), .BITS({dt.bitwidth()}), .ROWS({rows}), "
                f".WORDS({words}), .SIGNED({int(dt.signed())}), .RAM_STYLE(\"{self.memory_style()}\")) impl (.*);\n"
                "endmodule\n")
            self.set_nodeattr("gen_top_module", name)

        def get_rtl_file_list(self, abspath=False):
            gen = Path(self.get_nodeattr("code_gen_dir_ipgen")) if abspath else Path()
            return [gen / BLOCK_SOURCE.name, gen / f"{self.onnx_node.name}.sv"]

        def code_generation_ipi(self):
            files = [f"add_files -norecurse {f}" for f in self.get_rtl_file_list(abspath=True)]
            return files + [f"create_bd_cell -type module -reference {self.onnx_node.name} {self.onnx_node.name}"]

        def execute_node(self, context, graph):
            ColumnMax.execute_node(self, context, graph)

    return ColumnMax, ColumnMax_rtl


def infer_column_max():
    """The qonnx transformation `InferColumnMax` (module docstring), registered ops."""
    from qonnx.transformation.base import Transformation
    from qonnx.transformation.infer_shapes import InferShapes
    from onnx import helper

    register()

    class InferColumnMax(Transformation):
        """MaxPoolNHWC over the full height (kernel H x 1, or H x W) -> ColumnMax."""

        def apply(self, model):
            changed = False
            for node in list(model.graph.node):
                whole = _full_height_pool(model, node)
                if whole is None:
                    continue
                _, h, w, c = model.get_tensor_shape(node.input[0])
                new = helper.make_node(
                    OP_TYPE, [node.input[0]], [node.output[0]], domain="finn.custom_op.fpgadataflow",
                    backend="fpgadataflow", name=f"ColumnMax_{node.name}", ImgDim=[h, w], NumChannels=c,
                    PE=1, WholeMap=int(whole),
                    inputDataType=model.get_tensor_datatype(node.input[0]).name)
                idx = list(model.graph.node).index(node)
                model.graph.node.remove(node)
                model.graph.node.insert(idx, new)
                changed = True
            if changed:
                model = model.transform(InferShapes())
            return model, False

    return InferColumnMax()


def _full_height_pool(model, node) -> bool | None:
    """For a MaxPoolNHWC whose windows span the map's full height and either one column or
    all of them (stride = kernel, no padding, integer input): whether it spans all columns.
    None for any other node."""
    from qonnx.custom_op.registry import getCustomOp

    if node.op_type != "MaxPoolNHWC":
        return None
    op = getCustomOp(node)
    a = {k: op.get_nodeattr(k) for k in ("kernel_shape", "strides", "pads", "ceil_mode")}
    shape = model.get_tensor_shape(node.input[0])
    if len(shape) != 4 or shape[0] != 1 or not model.get_tensor_datatype(node.input[0]).is_integer():
        return None
    _, h, w, _ = shape
    kh, kw = a["kernel_shape"]
    if list(a["strides"]) != [kh, kw] or any(a["pads"]) or a["ceil_mode"] or kh != h:
        return None
    if kw == 1 and w > 1:
        return False
    if kw == w:
        return True
    return None
