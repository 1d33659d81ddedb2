"""The run configuration: one dataclass tree, loaded from YAML or JSON with strict checks.

Every field is documented here; an unknown key or a value of the wrong type is a
`ConfigError` naming the key (for example ``train.lr: expected float, got 'fast'``).
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calib.errors import BtseeError


class ConfigError(BtseeError):
    """A configuration file is unreadable, has an unknown key or a value of the wrong type."""


@dataclass
class DataConfig:
    """Where the images come from and how they are split."""

    dataset: str = "fashion-mnist"
    """One of fashion-mnist (Debian's dataset-fashion-mnist), cifar10 (python batches),
    cinic10 (ROOT/{train,valid,test}/<class>/*.png) or imagefolder (ROOT/<class>/*)."""
    root: str | None = None
    """Folder of the data set; null means the default (fashion-mnist only)."""
    seed: int = 0
    """Seed of the train/validation(/test) split."""
    val_fraction: float = 0.1
    """Share of the training images held out as validation (= calibration) set, for data
    sets without a validation split of their own."""
    test_fraction: float = 0.2
    """Share held out for test, for an ImageFolder tree without split folders."""
    image_size: int = 32
    """Side of the square images the backbone takes. cnv takes 32 only; resnet8 and
    resnet18 take any multiple of 8 (they pool globally). Images of another size are
    brought to it by `image_fit` as they are read."""
    image_fit: str = "pad"
    """How images of another size are brought to `image_size`: pad (zero-pad, centred;
    larger images are refused), crop (centre-crop the larger sides, zero-pad the
    smaller) or resize (scale the shorter side to the size, bilinear, and centre-crop
    the other, keeping the aspect ratio)."""
    grayscale: bool = False
    """Read ImageFolder/CINIC images as one grey channel instead of RGB."""
    normalize: bool = False
    """Subtract the training mean and divide by the std in front of the network. Float
    research runs only: hardware models take pixel/255 (model.input_bits: 8)."""
    limit_train: int | None = None
    """Use only N images of the training split, drawn with data.seed; null = all."""
    limit_val: int | None = None
    """Use only N validation images, drawn with data.seed; null = all."""
    limit_test: int | None = None
    """Use only N test images, drawn with data.seed; null = all."""


@dataclass
class ModelConfig:
    """The backbone."""

    name: str = "cnv"
    """cnv (FINN's CNV family), resnet8 or resnet18 (CIFAR stem)."""
    width: float = 0.25
    """Width multiplier of the channel counts."""
    channels: list[int] | None = None
    """Explicit channel counts overriding the width (cnv: 8, resnet8: 3, resnet18: 4)."""
    weight_bits: int | None = 4
    """Weight bits, 1..8 (1 = binary); null = float. The hardware steps (dataflow on) need
    2 or more: finn-rtllib's MVU takes no narrower weights, and `btsee run` refuses such a
    config before training unless it stops before dataflow."""
    act_bits: int | None = 4
    """Activation bits, 1..8; null = float. The hardware steps need 2 or more, as for weights."""
    input_bits: int | None = 8
    """8: uint8 pixels at scale 1/255 (hardware); null: float input (research runs)."""


@dataclass
class TrainConfig:
    """Backbone training."""

    epochs: int = 10
    """Passes over the training split."""
    batch_size: int = 128
    """Global batch size (split evenly over DDP processes)."""
    optimizer: str = "adam"
    """adam or sgd (momentum 0.9, Nesterov)."""
    lr: float = 0.002
    """Peak learning rate."""
    weight_decay: float = 0.0
    """L2 weight decay of the optimizer."""
    schedule: str = "cosine"
    """cosine (to zero, after warm-up) or constant."""
    warmup_epochs: float = 0.5
    """Linear warm-up length, in epochs."""
    augment: bool = True
    """Random horizontal flips and shifts of up to 2 pixels."""
    seed: int = 0
    """Seed of initialisation, batch order and augmentation."""
    label_smoothing: float = 0.0
    """Label smoothing of the cross-entropy (0 = none)."""


@dataclass
class ExitsConfig:
    """Exit heads and how they are trained (BTS-EE or the joint baseline)."""

    points: list[str] = field(default_factory=lambda: ["block1", "block2", "block3"])
    """Exit points that get a head, in backbone order (see `btsee run --to backbone` and
    report.json model.exit_points)."""
    method: str = "bts"
    """bts (boosted: head k trains on what heads before it pass on) or joint (all data)."""
    target: str = "backbone"
    """Training target: backbone (its argmax, the paper's v1) or labels (ground truth)."""
    soft_weights: bool = False
    """v2 option: importance weights sigmoid-smoothed from the earlier exits' decisions
    instead of dropping the exited samples."""
    soft_temperature: float = 1.0
    """Temperature of that sigmoid, in score units."""
    distill_temperature: float | None = None
    """v2 option: train on temperature-scaled KL to the backbone's softmax (e.g. 2.0)."""
    reduce_channels: int | None = None
    """1x1 reduction of the features to this many channels before the row pool; null = none."""
    conv_channels: list[int] = field(default_factory=lambda: [32])
    """Channels of each (1, 3) convolution of a head."""
    epochs: int = 4
    """Passes of each head over its training images (the backbone is frozen)."""
    batch_size: int = 512
    """Batch size of head training (on cached backbone features)."""
    lr: float = 0.005
    """Learning rate of head training (Adam, cosine to zero)."""
    seed: int = 0
    """Seed of the heads' initialisation and batch order."""
    max_head_mac_fraction: float = 0.05
    """Each head may cost at most this share of the backbone's MACs (an error names the head)."""


@dataclass
class CalibrationConfig:
    """How exit thresholds are chosen on the validation split."""

    policy: str = "cpm"
    """cpm (per-class, anchored at the backbone's per-class precision) or global
    (one threshold per exit on the score, for every class: BranchyNet style)."""
    score: str = "margin"
    """margin (top-2 logit margin: integer in hardware) or softmax (max softmax)."""
    margin: float = -0.05
    """CPM: precision a class may lose against the backbone's (negative: must gain; the
    bar is capped at 1). With max_drop set, the deployed thresholds come from the budget
    search, but exits.method bts still trains each head on what the earlier exits pass on
    at this margin (or at `global_threshold` under the global policy)."""
    margin_mode: str = "additive"
    """additive (anchor - margin) or multiplicative ((1 - margin) * anchor)."""
    min_support: int = 20
    """CPM: fewest validation samples a class threshold may rest on."""
    global_threshold: float = 0.9
    """global policy: the threshold on the score."""
    max_drop: float | None = None
    """The accuracy budget: points of accuracy the cascade may lose against the backbone on
    the calibration (validation) split. Set, the calibrate step searches the CPM margin (or
    the global threshold) for the fewest expected MACs within it and records its choice;
    `margin` and `global_threshold` are then ignored. None: they are used as given."""
    budget_search: str = "shared"
    """max_drop: shared (one margin for every exit) or per_exit (then each exit's in turn)."""
    confidence: float | None = None
    """The budget's guard, e.g. 0.9: the search fits the thresholds on all but `holdout` of
    the calibration images, which also order the settings from cautious to bold; the
    held-out rest tests them in that order by the drop's one-sided upper bound (Tango's
    score, at this confidence) and the last to pass before the first failure is kept, so
    that the budget holds on unseen images with this probability (learn then test;
    bench/bench_budget.py measures how often it does). None: the drop observed on the
    images the thresholds were fitted on."""
    holdout: float = 0.5
    """The guard: the fraction of the calibration images held out to measure the drop."""
    guard_images: int | str | None = "test"
    """The guard: how many unseen images its promise is about. "test": as many as the test
    split has (the evaluation the report shows); a number; or null for the expected drop
    (infinitely many images). A finite set adds its own sampling noise to the drop it
    shows, so the guard bounds that set's drop (a prediction bound): a little more cautious."""
    class_confidence: float | None = None
    """CPM: judge each class's precision by its one-sided lower bound at this confidence
    (more MACs for little less exceedance, measured with the former guard: docs/method.md)."""


@dataclass
class SweepConfig:
    """`btsee sweep`: every combination is one configuration per method."""

    margins: list[float] = field(default_factory=lambda: [-0.06, -0.04, -0.02, 0.0])
    """CPM margins compared (calibration.margin of each configuration)."""
    point_sets: list[list[str]] = field(default_factory=lambda: [
        ["block1", "block2"], ["block1", "block3"], ["block2", "block3"], ["block1", "block2", "block3"]])
    """Sets of exit points compared (exits.points of each configuration)."""
    conv_channels: list[int] = field(default_factory=lambda: [8, 16])
    """Head widths: channels of the single (1, 3) convolution."""
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    """Head-training seeds compared (exits.seed of each configuration)."""
    global_thresholds: list[float] = field(default_factory=lambda: [0.7, 0.8, 0.9, 0.95])
    """Max-softmax thresholds of the global baseline (one per exit, shared)."""
    variants: list[str] = field(default_factory=lambda: ["soft", "distill", "labels"])
    """bts variants compared with v1 on the exits section's points, first head width and
    first seed, over the margins: soft (v2 importance weights), distill (v2 KL to the
    backbone's softmax at T = 2), labels (ground-truth targets)."""


@dataclass
class HardwareConfig:
    """The `dataflow`, `simulate`, `rtl` and `synth` steps (FINN estimates, the
    bit-exactness chain, the RTL simulation and synthesis)."""

    board: str = "pynq-z2"
    """A board of `boards/` (one data file each): its FINN board name, part and resources."""
    clock_period_ns: float | None = None
    """Target clock period in ns; null = the board's default (`boards/<board>.json`,
    10 ns = 100 MHz on PYNQ-Z2, what FINN builds it at)."""
    target_fps: int = 3000
    """Folding target of every segment (FINN only warns when folding misses it; the
    report says per segment whether it was met). 3,000 fps is where FINN's own CNV W2A2
    sits on PYNQ-Z2 (3,028 fps); the default model's segments then estimate 57 % of its
    LUTs, leaving room for FIFOs, the shell and the exit logic, which estimates omit."""
    mvau_wwidth_max: int = 36
    """FINN's cap on an MVAU's weight stream width (bits); it limits SIMD."""
    threshold_bram_depth: int | None = None
    """Thresholding memories (one per comparison stage of each layer: channels / PE x 1, 2,
    4, ... thresholds) of at least this many words go into block RAM instead of LUT logic
    (FINN's `depth_trigger_bram`; on the default model's head_1, 128 moves one layer's
    thresholds from 310 LUTs to 103 LUTs and 3 BRAM18); null keeps them all in LUTs."""
    folding: str = "exit_aware"
    """How the `fold` step folds the design the `rtl` and `synth` steps build: exit_aware
    (each segment for the share of images reaching it, the fastest design within
    `lut_budget`) or uniform (every segment at `target_fps`, exits ignored)."""
    lut_budget: int | None = None
    """LUTs (LUT + LUTRAM, as the fold step models synthesis: `hw.fold.search`) the
    exit-aware design may use; null = the board's. BRAM18 and DSP are bounded by the board."""
    buffer_frames: int | None = None
    """Frames each conditional buffer holds; null = the search picks it (2 to 8) with the
    pipeline model."""
    exits_built: list[int] | None = None
    """The exits (indices into exits.points) the fold step builds; null = it searches every
    subset, none included, and builds the fastest within the budget (never slower than the
    backbone alone); a list fixes that subset."""
    chain_images: int | None = None
    """Test images run through the whole chain golden = qonnx = FINN; null = the whole
    test split (about 2 minutes for 10,000 images of the default model on 2 cores;
    `make bench` runs them all, bench/bench_chain.py)."""
    rtl_images: int = 1000
    """Test images the whole multi-exit design simulates in Verilator, in order (`rtl`
    step), compared image by image with the golden simulator (capped at the test split's
    size): all of them free-running, the first 100 again with stalls; each segment on its
    own runs at most 50 of them with stalls and 40 without (`make bench` runs ResNet-8's
    segments and whole designs on all of them with stalls: `btsee.steps.rtl_checks`)."""
    netlist_images: int = 20
    """Test images each segment's synthesized netlist simulates with stalls in the `netlist`
    step (Yosys's mapped netlist with models of the xc7 primitives: several times slower
    than the RTL); `make bench` runs 100 (`bench/bench_netlist.py`)."""
    netlist_design_images: int = 0
    """Test images the whole design's netlist (the exit glue's with every segment's under
    it) simulates in order in the `netlist` step; 0 leaves it to `make bench` (200 images,
    about 15 minutes on the default run)."""
    rtl_segments: list[str] | None = None
    """Segments the `rtl` and `synth` steps cover (names as in dataflow/manifest.json);
    null = all. The whole design is built only when they are all covered."""

    def clock_ns(self) -> float:
        """The clock period the flow targets: this section's, else the board's default."""
        if self.clock_period_ns is not None:
            return self.clock_period_ns
        from boards import load_board

        return load_board(self.board).clock_period_ns


@dataclass
class Config:
    """One run of the flow."""

    name: str = "run"
    """A label for the run (shown in reports)."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    exits: ExitsConfig = field(default_factory=ExitsConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def section(self, name: str) -> Any:
        return getattr(self, name)


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Checks `value` against the annotation `tp` and returns it (dataclasses built)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # X | None: X's own error names the inner key
            return _convert(value, options[0], key)
        for arg in options:
            try:
                return _convert(value, arg, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return _build(tp, value, key + ".")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp in (str, bool):
        if isinstance(value, tp):
            return value
    else:
        raise ConfigError(f"{key}: unsupported annotation {tp}")
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


# Keys that older configurations used, with what replaces them.
REPLACED_KEYS = {"data.pad_to_32": "data.image_size (32 by default) and data.image_fit (pad by default)"}


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for k in values:
        if prefix + k in REPLACED_KEYS:
            raise ConfigError(f"{prefix}{k}: no longer a key; use {REPLACED_KEYS[prefix + k]}")
        if k not in names:
            raise ConfigError(f"{prefix}{k}: unknown key; {prefix.rstrip('.') or 'the top level'} "
                              f"accepts {names}")
    kwargs = {k: _convert(v, hints[k], prefix + k) for k, v in values.items()}
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any]) -> Config:
    """Builds a Config from plain data; missing keys take their defaults."""
    if not isinstance(values, dict):
        raise ConfigError(f"the configuration must be a mapping, got {type(values).__name__}")
    cfg = _build(Config, values)
    validate(cfg)
    return cfg


def load_config(path: str | Path) -> Config:
    """Reads a YAML (.yaml/.yml) or JSON configuration file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
    except Exception as e:  # the parsers' own error types differ
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper()} ({e})") from e
    try:
        return config_from_dict(values)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def check_exit_points(points: list[str], backbone: str, key: str) -> None:
    """A ConfigError naming `key` unless `points` are distinct exit points of `backbone`,
    in backbone order."""
    from qat.topology import exit_points

    valid = exit_points(backbone)
    _check(len(points) >= 1, f"{key}: name at least one exit point of {backbone}: {valid}")
    unknown = [p for p in points if p not in valid]
    _check(not unknown, f"{key}: {unknown} are not exit points of model.name {backbone!r}; "
                        f"its exit points are {valid}")
    _check(len(set(points)) == len(points), f"{key}: repeated point in {points}")
    order = [valid.index(p) for p in points]
    _check(order == sorted(order), f"{key}: {points} are not in backbone order {valid}")


def validate(cfg: Config) -> None:
    """Checks value ranges and combinations that types alone do not catch."""
    d, m, t = cfg.data, cfg.model, cfg.train
    _check(d.dataset in ("fashion-mnist", "cifar10", "cinic10", "imagefolder"),
           f"data.dataset: unknown data set {d.dataset!r}")
    _check(0.0 < d.val_fraction < 1.0, f"data.val_fraction: must be in (0, 1), got {d.val_fraction}")
    _check(0.0 < d.test_fraction < 1.0, f"data.test_fraction: must be in (0, 1), got {d.test_fraction}")
    for k in ("limit_train", "limit_val", "limit_test"):
        v = getattr(d, k)
        _check(v is None or v > 0, f"data.{k}: must be positive or null, got {v}")
    from qat.image_fit import FIT_METHODS
    from qat.topology import input_size_problem

    _check(d.image_fit in FIT_METHODS, f"data.image_fit: one of {list(FIT_METHODS)}, got {d.image_fit!r}")
    _check(d.image_size >= 1, f"data.image_size: must be positive, got {d.image_size}")
    problem = input_size_problem(m.name, d.image_size)
    _check(problem is None, f"data.image_size: {problem}")
    _check(not (d.normalize and m.input_bits is not None),
           "data.normalize: needs model.input_bits: null (hardware models take pixel/255)")
    _check(m.name in ("cnv", "resnet8", "resnet18"), f"model.name: unknown backbone {m.name!r}")
    _check(m.width > 0, f"model.width: must be positive, got {m.width}")
    for k in ("weight_bits", "act_bits"):
        v = getattr(m, k)
        _check(v is None or 1 <= v <= 8, f"model.{k}: must be 1..8 or null, got {v}")
    _check(m.input_bits in (None, 8), f"model.input_bits: must be 8 or null, got {m.input_bits}")
    _check(t.epochs >= 1, f"train.epochs: must be at least 1, got {t.epochs}")
    _check(t.batch_size >= 1, f"train.batch_size: must be at least 1, got {t.batch_size}")
    _check(t.optimizer in ("adam", "sgd"), f"train.optimizer: adam or sgd, got {t.optimizer!r}")
    _check(t.schedule in ("cosine", "constant"), f"train.schedule: cosine or constant, got {t.schedule!r}")
    _check(t.lr > 0, f"train.lr: must be positive, got {t.lr}")
    e, c = cfg.exits, cfg.calibration
    check_exit_points(e.points, m.name, "exits.points")
    _check(e.method in ("bts", "joint"), f"exits.method: bts or joint, got {e.method!r}")
    _check(e.target in ("backbone", "labels"), f"exits.target: backbone or labels, got {e.target!r}")
    _check(len(e.conv_channels) >= 1, "exits.conv_channels: at least one (1, 3) convolution")
    _check(e.epochs >= 1, f"exits.epochs: must be at least 1, got {e.epochs}")
    _check(0 < e.max_head_mac_fraction <= 1, "exits.max_head_mac_fraction: must be in (0, 1]")
    _check(c.policy in ("cpm", "global"), f"calibration.policy: cpm or global, got {c.policy!r}")
    _check(c.score in ("margin", "softmax"), f"calibration.score: margin or softmax, got {c.score!r}")
    _check(c.margin_mode in ("additive", "multiplicative"),
           f"calibration.margin_mode: additive or multiplicative, got {c.margin_mode!r}")
    _check(c.min_support >= 1, f"calibration.min_support: must be at least 1, got {c.min_support}")
    _check(c.max_drop is None or 0 <= c.max_drop <= 100,
           f"calibration.max_drop: points of accuracy from 0 to 100 (or null), got {c.max_drop}")
    _check(c.budget_search in ("shared", "per_exit"),
           f"calibration.budget_search: shared or per_exit, got {c.budget_search!r}")
    for name in ("confidence", "class_confidence"):
        level = getattr(c, name)
        _check(level is None or 0.5 <= level < 1, f"calibration.{name}: a level in [0.5, 1) (or null), got {level}")
    _check(0 < c.holdout < 1, f"calibration.holdout: a fraction strictly between 0 and 1, got {c.holdout}")
    _check(c.guard_images in (None, "test") or (isinstance(c.guard_images, int) and not isinstance(c.guard_images, bool)
                                                and c.guard_images >= 1),
           f"calibration.guard_images: test, a number of images (at least 1) or null, got {c.guard_images!r}")
    h = cfg.hardware
    from boards import available

    _check(h.board.lower() in available(), f"hardware.board: unknown board {h.board!r}; boards are {available()}")
    _check(h.clock_period_ns is None or h.clock_period_ns > 0,
           f"hardware.clock_period_ns: must be positive or null (the board's), got {h.clock_period_ns}")
    _check(h.target_fps >= 1, f"hardware.target_fps: must be at least 1, got {h.target_fps}")
    _check(h.mvau_wwidth_max >= 1, f"hardware.mvau_wwidth_max: must be at least 1, got {h.mvau_wwidth_max}")
    _check(m.weight_bits is None or h.mvau_wwidth_max >= m.weight_bits,
           f"hardware.mvau_wwidth_max: {h.mvau_wwidth_max} bits cannot hold one weight of model.weight_bits "
           f"{m.weight_bits} (an MVU's SIMD lane); set it to at least {m.weight_bits}")
    _check(h.threshold_bram_depth is None or h.threshold_bram_depth >= 1,
           f"hardware.threshold_bram_depth: must be at least 1 word or null (thresholds in LUTs), "
           f"got {h.threshold_bram_depth}")
    _check(h.folding in ("exit_aware", "uniform"), f"hardware.folding: exit_aware or uniform, got {h.folding!r}")
    _check(h.lut_budget is None or h.lut_budget > 0, f"hardware.lut_budget: must be positive or null, got {h.lut_budget}")
    _check(h.exits_built is None or (sorted(set(h.exits_built)) == list(h.exits_built)
                                     and all(0 <= k < len(cfg.exits.points) for k in h.exits_built)),
           f"hardware.exits_built: increasing indices into exits.points (0..{len(cfg.exits.points) - 1}) or null, "
           f"got {h.exits_built}")
    _check(h.buffer_frames is None or h.buffer_frames >= 1,
           f"hardware.buffer_frames: must be at least 1 or null (searched), got {h.buffer_frames}")
    _check(h.rtl_images >= 1, f"hardware.rtl_images: must be at least 1, got {h.rtl_images}")
    _check(h.netlist_images >= 1, f"hardware.netlist_images: must be at least 1, got {h.netlist_images}")
    _check(h.netlist_design_images >= 0,
           f"hardware.netlist_design_images: must be 0 (none) or more, got {h.netlist_design_images}")
    _check(h.chain_images is None or h.chain_images >= 1,
           f"hardware.chain_images: must be at least 1 or null (the whole test split), got {h.chain_images}")
    bad = [v for v in cfg.sweep.variants if v not in ("soft", "distill", "labels")]
    _check(not bad, f"sweep.variants: unknown {bad}; choose from soft, distill, labels")
