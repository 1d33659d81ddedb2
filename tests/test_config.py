"""Config loading: defaults, YAML and JSON, and errors that name the key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from btsee.config import Config, ConfigError, config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_configs_load():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cfg = load_config(path)
        assert isinstance(cfg, Config)
    default = load_config(ROOT / "configs" / "default.yaml")
    assert default.data.dataset == "fashion-mnist"
    assert (default.model.name, default.model.weight_bits, default.model.act_bits) == ("cnv", 4, 4)


def test_json_and_yaml_agree(tmp_path):
    values = {"model": {"width": 0.5, "channels": [1, 2, 3, 4, 5, 6, 7, 8]}, "train": {"epochs": 3}}
    (tmp_path / "a.json").write_text(json.dumps(values))
    (tmp_path / "a.yaml").write_text("model:\n  width: 0.5\n  channels: [1, 2, 3, 4, 5, 6, 7, 8]\n"
                                     "train:\n  epochs: 3\n")
    assert load_config(tmp_path / "a.json") == load_config(tmp_path / "a.yaml")


@pytest.mark.parametrize("values, key", [
    ({"trian": {}}, "trian"),
    ({"train": {"lrr": 0.1}}, "train.lrr"),
    ({"model": {"width": "wide"}}, "model.width"),
    ({"train": {"epochs": 2.5}}, "train.epochs"),
    ({"train": {"augment": 1}}, "train.augment"),
    ({"model": {"channels": [1, "x"]}}, "model.channels[1]"),
    ({"model": {"weight_bits": 9}}, "model.weight_bits"),
    ({"data": {"normalize": True}}, "data.normalize"),
    ({"data": "fashion"}, "data"),
    ({"hardware": {"board": "zcu999"}}, "hardware.board"),
    ({"hardware": {"target_fps": 0}}, "hardware.target_fps"),
    ({"model": {"weight_bits": 8}, "hardware": {"mvau_wwidth_max": 6}}, "hardware.mvau_wwidth_max"),
    ({"hardware": {"threshold_bram_depth": 0}}, "hardware.threshold_bram_depth"),
    ({"data": {"image_fit": "stretch"}}, "data.image_fit"),
    ({"data": {"image_size": 64}}, "data.image_size"),  # the default cnv takes 32 only
    ({"data": {"image_size": 60}, "model": {"name": "resnet8", "channels": None},
      "exits": {"points": ["stage1"]}}, "data.image_size"),
    ({"data": {"pad_to_32": True}}, "data.pad_to_32"),
])
def test_errors_name_the_key(values, key):
    with pytest.raises(ConfigError) as e:
        config_from_dict(values)
    assert str(e.value).startswith(key + ":"), str(e.value)


def test_image_sizes_each_backbone_takes():
    """cnv: 32 only, refused at load with the reason; the ResNets: multiples of 8."""
    with pytest.raises(ConfigError, match=r"cnv takes 32x32 images only .* got 64"):
        config_from_dict({"data": {"image_size": 64}})
    with pytest.raises(ConfigError, match=r"resnet8 takes sides that are multiples of 8 .* got 60; the nearest is 64"):
        config_from_dict({"data": {"image_size": 60}, "model": {"name": "resnet8"}, "exits": {"points": ["stage1"]}})
    for size in (8, 32, 64, 96):
        cfg = config_from_dict({"data": {"image_size": size, "image_fit": "resize"},
                                "model": {"name": "resnet8"}, "exits": {"points": ["stage1"]}})
        assert cfg.data.image_size == size
    with pytest.raises(ConfigError, match="use data.image_size"):
        config_from_dict({"data": {"pad_to_32": False}})


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"train": {"lr": "fast"}}))
    with pytest.raises(ConfigError, match=r"wrong.json: train.lr"):
        load_config(wrong)


def test_null_and_float_from_int():
    cfg = config_from_dict({"model": {"weight_bits": None, "act_bits": None, "input_bits": None,
                                      "width": 1}, "data": {"normalize": True}})
    assert cfg.model.weight_bits is None and cfg.model.width == 1.0
    assert isinstance(cfg.model.width, float)


def test_boards_are_data_files():
    from boards import BoardError, available, load_board

    assert "pynq-z2" in available()
    board = load_board("PYNQ-Z2")
    assert board.finn_board == "Pynq-Z2" and board.part == "xc7z020clg400-1"
    assert board.resources == {"LUT": 53200, "FF": 106400, "BRAM18": 280, "DSP": 220}
    with pytest.raises(BoardError, match="unknown board 'nope'"):
        load_board("nope")


@pytest.mark.parametrize("model, valid", [("resnet8", ["stem", "stage1", "stage2", "stage3"]),
                                          ("resnet18", ["stem", "stage1", "stage2", "stage3", "stage4"])])
def test_exit_points_are_checked_against_the_model_at_load(model, valid):
    """The default points (block1..3) name no ResNet segment: the config is refused when
    loaded, naming the key and the valid points, not after backbone training."""
    with pytest.raises(ConfigError) as e:
        config_from_dict({"model": {"name": model}})
    assert str(e.value).startswith("exits.points:")
    assert str(valid) in str(e.value)
    cfg = config_from_dict({"model": {"name": model}, "exits": {"points": valid[:2]}})
    assert cfg.exits.points == valid[:2]
    with pytest.raises(ConfigError, match="not in backbone order"):
        config_from_dict({"model": {"name": model}, "exits": {"points": valid[:2][::-1]}})


def test_exit_point_names_are_the_built_models():
    from qat.models import ModelSpec, build_backbone
    from qat.topology import exit_points

    for name in ("cnv", "resnet8", "resnet18"):
        spec = ModelSpec(name=name, width=0.125, channels=None, image_size=32)
        assert build_backbone(spec).exit_points == exit_points(name), name


def test_shipped_resnet_configs_name_their_stages():
    for path in ("cifar10-resnet8.yaml", "cinic10-resnet18.yaml"):
        cfg = load_config(ROOT / "configs" / path)
        assert all(p.startswith("stage") for p in cfg.exits.points)
        assert all(p.startswith("stage") for s in cfg.sweep.point_sets for p in s)


def test_clock_defaults_to_the_boards(tmp_path, monkeypatch):
    """hardware.clock_period_ns: null takes the board file's clock; a value overrides it."""
    import boards

    doc = json.loads((boards.BOARDS_DIR / "pynq-z2.json").read_text())
    doc.update(name="slow-board", clock_period_ns=8.0)
    for f in boards.BOARDS_DIR.glob("*.json"):
        (tmp_path / f.name).write_text(f.read_text())
    (tmp_path / "slow-board.json").write_text(json.dumps(doc))
    monkeypatch.setattr(boards, "BOARDS_DIR", tmp_path)
    assert config_from_dict({"hardware": {"board": "slow-board"}}).hardware.clock_ns() == 8.0
    assert config_from_dict({"hardware": {"board": "pynq-z2"}}).hardware.clock_ns() == 10.0
    fixed = config_from_dict({"hardware": {"board": "slow-board", "clock_period_ns": 5.0}})
    assert fixed.hardware.clock_ns() == 5.0
    assert load_config(ROOT / "configs" / "default.yaml").hardware.clock_period_ns is None


def test_a_changed_board_file_makes_the_dataflow_step_stale(tmp_path, monkeypatch):
    """The board's clock now reaches the dataflow step, so its file's contents are part of
    the step's fingerprint; where the file lies is not (a run folder stays up to date in
    another clone of the project)."""
    import boards
    from btsee.flow import Context, fingerprint
    from btsee.steps import STEPS_BY_NAME
    from qat.distributed import DistEnv

    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "manifest.json").write_text("{}")
    ctx = Context(Config(), tmp_path, DistEnv(0, 1, None), log=lambda _m: None)
    shipped = fingerprint(STEPS_BY_NAME["dataflow"], ctx)
    (tmp_path / "boards").mkdir()
    for f in boards.BOARDS_DIR.glob("*.json"):
        (tmp_path / "boards" / f.name).write_text(f.read_text())
    monkeypatch.setattr(boards, "BOARDS_DIR", tmp_path / "boards")
    before = fingerprint(STEPS_BY_NAME["dataflow"], ctx)
    assert before == shipped  # the same contents elsewhere
    doc = json.loads((tmp_path / "boards" / "pynq-z2.json").read_text())
    doc["clock_period_ns"] = 8.0
    (tmp_path / "boards" / "pynq-z2.json").write_text(json.dumps(doc))
    assert fingerprint(STEPS_BY_NAME["dataflow"], ctx) != before
