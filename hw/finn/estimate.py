"""finn-plus's estimate-only dataflow build on one segment graph, without Vivado.

`estimate_segment` runs `build_dataflow_cfg` on the HW-layer graph that the `dataflow`
step wrote and the golden simulator and the chain verify (never on a graph converted
again from QONNX), with FINN's estimate-only steps from `step_convert_to_hw` on, and
reads back FINN's analytical resource and cycle estimates (no FIFOs, width converters or
shell; MVAU_rtl and Pool count 0 LUT, so Yosys synthesis finds about twice the LUTs).

The builder runs through `hw.finn.builder.finn_builder`, the adapter that makes it usable
without Vivado.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from hw.finn.builder import finn_builder
from hw.finn.convert import DataflowError, check_hw_only, is_hw, load_hw, mark_input

RESOURCE_KEYS = ("LUT", "BRAM_18K", "URAM", "DSP")
REPORTS = ("estimate_layer_resources.json", "estimate_layer_cycles.json",
           "estimate_network_performance.json", "auto_folding_config.json")
LOG_NAME = "build_dataflow.log"  # finn.builder.build_dataflow.get_logfile_path
PARTITION_MODEL = "step_generate_estimate_reports.onnx"
PARENT_MODEL = "dataflow_parent.onnx"


@dataclass
class SegmentEstimate:
    """FINN's estimates for one segment's dataflow partition.

    Totals are sums over the layers of report/estimate_layer_resources.json; `layers` maps
    each HW layer to its LUT, BRAM_18K, URAM, DSP and cycles per frame; `folding` maps it
    to its PE/SIMD. `cycles_per_frame` is the slowest layer's (the initiation interval),
    `latency_cycles` FINN's critical path. `target_met`: cycles_per_frame fits the clock
    cycles one frame has at `target_fps` (FINN only warns when its folding misses it).
    """

    name: str
    lut: float
    bram18: float
    uram: float
    dsp: float
    cycles_per_frame: int
    latency_cycles: int
    estimated_fps: float
    target_fps: int
    clock_period_ns: float
    target_met: bool
    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    folding: dict[str, dict[str, int]] = field(default_factory=dict)
    report_dir: Path = Path()
    folded_graph: Path = Path()
    """The dataflow partition as FINN estimated it: folded, every layer specialized (RTL
    where it has one), the graph the RTL generator starts from."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings; the folded graph left out, the manifest
        records its copy)."""
        d = asdict(self)
        d["report_dir"] = str(self.report_dir)
        del d["folded_graph"]
        return d


FIRST_STEP_AFTER_CONVERSION = "step_minimize_bit_width_initial"
FOLDING_STEP = "step_target_fps_parallelization"
SPECIALIZE_STEP = "step_specialize_layers"


def _estimate_steps(input_type: str, threshold_bram_depth: int | None = None) -> list[Callable]:
    """FINN's estimate-only steps after its HW conversion, as callables (model, cfg) ->
    model, behind one that re-marks the graph input's datatype, and with the thresholds'
    memory placed (`place_thresholds`) right after the layers are specialized. The graph
    they start from is already the HW-layer graph, so FINN converts nothing itself.
    Imports FINN's step module: call it inside `finn_builder`."""
    import finn.builder.build_dataflow_config as bc
    from finn.builder.build_dataflow_steps import build_dataflow_step_lookup

    def step_mark_input(model, cfg):
        return mark_input(model, input_type)

    names = list(bc.estimate_only_dataflow_steps)
    for needed in (FIRST_STEP_AFTER_CONVERSION, SPECIALIZE_STEP, FOLDING_STEP):
        if needed not in names:
            raise DataflowError(f"finn-plus's estimate-only steps {names} lack {needed}; "
                                "this FINN version is not the one the flow was written for")
    rest = names[names.index(FIRST_STEP_AFTER_CONVERSION):]
    finn_folding = build_dataflow_step_lookup[FOLDING_STEP]

    def step_target_fps_parallelization(model, cfg):
        """FINN's folding, our ColumnMax layers folded first (SetFolding skips them)."""
        return finn_folding(fold_column_max(model, cfg._resolve_cycles_per_frame()), cfg)

    finn_specialize = build_dataflow_step_lookup[SPECIALIZE_STEP]

    def step_specialize_layers(model, cfg):
        """FINN's specialization, then every Thresholding_rtl's memory placed."""
        return place_thresholds(finn_specialize(model, cfg), threshold_bram_depth)

    ours = {FOLDING_STEP: step_target_fps_parallelization, SPECIALIZE_STEP: step_specialize_layers}
    return [step_mark_input] + [ours.get(n, build_dataflow_step_lookup[n]) for n in rest]


def place_thresholds(model, bram_depth: int | None):
    """`model` with FINN's `depth_trigger_bram` = `bram_depth` (0 for None: FINN's default,
    every threshold in LUTs) on each Thresholding_rtl: its stage memories of at least that
    many words are then block RAM, in FINN's estimates and in the RTL it generates."""
    from qonnx.custom_op.registry import getCustomOp

    for node in model.graph.node:
        if node.op_type == "Thresholding_rtl":
            getCustomOp(node).set_nodeattr("depth_trigger_bram", int(bram_depth or 0))
    return model


def fold_column_max(model, target_cycles: int | None):
    """Each ColumnMax layer's PE: the smallest divisor of its channels that meets
    `target_cycles` per frame (the largest when none does); unchanged without a target."""
    from qonnx.custom_op.registry import getCustomOp

    if target_cycles is None:
        return model
    for node in model.graph.node:
        if node.op_type.startswith("ColumnMax"):
            op = getCustomOp(node)
            channels = op.get_nodeattr("NumChannels")
            for pe in (d for d in range(1, channels + 1) if channels % d == 0):
                op.set_nodeattr("PE", pe)
                if op.get_exp_cycles() <= target_cycles:
                    break
    return model


def estimate_segment(hw_path: Path, input_type: str, out_dir: Path, *, board: str = "Pynq-Z2",
                     clock_period_ns: float = 10.0, target_fps: int = 10000,
                     mvau_wwidth_max: int = 36, folding_config: dict | None = None,
                     threshold_bram_depth: int | None = None) -> SegmentEstimate:
    """Runs the estimate-only build of one segment's HW-layer graph (the `dataflow` step's
    file, the graph that is verified) into `out_dir` and returns its estimates; reports
    are in out_dir/report, the log in out_dir/build_dataflow.log. With `folding_config`
    ({node: {attribute: value}}, FINN's folding-config format) the build applies that
    folding instead of folding for `target_fps` (which then only labels the estimate).
    `threshold_bram_depth`: `place_thresholds`.

    A graph that cannot be read, a failed build, or a node left out of the HW partition is
    a DataflowError naming the graph file (and the node, or the log's last lines).
    """
    hw_path, out_dir = Path(hw_path).absolute(), Path(out_dir).absolute()
    load_hw(hw_path, input_type)  # fails early, naming the file
    out_dir.mkdir(parents=True, exist_ok=True)
    config_file = None
    if folding_config is not None:
        config_file = out_dir / "folding_config.json"
        config_file.write_text(json.dumps({"Defaults": {}, **folding_config}, indent=1))
    with finn_builder(out_dir / "finn_tmp") as build:
        import finn.builder.build_dataflow_config as bc

        cfg = bc.DataflowBuildConfig(
            output_dir=str(out_dir), synth_clk_period_ns=clock_period_ns, board=board,
            target_fps=None if config_file else target_fps, mvau_wwidth_max=mvau_wwidth_max,
            folding_config_file=str(config_file) if config_file else None,
            generate_outputs=[bc.DataflowOutputType.ESTIMATE_REPORTS],
            steps=_estimate_steps(input_type, threshold_bram_depth), save_intermediate_models=True)
        try:
            rc = build(str(hw_path), cfg)
        except Exception as e:  # under pytest the builder re-raises instead of returning rc
            raise DataflowError(f"{hw_path}: FINN estimate build failed: "
                                f"{type(e).__name__}: {e}\n{_log_tail(out_dir)}") from e
    if rc != 0:
        raise DataflowError(f"{hw_path}: FINN estimate build failed (rc {rc}), see "
                            f"{out_dir / LOG_NAME}:\n{_log_tail(out_dir)}")
    _check_partition(out_dir / "intermediate_models", hw_path)
    if config_file is not None:  # FINN writes auto_folding_config.json only when it folds itself
        (out_dir / "report" / "auto_folding_config.json").write_text(config_file.read_text())
    est = read_estimate(hw_path.stem, out_dir / "report", clock_period_ns, target_fps)
    est.folded_graph = out_dir / "intermediate_models" / PARTITION_MODEL
    return est


def _log_tail(out_dir: Path, lines: int = 25) -> str:
    log = out_dir / LOG_NAME
    if not log.is_file():
        return f"(no {LOG_NAME} in {out_dir})"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _check_partition(models: Path, hw_path: Path) -> None:
    """The dataflow partition holds HW layers only, and what stayed outside it is what
    `check_hw_only` allows (boundary Transposes, the output scale Mul): FINN only warns
    about nodes it leaves outside, which its estimates then silently omit."""
    from qonnx.core.modelwrapper import ModelWrapper

    where = str(hw_path)
    for name in (PARTITION_MODEL, PARENT_MODEL):
        if not (models / name).is_file():
            raise DataflowError(f"{where}: the build wrote no {models / name}")
    for n in ModelWrapper(str(models / PARTITION_MODEL)).graph.node:
        if not is_hw(n):
            raise DataflowError(f"{where}: node {n.name!r} ({n.op_type}) in the dataflow "
                                "partition is not a FINN HW layer")
    check_hw_only(ModelWrapper(str(models / PARENT_MODEL)), where)


def read_estimate(name: str, report_dir: Path, clock_period_ns: float,
                  target_fps: int) -> SegmentEstimate:
    """A SegmentEstimate from a finished build's report folder; a missing report or
    per-layer figures that disagree with FINN's own totals are a DataflowError."""
    rep = {}
    for f in REPORTS:
        if not (report_dir / f).is_file():
            raise DataflowError(f"{name}: FINN wrote no {report_dir / f}")
        rep[f] = json.loads((report_dir / f).read_text())
    resources = {k: v for k, v in rep["estimate_layer_resources.json"].items() if k != "total"}
    cycles = rep["estimate_layer_cycles.json"]
    perf = rep["estimate_network_performance.json"]
    if not resources or set(resources) != set(cycles):
        raise DataflowError(f"{name}: layers with resource estimates {sorted(resources)} "
                            f"differ from those with cycle estimates {sorted(cycles)}")
    layers = {layer: {**{k: r.get(k, 0) for k in RESOURCE_KEYS}, "cycles": int(cycles[layer])}
              for layer, r in resources.items()}
    totals = {k: sum(layer[k] for layer in layers.values()) for k in RESOURCE_KEYS}
    finn_total = rep["estimate_layer_resources.json"].get("total", {})
    for k in RESOURCE_KEYS:
        if abs(totals[k] - float(finn_total.get(k, 0))) > 1e-6 * max(1.0, totals[k]):
            raise DataflowError(f"{name}: per-layer {k} sums to {totals[k]}, FINN's total says "
                                f"{finn_total.get(k)}")
    cycles_per_frame = max(layer["cycles"] for layer in layers.values())
    if cycles_per_frame != int(perf["max_cycles"]):
        raise DataflowError(f"{name}: slowest layer takes {cycles_per_frame} cycles, "
                            f"estimate_network_performance.json says {perf['max_cycles']}")
    folding = {layer: {k: int(v) for k, v in attrs.items() if k in ("PE", "SIMD")}
               for layer, attrs in rep["auto_folding_config.json"].items() if layer != "Defaults"}
    clock_hz = 1e9 / clock_period_ns
    return SegmentEstimate(
        name=name, lut=totals["LUT"], bram18=totals["BRAM_18K"], uram=totals["URAM"],
        dsp=totals["DSP"], cycles_per_frame=cycles_per_frame,
        latency_cycles=int(perf["critical_path_cycles"]),
        estimated_fps=float(perf["estimated_throughput_fps"]), target_fps=target_fps,
        clock_period_ns=clock_period_ns, target_met=cycles_per_frame <= clock_hz / target_fps,
        layers=layers, folding=folding, report_dir=report_dir)

