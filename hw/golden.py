"""The golden simulator: a vectorized integer execution of the multi-exit dataflow.

Each segment's FINN HW-layer graph (written by the `dataflow` step, before
SpecializeLayers) is compiled into a list of numpy layers that read the layer's integer
parameters (weights, thresholds, window sizes) from the graph:

    Thresholding               y = #{t : x >= T[c, t]} + ActVal
    ConvolutionInputGenerator  NHWC sliding windows, flattened (kh, kw, c), c fastest
    MVAU                       integer matrix product, then thresholds (or the raw
                               accumulator when noActivation = 1)
    Pool (MaxPool)             max over the window (fused with the window generator
                               into one reshape-max when the windows do not overlap)
    ColumnMax                  max over the rows (or the whole map): a head's pooling
    FMPadding                  zeros around the image (a padded convolution)
    DuplicateStreams           the stream on each output (a ResNet block's fork)
    ElementwiseAdd             the sum of two streams (its residual add)
    GlobalAccPool              the sum over the image of each channel
    Transpose                  layout change at a boundary

Layers run in graph order over named tensors, so a residual block's fork and add are
simulated as they are wired.

The result is the integer tensor that enters the graph's output scale `Mul`: activation
codes for a backbone segment, integer logits for a head and for the classifier.

Matrix products run in BLAS floating point, which is exact here: every layer's largest
possible partial sum (MW x max|w| x max|x|) is checked to be below 2**24 (float32) or
2**53 (float64) when the layer is compiled. Whole batches run at once, and the cascade
only feeds the samples that have not exited to the later segments, as the hardware does.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from numpy.lib.stride_tricks import sliding_window_view

from calib.cascade import FirstExit
from calib.rules import decide, predicted_class
from hw.finn.convert import HW_DOMAIN, DataflowError, load_hw, node_attributes, output_scale_node
from hw.rtl.column_max.model import column_max
from hw.rtl.global_acc_pool.model import channel_sums
from hw.rtl.maxpool.model import window_max
from hw.rtl.residual_add.model import add_streams

FLOAT32_EXACT = 2 ** 24
FLOAT64_EXACT = 2 ** 53


class GoldenError(DataflowError):
    """A graph the golden simulator cannot compile; the message names the file and node."""


@dataclass
class Layer:
    name: str
    op: str
    run: Callable[..., np.ndarray | tuple[np.ndarray, ...]]  # (N, ...) arrays in, integer-valued floats out
    inputs: tuple[str, ...] = ()
    """The graph tensors the layer reads (one, or two for an add)."""
    outputs: tuple[str, ...] = ()
    """The tensors it writes (several for a fork, which returns a tuple)."""


def _dtype_bound(model, tensor: str) -> int:
    """Largest |value| a tensor's qonnx datatype allows."""
    dt = model.get_tensor_datatype(tensor)
    return int(max(abs(dt.min()), abs(dt.max())))


def _integer_initializer(model, name: str, where: str) -> np.ndarray:
    value = model.get_initializer(name)
    if value is None:
        raise GoldenError(f"{where}: input {name!r} is not a constant")
    if not np.array_equal(value, np.round(value)):
        raise GoldenError(f"{where}: {name!r} holds non-integer values")
    return value.astype(np.int64)


def _thresholds_fn(thresholds: np.ndarray, act_val: int, where: str) -> Callable[[np.ndarray], np.ndarray]:
    """y[..., c] = number of thresholds of channel c that x[..., c] reaches (x >= T[c, t]),
    plus act_val. Evaluated as a table lookup: values below the smallest threshold reach
    none, values above the largest reach all, so x is clipped into [min T - 1, max T]."""
    if np.any(np.diff(thresholds, axis=1) < 0):
        raise GoldenError(f"{where}: thresholds are not ascending per channel")
    lo, hi = int(thresholds.min()) - 1, int(thresholds.max())
    span = hi - lo + 1
    if thresholds.shape[0] * span > 2 ** 26:
        raise GoldenError(f"{where}: thresholds span {span} values; the lookup table would be too large")
    grid = np.arange(lo, hi + 1)  # (span,)
    table = np.stack([np.searchsorted(row, grid, side="right") for row in thresholds])  # (C, span)
    flat = (table + act_val).astype(np.float32).reshape(-1)  # (C * span,)
    # value x of channel c sits at flat[c * span + x - lo]; the index is formed in int32
    # (exact: the table has at most 2**26 entries), never in float32, which holds integers
    # exactly only up to 2**24
    offset = (np.arange(thresholds.shape[0], dtype=np.int64) * span - lo).astype(np.int32)  # (C,)

    def run(x: np.ndarray) -> np.ndarray:  # (..., C) exact integers, overwritten
        np.clip(x, lo, hi, out=x)
        index = x.astype(np.int32)
        index += offset
        return flat.take(index)
    return run


def _mvau(model, node, where: str) -> Callable[[np.ndarray], np.ndarray]:
    a = node_attributes(node)
    if a.get("binaryXnorMode", 0):
        raise GoldenError(f"{where}: binary XNOR MVAU is not simulated")
    weights = _integer_initializer(model, node.input[1], where)  # (MW, MH)
    mw, mh = a["MW"], a["MH"]
    if weights.shape != (mw, mh):
        raise GoldenError(f"{where}: weights of shape {weights.shape}, MW x MH is {mw} x {mh}")
    # the largest |partial sum| any input of this datatype can produce
    bound = int(np.abs(weights).sum(axis=0).max(initial=0)) * _dtype_bound(model, node.input[0])
    if bound >= FLOAT64_EXACT:
        raise GoldenError(f"{where}: accumulator bound {bound} too large for exact products")
    ftype = np.float32 if bound < FLOAT32_EXACT else np.float64
    w = weights.astype(ftype)
    out_dims = list(a["numInputVectors"])[1:]
    act = None
    if not a.get("noActivation", 0):
        act = _thresholds_fn(_integer_initializer(model, node.input[2], where), int(a.get("ActVal", 0)), where)

    def run(x: np.ndarray) -> np.ndarray:  # (N, ..., MW) -> (N, ..., MH)
        n = x.shape[0]
        acc = x.reshape(-1, mw).astype(ftype, copy=False) @ w  # exact: every partial sum <= bound
        acc = acc.reshape([n] + out_dims + [mh])
        return acc if act is None else act(acc)
    return run


def _thresholding(model, node, where: str) -> Callable[[np.ndarray], np.ndarray]:
    a = node_attributes(node)
    thresholds = _integer_initializer(model, node.input[1], where)  # (C, levels), or (1, levels) for all
    if thresholds.shape[0] == 1 and a["NumChannels"] > 1:  # one row that every channel uses
        thresholds = np.repeat(thresholds, a["NumChannels"], axis=0)
    fn = _thresholds_fn(thresholds, int(a.get("ActVal", 0)), where)
    return lambda x: fn(x.copy())


def _conv_input_generator(node, where: str) -> Callable[[np.ndarray], np.ndarray]:
    a = node_attributes(node)
    (kh, kw), (sh, sw) = a["ConvKernelDim"], a["Stride"]
    (dh, dw), (oh, ow) = a.get("Dilation", [1, 1]), a["OFMDim"]

    span_h, span_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1

    def run(x: np.ndarray) -> np.ndarray:  # (N, H, W, C) -> (N, OH, OW, kh*kw*C)
        win = sliding_window_view(x, (span_h, span_w), axis=(1, 2))  # (N, H', W', C, span_h, span_w)
        win = win[:, ::sh, ::sw, :, ::dh, ::dw][:, :oh, :ow]  # (N, OH, OW, C, kh, kw)
        n, c = x.shape[0], x.shape[3]
        return win.transpose(0, 1, 2, 4, 5, 3).reshape(n, oh, ow, kh * kw * c)  # (kh, kw, c), c fastest
    return run


def _pool(node, where: str) -> Callable[[np.ndarray], np.ndarray]:
    a = node_attributes(node)
    if a.get("Function") != "MaxPool":
        raise GoldenError(f"{where}: Pool function {a.get('Function')!r} is not simulated (MaxPool only)")
    k, ch = a["KernelSize"][0] * a["KernelSize"][1], a["Channels"]

    def run(x: np.ndarray) -> np.ndarray:  # (N, OH, OW, k*C) -> (N, OH, OW, C)
        return window_max(x.reshape(x.shape[:-1] + (k, ch)))  # the RTL block's model
    return run


def _window_max(window_node, pool_node) -> Callable[[np.ndarray], np.ndarray] | None:
    """ConvolutionInputGenerator + MaxPool over non-overlapping windows as one reshape-max
    (the same values without materializing the windows); None when the windows overlap."""
    a, p = node_attributes(window_node), node_attributes(pool_node)
    (kh, kw), (sh, sw) = a["ConvKernelDim"], a["Stride"]
    (oh, ow), dil = a["OFMDim"], a.get("Dilation", [1, 1])
    if (sh, sw) != (kh, kw) or list(dil) != [1, 1] or p.get("Function") != "MaxPool" \
            or list(p["KernelSize"]) != [kh, kw] or a.get("depthwise", 0) != 1:
        return None

    def run(x: np.ndarray) -> np.ndarray:  # (N, H, W, C) -> (N, OH, OW, C)
        n, c = x.shape[0], x.shape[3]
        return x[:, :oh * kh, :ow * kw].reshape(n, oh, kh, ow, kw, c).max(axis=(2, 4))
    return run


def _column_max(node, where: str) -> Callable[[np.ndarray], np.ndarray]:
    """Our ColumnMax layer (hw.finn.column_max_op): the RTL block's model."""
    whole_map = bool(node_attributes(node).get("WholeMap", 0))

    def run(x: np.ndarray) -> np.ndarray:  # (N, H, W, C) -> (N, 1, W, C) or (N, 1, 1, C)
        return column_max(x, whole_map)
    return run


def _fm_padding(node, where: str) -> Callable[[np.ndarray], np.ndarray]:
    """FINN's FMPadding: zeros around the NHWC image, Padding = [top, left, bottom, right]."""
    a = node_attributes(node)
    top, left, bottom, right = a["Padding"]

    def run(x: np.ndarray) -> np.ndarray:  # (N, H, W, C) -> (N, H + top + bottom, W + left + right, C)
        return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    return run


def _global_acc_pool(node, where: str) -> Callable[[np.ndarray], np.ndarray]:
    """FINN's GlobalAccPool: the sum over the image of each channel, by the model of our
    block (hw/rtl/global_acc_pool/model.py; exact in int64)."""
    def run(x: np.ndarray) -> np.ndarray:  # (N, H, W, C) -> (N, 1, 1, C)
        return channel_sums(x)[:, None, None, :].astype(np.float64)
    return run


def _elementwise_add(node, where: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """finn-plus's ElementwiseAdd of two streams (it has no AddStreams): the element-wise
    sum of two integer streams of one shape (a residual add)."""
    a = node_attributes(node)
    if list(a.get("lhs_shape", [])) != list(a.get("rhs_shape", [])):
        raise GoldenError(f"{where}: adds streams of shapes {a.get('lhs_shape')} and {a.get('rhs_shape')}")
    return add_streams  # the model of our block (hw/rtl/residual_add/model.py)


def _duplicate_streams(node, where: str) -> Callable[[np.ndarray], tuple[np.ndarray, ...]]:
    """FINN's DuplicateStreams: the same stream on each of its outputs (a fork)."""
    n = len(node.output)
    return lambda x: (x,) * n


def _transpose(node) -> Callable[[np.ndarray], np.ndarray]:
    perm = node_attributes(node)["perm"]
    if perm[0] != 0:
        raise GoldenError(f"Transpose {node.name!r} moves the batch axis")
    return lambda x: x.transpose(perm)


@dataclass
class SegmentProgram:
    """One segment compiled: integer codes in the graph's input layout -> integers entering
    its output scale Mul, in the graph's output layout."""

    name: str
    input_shape: tuple[int, ...]  # without the batch axis
    input_type: str
    output_scale: float
    input_name: str = ""
    output_name: str = ""
    """The graph tensors the program starts from and returns (the graph's output, the output
    scale Mul run as identity: integers, unscaled)."""
    layers: list[Layer] = field(default_factory=list)

    def run(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """(N, *input_shape) integer codes -> (N, *output) int64."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"{self.name}: input of shape {x.shape[1:]}, the graph takes {self.input_shape}")
        if len(x) == 0:
            return np.zeros((0,) + self.output_shape(), np.int64)
        outs = []
        for i in range(0, len(x), batch):
            y = self._forward(np.asarray(x[i:i + batch]).astype(np.float32))
            outs.append(np.rint(y).astype(np.int64))
        return np.concatenate(outs)

    def tensors(self, x: np.ndarray, names: tuple[str, ...], batch: int = 256) -> dict[str, np.ndarray]:
        """(N, *input_shape) integer codes -> {name: (N, ...) int64} for the named graph
        tensors (the RTL simulation's stream ends, say); a name no layer writes is a KeyError."""
        known = {self.input_name} | {t for layer in self.layers for t in layer.outputs}
        if missing := [n for n in names if n not in known]:
            raise KeyError(f"{self.name}: no tensor {missing} in the compiled graph")
        parts = [self._forward(np.asarray(x[i:i + batch]).astype(np.float32), names)
                 for i in range(0, len(x), batch)]
        return {n: np.concatenate([np.rint(p[n]).astype(np.int64) for p in parts]) for n in names}

    def _forward(self, y: np.ndarray, keep: tuple[str, ...] = ()) -> np.ndarray | dict[str, np.ndarray]:
        """Integer-valued float arrays between layers: exact, and half the bytes of int64.
        Layers run in graph order over named tensors (a residual block forks and adds);
        a tensor is dropped once its last reader has run. With `keep`, the dict of those
        tensors instead of the output."""
        tensors = {self.input_name: y}
        last_use = self._last_use(keep)
        for i, layer in enumerate(self.layers):
            out = layer.run(*(tensors[t] for t in layer.inputs))
            for t, v in zip(layer.outputs, out if isinstance(out, tuple) else (out,)):
                tensors[t] = v
            for t in layer.inputs:
                if last_use[t] == i:
                    del tensors[t]
        return {t: tensors[t] for t in keep} if keep else tensors[self.output_name]

    def _last_use(self, keep: tuple[str, ...] = ()) -> dict[str, int]:
        """{tensor: index of the last layer that reads it} (the output and `keep`: never dropped)."""
        last = {t: i for i, layer in enumerate(self.layers) for t in layer.inputs}
        for t in (self.output_name, *keep):
            last[t] = len(self.layers)
        return last

    def output_shape(self) -> tuple[int, ...]:
        return self._forward(np.zeros((1,) + self.input_shape, np.float32)).shape[1:]


_SINGLE_INPUT_LAYERS = {
    "Thresholding": lambda model, node, at: _thresholding(model, node, at),
    "MVAU": lambda model, node, at: _mvau(model, node, at),
    "ConvolutionInputGenerator": lambda model, node, at: _conv_input_generator(node, at),
    "Pool": lambda model, node, at: _pool(node, at),
    "ColumnMax": lambda model, node, at: _column_max(node, at),
    "FMPadding": lambda model, node, at: _fm_padding(node, at),
    "GlobalAccPool": lambda model, node, at: _global_acc_pool(node, at),
    "DuplicateStreams": lambda model, node, at: _duplicate_streams(node, at),
}
"""The HW layers with a golden model that read one stream, by op type."""


def compile_segment(model, name: str, where: str = "") -> SegmentProgram:
    """Compiles a HW-layer graph (a chain, or with forks and residual adds) into numpy
    layers in graph order; an unsupported or misplaced node is a GoldenError."""
    where = where or name
    iname = model.graph.input[0].name
    mul = output_scale_node(model)
    scale = float(np.asarray(model.get_initializer(mul.input[1])).reshape(-1)[0])
    prog = SegmentProgram(name, tuple(model.get_tensor_shape(iname)[1:]),
                          model.get_tensor_datatype(iname).name, scale, iname, model.graph.output[0].name)
    nodes = list(model.graph.node)
    available = {iname}
    skip = set()
    for k, node in enumerate(nodes):
        at = f"{where}: node {node.name!r} ({node.op_type})"
        streams = [t for t in node.input if model.get_initializer(t) is None]
        missing = [t for t in streams if t not in available]
        if missing:
            raise GoldenError(f"{at} reads {missing}, which no earlier node writes: the graph is not in order")
        available.update(node.output)
        if k in skip:
            continue
        if node is mul:  # the integers pass on unscaled (boundary Transposes may follow)
            prog.layers.append(Layer(node.name, "OutputScale", lambda x: x, (node.input[0],), (node.output[0],)))
            continue
        nxt = nodes[k + 1] if k + 1 < len(nodes) else None
        if node.op_type == "ConvolutionInputGenerator" and nxt is not None and nxt.op_type == "Pool" \
                and nxt.input[0] == node.output[0] and len(model.find_consumers(node.output[0])) == 1:
            fused = _window_max(node, nxt)
            if fused is not None:
                prog.layers.append(Layer(f"{node.name}+{nxt.name}", "WindowMax", fused, (node.input[0],),
                                         (nxt.output[0],)))
                skip.add(k + 1)
                continue
        if node.op_type == "Transpose":
            fn = _transpose(node)
        elif not node.domain.startswith(HW_DOMAIN):
            raise GoldenError(f"{at} is not a FINN HW layer")
        elif node.op_type == "ElementwiseAdd":
            fn = _elementwise_add(node, at)
        elif node.op_type in _SINGLE_INPUT_LAYERS:
            fn = _SINGLE_INPUT_LAYERS[node.op_type](model, node, at)
        else:
            raise GoldenError(f"{at} has no golden model")
        prog.layers.append(Layer(node.name, node.op_type, fn, tuple(streams), tuple(node.output)))
    if prog.output_name not in available:
        raise GoldenError(f"{where}: no node writes the graph output {prog.output_name!r}")
    return prog


@dataclass
class CascadeResult:
    """Per image: predicted class, exit index (len(heads) = the final classifier), and the
    integer logits of every head reached (rows of images that did not reach it are 0)."""

    classes: np.ndarray  # (N,) int64
    exit_index: np.ndarray  # (N,) int64
    head_logits: list[np.ndarray]  # per head (N, K) int64
    reached: list[np.ndarray]  # per head, then the final classifier: (N,) bool
    final_logits: np.ndarray  # (N, K) int64
    scores: list[np.ndarray]  # per head (N,) int64, 0 where not reached

    def first(self, n: int) -> "CascadeResult":
        """The result of the first n images alone."""
        return CascadeResult(self.classes[:n], self.exit_index[:n], [h[:n] for h in self.head_logits],
                             [r[:n] for r in self.reached], self.final_logits[:n], [s[:n] for s in self.scores])


@dataclass
class GoldenCascade:
    """The compiled multi-exit dataflow: backbone segments, one head after each but the
    last, and each head's integer thresholds (None = the class never exits)."""

    backbone: list[SegmentProgram]
    heads: list[SegmentProgram]
    thresholds: list[list[int | None]]
    score: str = "margin"
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    """Threads that simulate chunks of images at once (BLAS is held to one thread each)."""
    chunk: int = 1000
    """Images per chunk."""

    def __post_init__(self):
        if len(self.heads) != len(self.backbone) - 1 or len(self.thresholds) != len(self.heads):
            raise ValueError(f"{len(self.backbone)} backbone segments need {len(self.backbone) - 1} "
                             f"heads and threshold tables; got {len(self.heads)} and {len(self.thresholds)}")

    def _parallel(self, fn: Callable[[np.ndarray], object], pixels: np.ndarray) -> list:
        """fn over chunks of `pixels`, in order; in worker threads when there are several chunks."""
        parts = [pixels[i:i + self.chunk] for i in range(0, len(pixels), self.chunk)] or [pixels]
        if self.workers <= 1 or len(parts) == 1:
            return [fn(p) for p in parts]
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(fn, parts))

    def segment_outputs(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """Every segment's integer output on every image (no exits): {segment name: int64}."""
        parts = self._parallel(self._segment_outputs, pixels)
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def run(self, pixels: np.ndarray, exits: bool = True) -> CascadeResult:
        """pixels (N, C, H, W) uint8 codes -> CascadeResult. With exits=False every image
        runs every segment (the decisions are still made and reported)."""
        parts = self._parallel(lambda p: self._run(p, exits), pixels)
        cat = lambda rows: [np.concatenate(r) for r in zip(*rows)]  # noqa: E731
        return CascadeResult(np.concatenate([p.classes for p in parts]),
                             np.concatenate([p.exit_index for p in parts]),
                             cat([p.head_logits for p in parts]), cat([p.reached for p in parts]),
                             np.concatenate([p.final_logits for p in parts]), cat([p.scores for p in parts]))

    def _segment_outputs(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        out, x = {}, pixels
        for i, seg in enumerate(self.backbone):
            x = out[seg.name] = seg.run(x)
            if i < len(self.heads):
                out[self.heads[i].name] = self.heads[i].run(x)
        return out

    def _run(self, pixels: np.ndarray, exits: bool) -> CascadeResult:
        n = len(pixels)
        first = FirstExit(n, len(self.heads))  # the leave-at-first rule, from calib
        open_ = np.arange(n)  # images still in the pipeline
        x = pixels
        head_logits, reached, scores = [], [], []
        for i, seg in enumerate(self.backbone):
            x = seg.run(x)  # codes of the images in open_
            mask = np.zeros(n, bool)
            mask[open_] = True
            reached.append(mask)
            if i == len(self.heads):
                final = np.zeros((n, x.shape[1]), np.int64)
                final[open_] = x
                final_pred = np.zeros(n, np.int64)
                final_pred[open_] = predicted_class(x)
                first.finish(final_pred)
                break
            z = self.heads[i].run(x)  # (n_open, K)
            logits = np.zeros((n, z.shape[1]), np.int64)
            logits[open_] = z
            head_logits.append(logits)
            d = decide(z, self.thresholds[i], self.score)  # (n_open, 3) class, exits, score
            takes, pred, s = np.zeros(n, bool), np.zeros(n, np.int64), np.zeros(n, np.int64)
            takes[open_], pred[open_], s[open_] = d[:, 1] == 1, d[:, 0], d[:, 2]
            scores.append(s)
            leaving = first.offer(i, takes, pred)  # (n,) the images that leave here
            if exits:
                stay = ~leaving[open_]
                x, open_ = x[stay], open_[stay]
        return CascadeResult(first.pred, first.exit_index, head_logits, reached, final, scores)


def load_cascade(run: Path, manifest: dict, thresholds: list[list[int | None]], score: str) -> GoldenCascade:
    """The cascade from the `dataflow` step's manifest (HW graph per segment, paths
    relative to the run folder `run`), as read and checked by `btsee.run_folder.read_manifest`."""
    progs = load_programs(run, manifest)
    kinds = {seg["name"]: seg["kind"] for seg in manifest["segments"]}
    backbone = [p for name, p in progs.items() if kinds[name] == "backbone"]
    heads = [p for name, p in progs.items() if kinds[name] == "head"]
    return GoldenCascade(backbone, heads, thresholds, score)


def load_programs(run: Path, manifest: dict) -> dict[str, SegmentProgram]:
    """{segment name: its compiled HW graph} in manifest order, from the `dataflow` step's
    manifest (paths relative to the run folder `run`)."""
    progs = {}
    for seg in manifest["segments"]:
        path = Path(run) / seg["hw_file"]
        progs[seg["name"]] = compile_segment(load_hw(path, seg.get("input_type")), seg["name"], str(path))
    return progs
