"""The RTL of one segment: FINN's generated HDL for every layer, our blocks for FINN's
HLS-only layers (`hw.rtl.block_instances`: max pool, fork, residual add, global pool),
and a generated top level that stitches them as Vivado IP Integrator would.

`generate_segment(name, folded_graph, out_dir, part, clock_ns)`:

1. reads the segment's folded, specialized dataflow partition (the `dataflow` step's
   `*.folded.onnx`: a chain, or a residual graph with forks and joins), inserts FINN's
   width converters where a layer's output word is not its consumer's input word, and
   specializes them to RTL;
2. has finn-plus generate each RTL layer's HDL (`PrepareIP`, no Vivado) and copies it, the
   finn-rtllib sources it uses and its memory files into out_dir/src, the library copies
   fixed by the named patches of `hw.rtl.patches` (the installed package is never edited);
3. writes out_dir/src/<top>.sv: the layers joined by AXI-Stream as the graph wires them,
   each MVAU's weight stream (`memstream`, FINN's internal_decoupled mode) wired to it,
   a FIFO on each residual block's shorter branch (`hw.rtl.skip_fifo`), and ports of
   FINN's names (ap_clk, ap_rst_n, in0_V_*, out0_V_*).

It returns a `SegmentRtl` with the sources in compile order and the stream formats of the
two ends, which the simulation packs and unpacks. A layer without RTL here is a
SegmentRtlError naming the graph and node.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hw.finn.convert import DataflowError
from hw.rtl.block_instances import BLOCKS, QUEUE_SOURCE, block_instance, queue_instance
from hw.rtl.patches import patch_library_file
from hw.rtl.skip_fifo import skip_fifo_depths

DSP_STUBS = Path(__file__).parent / "xilinx_primitives.sv"
"""Black-box declarations of the Xilinx primitives finn-rtllib instantiates (synthesis only)."""
PORT = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+|logic\s+)?(\[[^\]]*\]\s*)?(\w+)\s*,?", re.M)


class SegmentRtlError(DataflowError):
    """A segment graph the RTL generator cannot turn into HDL; names the file and node."""


@dataclass
class StreamFormat:
    """One end of the segment: values per word, bits per value, signedness, word width."""

    elems: int
    bits: int
    signed: bool
    width: int
    tensor: str
    """The graph tensor the stream carries (golden simulator name)."""
    words_per_frame: int


@dataclass
class SegmentRtl:
    """A generated segment: `top` module in out_dir/src, `sources` in compile order (ours and
    FINN's), `data_files` the memory images the simulation reads from its working folder."""

    name: str
    top: str
    out_dir: Path
    sources: list[str]
    data_files: list[str]
    input: StreamFormat
    output: StreamFormat
    layers: list[dict] = field(default_factory=list)
    """Per layer: node name, op type, the module instantiated, PE/SIMD."""

    def paths(self) -> list[Path]:
        return [self.out_dir / "src" / s for s in self.sources]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        return d

    @classmethod
    def load(cls, out_dir: Path) -> SegmentRtl:
        """The SegmentRtl that `generate_segment` wrote into out_dir (segment.json); a
        missing or damaged record is an ArtifactError naming it."""
        from typing import Any

        d = read_design_record(Path(out_dir) / "segment.json", {"name": str, "input": STREAM_SCHEMA,
                                                                 "output": STREAM_SCHEMA, "layers": [{str: Any}]})
        return cls(d["name"], d["top"], Path(out_dir).absolute(), d["sources"], d["data_files"],
                   StreamFormat(**d["input"]), StreamFormat(**d["output"]), d["layers"])


STREAM_SCHEMA = {"elems": int, "bits": int, "signed": bool, "width": int, "tensor": str, "words_per_frame": int}
"""A StreamFormat as its record stores it."""


def read_design_record(path: Path, schema: dict) -> dict:
    """A generated design's record (`path`, in the folder above its src/): `schema`'s
    fields plus top, sources and data_files, every listed file present in src/; otherwise
    an ArtifactError naming the file."""
    from calib.errors import ArtifactError
    from calib.schema import read_json_file

    d = read_json_file(path, {"top": str, "sources": [str], "data_files": [str], **schema})
    src = path.parent / "src"
    missing = [f for f in d["sources"] + d["data_files"] if not (src / f).is_file()]
    if missing:
        raise ArtifactError(f"{src}: {missing[0]} missing (listed in {path})")
    return d


def not_covered(folded: Path) -> str | None:
    """Why the generator cannot stitch this folded graph (a layer with neither an RTL
    variant nor a block of ours, or a stream read before it is written), or None when it can."""
    import onnx

    graph = onnx.load(str(folded)).graph
    written = {graph.input[0].name} | {t.name for t in graph.initializer}
    for n in graph.node:
        if not n.op_type.endswith("_rtl") and n.op_type not in BLOCKS:
            return f"node {n.name!r} ({n.op_type}) has no RTL variant and no block of ours"
        if missing := [t for t in n.input if t not in written]:
            return f"node {n.name!r} ({n.op_type}) reads {missing[0]!r} before any node writes it"
        written.update(n.output)
    return None


def stream_ends(folded: Path) -> tuple[str, str]:
    """(input, output) tensor names of a folded graph: where its RTL's streams begin and end."""
    import onnx

    graph = onnx.load(str(folded)).graph
    return graph.input[0].name, graph.output[0].name


def _prepare(folded: Path, build_dir: Path, part: str, clock_ns: float, prefix: str):
    """The folded graph with width converters, specialized, every node's name prefixed
    with `prefix` (FINN names each layer's modules after its node), HDL generated under
    build_dir."""
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.general import GiveUniqueNodeNames

    from hw.finn.builder import finn_builder
    from hw.finn.column_max_op import register
    from hw.finn.split_dwc import SplitFractionalDWC

    register()
    model = ModelWrapper(str(folded))
    with finn_builder(build_dir):
        model = model.transform(InsertDWC()).transform(SplitFractionalDWC())
        model = model.transform(SpecializeLayers(part)).transform(GiveUniqueNodeNames())
        for node in model.graph.node:  # module names unique across the segments of one design
            node.name = f"{prefix}__{node.name}"
        model = model.transform(PrepareIP(part, clock_ns))
        files = {n.name: _layer_files(model, n, str(folded)) for n in model.graph.node}
    return model, files


def _layer_files(model, node, where: str) -> dict:
    """{'hdl': [paths], 'data': [paths], 'memstream': path or None} of one layer."""
    from finn.util.settings import get_settings
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(node)
    if node.op_type in BLOCKS:
        return {"hdl": [], "data": [], "memstream": None}
    if not node.op_type.endswith("_rtl"):
        raise SegmentRtlError(f"{where}: node {node.name!r} ({node.op_type}) has no RTL implementation in "
                              "this flow (only FINN's RTL layers and the blocks of hw.rtl.block_instances)")
    gen = Path(op.get_nodeattr("code_gen_dir_ipgen"))
    hdl = [Path(p) for p in op.get_rtl_file_list(abspath=True)]
    data = sorted(p for p in gen.iterdir() if p.suffix == ".dat")
    memstream = None
    if node.op_type == "MVAU_rtl":
        if op.get_nodeattr("mem_mode") != "internal_decoupled":
            raise SegmentRtlError(f"{where}: node {node.name!r}: mem_mode {op.get_nodeattr('mem_mode')!r}; the "
                                  "generator wires internal_decoupled weight streams only")
        lib = Path(get_settings().finn_rtllib)
        memstream = next(gen.glob("*_memstream_wrapper.v"))
        hdl += [memstream, lib / "axi/hdl/axilite.sv", lib / "memstream/hdl/memstream_axi.sv",
                lib / "memstream/hdl/memstream.sv"]
    return {"hdl": hdl, "data": data, "memstream": memstream}


def _ports(path: Path, module: str) -> list[tuple[str, str]]:
    """(direction, name) of the ports of `module` declared in `path` (ANSI style headers)."""
    text = path.read_text()
    start = text.find(f"module {module}")
    if start < 0:
        raise SegmentRtlError(f"{path}: no module {module}")
    first = PORT.search(text, start)
    if first is None:
        raise SegmentRtlError(f"{path}: module {module} declares no ports")
    header = text[first.start():text.index(");", first.start())]
    return [(m.group(1), m.group(3)) for m in PORT.finditer(header)]


def _stream_format(node, tensor: str, is_input: bool) -> StreamFormat:
    """The word format of a layer's input (or output) stream, from FINN's folded shapes."""
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(node)
    dt = op.get_input_datatype() if is_input else op.get_output_datatype()
    folded = op.get_folded_input_shape() if is_input else op.get_folded_output_shape()
    width = op.get_instream_width_padded() if is_input else op.get_outstream_width_padded()
    words = 1
    for d in folded[:-1]:
        words *= int(d)
    return StreamFormat(int(folded[-1]), dt.bitwidth(), dt.signed(), width, tensor, words)


def generate_segment(name: str, folded: Path, out_dir: Path, part: str, clock_ns: float) -> SegmentRtl:
    """Writes out_dir/src (sources, memory files, the top level) for the segment `name`
    from its folded graph; returns its SegmentRtl (also written as out_dir/segment.json)."""
    from qonnx.custom_op.registry import getCustomOp

    out_dir = Path(out_dir).absolute()
    src = out_dir / "src"
    for old in (src, out_dir / "finn_tmp"):
        if old.exists():
            shutil.rmtree(old)
    src.mkdir(parents=True)
    if (reason := not_covered(folded)) is not None:
        raise SegmentRtlError(f"{folded}: {reason}")
    model, files = _prepare(folded, out_dir / "finn_tmp", part, clock_ns, name)
    nodes = list(model.graph.node)  # in graph order: every stream is written before it is read
    copied: dict[str, Path] = {}
    data_files: list[str] = []

    def copy(path: Path) -> None:
        """A source into src (once; library files patched); two different files of one name
        are an error."""
        if path.name in copied:
            if copied[path.name].read_bytes() != path.read_bytes():
                raise SegmentRtlError(f"{folded}: two different sources named {path.name}")
            return
        copied[path.name] = path
        (src / path.name).write_text(patch_library_file(path.name, path.read_text()))

    graph_in, graph_out = model.graph.input[0].name, model.graph.output[0].name
    wire = {graph_in: "s0"}  # tensor -> the stream's wire prefix
    first = model.find_consumer(graph_in)
    in_w = getCustomOp(first).get_instream_width_padded()
    body = [f"  wire [{in_w - 1}:0] s0_tdata; wire s0_tvalid, s0_tready;",
            "  assign s0_tdata = in0_V_TDATA; assign s0_tvalid = in0_V_TVALID; assign in0_V_TREADY = s0_tready;"]
    skip_depth: dict[str, int] = {}  # fork output tensor -> its branch's FIFO words
    residual = any(n.op_type == "DuplicateStreams_hls" for n in nodes)
    layers = []
    for node in nodes:
        op = getCustomOp(node)
        ins = [wire[t] for t in node.input if model.get_initializer(t) is None]
        outs = []
        for k, t in enumerate(node.output):
            wire[t] = f"s{len(wire)}"
            outs.append(wire[t])
            body.append(f"  wire [{op.get_outstream_width_padded(k) - 1}:0] {wire[t]}_tdata; "
                        f"wire {wire[t]}_tvalid, {wire[t]}_tready;")
        attrs = {a: op.get_nodeattr(a) for a in ("PE", "SIMD") if a in op.get_nodeattr_types()}
        for k, t in enumerate(t for t in node.input if model.get_initializer(t) is None):
            if skip_depth.get(t, 0):
                ins[k] = f"{node.name}_skip"
                body.append(queue_instance(ins[k], op.get_instream_width_padded(k), skip_depth[t], wire[t],
                                           f"{node.name}: the residual block's shorter branch waits here while "
                                           "the other fills its window buffers"))
                attrs["skip_fifo"] = skip_depth[t]
                copy(QUEUE_SOURCE)
        if node.op_type == "ElementwiseAdd_hls":
            for k, t in enumerate(node.input):
                if skip_depth.get(t, 0) or model.find_producer(t).op_type == "DuplicateStreams_hls":
                    continue  # the fork's own output: the skip FIFO (or nothing) is its buffer
                body.append(queue_instance(f"{node.name}_join{k}", op.get_instream_width_padded(k), JOIN_QUEUE_WORDS,
                                           ins[k], f"{node.name}: the end of a branch with layers, so that their "
                                           "bursts do not stall the add"))
                ins[k] = f"{node.name}_join{k}"
                attrs.setdefault("join_queues", []).append(JOIN_QUEUE_WORDS)
                copy(QUEUE_SOURCE)
        depth, why = input_queue(op, node.op_type, residual)
        if depth:
            body.append(queue_instance(f"{node.name}_fifo", op.get_instream_width_padded(), depth, ins[0],
                                       f"{node.name}'s input FIFO: {why}"))
            ins[0] = f"{node.name}_fifo"
            attrs["input_fifo"] = depth
            copy(QUEUE_SOURCE)
        if node.op_type in BLOCKS:
            body.append(block_instance(model, node, ins, outs, str(folded)))
            module, source = BLOCKS[node.op_type]
            copy(source)
            if node.op_type == "DuplicateStreams_hls":
                skip_depth.update(skip_fifo_depths(model, node))
        else:
            f = files[node.name]
            for p in f["hdl"]:
                copy(p)
            for p in f["data"]:
                dest = src / f"{node.name}__{p.name}" if p.name == "memblock.dat" else src / p.name
                shutil.copyfile(p, dest)
                data_files.append(dest.name)
            module = node.name
            wrapper = next(p for p in f["hdl"] if _declares(p, module))
            if f["memstream"] is not None:
                init = f"{node.name}__memblock.dat"
                ms = src / f["memstream"].name
                ms.write_text(re.sub(r'parameter\s+INIT_FILE\s*=\s*"[^"]*"', f'parameter  INIT_FILE = "{init}"',
                                     ms.read_text()))
                body.append(_memstream_instance(ms, node.name))
            body.append(_layer_instance(wrapper, module, node.name, ins[0], outs[0],
                                        weights=f["memstream"] is not None))
        layers.append({"node": node.name, "op": node.op_type, "module": module, **attrs})
    last = model.find_producer(graph_out)
    body.append(f"  assign out0_V_TDATA = {wire[graph_out]}_tdata; assign out0_V_TVALID = {wire[graph_out]}_tvalid; "
                f"assign {wire[graph_out]}_tready = out0_V_TREADY;")
    fmt_in = _stream_format(first, graph_in, True)
    fmt_out = _stream_format(last, graph_out, False)
    top = f"segment_{name}"
    header = (f"// Generated by hw/rtl/segment.py from {folded.name}: segment {name} as one AXI-Stream\n"
              f"// design, {len(nodes)} layers: " + ", ".join(f"{l['node']}" for l in layers) + ".\n"
              f"module {top} (\n  input ap_clk, input ap_rst_n,\n"
              f"  input [{fmt_in.width - 1}:0] in0_V_TDATA, input in0_V_TVALID, output in0_V_TREADY,\n"
              f"  output [{fmt_out.width - 1}:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY\n);\n")
    (src / f"{top}.sv").write_text(header + "\n".join(body) + "\nendmodule\n")
    sources = sorted(copied, key=lambda s: (not s.endswith("_pkg.sv"), s)) + [f"{top}.sv"]
    rtl = SegmentRtl(name, top, out_dir, sources, data_files, fmt_in, fmt_out, layers)
    (out_dir / "segment.json").write_text(json.dumps(rtl.to_dict(), indent=1))
    return rtl


JOIN_QUEUE_WORDS = 64
"""Words of queue at the residual add's end of each branch that has layers. The add takes a
word from both branches at once; a stride-2 shortcut's window generator writes only on
every other row, and with no buffer after its last layer the add waited on it for 5,805
cycles a frame in backbone_1 of the full-size ResNet-8 (29,322 cycles a frame against
FINN's 24,576; 26,697 with this queue, 64 to 256 words giving the same)."""


RESIDUAL_MVU_QUEUE_VECTORS = 4
"""Input vectors of queue in front of each MVU of a residual segment (see `input_queue`)."""
RESIDUAL_PADDING_QUEUE_ROWS = 1
"""Padded rows of queue in front of each padding layer of a residual segment."""


def input_queue(op, op_type: str, residual: bool) -> tuple[int, str]:
    """(words, why) of the queue the generator puts in front of a layer (0: none).

    Every MVU computing more than two output folds per vector gets one vector
    (`mvu_input_fifo_depth`). In a residual segment the two MVUs of a basic block are
    folded to the same cycles and the window generators between them leave gaps (at frame
    ends, and between rows when they stride), so without slack each gap stalls the layers
    around it: there each MVU gets RESIDUAL_MVU_QUEUE_VECTORS vectors, and each padding
    layer one row of its padded output, which it emits at a frame's top and bottom
    without reading its input."""
    if op_type == "MVAU_rtl" and residual:
        sf = op.get_nodeattr("MW") // op.get_nodeattr("SIMD")  # words per input vector
        return (RESIDUAL_MVU_QUEUE_VECTORS * sf,
                f"{RESIDUAL_MVU_QUEUE_VECTORS} vectors, so the window generator's gaps do not stall the MVU")
    if op_type == "MVAU_rtl":
        one = mvu_input_fifo_depth(op)
        return (one, "one vector, so the producer runs while the MVU replays it") if one else (0, "")
    if residual and op_type == "FMPadding_rtl":
        _, _, width, folds, _ = op.get_folded_output_shape()  # (1, H, W, C/SIMD, SIMD)
        return (RESIDUAL_PADDING_QUEUE_ROWS * int(width) * int(folds),
                f"{RESIDUAL_PADDING_QUEUE_ROWS} padded row(s), written while the padding emits its border rows")
    return 0, ""


def mvu_input_fifo_depth(op) -> int:
    """Words of FIFO in front of an RTL MVU: one input vector (SF words) when it computes more
    than two output folds per vector (NF > 2), else 0. Its replay buffer holds one vector and
    takes the next only during the first and last fold, so without the FIFO the producer
    stalls for (NF - 2) x SF cycles per vector (backbone_2 of the default run: 33,960 cycles
    per frame against FINN's 21,232)."""
    nf = op.get_nodeattr("MH") // op.get_nodeattr("PE")
    sf = op.get_nodeattr("MW") // op.get_nodeattr("SIMD")
    return sf if nf > 2 else 0


def _declares(path: Path, module: str) -> bool:
    return re.search(rf"^\s*module\s+{re.escape(module)}\b", path.read_text(), re.M) is not None


def _memstream_instance(memstream: Path, node: str) -> str:
    """The weight memory stream of an MVU: FINN's memstream wrapper, AXI-Lite tied off."""
    m = re.search(r"parameter\s+WIDTH\s*=\s*(\d+)", memstream.read_text())
    if m is None:
        raise SegmentRtlError(f"{memstream}: no WIDTH parameter")
    width = (int(m.group(1)) + 7) // 8 * 8
    module = memstream.stem
    return (f"  // {node}'s weights, streamed from its memory image (FINN's internal_decoupled mode)\n"
            f"  wire {node}_w_tvalid, {node}_w_tready;\n"
            f"  wire [{width - 1}:0] {node}_w_tdata;\n"
            f"  {module} {node}_wstrm (\n"
            f"    .ap_clk(ap_clk), .ap_clk2x(ap_clk), .ap_rst_n(ap_rst_n),\n"
            "    .s_axilite_AWVALID(1'b0), .s_axilite_AWPROT(3'b0), .s_axilite_AWADDR('0),\n"
            "    .s_axilite_WVALID(1'b0), .s_axilite_WDATA(32'b0), .s_axilite_WSTRB(4'b0), .s_axilite_BREADY(1'b0),\n"
            "    .s_axilite_ARVALID(1'b0), .s_axilite_ARPROT(3'b0), .s_axilite_ARADDR('0), .s_axilite_RREADY(1'b0),\n"
            "    .s_axilite_AWREADY(), .s_axilite_WREADY(), .s_axilite_BVALID(), .s_axilite_BRESP(),\n"
            "    .s_axilite_ARREADY(), .s_axilite_RVALID(), .s_axilite_RRESP(), .s_axilite_RDATA(),\n"
            "    .s_axis_0_tvalid(1'b0), .s_axis_0_tdata('0), .s_axis_0_tready(),\n"
            f"    .m_axis_0_tready({node}_w_tready), .m_axis_0_tvalid({node}_w_tvalid), "
            f".m_axis_0_tdata({node}_w_tdata));\n")


def _layer_instance(wrapper: Path, module: str, node: str, s_in: str, s_out: str, weights: bool) -> str:
    """The instance of a FINN wrapper: clocks and reset, in0_V from s_in, out0_V to s_out,
    in1_V from the weight stream when `weights`, other inputs tied to 0."""
    conns = []
    for direction, port in _ports(wrapper, module):
        if port in ("ap_clk", "ap_clk2x"):
            conns.append(f".{port}(ap_clk)")
        elif port == "ap_rst_n":
            conns.append(".ap_rst_n(ap_rst_n)")
        elif port.startswith(("in0_V_", "out0_V_")):
            sig = s_in if port.startswith("in0_V_") else s_out
            conns.append(f".{port}({sig}_{port.split('_')[-1].lower()})")
        elif weights and port.startswith("in1_V_"):
            conns.append(f".{port}({node}_w_{port.split('_')[-1].lower()})")
        elif direction == "input":
            conns.append(f".{port}('0)")
        else:
            conns.append(f".{port}()")
    return f"  {module} {node}_i (\n    " + ",\n    ".join(conns) + ");"
