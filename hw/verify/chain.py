"""The bit-exactness chain (docs/design.md §7): the golden simulator against qonnx's execution
of the exported QONNX graphs and FINN's Python execution of the HW-layer graphs.

Engines: 'qonnx' runs the exported graphs in float64 (`hw.verify.exact_qonnx`: the exact
reference), 'qonnx-float32' runs them as exported (float32, which can round a value on a
boundary to the other side: reported, not a link of the chain), 'finn' runs the HW graphs.

Both reference executions run copies of their graphs made for a batch of `BATCH` images
(`hw.verify.batch`), and each is chained on its own outputs, so a difference anywhere
shows up in every later segment. Each segment's output is compared as integers:
activation codes of a backbone segment, logits of a head and of the classifier. The exit
decisions of the reference chains are made by the `ExitDecision` custom op executed by
qonnx (the exit unit's streaming model, `hw.exit_decision`); those of the golden
simulator by the vectorized rule of `calib.rules`; both are compared on class and exit
index.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ChainSegment:
    name: str
    kind: str  # "backbone" or "head"
    source: str  # the segment whose codes feed this one, "input" for the first
    qonnx_file: str
    hw_file: str
    output_scale: float


ENGINES = ("qonnx", "qonnx-float32", "finn")
BATCH = 50
"""Images per execution of a reference graph (`hw.verify.batch`)."""
_MODELS: dict = {}  # per worker process: (file, float64?, batch) -> ModelWrapper


def _model(path: str, float64: bool = False, batch: int = BATCH):
    from qonnx.core.modelwrapper import ModelWrapper

    from hw.verify.batch import batch_safe_im2col, with_batch
    from hw.verify.exact_qonnx import widen_to_float64
    from hw.verify.sanitize import fast_sanitize

    batch_safe_im2col()
    fast_sanitize()
    key = (path, float64, batch)
    if key not in _MODELS:
        model = ModelWrapper(path)
        _MODELS[key] = with_batch(widen_to_float64(model) if float64 else model, batch)
    return _MODELS[key]


def integer_output(model, x: np.ndarray, execute) -> np.ndarray:
    """Runs a HW graph with `execute` (FINN's execute_onnx) over `x`, a batch of the
    graph's size at a time, and returns the integers entering its output scale Mul, in
    the graph's output layout."""
    from hw.finn.convert import output_scale_node
    from hw.verify.batch import run_in_batches

    mul = output_scale_node(model)
    iname = model.graph.input[0].name
    y = run_in_batches(model, x, lambda m, part: execute(m, {iname: part}, return_full_exec_context=True)
                       [mul.input[0]])
    # Transposes after the Mul permute the layout; apply them to the integers as well
    t = mul.output[0]
    while t != model.graph.output[0].name:
        (tr,) = model.find_consumers(t)
        perm = [a.ints for a in tr.attribute if a.name == "perm"][0]
        y = y.transpose(perm)
        t = tr.output[0]
    return y


def _run_chunk(args) -> dict[str, np.ndarray]:
    """One worker's share: every segment on images `pixels`, executed by `engine`."""
    segments, pixels, engine = args
    if engine == "finn":
        from finn.core.onnx_exec import execute_onnx
    else:
        from qonnx.core.onnx_exec import execute_onnx
    from hw.export import integer_codes
    from hw.verify.batch import run_in_batches

    codes = {"input": pixels.astype(np.float32)}
    for seg in segments:
        x = codes[seg.source]
        if engine != "finn":
            wide = engine == "qonnx"
            model = _model(seg.qonnx_file, float64=wide)
            iname, oname = model.graph.input[0].name, model.graph.output[0].name
            x = x.astype(np.float64 if wide else np.float32)
            y = run_in_batches(model, x, lambda m, part: execute_onnx(m, {iname: part})[oname])
            out = integer_codes(y, seg.output_scale, f"{seg.qonnx_file} output")
        else:
            out = integer_output(_model(seg.hw_file), x, execute_onnx)
            if not np.array_equal(out, np.rint(out)):
                raise ValueError(f"{seg.hw_file}: the tensor entering the output scale Mul is not integer")
            out = out.astype(np.int64)
        codes[seg.name] = out.astype(np.float32) if seg.kind == "backbone" else out
    return {s.name: np.asarray(codes[s.name]).astype(np.int64) for s in segments}


def run_reference(segments: list[ChainSegment], pixels: np.ndarray, engine: str, workers: int = 1,
                  chunk: int = 50) -> dict[str, np.ndarray]:
    """Integer outputs of every segment on uint8 `pixels` (N, C, H, W), executed by
    `engine` (one of ENGINES, see the module docstring) in chunks of `chunk` images over
    `workers` processes, with a progress bar."""
    from calib.progress import progress

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    chunks = [pixels[i:i + chunk] for i in range(0, len(pixels), chunk)]
    bar = progress(total=len(pixels), desc=f"chain {engine}", unit="image", leave=False)
    parts = []
    if workers <= 1 or len(chunks) == 1:
        for c in chunks:
            parts.append(_run_chunk((segments, c, engine)))
            bar.update(len(c))
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for c, part in zip(chunks, pool.map(_run_chunk, [(segments, c, engine) for c in chunks])):
                parts.append(part)
                bar.update(len(c))
    bar.close()
    return {s.name: np.concatenate([p[s.name] for p in parts]) for s in segments}


def qonnx_decisions(head_logits: np.ndarray, thresholds: list[int | None], score: str) -> np.ndarray:
    """(N, K) integer logits -> (N, 3) (class, exits, score) from the ExitDecision op as
    executed by qonnx's `execute_onnx`."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.basic import qonnx_make_model

    from hw.exit_decision import make_node

    n, k = head_logits.shape
    graph = helper.make_graph(
        [make_node("logits", "decision", thresholds, score, name="ExitDecision_0")], "exit_decision",
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [n, k])],
        [helper.make_tensor_value_info("decision", TensorProto.FLOAT, [n, 3])])
    model = ModelWrapper(qonnx_make_model(graph))
    out = execute_onnx(model, {"logits": head_logits.astype(np.float32)})["decision"]
    return np.rint(out).astype(np.int64)


def cascade_of(decisions: list[np.ndarray], final_logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class (N,), exit index (N,)) from each head's (N, 3) decisions, by the
    leave-at-first rule of `calib.cascade`."""
    from calib.cascade import leave_at_first
    from calib.rules import predicted_class

    exit_index, classes = leave_at_first([d[:, 1] == 1 for d in decisions], [d[:, 0] for d in decisions],
                                         predicted_class(final_logits).astype(np.int64))
    return classes, exit_index


def segments_from_manifest(run: Path, manifest: dict) -> list[ChainSegment]:
    return [ChainSegment(s["name"], s["kind"], s["source"], str(run / s["qonnx_file"]),
                         str(run / s["hw_file"]), float(s["output_scale"])) for s in manifest["segments"]]
