"""A frame-level cycle model of the multi-exit dataflow pipeline.

The hardware (`hw/rtl/multi_exit.py`): backbone segment k feeds a fork; one branch goes
through exit head k to its decision queue, the other into conditional buffer k, which holds
the frame until head k decides, then forwards it to segment k+1 (the image goes on) or
drops it (the image exited) at one word per cycle. The merge emits the decisions in
input order. The model replays a sequence of images (the exit each takes, in order)
through that structure frame by frame:

- segment k and head k run in lockstep through the fork: a frame occupies the pair for
  max(segment cycles, head cycles), and the head decides when the pair finishes it;
- segment k starts the next frame that reaches it when it finished the previous one, its
  input frame is released by buffer k-1 (the decision is in and the buffer's output port
  is free), a frame slot is free in buffer k, and head k's decision queue has room;
- buffer k frees a slot when its frame has been forwarded (segment k+1 consumed it) or
  dropped (frame_words cycles after the decision);
- the merge emits image i's (class, exit) when its deciding head has decided and image
  i-1 is out.

Times are in clock cycles; a segment's pipeline latency beyond one frame is left out (a
constant offset, small against a thousand frames).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from calib.errors import BtseeError
from hw.steady_state import steady_interval


class PipelineError(BtseeError, ValueError):
    """Inconsistent pipeline parameters (names the field)."""


@dataclass(frozen=True)
class PipelineSpec:
    """The pipeline's timing: K exits before the final classifier.

    backbone_cycles: K+1 cycles per frame of the backbone segments (the last one ends in the
    final classifier); head_cycles: K cycles per frame of the heads; frame_words: K words per
    frame that segment k sends to buffer k (dropping costs that many cycles); buffer_frames:
    K depths of the conditional buffers in frames; queue_depth: decisions each head's queue
    holds; input_cycles: cycles between images at the input (0 = as fast as the design takes
    them).
    """

    backbone_cycles: Sequence[float]
    head_cycles: Sequence[float]
    frame_words: Sequence[int]
    buffer_frames: Sequence[int]
    queue_depth: int = 32
    input_cycles: float = 0.0

    def __post_init__(self) -> None:
        k = len(self.head_cycles)
        for name, n in (("backbone_cycles", k + 1), ("frame_words", k), ("buffer_frames", k)):
            if len(getattr(self, name)) != n:
                raise PipelineError(f"{name}: {len(getattr(self, name))} entries for {k} exits (needs {n})")
        for name in ("backbone_cycles", "head_cycles", "frame_words"):
            if any(v <= 0 for v in getattr(self, name)):
                raise PipelineError(f"{name}: every entry must be positive, got {list(getattr(self, name))}")
        if any(int(d) < 1 for d in self.buffer_frames):
            raise PipelineError(f"buffer_frames: every buffer holds at least one frame, got {list(self.buffer_frames)}")
        if self.queue_depth < 1:
            raise PipelineError(f"queue_depth must be at least 1, got {self.queue_depth}")

    @property
    def exits(self) -> int:
        return len(self.head_cycles)


@dataclass
class PipelineRun:
    """What the model gives for one sequence of images.

    total_cycles: first image in to the last decision out; out_cycles: (n,) when each
    image's decision leaves the merge; steady_cycles_per_image: `hw.steady_state.steady_interval`
    of the decisions (the rule the RTL simulations use); buffer_peak_frames: K
    peak occupancies of the conditional buffers; queue_peak: K peak occupancies of the
    decision queues; busy: K+1 fractions of the time each segment pair works.
    """

    total_cycles: float
    out_cycles: np.ndarray
    steady_cycles_per_image: float
    buffer_peak_frames: list[int]
    queue_peak: list[int]
    busy: list[float] = field(default_factory=list)

    def images_per_second(self, clock_mhz: float) -> float:
        return clock_mhz * 1e6 / self.steady_cycles_per_image


def _peak(intervals: list[tuple[float, float]]) -> int:
    """Most intervals [start, end) open at once (an interval ending at t is closed before
    one starting at t opens). The count rises only at a start, so the peak is the largest
    (starts <= s) - (ends <= s) over the starts s."""
    if not intervals:
        return 0
    bounds = np.asarray(intervals, dtype=np.float64)  # (n, 2): start, end
    starts, ends = np.sort(bounds[:, 0]), np.sort(bounds[:, 1])
    open_at = np.searchsorted(starts, starts, side="right") - np.searchsorted(ends, starts, side="right")
    return int(open_at.max())


def simulate_pipeline(spec: PipelineSpec, exits: Sequence[int]) -> PipelineRun:
    """Replays images with exit indices `exits` (0..K, K = the final classifier) in order
    through the pipeline `spec`; see the module docstring for the rules."""
    exits = np.asarray(exits, dtype=np.int64)  # (n,)
    K, n = spec.exits, len(exits)
    if n == 0:
        raise PipelineError("exits: no images")
    if exits.min() < 0 or exits.max() > K:
        raise PipelineError(f"exits: indices must lie in 0..{K}, got {exits.min()}..{exits.max()}")
    pace = [float(max(spec.backbone_cycles[k], spec.head_cycles[k]) if k < K else spec.backbone_cycles[k])
            for k in range(K + 1)]
    depth = [int(d) for d in spec.buffer_frames]
    words = [float(w) for w in spec.frame_words]
    queue_depth, input_cycles = spec.queue_depth, spec.input_cycles
    seg_free = [0.0] * (K + 1)         # when segment pair k can take its next frame
    port_free = [0.0] * K              # when buffer k's output port is free
    held: list[list[tuple[float, float]]] = [[] for _ in range(K)]  # buffer k: (enter, release) per frame
    queued: list[list[tuple[float, float]]] = [[] for _ in range(K)]  # queue k: (decided, merged) per image
    busy = [0.0] * (K + 1)
    out: list[float] = []
    last_out = 0.0
    # plain Python numbers in the loop: it runs per image and per segment, thousands of
    # times per design the fold step scores
    for i, e in enumerate(exits.tolist()):
        ready = i * input_cycles           # when the image's first word can enter
        for k in range(e + 1):             # the segments the image passes through
            start = max(ready, seg_free[k])
            if k < K:
                slot = len(held[k]) - depth[k]
                if slot >= 0:
                    start = max(start, held[k][slot][1])
                q = len(queued[k]) - queue_depth
                if q >= 0:
                    start = max(start, queued[k][q][1])
            finish = start + pace[k]
            seg_free[k] = finish
            busy[k] += pace[k]
            decided = finish                # head k's decision (the final classifier's at K)
            if k == K:
                break
            release_start = max(decided, port_free[k])
            if e == k:                      # dropped, one word per cycle
                released = release_start + words[k]
                port_free[k] = released
                held[k].append((start, released))
                queued[k].append((decided, np.inf))  # merged time filled below
                break
            # forwarded: segment k+1 consumes it as it processes the frame
            ready = release_start
            queued[k].append((decided, np.inf))
            held[k].append((start, np.inf))
        # the frames forwarded on the way are released when the next segment took them
        last_out = max(last_out, decided)
        out.append(last_out)
        for k in range(min(e, K)):
            queued[k][-1] = (queued[k][-1][0], last_out)
        if e < K:
            queued[e][-1] = (queued[e][-1][0], last_out)
        _settle_forwarded(held, port_free, seg_free, e, K)
    out = np.array(out)  # (n,)
    steady = steady_interval(out)
    total = float(out[-1])
    return PipelineRun(total_cycles=total, out_cycles=out, steady_cycles_per_image=steady,
                       buffer_peak_frames=[_peak(h) for h in held],
                       queue_peak=[_peak(q) for q in queued],
                       busy=[b / total for b in busy])


def _settle_forwarded(held, port_free, seg_free, e: int, K: int) -> None:
    """For the image just replayed: each buffer k < min(e, K) forwarded its frame to segment
    k+1, which took it while processing (until seg_free[k+1]); the frame's slot and the
    buffer's port are free then."""
    for k in range(min(e, K)):
        start, _ = held[k][-1]
        held[k][-1] = (start, seg_free[k + 1])
        port_free[k] = seg_free[k + 1]
