"""The whole multi-exit design as one top level: the generated segments, the exit heads'
decision units, and the exit glue between them.

    pixels -> backbone_0 -> fork -> head_0 -> decision_0 -> fork ----------------> merge -> (class, exit)
                              |                              '-> buffer_0 (hold, then pass or drop)
                              '---------------------------------> buffer_0 -> backbone_1 -> fork -> head_1 ...
                                                                              ... -> backbone_final -> decision_final -> merge

Each backbone segment's output is forked to its head and to a conditional buffer that
holds the frame until the head's decision unit (`hw/rtl/exit_decision`) decides: frames of
exited images are dropped there and never enter later segments. The exit merge emits one
word per image, {exit index, class}, in input order (`hw/rtl/exit_glue`). Where a segment's
output word holds a different number of values than its consumer's input word, FINN's
width converter (`dwc_axi`) sits between them.

`generate_multi_exit` copies every segment's sources (their module names are unique: the
segment generator prefixes them with the segment's name), writes the top level and
returns a `MultiExitRtl`, also written as multi_exit.json. The exit thresholds come from
the calibrate step's artifact, whose SHA-256 the top level and the record carry.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from calib.schema import sha256_of
from hw.rtl.exit_decision.model import class_bits, parameters
from hw.rtl.patches import patch_library_file
from hw.rtl.segment import STREAM_SCHEMA, SegmentRtl, SegmentRtlError, StreamFormat, read_design_record
from hw.rtl.stream import word_width

HERE = Path(__file__).parent
BLOCKS = [HERE / "exit_decision" / "exit_decision.sv", HERE / "exit_glue" / "fork.sv",
          HERE / "exit_glue" / "exit_buffer.sv", HERE / "exit_glue" / "exit_merge.sv", HERE / "exit_glue" / "queue.sv"]
TOP = "btsee_multi_exit"
BUFFER_FRAMES = 2
"""Frames each conditional buffer holds: one is the minimum that cannot deadlock; two let
the segment go on with the next image while its head decides."""


DECISION_QUEUE = 32
"""Decisions of one exit that may wait for the merge (images still in later segments):
without this queue the merge, reading in image order, would hold back the decision stream
that releases the buffer's next frame, and the segments would run one image at a time."""


class MultiExitError(SegmentRtlError):
    """Segments that cannot be joined into one design; names the segment or file."""


@dataclass
class MultiExitRtl:
    """A generated multi-exit design: `top` in out_dir/src, `sources` in compile order,
    `data_files` the memory images the simulation reads from its working folder."""

    top: str
    out_dir: Path
    sources: list[str]
    data_files: list[str]
    input: StreamFormat
    classes: int
    exits: int
    output_width: int
    logit_monitors: dict[str, dict] = field(default_factory=dict)
    """Per head and the final classifier: the stream of its integer logits inside the top
    level (`prefix`, one value of `bits` per word), which the simulation records."""
    buffers: dict[str, dict] = field(default_factory=dict)
    """Per conditional buffer: the segment it follows, words per frame, depth in words, bits kept per word."""
    thresholds_sha256: str = ""
    exit_points: list[int] = field(default_factory=list)
    """The exits of the full chain this design builds (indices into its heads); the output's
    exit index counts these, then the final classifier."""

    def paths(self) -> list[Path]:
        return [self.out_dir / "src" / s for s in self.sources]

    def input_port(self):
        """The pixel stream's port (hw.rtl.stream.Port)."""
        from hw.rtl.stream import Port

        return Port("in0_V", self.input.elems, self.input.bits, self.input.signed)

    def output_port(self):
        """The decision stream's port, one decision per word."""
        from hw.rtl.stream import Port

        return Port("out0_V", 1, self.output_width)

    def testbench(self, monitors: bool = True) -> str:
        """The simulation top over the design: both streams, and with `monitors` a monitor on
        every logit stream (the RTL's internal names; a netlist's are gone)."""
        from hw.rtl.stream import multi_stream_testbench

        watched = self.logit_monitors if monitors else {}
        return multi_stream_testbench(self.top, [self.input_port()], [self.output_port()],
                                      {name: (m["prefix"], 0) for name, m in watched.items()})

    @property
    def class_bits(self) -> int:
        return class_bits(self.classes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        return d

    @classmethod
    def load(cls, out_dir: Path) -> MultiExitRtl:
        """The design `generate_multi_exit` wrote into out_dir (multi_exit.json); a missing or
        damaged record or source is an ArtifactError naming it."""
        from typing import Any

        d = read_design_record(Path(out_dir) / "multi_exit.json", {
            "input": STREAM_SCHEMA, "classes": int, "exits": int, "output_width": int,
            "logit_monitors": {str: Any}, "buffers": {str: Any}, "thresholds_sha256": str, "exit_points": [int]})
        return cls(d["top"], Path(out_dir).absolute(), d["sources"], d["data_files"], StreamFormat(**d["input"]),
                   d["classes"], d["exits"], d["output_width"], d["logit_monitors"], d["buffers"],
                   d["thresholds_sha256"], d["exit_points"])


class _Top:
    """The top level's text, built up instance by instance."""

    def __init__(self):
        self.lines: list[str] = []
        self.needs_dwc = False

    def wire(self, name: str, width: int) -> str:
        self.lines.append(f"  wire [{width - 1}:0] {name}_tdata; wire {name}_tvalid, {name}_tready;")
        return name

    def instance(self, module: str, name: str, ports: dict[str, str], params: str = "") -> None:
        """`module params name (...)`: ports {port prefix: wire}, FINN's _TDATA/_TVALID/_TREADY."""
        conns = [".ap_clk(ap_clk)", ".ap_rst_n(ap_rst_n)"]
        conns += [f".{p}_T{s.upper()}({w}_t{s})" for p, w in ports.items() for s in ("data", "valid", "ready")]
        self.lines.append(f"  {module} {params + ' ' if params else ''}{name} (\n    " + ",\n    ".join(conns) + ");")

    def adapt(self, src: str, have: StreamFormat | tuple[int, int], want: tuple[int, int], label: str) -> str:
        """The stream `src` of (values per word, bits) `have` as `want`: itself, or through a
        width converter."""
        h = (have.elems, have.bits) if isinstance(have, StreamFormat) else have
        if h == want:
            return src
        if h[1] != want[1]:
            raise MultiExitError(f"{label}: {h[1]}-bit values meet {want[1]}-bit values; no converter for that")
        self.needs_dwc = True
        out = self.wire(f"{label}_dwc", word_width(*want))
        self.lines.append(f"  dwc_axi #(.IBITS({h[0] * h[1]}), .OBITS({want[0] * want[1]})) {label}_dwc_i (\n"
                          f"    .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),\n"
                          f"    .s_axis_tdata({src}_tdata), .s_axis_tvalid({src}_tvalid), .s_axis_tready({src}_tready),\n"
                          f"    .m_axis_tdata({out}_tdata), .m_axis_tvalid({out}_tvalid), .m_axis_tready({out}_tready));")
        return out


def generate_multi_exit(chain: list[tuple[SegmentRtl, SegmentRtl | None]], thresholds_file: Path,
                        thresholds: list[list[int | None]], score: str, out_dir: Path,
                        buffer_frames: int = BUFFER_FRAMES) -> MultiExitRtl:
    """Writes out_dir/src (every segment's sources and memory files, our blocks, the top
    level) for the chain [(backbone_0, head_0 or None), ..., (backbone_final, None)] (None
    before the end: no exit built there, the segment feeds the next directly) with the
    integer `thresholds` per head built (None = that class never exits), which must be
    those of `thresholds_file` for those exits; returns the MultiExitRtl (also
    out_dir/multi_exit.json)."""
    from finn.util.settings import get_settings

    if not chain or chain[-1][1] is not None:
        raise MultiExitError("a multi-exit chain is backbone segments, each followed by its head or by none, "
                             "then the final one")
    built = [k for k, (_, h) in enumerate(chain[:-1]) if h is not None]
    if len(thresholds) != len(built):
        raise MultiExitError(f"{thresholds_file}: {len(thresholds)} threshold tables for {len(built)} heads")
    sha = sha256_of(thresholds_file)  # what the decision units hold is what the file says, now
    recorded = [e.get("thresholds") for e in json.loads(Path(thresholds_file).read_text()).get("exits", [])]
    if len(recorded) != len(chain) - 1 or [recorded[k] for k in built] != [list(t) for t in thresholds]:
        raise MultiExitError(f"{thresholds_file}: its integer thresholds of exits {built} are not the tables given "
                             "to the generator")
    classes = len(thresholds[0]) if thresholds else chain[-1][0].output.words_per_frame * chain[-1][0].output.elems
    out_dir = Path(out_dir).absolute()
    src = out_dir / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    sources: dict[str, Path] = {}
    data_files: list[str] = []

    def copy(path: Path, text: str | None = None) -> None:
        body = path.read_text() if text is None else text
        if path.name in sources:
            if (src / path.name).read_text() != body:
                raise MultiExitError(f"{path}: a different source of the same name came from {sources[path.name]}")
            return
        sources[path.name] = path
        (src / path.name).write_text(body)

    segments = [s for pair in chain for s in pair if s is not None]
    for seg in segments:
        for name in seg.sources:
            copy(seg.out_dir / "src" / name)
        for name in seg.data_files:
            if (src / name).exists():
                raise MultiExitError(f"{seg.out_dir / 'src' / name}: two segments have a memory file of this name")
            shutil.copyfile(seg.out_dir / "src" / name, src / name)
            data_files.append(name)
    for block in BLOCKS:
        copy(block)

    top = _Top()
    cw = class_bits(classes)
    first = chain[0][0]
    x = top.wire("pixels", first.input.width)
    top.lines.append("  assign pixels_tdata = in0_V_TDATA; assign pixels_tvalid = in0_V_TVALID; "
                     "assign in0_V_TREADY = pixels_tready;")
    decisions, monitors, buffers = [], {}, {}
    decision_width = 0
    for k, (backbone, head) in enumerate(chain):
        bb_in = top.adapt(x, _entering(chain, k), (backbone.input.elems, backbone.input.bits), f"{backbone.name}_in")
        bb_out = top.wire(f"{backbone.name}_out", backbone.output.width)
        top.instance(backbone.top, f"{backbone.name}_i", {"in0_V": bb_in, "out0_V": bb_out})
        if head is None and k < len(chain) - 1:  # no exit built here: straight on to the next segment
            x = bb_out
            continue
        scorer = head if head is not None else backbone
        if head is not None:
            to_head, to_buffer = top.wire(f"fork{k}_head", backbone.output.width), top.wire(
                f"fork{k}_buffer", backbone.output.width)
            top.instance("btsee_fork", f"fork{k}_i", {"in0_V": bb_out, "out0_V": to_head, "out1_V": to_buffer},
                         f"#(.WIDTH({backbone.output.width}))")
            head_in = top.adapt(to_head, backbone.output, (head.input.elems, head.input.bits), f"{head.name}_in")
            head_out = top.wire(f"{head.name}_out", head.output.width)
            top.instance(head.top, f"{head.name}_i", {"in0_V": head_in, "out0_V": head_out})
            logits_src, table = head_out, thresholds[built.index(k)]
        else:
            logits_src, table = bb_out, [None] * classes
        fmt = scorer.output
        if not fmt.signed:
            raise MultiExitError(f"{scorer.name}: its logits are unsigned ({fmt.bits} bits); the decision unit "
                                 "compares signed logits")
        if fmt.elems * fmt.words_per_frame != classes:
            raise MultiExitError(f"{scorer.name}: {fmt.elems * fmt.words_per_frame} logits per image, the "
                                 f"thresholds have {classes} classes")
        logits = top.adapt(logits_src, fmt, (1, fmt.bits), f"{scorer.name}_logits")
        if logits == logits_src:  # name the logit stream for the monitor either way
            logits = top.wire(f"{scorer.name}_logits", word_width(1, fmt.bits))
            top.lines.append(f"  assign {logits}_tdata = {logits_src}_tdata; assign {logits}_tvalid = "
                             f"{logits_src}_tvalid; assign {logits_src}_tready = {logits}_tready;")
        monitors[scorer.name] = {"prefix": logits, "bits": fmt.bits}
        dw = word_width(1, cw + 1 + fmt.bits + 2)
        decision_width = max(decision_width, dw)
        decision = top.wire(f"decision{k}", dw)
        top.instance("btsee_exit_decision", f"decision{k}_i", {"in0_V": logits, "out0_V": decision},
                     parameters(table, fmt.bits, "top" if score == "top" else "margin"))
        if head is None:
            decisions.append((decision, dw))
            break
        to_merge, to_gate = top.wire(f"decision{k}_merge", dw), top.wire(f"decision{k}_buffer", dw)
        top.instance("btsee_fork", f"decision{k}_fork_i", {"in0_V": decision, "out0_V": to_merge,
                                                            "out1_V": to_gate}, f"#(.WIDTH({dw}))")
        queued = top.wire(f"decision{k}_queue", dw)
        top.lines.append(
            f"  // the merge reads exit {k}'s decisions only once the images before have left; queued here, they\n"
            f"  // do not hold back the buffer's decision stream\n"
            f"  btsee_queue #(.WIDTH({dw}), .DEPTH({DECISION_QUEUE})) decision{k}_queue_i (\n"
            f"    .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),\n"
            f"    .in0_V_TDATA({to_merge}_tdata), .in0_V_TVALID({to_merge}_tvalid), .in0_V_TREADY({to_merge}_tready),\n"
            f"    .out0_V_TDATA({queued}_tdata), .out0_V_TVALID({queued}_tvalid), .out0_V_TREADY({queued}_tready), "
            f".peak());")
        decisions.append((queued, dw))
        frame = backbone.output.words_per_frame
        depth = buffer_frames * frame
        x = top.wire(f"buffer{k}_out", backbone.output.width)
        top.lines.append(f"  // backbone {backbone.name}'s frames wait here for {head.name}'s decision")
        top.lines.append(
            f"  btsee_exit_buffer #(.WIDTH({backbone.output.width}), "
            f".BITS({backbone.output.elems * backbone.output.bits}), .FRAME({frame}), .DEPTH({depth}), "
            f".DECISION_WIDTH({dw}), .EXIT_BIT({cw})) buffer{k}_i (\n    .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),\n"
            f"    .in0_V_TDATA({to_buffer}_tdata), .in0_V_TVALID({to_buffer}_tvalid), .in0_V_TREADY({to_buffer}_tready),\n"
            f"    .in1_V_TDATA({to_gate}_tdata), .in1_V_TVALID({to_gate}_tvalid), .in1_V_TREADY({to_gate}_tready),\n"
            f"    .out0_V_TDATA({x}_tdata), .out0_V_TVALID({x}_tvalid), .out0_V_TREADY({x}_tready));")
        buffers[f"buffer{k}"] = {"after": backbone.name, "frame_words": frame, "depth_words": depth,
                                 "bits": backbone.output.elems * backbone.output.bits}
    n = len(decisions)
    exit_bits = max(1, (n - 1).bit_length())
    out_w = word_width(1, exit_bits + cw)
    cat = lambda s: "{" + ", ".join(f"{w}_t{s}" for w, _ in reversed(decisions)) + "}"  # noqa: E731
    wide = "{" + ", ".join(f"{decision_width}'({w}_tdata)" for w, _ in reversed(decisions)) + "}"
    top.lines.append(
        f"  btsee_exit_merge #(.EXITS({n - 1}), .CLASS_BITS({cw}), .DECISION_WIDTH({decision_width})) merge_i (\n"
        f"    .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),\n"
        f"    .in_V_TDATA({wide}), .in_V_TVALID({cat('valid')}), .in_V_TREADY({cat('ready')}),\n"
        f"    .out0_V_TDATA(out0_V_TDATA), .out0_V_TVALID(out0_V_TVALID), .out0_V_TREADY(out0_V_TREADY));")
    lib = Path(get_settings().finn_rtllib)
    library = [lib / "dwc" / "hdl" / "dwc_axi.sv", lib / "dwc" / "hdl" / "vpc.sv"] if top.needs_dwc else []
    for f in library:
        if not f.is_file():
            raise MultiExitError(f"{f}: missing from finn-rtllib")
        copy(f, patch_library_file(f.name, f.read_text()))
    header = (f"// Generated by hw/rtl/multi_exit.py: the multi-exit design, {len(segments)} segments, "
              f"{n - 1} exits, {classes} classes.\n"
              f"// Thresholds: {Path(thresholds_file).name}, sha256 {sha}.\n"
              f"// Output word: {{exit index ({exit_bits} bits), class ({cw} bits)}} per image, in input order.\n"
              f"module {TOP} (\n  input ap_clk, input ap_rst_n,\n"
              f"  input [{first.input.width - 1}:0] in0_V_TDATA, input in0_V_TVALID, output in0_V_TREADY,\n"
              f"  output [{out_w - 1}:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY\n);\n")
    (src / f"{TOP}.sv").write_text(header + "\n".join(top.lines) + "\nendmodule\n")
    order = sorted(sources, key=lambda s: (not s.endswith("_pkg.sv"), s)) + [f"{TOP}.sv"]
    rtl = MultiExitRtl(TOP, out_dir, order, data_files, first.input, classes, n - 1, out_w, monitors, buffers, sha,
                       built)
    (out_dir / "multi_exit.json").write_text(json.dumps(rtl.to_dict(), indent=1))
    return rtl


def _entering(chain: list, k: int) -> tuple[int, int]:
    """(values per word, bits) of the stream entering backbone k: the design's input for
    k = 0, else the previous backbone's output (the buffer keeps its format)."""
    if k == 0:
        fmt = chain[0][0].input
    else:
        fmt = chain[k - 1][0].output
    return fmt.elems, fmt.bits


def unpack_decisions(words, class_bits_: int) -> tuple:
    """(N,) output words of the design -> ((N,) class, (N,) exit index)."""
    import numpy as np

    words = np.asarray(words, np.int64)
    return words & ((1 << class_bits_) - 1), words >> class_bits_
