"""The flow's steps, in order: the one list (`STEPS`) the `btsee run` command executes.

Each step lives in the module of its stage (`training`, `calibration`, `hardware`,
`simulate`, `rtl`) and declares the config sections and run-folder files it reads and the files
it writes (paths in `btsee.run_folder`); `btsee.flow` fingerprints them to skip steps that
are up to date. A step that cannot apply to a config says why in `cannot_run`, checked
before any step runs. Later steps (folding, bitstream, package) get modules of their own
and a place in this list.
"""
from __future__ import annotations

from pathlib import Path

from boards import board_file
from btsee.config import Config
from btsee.flow import Step
from btsee.run_folder import (BACKBONE_FILE, BACKBONE_HISTORY, BACKBONE_MACS, DATA_SUMMARY, DATAFLOW_MANIFEST,
                              EVALUATION_FILE, EXPORT_MANIFEST, HEAD_MACS, HEADS_FILE, LOGITS_FILE, RTL_FILE,
                              SIMULATION_FILE, SPLIT_FILE, SYNTH_FILE, THRESHOLDS_FILE)
from btsee.steps.calibration import step_calibrate, step_evaluate
from btsee.steps.common import integer_form_missing
from btsee.steps.hardware import step_dataflow, step_export
from btsee.steps.rtl import step_rtl, step_synth
from btsee.steps.simulate import step_simulate
from btsee.steps.training import step_backbone, step_data, step_exits


def _hardware_cannot_run(config: Config) -> str | None:
    return integer_form_missing(config.model)


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
         all_ranks=True),
    Step("exits", step_exits, "train the exit heads on cached backbone features",
         ("data", "model", "train", "exits", "calibration"),
         inputs=(SPLIT_FILE, BACKBONE_FILE, BACKBONE_HISTORY), outputs=(HEADS_FILE, LOGITS_FILE, HEAD_MACS)),
    Step("calibrate", step_calibrate, "calibrate the exit thresholds on the validation split",
         ("calibration",), inputs=(LOGITS_FILE, BACKBONE_FILE, HEADS_FILE), outputs=(THRESHOLDS_FILE,)),
    Step("evaluate", step_evaluate, "measure the calibrated cascade on the test split",
         ("exits", "calibration"),
         inputs=(LOGITS_FILE, THRESHOLDS_FILE, BACKBONE_MACS, HEAD_MACS, BACKBONE_FILE, HEADS_FILE, DATA_SUMMARY),
         outputs=(EVALUATION_FILE,)),
    Step("export", step_export, "export each segment and head to QONNX and check it",
         ("data",), inputs=(SPLIT_FILE, BACKBONE_FILE, HEADS_FILE), outputs=(EXPORT_MANIFEST,),
         cannot_run=_hardware_cannot_run, version=2),  # 2: the manifest pins each graph's SHA-256
    Step("dataflow", step_dataflow, "convert each segment to FINN HW layers and estimate its resources",
         ("hardware",), inputs=(EXPORT_MANIFEST,), outputs=(DATAFLOW_MANIFEST,),
         cannot_run=_hardware_cannot_run, external_inputs=_board_file, version=4),  # 4: ColumnMax in the heads
    Step("simulate", step_simulate, "golden simulator vs evaluate, Brevitas, qonnx and FINN",
         ("calibration", "hardware"),
         inputs=(DATAFLOW_MANIFEST, THRESHOLDS_FILE, LOGITS_FILE, SPLIT_FILE, EVALUATION_FILE, BACKBONE_MACS,
                 HEAD_MACS, DATA_SUMMARY, BACKBONE_FILE, HEADS_FILE),
         outputs=(SIMULATION_FILE,), cannot_run=_simulate_cannot_run),
    Step("rtl", step_rtl, "each segment and the whole multi-exit design as RTL, simulated against golden",
         ("hardware",), inputs=(DATAFLOW_MANIFEST, SPLIT_FILE, THRESHOLDS_FILE, DATA_SUMMARY, BACKBONE_FILE,
                                HEADS_FILE), outputs=(RTL_FILE,),
         cannot_run=_hardware_cannot_run, external_inputs=_board_file, version=2),  # 2: the whole design
    Step("synth", step_synth, "each segment's RTL and the exit glue synthesized by Yosys for the board's part",
         ("hardware",), inputs=(RTL_FILE, DATAFLOW_MANIFEST, THRESHOLDS_FILE), outputs=(SYNTH_FILE,),
         cannot_run=_hardware_cannot_run, external_inputs=_board_file, version=2),  # 2: the exit glue
]
STEPS_BY_NAME = {s.name: s for s in STEPS}
