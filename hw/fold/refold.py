"""Every distinct folding FINN's SetFolding gives one segment, without a FINN build per target.

A segment's folded partition graph (from one estimate-only build, `hw.finn.estimate`) is
re-folded in-process: `FoldingExplorer.at(T)` applies our ColumnMax folding and FINN's own
`SetFolding` (two-pass relaxation, the build's `mvau_wwidth_max`) for a target of T cycles
per frame to a copy of it. SetFolding raises an MVAU's SIMD to its cap before its PE, so
it only visits a few of the (PE, SIMD) pairs FINN allows; each MVAU then takes the pair
with the fewest modelled LUTs (`hw.fold.search.modelled_luts`) among all those that keep
within the target. The explorer reads FINN's analytical estimates of the result
(`exp_cycles_per_layer`, `res_estimation`, as the build's `step_generate_estimate_reports`
does). `FoldingExplorer.ladder` finds every distinct folding between two targets: it folds
at a coarse geometric series of targets, then bisects (in log space) every interval whose
ends fold differently until the ends lie within `resolution` of each other, so no
breakpoint wider than that is missed (SetFolding's parallelism falls monotonically with
the target).

The graph that the RTL generator reads is never this in-process copy: the fold step
rebuilds each chosen folding with FINN (`estimate_segment(..., folding_config=...)`) and
checks that FINN's build gives the cycles and resources the explorer predicted.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

from hw.finn.builder import quiet_finn_logger
from hw.fold.search import FoldOption

FOLDING_ATTRS = ("PE", "SIMD", "parallel_window")
MVAU_OPS = ("MVAU_rtl", "MVAU_hls")
"""The node attributes a folding sets (what the rebuild's folding config carries)."""


class FoldingExplorer:
    """SetFolding applied in-process to one folded partition graph (see the module docstring)."""

    def __init__(self, graph: Path, fpga_part: str, mvau_wwidth_max: int, clock_hz: float):
        from qonnx.core.modelwrapper import ModelWrapper

        self.graph = Path(graph)
        self.base = ModelWrapper(str(graph))
        self.fpga_part = fpga_part
        self.mvau_wwidth_max = mvau_wwidth_max
        self.clock_hz = clock_hz
        self.builds = 0
        """Foldings computed (the search's cost)."""
        self._mvau_costs: dict[bytes, tuple[tuple[float, float, int], int]] = {}
        """An MVAU node (serialized, its folding among its attributes) -> ((modelled LUTs,
        BRAM18, cycles), cycles): FINN's estimates are pure functions of the node's attributes,
        and the search asks for the same few hundred pairs tens of thousands of times."""

    def folded(self, target_cycles: int):
        """A copy of the graph folded for `target_cycles` per frame (ColumnMax first, then FINN)."""
        from finn.transformation.fpgadataflow.set_folding import SetFolding
        from qonnx.core.modelwrapper import ModelWrapper

        from hw.finn.estimate import fold_column_max

        from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer

        model = fold_column_max(ModelWrapper(copy.deepcopy(self.base.model)), int(target_cycles))
        model = model.transform(SetFolding(int(target_cycles), mvau_wwidth_max=self.mvau_wwidth_max,
                                           two_pass_relaxation=True))
        reached = max(int(c) for c in model.analysis(exp_cycles_per_layer).values())
        for node in model.graph.node:
            if node.op_type in MVAU_OPS:
                self._cheapest_mvau(node, max(int(target_cycles), reached))
        return model

    def _cheapest_mvau(self, node, target_cycles: int) -> None:
        """Sets the MVAU `node` to the (PE, SIMD) FINN allows (PE divides MH, SIMD divides MW,
        SIMD x weight bits within mvau_wwidth_max) with the fewest modelled LUTs (then BRAM18)
        among those within `target_cycles`; left as SetFolding set it when none is cheaper."""
        from qonnx.custom_op.registry import getCustomOp

        from hw.fold.search import modelled_luts

        op = getCustomOp(node)
        mw, mh = int(op.get_nodeattr("MW")), int(op.get_nodeattr("MH"))
        wbits = op.get_input_datatype(1).bitwidth()  # the weights (input 1), as SetFolding checks them

        def measured() -> tuple[tuple[float, float, int], int]:
            """((modelled LUTs, BRAM18, cycles), cycles) of the node as now folded."""
            key = node.SerializeToString()
            if key not in self._mvau_costs:
                r = op.node_res_estimation(self.fpga_part)
                cycles = int(op.get_exp_cycles())
                self._mvau_costs[key] = (modelled_luts(r.get("LUT", 0), r.get("DSP", 0)), r.get("BRAM_18K", 0),
                                         cycles), cycles
            return self._mvau_costs[key]

        best = (measured()[0], int(op.get_nodeattr("PE")), int(op.get_nodeattr("SIMD")))
        for pe in (d for d in range(1, mh + 1) if mh % d == 0):
            for simd in (d for d in range(1, mw + 1) if mw % d == 0 and d * wbits <= self.mvau_wwidth_max):
                op.set_nodeattr("PE", pe)
                op.set_nodeattr("SIMD", simd)
                c, cycles = measured()
                if cycles <= target_cycles and c < best[0]:
                    best = (c, pe, simd)
        op.set_nodeattr("PE", best[1])
        op.set_nodeattr("SIMD", best[2])

    def at(self, target_cycles: int) -> FoldOption:
        """FINN's folding for `target_cycles` and its estimates (graph left empty: not built)."""
        with quiet_finn_logger():  # SetFolding warns for every target it misses and every op it skips
            return self._at(target_cycles)

    def _at(self, target_cycles: int) -> FoldOption:
        from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer
        from finn.analysis.fpgadataflow.res_estimation import res_estimation
        from qonnx.custom_op.registry import getCustomOp

        model = self.folded(target_cycles)
        self.builds += 1
        cycles = max(int(c) for c in model.analysis(exp_cycles_per_layer).values())
        res = model.analysis(lambda m: res_estimation(m, self.fpga_part))
        config = folding_config(model)
        last = getCustomOp(model.find_producer(model.graph.output[0].name))
        folded_out = last.get_folded_output_shape()  # (1, ..., PE)
        words = math.prod(int(d) for d in folded_out[:-1])
        bits = int(folded_out[-1]) * last.get_output_datatype().bitwidth()
        return FoldOption(target_fps=round(self.clock_hz / target_cycles, 1), cycles=cycles,
                          finn_lut=float(sum(r.get("LUT", 0) for r in res.values())),
                          bram18=float(sum(r.get("BRAM_18K", 0) for r in res.values())),
                          dsp=float(sum(r.get("DSP", 0) for r in res.values())),
                          out_words=words, out_bits=bits,
                          folding={n: {k: v for k, v in a.items() if k in ("PE", "SIMD")} for n, a in config.items()},
                          config=config, target_cycles=int(target_cycles))

    def ladder(self, low_cycles: int, high_cycles: int, step: float = 1.25,
               resolution: float = 1.01) -> list[FoldOption]:
        """Every distinct folding for targets in [low_cycles, high_cycles], slowest first; a
        folding reached from several targets is kept once (its largest target)."""
        n = max(1, math.ceil(math.log(high_cycles / low_cycles) / math.log(step)))
        grid = sorted({int(round(low_cycles * (high_cycles / low_cycles) ** (i / n))) for i in range(n + 1)})
        found = {t: self.at(t) for t in grid}
        todo = list(zip(grid, grid[1:]))
        while todo:
            lo, hi = todo.pop()
            if _key(found[lo]) == _key(found[hi]) or hi / lo <= resolution or hi - lo <= 1:
                continue
            mid = int(round(math.sqrt(lo * hi)))
            if mid in (lo, hi):
                continue
            found[mid] = self.at(mid)
            todo += [(lo, mid), (mid, hi)]
        distinct: dict[str, FoldOption] = {}
        for t in sorted(found, reverse=True):  # largest target first: kept per folding
            distinct.setdefault(_key(found[t]), found[t])
        return sorted(distinct.values(), key=lambda o: (-o.cycles, o.lut))


def segment_ladder(graph: Path, fpga_part: str, mvau_wwidth_max: int, clock_hz: float, low_cycles: int,
                   high_cycles: int) -> tuple[list[FoldOption], int]:
    """One segment's `FoldingExplorer.ladder(low_cycles, high_cycles)` and the number of
    foldings it computed: a top-level function, so the fold step can run segments in
    worker processes."""
    explorer = FoldingExplorer(graph, fpga_part, mvau_wwidth_max, clock_hz)
    return explorer.ladder(low_cycles, high_cycles), explorer.builds


def folding_config(model) -> dict[str, dict[str, int]]:
    """{node name: {attribute: value}} of FOLDING_ATTRS on every node that has them (FINN's
    folding-config format, without "Defaults")."""
    from qonnx.custom_op.registry import getCustomOp

    config = {}
    for node in model.graph.node:
        try:
            op = getCustomOp(node)
        except Exception:  # not a custom op of a registered domain: nothing to fold
            continue
        attrs = op.get_nodeattr_types()
        values = {k: int(op.get_nodeattr(k)) for k in FOLDING_ATTRS if k in attrs}
        if values:
            config[node.name] = values
    return config


def _key(option: FoldOption) -> str:
    return repr(sorted((n, sorted(a.items())) for n, a in option.config.items()))
