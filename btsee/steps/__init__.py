"""The flow's steps, in order: the one list (`STEPS`) the `btsee run` command executes.

Each step lives in the module of its stage (`training`, `calibration`, `hardware`,
`simulate`, `rtl`) and declares the config sections and run-folder files it reads and the files
it writes (paths in `btsee.run_folder`); `btsee.flow` fingerprints them to skip steps that
are up to date. A step that cannot apply to a config says why in `cannot_run`, checked
before any step runs. Later steps (bitstream, package) get modules of their own and a place in this list.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from boards import board_file
from btsee.config import Config
from btsee.flow import Step
from btsee.run_folder import (BACKBONE_FILE, BACKBONE_HISTORY, BACKBONE_MACS, BITSTREAM_FILE, DATA_SUMMARY,
                              DATAFLOW_MANIFEST, EVALUATION_FILE, EXPORT_MANIFEST, FOLD_MANIFEST, FOLDING_FILE,
                              HEAD_MACS, HEADS_FILE, LOGITS_FILE, PACKAGE_MANIFEST, RTL_FILE, SIMULATION_FILE,
                              NETLIST_FILE, SPLIT_FILE, SYNTH_FILE, THRESHOLDS_FILE)
from btsee.steps.calibration import step_calibrate, step_evaluate
from btsee.steps.common import dataflow_widths_missing, integer_form_missing
from btsee.steps.deploy import step_bitstream, step_package
from btsee.steps.folding import step_fold
from btsee.steps.hardware import step_dataflow, step_export
from btsee.steps.netlist import step_netlist
from btsee.steps.rtl import step_rtl
from btsee.steps.synth import step_synth
from btsee.steps.simulate import step_simulate
from btsee.steps.training import step_backbone, step_data, step_exits
from calib.cpm import CalibrationPolicy


POLICY_FIELDS = tuple(f"calibration.{f.name}" for f in fields(CalibrationPolicy))
"""What the exits step reads of the calibration section (bts trains each head on what the
earlier exits pass on under this policy): the budget's fields do not retrain the heads."""


def _hardware_cannot_run(config: Config) -> str | None:
    return integer_form_missing(config.model)


def _dataflow_cannot_run(config: Config) -> str | None:
    return integer_form_missing(config.model) or dataflow_widths_missing(config.model)


def _rtl_cannot_run(config: Config) -> str | None:
    if (reason := _dataflow_cannot_run(config)) is not None:
        return reason
    from boards import load_board

    board = load_board(config.hardware.board)
    if board.family != "zynq-7000":
        return (f"board {board.name} is {board.family}; the open RTL flow simulates and synthesizes 7-series "
                "primitives (DSP48E1) only: use a zynq-7000 board (pynq-z1, pynq-z2) or stop before rtl")
    return None


def _board_file(config: Config) -> tuple[Path, ...]:
    return (board_file(config.hardware.board),)


def _simulate_cannot_run(config: Config) -> str | None:
    if (reason := integer_form_missing(config.model)) is not None:
        return reason
    if config.calibration.score != "margin":
        return (f"calibration.score {config.calibration.score!r} has no integer form; the exit hardware "
                "compares integer top-2 margins (calibration.score: margin)")
    return None


STEPS: list[Step] = [
    Step("data", step_data, "load the data set and cut the seeded splits", ("data",),
         outputs=(SPLIT_FILE, DATA_SUMMARY)),
    Step("backbone", step_backbone, "train the quantized backbone", ("data", "model", "train"),
         inputs=(SPLIT_FILE, DATA_SUMMARY), outputs=(BACKBONE_FILE, BACKBONE_HISTORY, BACKBONE_MACS),
         all_ranks=True, version=2),  # 2: a ResNet's stem is a segment of its own (other tensor names)
    Step("exits", step_exits, "train the exit heads on cached backbone features",
         ("data", "model", "train", "exits", *POLICY_FIELDS),
         inputs=(SPLIT_FILE, BACKBONE_FILE, BACKBONE_HISTORY), outputs=(HEADS_FILE, LOGITS_FILE, HEAD_MACS)),
    Step("calibrate", step_calibrate, "calibrate the exit thresholds on the validation split",
         ("calibration",), inputs=(LOGITS_FILE, BACKBONE_FILE, HEADS_FILE, BACKBONE_MACS, HEAD_MACS),
         outputs=(THRESHOLDS_FILE,), version=3),  # 3: the guard bounds the drop on guard_images
    Step("evaluate", step_evaluate, "measure the calibrated cascade on the test split",
         ("exits", "calibration"),
         inputs=(LOGITS_FILE, THRESHOLDS_FILE, BACKBONE_MACS, HEAD_MACS, BACKBONE_FILE, HEADS_FILE, DATA_SUMMARY),
         outputs=(EVALUATION_FILE,)),
    Step("export", step_export, "export each segment and head to QONNX and check it",
         ("data",), inputs=(SPLIT_FILE, BACKBONE_FILE, HEADS_FILE), outputs=(EXPORT_MANIFEST,),
         cannot_run=_hardware_cannot_run, version=2),  # 2: the manifest pins each graph's SHA-256
    Step("dataflow", step_dataflow, "convert each segment to FINN HW layers and estimate its resources",
         ("hardware",), inputs=(EXPORT_MANIFEST,), outputs=(DATAFLOW_MANIFEST,),
         cannot_run=_dataflow_cannot_run, external_inputs=_board_file, version=4),  # 4: ColumnMax in the heads
    Step("fold", step_fold, "fold each segment for the images reaching it: the fastest design within the LUT budget",
         ("hardware", "calibration"), inputs=(DATAFLOW_MANIFEST, LOGITS_FILE, THRESHOLDS_FILE),
         outputs=(FOLD_MANIFEST, FOLDING_FILE), cannot_run=_dataflow_cannot_run, external_inputs=_board_file,
         version=3),  # 2: every folding FINN allows, every subset of the exits; 3: the local search
    Step("simulate", step_simulate, "golden simulator vs evaluate, Brevitas, qonnx and FINN",
         ("calibration", "hardware"),
         inputs=(DATAFLOW_MANIFEST, THRESHOLDS_FILE, LOGITS_FILE, SPLIT_FILE, EVALUATION_FILE, BACKBONE_MACS,
                 HEAD_MACS, DATA_SUMMARY, BACKBONE_FILE, HEADS_FILE),
         outputs=(SIMULATION_FILE,), cannot_run=_simulate_cannot_run),
    Step("rtl", step_rtl, "each segment and the whole multi-exit design as RTL, simulated against golden",
         ("hardware",), inputs=(FOLD_MANIFEST, SPLIT_FILE, THRESHOLDS_FILE, DATA_SUMMARY, BACKBONE_FILE,
                                HEADS_FILE), outputs=(RTL_FILE,),
         # 4: the DSP datapath; 5: queues in front of the MVUs and padding of residual segments
         cannot_run=_rtl_cannot_run, external_inputs=_board_file, version=5),
    Step("synth", step_synth, "each segment's RTL and the exit glue synthesized by Yosys for the board's part",
         ("hardware",), inputs=(RTL_FILE, FOLD_MANIFEST, FOLDING_FILE, THRESHOLDS_FILE), outputs=(SYNTH_FILE,),
         cannot_run=_rtl_cannot_run, external_inputs=_board_file, version=4),  # 4: netlists kept, timing depth
    Step("netlist", step_netlist, "the synthesized netlists simulated against golden (segments, and the whole design)",
         ("hardware",), inputs=(RTL_FILE, SYNTH_FILE, FOLD_MANIFEST, THRESHOLDS_FILE, SPLIT_FILE, DATA_SUMMARY,
                                BACKBONE_FILE, HEADS_FILE), outputs=(NETLIST_FILE,),
         cannot_run=_rtl_cannot_run, external_inputs=_board_file),
    Step("bitstream", step_bitstream, "the Vivado build folder of the design (built when Vivado is on PATH)",
         ("hardware",), inputs=(RTL_FILE, FOLD_MANIFEST, THRESHOLDS_FILE), outputs=(BITSTREAM_FILE,),
         cannot_run=_rtl_cannot_run, external_inputs=_board_file),
    Step("package", step_package, "the deploy folder: bitstream when built, thresholds, driver inputs, test vectors, "
                                  "the golden graphs and the RTL sources",
         ("hardware",), inputs=(BITSTREAM_FILE, RTL_FILE, FOLD_MANIFEST, THRESHOLDS_FILE, SPLIT_FILE, DATA_SUMMARY,
                                BACKBONE_FILE, HEADS_FILE, DATAFLOW_MANIFEST),
         outputs=(PACKAGE_MANIFEST,), cannot_run=_rtl_cannot_run, external_inputs=_board_file,
         version=2),  # 2: golden graphs, RTL sources and labels for the board runtime
]
STEPS_BY_NAME = {s.name: s for s in STEPS}
