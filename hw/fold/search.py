"""Exit-aware folding: each segment folded for the share of images that reach it, and the
fastest design that fits a LUT budget, over every subset of the exits (none included).

The search works on ladders of FINN's own foldings (`hw.fold.refold`: every distinct
folding of a segment, with its cycles per frame, BRAM18, DSP and FINN's LUT). Their LUTs
are modelled (`modelled_luts`): FINN counts 0 LUT for the RTL MVU, so its LUT estimate
hardly moves with folding, while synthesis puts about 190 LUTs around every DSP of the MVU.

A `Topology` is the chain with the exits it builds; `Topology.stages` cuts it after each
built exit. `fold_early_exit` picks, for a rate R, each stage's segments' and head's
cheapest folding that keeps up with R x (the fraction of images entering the stage) and
scores the design with the pipeline model (`hw.fold.pipeline`) replaying a sequence of
exits; with no exit built that is the backbone alone, as fast as its slowest segment.
`search` sweeps R for every subset and keeps each subset's LUT-throughput front within
the board's BRAM18 and DSP, and the front over all of them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

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
    """The folded, specialized graph (the estimate build's partition); empty until built."""
    config: dict = field(hash=False, compare=False, default_factory=dict)
    """FINN folding config ({node: {PE, SIMD, parallel_window}}) that rebuilds this folding."""
    target_cycles: int = 0
    """The cycles-per-frame target SetFolding was given (0: from a frame-rate target)."""

    @property
    def lut(self) -> float:
        return modelled_luts(self.finn_lut, self.dsp)


def modelled_luts(finn_lut: float, dsp: float) -> float:
    """Modelled synthesized LUTs (LUT + LUTRAM) of a segment (see LUT_MODEL_SOURCE)."""
    return LUTS_PER_FINN_LUT * finn_lut + LUTS_PER_DSP * dsp


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
    exits_built: tuple[int, ...] = ()
    """The exits of the full chain this design builds (indices of its heads); () = none."""

    def summary(self) -> dict:
        """JSON-ready: resources, throughput, the exits built and per segment target, cycles and folding."""
        return {"kind": self.kind, "rate_target_fps": round(self.rate_target, 1), "fps": round(self.fps, 1),
                "cycles_per_image": round(self.cycles_per_image, 1), "exits_built": list(self.exits_built),
                "resources": {k: round(v, 1) for k, v in self.resources.items()},
                "buffer_peak_frames": self.buffer_peak_frames,
                "segments": {n: {"target_fps": o.target_fps, "cycles_per_frame": o.cycles, "DSP": o.dsp,
                                 "BRAM18": o.bram18, "LUT_modelled": round(o.lut), "folding": o.folding}
                             for n, o in self.choice.items()}}


@dataclass(frozen=True)
class Topology:
    """The chain: backbone segments (the last ends in the final classifier) and, after each
    but the last, its head, or None where that exit is not built."""

    backbones: list[str]
    heads: list[str | None]

    def __post_init__(self) -> None:
        if len(self.heads) != len(self.backbones) - 1:
            raise ValueError(f"topology: {len(self.backbones)} backbone segments need one head fewer, "
                             f"got {len(self.heads)} heads")

    @property
    def exits_built(self) -> tuple[int, ...]:
        return tuple(k for k, h in enumerate(self.heads) if h is not None)

    def with_exits(self, built: Sequence[int]) -> Topology:
        """The same chain building only the exits `built` (indices into heads)."""
        return Topology(list(self.backbones), [h if k in built else None for k, h in enumerate(self.heads)])

    def stages(self) -> list[tuple[list[str], str | None]]:
        """[(backbone segments, head or None)]: the chain cut after every built exit; the
        segments of one stage run back to back, the last stage ends in the final classifier."""
        out, run = [], []
        for k, b in enumerate(self.backbones):
            run.append(b)
            if k < len(self.heads) and self.heads[k] is not None:
                out.append((run, self.heads[k]))
                run = []
        out.append((run, None))
        return out


def exit_subsets(n_exits: int) -> list[tuple[int, ...]]:
    """Every subset of the exits 0..n_exits-1, the empty one (no exit: the backbone alone) first."""
    from itertools import combinations

    return [c for r in range(n_exits + 1) for c in combinations(range(n_exits), r)]


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
    """The pipeline model's view of a folded design: per stage the cycles per frame of its
    slowest backbone segment and of its head, the frames the conditional buffers hold."""
    stages = topology.stages()
    return PipelineSpec([max(choice[b].cycles for b in bbs) for bbs, _ in stages],
                        [choice[h].cycles for _, h in stages[:-1]],
                        [choice[bbs[-1]].out_words for bbs, _ in stages[:-1]], [buffer_frames] * (len(stages) - 1))


class ReplayCache:
    """Pipeline-model replays by design (the cycles per stage and the buffers): many rates
    of a sweep fold a design the same way."""

    def __init__(self):
        self.runs: dict[tuple, object] = {}

    def replay(self, spec: PipelineSpec, exits: np.ndarray, label: object):
        key = (label, tuple(spec.backbone_cycles), tuple(spec.head_cycles), tuple(spec.frame_words),
               tuple(spec.buffer_frames))
        if key not in self.runs:
            self.runs[key] = simulate_pipeline(spec, exits)
        return self.runs[key]


def fold_early_exit(ladders: dict[str, list[FoldOption]], topology: Topology, reach: Sequence[float],
                    rate: float, clock_hz: float, exits: np.ndarray, buffer_frames: int,
                    cache: ReplayCache | None = None) -> Design:
    """The design for `rate` building the exits of `topology`: the segments of stage j and
    its head folded for rate x reach[j] (the share of images entering stage j), scored by
    the pipeline model on `exits` (the stage index each image leaves at, in order)."""
    choice: dict[str, FoldOption] = {}
    for j, (backbones, head) in enumerate(topology.stages()):
        budget = clock_hz / (rate * max(reach[j], 1e-9))
        for name in backbones + ([head] if head else []):
            choice[name] = cheapest_meeting(ladders[name], budget)
    return design_of(choice, topology, exits, buffer_frames, clock_hz, cache, rate)


def design_of(choice: dict[str, FoldOption], topology: Topology, exits: np.ndarray, buffer_frames: int,
              clock_hz: float, cache: ReplayCache | None = None, rate: float = 0.0) -> Design:
    """The design folding every segment as `choice` says, building the exits of `topology`:
    its modelled resources and the pipeline model's throughput on `exits` (with no exit
    built, the chain's: its slowest segment)."""
    stages = topology.stages()
    spec = pipeline_spec(choice, topology, buffer_frames)
    if len(stages) == 1:  # the chain alone: every image at its slowest segment's pace
        cycles, peaks = float(spec.backbone_cycles[0]), []
    else:
        run = cache.replay(spec, exits, topology.exits_built) if cache else simulate_pipeline(spec, exits)
        cycles, peaks = run.steady_cycles_per_image, run.buffer_peak_frames
    glue = glue_resources([choice[bbs[-1]] for bbs, _ in stages[:-1]], buffer_frames)
    kind = "early_exit" if topology.exits_built else "no_exit"
    return Design(kind, rate or clock_hz / cycles, choice, _total(list(choice.values()), glue), clock_hz / cycles,
                  cycles, peaks, topology.exits_built)


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
    early_exit: list[Design]   # the LUT-throughput front over every subset of the exits, none included
    no_exit: list[Design]      # the front of the backbone alone
    by_subset: dict[tuple[int, ...], list[Design]] = field(default_factory=dict)
    """The front of each subset of the exits."""


def search(ladders: dict[str, list[FoldOption]], topology: Topology, exits_by_subset: dict[tuple[int, ...], np.ndarray],
           clock_hz: float, rates: Sequence[float], buffer_frames: int, board: dict[str, float],
           cache: ReplayCache | None = None) -> SearchResult:
    """Every subset of the exits in `exits_by_subset` ({built exits: (n,) stage index each
    image leaves at}; () = the backbone alone) folded at every rate of `rates`; the fronts
    among the designs within the board's BRAM18 and DSP (LUTs are the axis the caller
    budgets). The early-exit front spans every subset, so it is never slower than the
    no-exit one at any LUT count."""
    hard = {k: board[k] for k in ("BRAM18", "DSP") if k in board}
    cache = cache or ReplayCache()
    fronts = {}
    for subset, exits in exits_by_subset.items():
        topo = topology.with_exits(subset)
        reach = reach_fractions(exits, len(subset))
        designs = [fold_early_exit(ladders, topo, reach, r, clock_hz, exits, buffer_frames, cache) for r in rates]
        fronts[subset] = pareto([d for d in designs if fits(d, hard)])
    every = [d for f in fronts.values() for d in f]
    return SearchResult(pareto(every), fronts.get((), []), fronts)


def front_density(a: Sequence[Design], b: Sequence[Design], low: float, high: float) -> dict:
    """How closely two fronts' LUT counts interleave between `low` and `high` LUTs (cut to
    where both fronts have designs): per point of each, the LUT distance to the nearest
    point of the other relative to its own LUTs; the worst, the share within 3 %, and the
    widest gaps (None and [] when either front is empty: nothing to interleave)."""
    la, lb = [d.resources["LUT"] for d in a], [d.resources["LUT"] for d in b]
    if not (la and lb):
        return {"range_lut": [round(low), round(high)], "points": [len(la), len(lb)], "worst_gap": None,
                "share_within_3_percent": None, "widest_gaps_at_lut": []}
    low, high = max(low, min(la), min(lb)), min(high, max(la), max(lb))

    def gaps(xs, ys):
        ys = np.array(sorted(ys))
        return [(x, float(np.min(np.abs(ys - x)) / x)) for x in xs if low <= x <= high]
    g = gaps(la, lb) + gaps(lb, la)
    worst = sorted(g, key=lambda t: -t[1])[:3]
    return {"range_lut": [round(low), round(high)],
            "points": [sum(low <= x <= high for x in la), sum(low <= x <= high for x in lb)],
            "worst_gap": round(worst[0][1], 4) if g else None,
            "share_within_3_percent": round(float(np.mean([v <= 0.03 for _, v in g])), 4) if g else None,
            "widest_gaps_at_lut": [[round(x), round(v, 4)] for x, v in worst]}


def ratio_curve(result: SearchResult, budgets: Sequence[float], board: dict[str, float]) -> list[dict]:
    """Per LUT budget: the fastest early-exit and no-exit designs within it and the board,
    and their throughput ratio (None where either has no design)."""
    rows = []
    for b in budgets:
        limits = dict(board, LUT=b)
        ee, ne = best_within(result.early_exit, limits), best_within(result.no_exit, limits)
        rows.append({"budget_lut": round(b), "early_exit_fps": ee and round(ee.fps, 1),
                     "no_exit_fps": ne and round(ne.fps, 1), "exits_built": ee and list(ee.exits_built),
                     "ratio": round(ee.fps / ne.fps, 3) if ee and ne else None})
    return rows
