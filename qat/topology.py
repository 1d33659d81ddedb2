"""The segment names and input sizes of each backbone, without building it (no torch import).

A backbone is a chain of named segments; the exit points are the outputs of all but the
last. `btsee.config` checks `exits.points` against these names when a config is loaded,
and `qat.models` names its segments from the same table.
"""
from __future__ import annotations

CNV_BLOCKS = 6
RESNET_STAGES = {"resnet8": 3, "resnet18": 4}
CLASSIFIER = "classifier"
RESNET_STEM = "stem"
"""A ResNet's 3x3 stem convolution is a segment of its own, so an exit may follow it (the
earliest and cheapest point: 1.2 % of ResNet-8's MACs)."""


def segment_names(backbone: str) -> list[str]:
    """The segments of backbone `backbone` in order, the classifier last."""
    if backbone == "cnv":
        return [f"block{i + 1}" for i in range(CNV_BLOCKS)] + [CLASSIFIER]
    if backbone in RESNET_STAGES:
        return [RESNET_STEM] + [f"stage{s + 1}" for s in range(RESNET_STAGES[backbone])] + [CLASSIFIER]
    raise ValueError(f"unknown backbone {backbone!r}; choose one of {['cnv', *RESNET_STAGES]}")


def exit_points(backbone: str) -> list[str]:
    """Where exit heads may attach: every segment output but the classifier's."""
    return segment_names(backbone)[:-1]


CNV_INPUT_SIZE = 32
RESNET_SIZE_MULTIPLE = 8


def input_size_problem(backbone: str, size: int) -> str | None:
    """Why `backbone` cannot take size x size images, or None when it can.

    cnv: its six unpadded 3x3 convolutions and two 2x2 pools bring 32x32 to the 1x1 its
    fully connected layers take, so only 32. resnet8/resnet18: padded convolutions, two
    or three stride-2 stages and a global average pool, so any multiple of 8.
    """
    if backbone == "cnv" and size != CNV_INPUT_SIZE:
        return (f"cnv takes {CNV_INPUT_SIZE}x{CNV_INPUT_SIZE} images only (its unpadded convolutions and "
                f"pools bring 32x32 to the 1x1 of its fully connected layers), got {size}; set "
                f"data.image_size: {CNV_INPUT_SIZE} and data.image_fit, or use resnet8")
    if backbone in ("resnet8", "resnet18") and (size < RESNET_SIZE_MULTIPLE or size % RESNET_SIZE_MULTIPLE):
        near = max(RESNET_SIZE_MULTIPLE, RESNET_SIZE_MULTIPLE * round(size / RESNET_SIZE_MULTIPLE))
        return (f"{backbone} takes sides that are multiples of {RESNET_SIZE_MULTIPLE} (its strided stages "
                f"halve the side), got {size}; the nearest is {near}")
    return None
