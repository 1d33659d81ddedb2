"""The FIFO a residual block needs on its shorter branch, sized from the folded graph.

A fork (DuplicateStreams) hands every word to both branches of a residual block, and
the join (the residual add) takes a word only when both branches offer one. The branch
with the convolutions holds many words before its first output (its window buffers
fill rows before they emit a window), so the other branch must hold as many, or the fork
stalls with the join waiting for the convolutions: a deadlock.

`branch_capacity` bounds, in words of the fork's output, what a branch can hold: the sum
over its layers of each layer's buffer (a window generator's line buffer, an MVU's input
vector and replay buffer, a few words of pipeline elsewhere), each converted to fork words
(a layer's buffered pixels cover at most as many fork pixels as the frame shrank by, never
fewer than one each). `skip_fifo_depths` gives the branch of smaller capacity a FIFO of
the other branch's capacity (its own layers are not counted: a stalled layer may hold
less than its bound) and the other branch none.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hw.finn.convert import DataflowError

PIPELINE_WORDS = {"Thresholding_rtl": 8, "StreamingDataWidthConverter_rtl": 4, "FMPadding_rtl": 4,
                  "Pool_hls": 2, "StreamingFIFO_rtl": 0}
"""Input words a layer without a line or vector buffer may hold at most (registers in its
pipeline), by op type; generous, so the bound stays a bound."""


class ResidualShapeError(DataflowError):
    """A fork whose branches do not meet again in one two-input join; names the node."""


@dataclass(frozen=True)
class Branch:
    """One way from a fork's output to the join: its layers in order and the join's input."""

    fork_output: str
    nodes: tuple[str, ...]
    join: str


def _frame(op, is_input: bool = True) -> tuple[int, int]:
    """(pixels, words per pixel) of a layer's input (or output) stream from FINN's folded shape."""
    shape = op.get_folded_input_shape() if is_input else op.get_folded_output_shape()
    pixels = math.prod(int(d) for d in shape[1:-2]) if len(shape) > 3 else 1
    return max(pixels, 1), int(shape[-2]) if len(shape) >= 2 else 1


def buffer_words(op, op_type: str) -> int:
    """Input words layer `op` can hold before (or while) its output lags: its line buffer,
    its vector buffers, or its pipeline registers."""
    if op_type.startswith("ConvolutionInputGenerator"):
        return int(op.get_buffer_depth()) + 4
    if op_type.startswith("MVAU"):
        sf = op.get_nodeattr("MW") // op.get_nodeattr("SIMD")
        return 3 * sf + 8  # the replay buffer, the input FIFO and a vector in flight
    return PIPELINE_WORDS.get(op_type, 8)


def branches(model, fork) -> tuple[Branch, Branch]:
    """The two branches of fork node `fork`, each followed through single-consumer layers
    to the two-input node both reach."""
    out = []
    for tensor in fork.output:
        nodes, t = [], tensor
        while True:
            consumers = model.find_consumers(t) or []
            if len(consumers) != 1:
                raise ResidualShapeError(f"node {fork.name!r}: its output {tensor!r} does not lead to one join "
                                         f"({len(consumers)} consumers of {t!r})")
            node = consumers[0]
            streams = [i for i in node.input if model.get_initializer(i) is None]
            if len(streams) == 2:
                out.append(Branch(tensor, tuple(nodes), node.name))
                break
            nodes.append(node.name)
            t = node.output[0]
    if out[0].join != out[1].join:
        raise ResidualShapeError(f"node {fork.name!r}: its branches end in {out[0].join!r} and {out[1].join!r}")
    return out[0], out[1]


def branch_capacity(model, fork, branch: Branch) -> int:
    """Fork words the layers of `branch` can hold at most (see the module docstring)."""
    from qonnx.custom_op.registry import getCustomOp

    fork_pixels, fork_wpp = _frame(getCustomOp(fork), is_input=False)
    total = 0
    for name in branch.nodes:
        node = model.get_node_from_name(name)
        op = getCustomOp(node)
        pixels, wpp = _frame(op)
        held_pixels = math.ceil(buffer_words(op, node.op_type) / wpp)
        total += held_pixels * max(1, math.ceil(fork_pixels / pixels)) * fork_wpp
    return total


def skip_fifo_depths(model, fork) -> dict[str, int]:
    """{fork output tensor: FIFO words}: the branch of smaller capacity gets the other's
    capacity, the other branch 0 (no FIFO)."""
    a, b = branches(model, fork)
    ca, cb = branch_capacity(model, fork, a), branch_capacity(model, fork, b)
    short, long_capacity = (a, cb) if ca <= cb else (b, ca)
    return {a.fork_output: 0, b.fork_output: 0, short.fork_output: long_capacity}
