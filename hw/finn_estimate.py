"""finn-plus's estimate-only dataflow build on one segment graph, without Vivado.

`estimate_segment` runs `build_dataflow_cfg` with the estimate-only steps and reads back
FINN's analytical resource and cycle estimates (lower bounds: no FIFOs, width converters
or shell). The steps are FINN's, with the input re-marking and the HW conversion of
`hw.dataflow` put in (see there for why).

`finn_builder` is the one place that makes the builder usable on a machine without
Vivado; it never sets XILINX_VIVADO (FINN reads it as "Vivado is here" and would try the
tool wherever it checks). Each of its parts answers one measured obstacle:

* Importing `finn.builder.build_dataflow_steps` runs `from finn.xsi import SimEngine`
  (used only as a type annotation); finn.xsi's lazy attribute hook then checks for Vivado
  and raises OSError. A stand-in `SimEngine` bound on finn.xsi beforehand satisfies the
  import; constructing it raises, so an RTL simulation still fails with a clear message.
* At the end of every build, success or failure, `exit_buildflow` writes the Vivado
  version into report/metadata_builder.json via `get_vivado_root()`, which raises without
  XILINX_VIVADO and would turn every build into a crash. The name bound in
  `finn.builder.build_dataflow` returns "none" for the build and is restored afterwards.
* The builder replaces sys.stdout/sys.stderr by loggers writing to its build log and
  never restores them (later prints of the caller would land in an old build's log), and
  it reconfigures the root logger with `basicConfig(force=True)`, which would close the
  caller's handlers. Both are saved and restored around the build, the handlers detached
  from the root logger meanwhile.
* FINN's settings are rebuilt from FINN_BUILD_DIR, which must be absolute ("Could not
  find global settings" otherwise); FINN caches them after the first build, so the cached
  build dir is pointed at this build's too, and both are restored afterwards.

Not thread-safe: the adapter changes process-wide state for the duration of one build.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from hw.dataflow import DataflowError, check_hw_only, convert_to_hw, is_hw, load_qonnx, mark_input

RESOURCE_KEYS = ("LUT", "BRAM_18K", "URAM", "DSP")
REPORTS = ("estimate_layer_resources.json", "estimate_layer_cycles.json",
           "estimate_network_performance.json", "auto_folding_config.json")
LOG_NAME = "build_dataflow.log"  # finn.builder.build_dataflow.get_logfile_path
PARTITION_MODEL = "step_generate_estimate_reports.onnx"
PARENT_MODEL = "dataflow_parent.onnx"


def _bind_simengine_stand_in() -> None:
    """Binds the stand-in SimEngine on finn.xsi when Vivado is absent and none is bound."""
    if "XILINX_VIVADO" in os.environ:
        return
    import finn.xsi

    if "SimEngine" in vars(finn.xsi):
        return

    class SimEngine:
        """Stand-in bound when XILINX_VIVADO is unset: RTL simulation is unavailable."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("RTL simulation needs Vivado's xsim (XILINX_VIVADO is unset)")

    finn.xsi.SimEngine = SimEngine


@contextlib.contextmanager
def finn_builder(build_dir: Path, *, echo: bool = False) -> Iterator[Callable[..., int]]:
    """Yields finn-plus's `build_dataflow_cfg`, made usable without Vivado (module docstring).

    `build_dir` (made absolute, created) is FINN_BUILD_DIR for the build. With `echo`
    false the builder's console output is discarded (its build log keeps all of it).
    On exit, whatever happened: os.environ's FINN_BUILD_DIR, FINN's cached build dir,
    `get_vivado_root`, sys.stdout/sys.stderr, the root logger's handlers and level and the
    warnings hook are as before. XILINX_VIVADO is never set.
    """
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    saved_env = os.environ.get("FINN_BUILD_DIR")
    stdout, stderr = sys.stdout, sys.stderr
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    showwarning = warnings.showwarning
    sink = None if echo else open(os.devnull, "w")
    bd = None
    saved_root = saved_settings_dir = settings = None
    try:
        os.environ["FINN_BUILD_DIR"] = str(build_dir)
        _bind_simengine_stand_in()
        import finn.builder.build_dataflow as bd
        from finn.util.settings import get_settings

        settings = get_settings()
        saved_settings_dir = settings.finn_build_dir
        settings.finn_build_dir = build_dir
        saved_root = bd.get_vivado_root
        for h in handlers:  # else basicConfig(force=True) closes them
            root.removeHandler(h)
        if "XILINX_VIVADO" not in os.environ:
            bd.get_vivado_root = lambda: "none"
        if sink is not None:
            sys.stdout = sys.stderr = sink
        yield bd.build_dataflow_cfg
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        if sink is not None:
            sink.close()
        if bd is not None and saved_root is not None:
            bd.get_vivado_root = saved_root
        if settings is not None and saved_settings_dir is not None:
            settings.finn_build_dir = saved_settings_dir
        for h in list(root.handlers):
            if h not in handlers:  # the builder's: its log file, its console
                root.removeHandler(h)
                h.close()
        for h in handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(level)
        if warnings.showwarning is not showwarning:
            logging.captureWarnings(False)  # undoes the builder's captureWarnings(True)
            warnings.showwarning = showwarning
        if saved_env is None:
            os.environ.pop("FINN_BUILD_DIR", None)
        else:
            os.environ["FINN_BUILD_DIR"] = saved_env


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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (report_dir as a string)."""
        d = asdict(self)
        d["report_dir"] = str(self.report_dir)
        return d


def _estimate_steps(input_type: str) -> list[Callable]:
    """FINN's estimate-only steps as callables (model, cfg) -> model: the input re-marked
    after step_qonnx_to_finn, step_tidy_up and step_streamline, and step_convert_to_hw
    replaced by `hw.dataflow.convert_to_hw`. Names set the intermediate model files.
    Imports FINN's step module: call it inside `finn_builder`."""
    import finn.builder.build_dataflow_config as bc
    from finn.builder.build_dataflow_steps import build_dataflow_step_lookup

    tidy_up = build_dataflow_step_lookup["step_tidy_up"]
    streamline = build_dataflow_step_lookup["step_streamline"]

    def step_mark_input(model, cfg):
        return mark_input(model, input_type)

    def step_tidy_up_marked(model, cfg):
        return mark_input(tidy_up(mark_input(model, input_type), cfg), input_type)

    def step_streamline_marked(model, cfg):
        return mark_input(streamline(model, cfg), input_type)

    def step_convert_to_hw_segment(model, cfg):
        threshold = cfg.requant_bitwidth_threshold
        return convert_to_hw(model, input_type, *(() if threshold is None else (threshold,)))

    replace = {"step_tidy_up": step_tidy_up_marked, "step_streamline": step_streamline_marked,
               "step_convert_to_hw": step_convert_to_hw_segment}
    steps: list[Callable] = []
    for name in bc.estimate_only_dataflow_steps:
        steps.append(replace.get(name) or build_dataflow_step_lookup[name])
        if name == "step_qonnx_to_finn":
            steps.append(step_mark_input)
    return steps


def estimate_segment(qonnx_path: Path, input_type: str, out_dir: Path, *, board: str = "Pynq-Z2",
                     clock_period_ns: float = 10.0, target_fps: int = 10000,
                     mvau_wwidth_max: int = 36) -> SegmentEstimate:
    """Runs the estimate-only build of one QONNX segment graph into `out_dir` and returns
    its estimates; reports are in out_dir/report, the log in out_dir/build_dataflow.log.

    A graph that cannot be read, a failed build, or a node left out of the HW partition is
    a DataflowError naming the graph file (and the node, or the log's last lines).
    """
    qonnx_path, out_dir = Path(qonnx_path).absolute(), Path(out_dir).absolute()
    load_qonnx(qonnx_path, input_type)  # fails early, naming the file
    out_dir.mkdir(parents=True, exist_ok=True)
    with finn_builder(out_dir / "finn_tmp") as build:
        import finn.builder.build_dataflow_config as bc

        cfg = bc.DataflowBuildConfig(
            output_dir=str(out_dir), synth_clk_period_ns=clock_period_ns, board=board,
            target_fps=target_fps, mvau_wwidth_max=mvau_wwidth_max,
            generate_outputs=[bc.DataflowOutputType.ESTIMATE_REPORTS],
            steps=_estimate_steps(input_type), save_intermediate_models=True)
        try:
            rc = build(str(qonnx_path), cfg)
        except Exception as e:  # under pytest the builder re-raises instead of returning rc
            raise DataflowError(f"{qonnx_path}: FINN estimate build failed: "
                                f"{type(e).__name__}: {e}\n{_log_tail(out_dir)}") from e
    if rc != 0:
        raise DataflowError(f"{qonnx_path}: FINN estimate build failed (rc {rc}), see "
                            f"{out_dir / LOG_NAME}:\n{_log_tail(out_dir)}")
    _check_partition(out_dir / "intermediate_models", qonnx_path)
    return read_estimate(qonnx_path.stem, out_dir / "report", clock_period_ns, target_fps)


def _log_tail(out_dir: Path, lines: int = 25) -> str:
    log = out_dir / LOG_NAME
    if not log.is_file():
        return f"(no {LOG_NAME} in {out_dir})"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _check_partition(models: Path, qonnx_path: Path) -> None:
    """The dataflow partition holds HW layers only, and what stayed outside it is what
    `check_hw_only` allows (boundary Transposes, the output scale Mul): FINN only warns
    about nodes it leaves outside, which its estimates then silently omit."""
    from qonnx.core.modelwrapper import ModelWrapper

    where = str(qonnx_path)
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

