"""What several steps (and `btsee sweep`) share: the run's data, backbone and exit settings,
loaded once per invocation through the context's cache."""
from __future__ import annotations

from dataclasses import fields

from btsee.config import ConfigError
from btsee.flow import Context
from btsee.run_folder import BACKBONE_FILE, DATA_SUMMARY, read_json, read_splits
from calib.cpm import CalibrationPolicy
from calib.errors import ArtifactError
from calib.progress import progress
from calib.schema import check
from qat import data as data_mod
from qat.exit_training import HeadTraining, SplitData
from qat.feature_cache import build_cache
from qat.heads import ExitHead, HeadSpec
from qat.models import Backbone, ModelSpec, load_backbone
from qat.train import InputScaling


def load_splits(ctx: Context) -> data_mod.Splits:
    """The train/val/test splits recorded by the data step (cached for the invocation)."""
    if "splits" not in ctx.cache:
        ctx.cache["splits"] = read_splits(ctx.out, ctx.config.data)
    return ctx.cache["splits"]


def input_scaling(ctx: Context) -> InputScaling:
    """pixel/255, then the training split's mean and std when the config normalises."""
    if ctx.config.data.normalize:
        summary = check(read_json(ctx.out, DATA_SUMMARY), {"mean": [float], "std": [float]},
                        ctx.out / DATA_SUMMARY)
        return InputScaling(tuple(summary["mean"]), tuple(summary["std"]))
    return InputScaling()


def model_spec(ctx: Context) -> ModelSpec:
    """The backbone spec: the config's model section plus the data's shape and classes."""
    m = ctx.config.model
    summary = read_json(ctx.out, DATA_SUMMARY)
    if len(summary["shape"]) != 3 or min(summary["shape"]) < 1 or not summary["classes"]:
        raise ArtifactError(f"{ctx.out / DATA_SUMMARY}: shape {summary['shape']} and {len(summary['classes'])} "
                            "classes: expected (C, H, W) of positive sizes and at least one class")
    c, h, w = summary["shape"]
    if h != w:
        raise ConfigError(f"{ctx.out / DATA_SUMMARY}: images are {h}x{w}; backbones need square images")
    return ModelSpec(name=m.name, width=m.width,
                     channels=tuple(m.channels) if m.channels is not None else None,
                     weight_bits=m.weight_bits, act_bits=m.act_bits, input_bits=m.input_bits,
                     in_channels=c, num_classes=len(summary["classes"]), image_size=h)


def backbone(ctx: Context) -> Backbone:
    """The trained backbone (cached for the invocation)."""
    if "backbone" not in ctx.cache:
        ctx.cache["backbone"] = load_backbone(ctx.out / BACKBONE_FILE)
    return ctx.cache["backbone"]


def _mirror(cls, section):
    """An instance of `cls` (a qat/calib dataclass that cannot import the config) filled
    from the config section's fields of the same names."""
    return cls(**{f.name: getattr(section, f.name) for f in fields(cls)})


def policy(ctx: Context) -> CalibrationPolicy:
    return _mirror(CalibrationPolicy, ctx.config.calibration)


def head_training(ctx: Context) -> HeadTraining:
    return _mirror(HeadTraining, ctx.config.exits)


def head_specs(ctx: Context, model: Backbone, points: list[str], conv_channels: list[int]
               ) -> list[HeadSpec]:
    """One head spec per point; an error names a head over the MAC budget."""
    e = ctx.config.exits
    shapes = model.exit_point_shapes()
    unknown = [p for p in points if p not in shapes]
    if unknown:
        raise ConfigError(f"exits.points: {unknown} are not exit points of this "
                          f"{model.spec.name}; it has {model.exit_points}")
    order = [model.exit_points.index(p) for p in points]
    if order != sorted(order):
        raise ConfigError(f"exits.points: {points} are not in backbone order {model.exit_points}")
    total = sum(model.segment_macs().values())
    specs = []
    for p in points:
        spec = HeadSpec(shapes[p], model.spec.num_classes, e.reduce_channels, tuple(conv_channels),
                        model.spec.weight_bits, model.spec.act_bits)
        macs = ExitHead(spec).macs()
        if macs > e.max_head_mac_fraction * total:
            raise ConfigError(f"exits: the head at {p} costs {macs:,} MACs, "
                              f"{macs / total:.1%} of the backbone, over exits.max_head_mac_fraction "
                              f"{e.max_head_mac_fraction:.0%}; lower exits.reduce_channels or conv_channels")
        specs.append(spec)
    return specs


def split_data(ctx: Context, points: list[str]) -> dict[str, SplitData]:
    """Cached exit-point features, backbone logits and labels of train/val/test."""
    key = ("split_data", tuple(points))
    if key not in ctx.cache:
        splits, model, scaling = load_splits(ctx), backbone(ctx), input_scaling(ctx)
        out = {}
        for name in ("train", "val", "test"):
            part = getattr(splits, name)
            bar = lambda it, name=name: progress(it, desc=f"features {name}",  # noqa: E731
                                             leave=False, unit="batch")
            feats, logits = build_cache(model, part, points, scaling, progress=bar)
            out[name] = SplitData(feats, logits, part.labels)
        ctx.cache[key] = out
    return ctx.cache[key]


def integer_form_missing(m) -> str | None:
    """Why a model (the config's `model` section or a ModelSpec) has no integer dataflow
    form, in which logits are integers times one scale (None when it has one)."""
    if m.weight_bits is None or m.act_bits is None or m.input_bits != 8:
        return ("the hardware flow needs a quantized model: model.weight_bits and model.act_bits set "
                f"and model.input_bits 8 (this config: {m.weight_bits}, {m.act_bits}, {m.input_bits})")
    if m.name == "resnet18":
        return ("model.name 'resnet18' stays a training-only model on the boards of this flow: its 11.2 "
                "million weights (44.7 Mbit at 4 bits) are 9 times the xc7z020's 4.9 Mbit of block RAM")
    return None


MIN_MVU_BITS = 2
"""finn-rtllib's MVU, on which the hardware flow builds every matrix layer, stops with an
$error below 2-bit weights or activations (its WEIGHT_WIDTH, ACTIVATION_WIDTH)."""


def dataflow_widths_missing(m) -> str | None:
    """Why the config's `model` section has weights or activations too narrow for the
    dataflow and RTL steps (None when they fit): binary layers would need FINN's HLS XNOR
    path, which this flow does not build."""
    narrow = [f"model.{k}: {getattr(m, k)}" for k in ("weight_bits", "act_bits")
              if getattr(m, k) is not None and getattr(m, k) < MIN_MVU_BITS]
    if not narrow:
        return None
    return (f"{', '.join(narrow)}: finn-rtllib's MVU, which builds every matrix layer here, needs weights and "
            f"activations of at least {MIN_MVU_BITS} bits (a binary XNOR-popcount path is not built); "
            f"the nearest supported setting is {MIN_MVU_BITS} bits")


def has_integer_form(model: Backbone) -> bool:
    """Whether the model's logits are integers times a scale (see `integer_form_missing`)."""
    return integer_form_missing(model.spec) is None
