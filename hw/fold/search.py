"""Exit-aware folding: each segment folded for the share of images that reach it, and the
fastest design that fits a LUT budget, with and without exits.

The search works on ladders of FINN's own foldings: `segment_ladder` runs FINN's
estimate-only build of one segment at a geometric series of frame-rate targets and keeps
the distinct foldings (cycles per frame, BRAM18, DSP, FINN's LUT). Their LUTs are
modelled (`modelled_luts`): FINN counts 0 LUT for the RTL MVU, so its LUT estimate hardly
moves with folding, while synthesis puts about 190 LUTs around every DSP of the MVU.

`fold_early_exit` picks, for a rate R, each segment's and head's cheapest folding that keeps
up with R x (the fraction of images reaching it) and scores the design with the pipeline
model (`hw.fold.pipeline`) replaying a sequence of exits; `fold_no_exit` folds the backbone
alone for R, as fast as its slowest segment; `search` sweeps R and keeps each kind's
LUT-throughput front within the board's BRAM18 and DSP.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hw.fold.pipeline import PipelineSpec, simulate_pipeline

LUTS_PER_FINN_LUT = 0.935
LUTS_PER_DSP = 187.0
LUT_MODEL_SOURCE = ("modelled synthesized LUTs (LUT + LUTRAM) = 0.935 x FINN's LUT estimate + 187 x DSP, a "
                    "least-squares fit to the default run's seven segments synthesized by Yosys at a uniform "
                    "3,000 fps folding (backbone_0, with its 8-bit input, is overestimated 2x)")
GLUE_LUTS_PER_EXIT = 270.0
"""Fork, conditional buffer control, decision queue and merge share per exit (the default run's
exit glue: 811 LUT + LUTRAM for three exits)."""
BRAM18_BITS = 18 * 1024


@dataclass(frozen=True)
class FoldOption:
    """One folding of a segment: FINN's estimate at `target_fps`."""

    target_fps: float
    cycles: int
    finn_lut: float
    bram18: float
    dsp: float
    out_words: int = 1
    """Words per frame on the output stream (what a conditional buffer after it holds)."""
    out_bits: int = 1
    """Value bits per output word (the buffer keeps those)."""
    folding: dict = field(hash=False, compare=False, default_factory=dict)
    graph: str = ""
    """The folded, specialized graph (the estimate build's partition)."""

    @property
    def lut(self) -> float:
        return modelled_luts(self.finn_lut, self.dsp)


def modelled_luts(finn_lut: float, dsp: float) -> float:
    """Modelled synthesized LUTs (LUT + LUTRAM) of a segment (see LUT_MODEL_SOURCE)."""
    return LUTS_PER_FINN_LUT * finn_lut + LUTS_PER_DSP * dsp


def ladder_targets(low: float = 250.0, high: float = 100_000.0, step: float = 1.25) -> list[float]:
    """The frame-rate targets of a ladder: low, low x step, ... up to high."""
    n = int(math.floor(math.log(high / low) / math.log(step))) + 1
    return [round(low * step ** i, 1) for i in range(n)]


def output_stream(graph: Path) -> tuple[int, int]:
    """(words per frame, value bits per word) of a folded graph's output stream."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    model = ModelWrapper(str(graph))
    last = model.find_producer(model.graph.output[0].name)
    op = getCustomOp(last)
    folded = op.get_folded_output_shape()  # (1, ..., PE)
    words = int(np.prod(folded[:-1]))
    return words, int(folded[-1]) * op.get_output_datatype().bitwidth()


def segment_ladder(estimate: Callable[[float], object], targets: Sequence[float]) -> list[FoldOption]:
    """The distinct foldings FINN chooses at `targets` (estimate(target) -> SegmentEstimate),
    fastest last; a folding reached from several targets is kept once (the lowest target)."""
    seen: dict[str, FoldOption] = {}
    for t in targets:
        est = estimate(t)
        key = repr(sorted(est.folding.items()))
        if key not in seen:
            words, bits = output_stream(est.folded_graph)
            seen[key] = FoldOption(t, int(est.cycles_per_frame), float(est.lut), float(est.bram18), float(est.dsp),
                                   words, bits, est.folding, str(est.folded_graph))
    return sorted(seen.values(), key=lambda o: (-o.cycles, o.lut))


def cheapest_meeting(options: Sequence[FoldOption], cycles: float) -> FoldOption:
    """The option with the fewest modelled LUTs whose cycles per frame are within `cycles`
    (ties: fewer DSP); the fastest one when none is."""
    fitting = [o for o in options if o.cycles <= cycles]
    if not fitting:
        return min(options, key=lambda o: (o.cycles, o.lut))
    return min(fitting, key=lambda o: (o.lut, o.dsp, o.bram18, o.cycles))


@dataclass
class Design:
    """A folded design: the option chosen per segment, its resources and throughput."""

    kind: str               # "early_exit" or "no_exit"
    rate_target: float      # images/s the folding aimed at
    choice: dict[str, FoldOption]
    resources: dict[str, float]
    fps: float              # sustained images/s (pipeline model or slowest segment)
    cycles_per_image: float
    buffer_peak_frames: list[int] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-ready: resources, throughput and per segment target, cycles and folding."""
        return {"kind": self.kind, "rate_target_fps": round(self.rate_target, 1), "fps": round(self.fps, 1),
                "cycles_per_image": round(self.cycles_per_image, 1),
                "resources": {k: round(v, 1) for k, v in self.resources.items()},
                "buffer_peak_frames": self.buffer_peak_frames,
                "segments": {n: {"target_fps": o.target_fps, "cycles_per_frame": o.cycles, "DSP": o.dsp,
                                 "BRAM18": o.bram18, "LUT_modelled": round(o.lut), "folding": o.folding}
                             for n, o in self.choice.items()}}


@dataclass(frozen=True)
class Topology:
    """The chain: backbone segments (the last ends in the final classifier) and the head
    after each but the last."""

    backbones: list[str]
    heads: list[str]

    def __post_init__(self) -> None:
        if len(self.heads) != len(self.backbones) - 1:
            raise ValueError(f"topology: {len(self.backbones)} backbone segments need one head fewer, "
                             f"got {len(self.heads)} heads")


def glue_resources(buffered: Sequence[FoldOption], buffer_frames: int) -> dict[str, float]:
    """Modelled LUT and BRAM18 of the exit glue after the backbone segments `buffered`: per
    exit a share of control logic and a conditional buffer of `buffer_frames` frames in
    block RAM."""
    bram = sum(math.ceil(buffer_frames * o.out_words * o.out_bits / BRAM18_BITS) for o in buffered)
    return {"LUT": GLUE_LUTS_PER_EXIT * len(buffered), "BRAM18": float(bram), "DSP": 0.0}


def reach_fractions(exits: np.ndarray, n_exits: int) -> list[float]:
    """(n,) exit indices -> fraction of images reaching exit point k = 0..n_exits (the last:
    the final classifier)."""
    counts = np.bincount(np.asarray(exits), minlength=n_exits + 1)[: n_exits + 1]
    return [float(counts[k:].sum() / len(exits)) for k in range(n_exits + 1)]


def _total(options: Sequence[FoldOption], extra: dict[str, float] | None = None) -> dict[str, float]:
    res = {"LUT": sum(o.lut for o in options), "BRAM18": sum(o.bram18 for o in options),
           "DSP": sum(o.dsp for o in options)}
    for k, v in (extra or {}).items():
        res[k] += v
    return res


def pipeline_spec(choice: dict[str, FoldOption], topology: Topology, buffer_frames: int) -> PipelineSpec:
    """The pipeline model's view of a folded design: each segment's and head's cycles per
    frame, the frames the conditional buffers hold."""
    buffered = [choice[b] for b in topology.backbones[:-1]]
    return PipelineSpec([choice[b].cycles for b in topology.backbones], [choice[h].cycles for h in topology.heads],
                        [o.out_words for o in buffered], [buffer_frames] * len(topology.heads))


def fold_early_exit(ladders: dict[str, list[FoldOption]], topology: Topology, reach: Sequence[float],
                    rate: float, clock_hz: float, exits: np.ndarray, buffer_frames: int) -> Design:
    """The early-exit design for `rate`: segment k and head k folded for rate x reach[k],
    scored by the pipeline model on `exits` (the sequence of exit indices)."""
    choice: dict[str, FoldOption] = {}
    for k, name in enumerate(topology.backbones):
        budget = clock_hz / (rate * max(reach[k], 1e-9))
        choice[name] = cheapest_meeting(ladders[name], budget)
        if k < len(topology.heads):
            choice[topology.heads[k]] = cheapest_meeting(ladders[topology.heads[k]], budget)
    run = simulate_pipeline(pipeline_spec(choice, topology, buffer_frames), exits)
    glue = glue_resources([choice[b] for b in topology.backbones[:-1]], buffer_frames)
    return Design("early_exit", rate, choice, _total(list(choice.values()), glue),
                  clock_hz / run.steady_cycles_per_image, run.steady_cycles_per_image, run.buffer_peak_frames)


def fold_no_exit(ladders: dict[str, list[FoldOption]], topology: Topology, rate: float, clock_hz: float) -> Design:
    """The backbone alone folded for `rate`: a chain, as fast as its slowest segment."""
    choice = {b: cheapest_meeting(ladders[b], clock_hz / rate) for b in topology.backbones}
    cycles = float(max(o.cycles for o in choice.values()))
    return Design("no_exit", rate, choice, _total(list(choice.values())), clock_hz / cycles, cycles)


def fits(design: Design, limits: dict[str, float]) -> bool:
    """Every resource within `limits` (keys LUT, BRAM18, DSP; missing keys do not bind)."""
    return all(design.resources[k] <= limits[k] for k in ("LUT", "BRAM18", "DSP") if k in limits)


def pareto(designs: Sequence[Design]) -> list[Design]:
    """The designs no other beats on both LUTs (fewer) and throughput (higher), by LUT."""
    front: list[Design] = []
    for d in sorted(designs, key=lambda d: (d.resources["LUT"], -d.fps)):
        if not front or d.fps > front[-1].fps:
            front.append(d)
    return front


def best_within(front: Sequence[Design], limits: dict[str, float]) -> Design | None:
    """The fastest design of `front` within `limits`; None when none fits."""
    fitting = [d for d in front if fits(d, limits)]
    return max(fitting, key=lambda d: (d.fps, -d.resources["LUT"])) if fitting else None


@dataclass
class SearchResult:
    early_exit: list[Design]   # the LUT-throughput front of each design
    no_exit: list[Design]


def search(ladders: dict[str, list[FoldOption]], topology: Topology, exits: np.ndarray, clock_hz: float,
           rates: Sequence[float], buffer_frames: int, board: dict[str, float]) -> SearchResult:
    """Both designs folded at every rate of `rates`; their fronts among those within the board's
    BRAM18 and DSP (LUTs are the axis the caller budgets)."""
    reach = reach_fractions(exits, len(topology.heads))
    hard = {k: board[k] for k in ("BRAM18", "DSP") if k in board}
    ee = [fold_early_exit(ladders, topology, reach, r, clock_hz, exits, buffer_frames) for r in rates]
    ne = [fold_no_exit(ladders, topology, r, clock_hz) for r in rates]
    return SearchResult(pareto([d for d in ee if fits(d, hard)]), pareto([d for d in ne if fits(d, hard)]))


def ratio_curve(result: SearchResult, budgets: Sequence[float], board: dict[str, float]) -> list[dict]:
    """Per LUT budget: the fastest early-exit and no-exit designs within it and the board,
    and their throughput ratio (None where either has no design)."""
    rows = []
    for b in budgets:
        limits = dict(board, LUT=b)
        ee, ne = best_within(result.early_exit, limits), best_within(result.no_exit, limits)
        rows.append({"budget_lut": round(b), "early_exit_fps": ee and round(ee.fps, 1),
                     "no_exit_fps": ne and round(ne.fps, 1),
                     "ratio": round(ee.fps / ne.fps, 3) if ee and ne else None})
    return rows


def ladder_dir(root: Path, segment: str, target: float) -> Path:
    return root / segment / f"{target:g}fps"
