"""The segment names of each backbone, without building it (no torch import).

A backbone is a chain of named segments; the exit points are the outputs of all but the
last. `btsee.config` checks `exits.points` against these names when a config is loaded,
and `qat.models` names its segments from the same table.
"""
from __future__ import annotations

CNV_BLOCKS = 6
RESNET_STAGES = {"resnet8": 3, "resnet18": 4}
CLASSIFIER = "classifier"


def segment_names(backbone: str) -> list[str]:
    """The segments of backbone `backbone` in order, the classifier last."""
    if backbone == "cnv":
        return [f"block{i + 1}" for i in range(CNV_BLOCKS)] + [CLASSIFIER]
    if backbone in RESNET_STAGES:
        return [f"stage{s + 1}" for s in range(RESNET_STAGES[backbone])] + [CLASSIFIER]
    raise ValueError(f"unknown backbone {backbone!r}; choose one of {['cnv', *RESNET_STAGES]}")


def exit_points(backbone: str) -> list[str]:
    """Where exit heads may attach: every segment output but the classifier's."""
    return segment_names(backbone)[:-1]
