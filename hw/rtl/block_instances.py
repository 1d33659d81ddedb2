"""Our blocks in a generated segment: which FINN layers (HLS-only in finn-plus) they stand
in for, their sources, and the instance text the segment generator writes for each.

| FINN layer          | our block                  | source                                  |
| ------------------- | -------------------------- | --------------------------------------- |
| Pool_hls (MaxPool)  | btsee_maxpool              | hw/rtl/maxpool/maxpool.sv               |
| DuplicateStreams_hls| btsee_fork                 | hw/rtl/exit_glue/fork.sv                |
| ElementwiseAdd_hls  | btsee_residual_add         | hw/rtl/residual_add/residual_add.sv     |
| GlobalAccPool_hls   | btsee_global_acc_pool      | hw/rtl/global_acc_pool/global_acc_pool.sv |

A FIFO (`btsee_queue`) goes in front of MVUs and on a residual block's shorter branch
(`queue_instance`). Streams are named by their wire prefix: `<prefix>_tdata/_tvalid/_tready`.
"""
from __future__ import annotations

from hw.finn.convert import DataflowError
from hw.rtl.depth import OUR_BLOCKS
from hw.rtl.residual_add.model import fits, out_bits

QUEUE_SOURCE = OUR_BLOCKS["btsee_queue"]
"""A first-in first-out stream buffer (the decision queue of the exit glue), also the FIFO in front of MVUs."""
BLOCKS = {op: (module, OUR_BLOCKS[module]) for op, module in (
    ("Pool_hls", "btsee_maxpool"), ("DuplicateStreams_hls", "btsee_fork"),
    ("ElementwiseAdd_hls", "btsee_residual_add"), ("GlobalAccPool_hls", "btsee_global_acc_pool"))}
"""FINN op type -> (module, source) of the block of ours that implements it."""


class BlockError(DataflowError):
    """A FINN layer our block cannot stand in for as configured; names the graph and node."""


def _stream(port: str, wire: str) -> str:
    return (f".{port}_TDATA({wire}_tdata), .{port}_TVALID({wire}_tvalid), "
            f".{port}_TREADY({wire}_tready)")


def _clocked(module: str, params: dict[str, int], name: str, streams: list[tuple[str, str]]) -> str:
    """`module #(params) name (clock, reset, streams)` as one instance."""
    ps = ", ".join(f".{k}({int(v)})" for k, v in params.items())
    ports = ",\n    ".join(_stream(p, w) for p, w in streams)
    return f"  {module} #({ps}) {name}_i (\n    .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),\n    {ports});"


def queue_instance(name: str, width: int, depth: int, s_in: str, why: str) -> str:
    """A btsee_queue `name` of `depth` words of `width` bits reading stream `s_in`; its
    output stream is the wire prefix `name` (declared here)."""
    return (f"  // {why}\n"
            f"  wire [{width - 1}:0] {name}_tdata; wire {name}_tvalid, {name}_tready;\n"
            f"  btsee_queue #(.WIDTH({width}), .DEPTH({depth})) {name}_i (.ap_clk(ap_clk), .ap_rst_n(ap_rst_n),\n"
            f"    .in0_V_TDATA({s_in}_tdata), .in0_V_TVALID({s_in}_tvalid), .in0_V_TREADY({s_in}_tready),\n"
            f"    .out0_V_TDATA({name}_tdata), .out0_V_TVALID({name}_tvalid), .out0_V_TREADY({name}_tready), .peak());")


def block_instance(model, node, ins: list[str], outs: list[str], where: str) -> str:
    """The instance of our block for FINN layer `node` (an op type of BLOCKS),
    reading the streams `ins` and writing `outs` (wire prefixes, in the node's order)."""
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(node)
    at = f"{where}: node {node.name!r} ({node.op_type})"
    if node.op_type not in BLOCKS:
        raise BlockError(f"{at}: no block of ours implements it")
    module = BLOCKS[node.op_type][0]
    if node.op_type == "Pool_hls":
        return _maxpool(model, node, op, module, ins[0], outs[0], at)
    if node.op_type == "DuplicateStreams_hls":
        if len(outs) != 2:
            raise BlockError(f"{at}: {len(outs)} output streams; our fork has two")
        return _clocked(module, {"WIDTH": op.get_instream_width_padded()}, node.name,
                        [("in0_V", ins[0]), ("out0_V", outs[0]), ("out1_V", outs[1])])
    if node.op_type == "ElementwiseAdd_hls":
        styles = (op.get_nodeattr("lhs_style"), op.get_nodeattr("rhs_style"))
        if styles != ("input", "input") or len(ins) != 2:
            raise BlockError(f"{at}: inputs {styles}; our residual add adds two streams")
        a, b, o = op.get_input_datatype(0), op.get_input_datatype(1), op.get_output_datatype()
        if not fits(o.bitwidth(), o.signed(), a.bitwidth(), a.signed(), b.bitwidth(), b.signed()):
            raise BlockError(f"{at}: {a.name} + {b.name} can overflow its output type {o.name} (finn-plus "
                             f"narrows signed + unsigned of equal width too far); the sum needs "
                             f"{out_bits(a.bitwidth(), a.signed(), b.bitwidth(), b.signed())} bits")
        return _clocked(module,
                        {"PE": op.get_nodeattr("PE"), "A_BITS": a.bitwidth(), "A_SIGNED": a.signed(),
                         "B_BITS": b.bitwidth(), "B_SIGNED": b.signed(), "OUT_BITS": o.bitwidth()},
                        node.name, [("in0_V", ins[0]), ("in1_V", ins[1]), ("out0_V", outs[0])])
    if node.op_type == "GlobalAccPool_hls":
        vecs = list(op.get_nodeattr("numInputVectors"))
        if len(vecs) < 2:
            raise BlockError(f"{at}: numInputVectors {vecs} is not an image")
        idt = op.get_input_datatype()
        return _clocked(module,
                        {"PE": op.get_nodeattr("PE"), "IN_BITS": idt.bitwidth(), "IN_SIGNED": idt.signed(),
                         "OUT_BITS": op.get_output_datatype().bitwidth(), "CHANNELS": op.get_nodeattr("NumChannels"),
                         "PIXELS": vecs[-1] * vecs[-2]},
                        node.name, [("in0_V", ins[0]), ("out0_V", outs[0])])
    raise AssertionError(f"{at}: in BLOCKS but not instantiated here")


def _maxpool(model, node, op, module: str, s_in: str, s_out: str, at: str) -> str:
    """Our max pool for a FINN Pool (MaxPool) fed by a depthwise window generator."""
    from qonnx.custom_op.registry import getCustomOp

    if op.get_nodeattr("Function") != "MaxPool":
        raise BlockError(f"{at}: Pool function {op.get_nodeattr('Function')!r} has no RTL here (MaxPool only)")
    producer = model.find_producer(node.input[0])
    while producer is not None and producer.op_type.startswith("StreamingFIFO"):  # FIFOs keep the word order
        producer = model.find_producer(producer.input[0])
    if producer is None or not producer.op_type.startswith("ConvolutionInputGenerator") \
            or getCustomOp(producer).get_nodeattr("depthwise") != 1:
        raise BlockError(f"{at}: the max pool reads a depthwise window generator's stream, and this Pool "
                         "is fed otherwise")
    dt = op.get_input_datatype()
    kernel = 1
    for k in op.get_nodeattr("KernelSize"):
        kernel *= int(k)
    return _clocked(module, {"PE": op.get_nodeattr("PE"), "BITS": dt.bitwidth(), "KERNEL": kernel,
                             "SIGNED": dt.signed()},
                    node.name, [("in0_V", s_in), ("out0_V", s_out)])
