"""Boards as data: every shipped board file loads and agrees with FINN; a bad field is
refused naming it."""
from __future__ import annotations

import json

import pytest

import boards
from boards import BoardError, available, load_board, parse_board


def test_every_shipped_board_loads_and_matches_finns_part_map():
    from finn.util.basic import pynq_native_port_width, pynq_part_map

    assert {"pynq-z1", "pynq-z2", "zcu104", "ultra96-v2", "kv260"} <= set(available())
    for name in available():
        b = load_board(name)
        assert pynq_part_map[b.finn_board] == b.part, name
        assert pynq_native_port_width[b.finn_board] == b.dma_port_width, name
        assert b.yosys_family == ("xc7" if b.family == "zynq-7000" else "xcup")


def _doc() -> dict:
    return json.loads((boards.BOARDS_DIR / "pynq-z2.json").read_text())


@pytest.mark.parametrize("change, field", [
    (lambda d: d.pop("part"), "'part' is missing"),
    (lambda d: d.pop("ps"), "'ps' is missing"),
    (lambda d: d.update(clock_period_ns="fast"), "'clock_period_ns' is 'fast'"),
    (lambda d: d.update(clock_period_ns=-1), "'clock_period_ns' must be positive"),
    (lambda d: d.update(ps="zynq_ultra_ps_e"), "'ps' is 'zynq_ultra_ps_e'"),
    (lambda d: d.update(family="virtex"), "'family' is 'virtex'"),
    (lambda d: d.update(part="xczu3eg-sbva484-1-i"), "'part' 'xczu3eg-sbva484-1-i' is not a zynq-7000 part"),
    (lambda d: d.update(dma_port_width=48), "'dma_port_width' must be 32, 64 or 128"),
    (lambda d: d["resources"].pop("DSP"), "'resources.DSP' is missing"),
    (lambda d: d["resources"].update(LUT=-5), "'resources.LUT' must be a positive integer"),
    (lambda d: d["resources"].update(BRAM18=True), "'resources.BRAM18' must be a positive integer"),
    (lambda d: d.update(colour="red"), "unknown field"),
])
def test_a_bad_field_is_named(change, field):
    doc = _doc()
    change(doc)
    with pytest.raises(BoardError, match=field.replace("(", r"\(").replace(")", r"\)")) as e:
        parse_board(doc, "boards/x.json")
    assert str(e.value).startswith("boards/x.json:")


def test_a_board_file_is_checked_when_loaded(tmp_path, monkeypatch):
    shipped = _doc()
    monkeypatch.setattr(boards, "BOARDS_DIR", tmp_path)
    (tmp_path / "mine.json").write_text(json.dumps(dict(shipped, name="mine")))
    assert load_board("mine").part == "xc7z020clg400-1"
    (tmp_path / "other.json").write_text(json.dumps(dict(shipped, name="mine")))
    with pytest.raises(BoardError, match="field 'name' is 'mine', the file is named 'other'"):
        load_board("other")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(BoardError, match="broken.json: not valid JSON"):
        load_board("broken")
    doc = dict(shipped, name="nops")
    del doc["ps"]
    (tmp_path / "nops.json").write_text(json.dumps(doc))
    with pytest.raises(BoardError, match=r"nops.json: field 'ps' is missing"):
        load_board("nops")
