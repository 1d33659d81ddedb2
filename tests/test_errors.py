"""One base error for the project, caught once by the `btsee` command: configs that cannot
run a step are refused at load, and every user-facing error is one line, no traceback."""
from __future__ import annotations

import ast
import importlib
import json

import pytest

from calib.errors import BtseeError
from conftest import TINY_CONFIG, btsee, write_config
from test_layout import project_modules


def test_every_error_class_of_the_project_is_a_btsee_error():
    found = []
    for module, path in project_modules().items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                found.append((module, node.name))
    assert len(found) >= 8
    for module, name in found:
        assert issubclass(getattr(importlib.import_module(module), name), BtseeError), f"{module}.{name}"


@pytest.mark.parametrize("change, step, reason", [
    ({"model": {"weight_bits": None, "act_bits": None}}, "export", "quantized model"),
    ({"calibration": {"score": "softmax"}}, "simulate", "calibration.score"),
    ({"model": {"weight_bits": 1}}, "dataflow", "model.weight_bits: 1"),
    ({"model": {"act_bits": 1}}, "dataflow", "model.act_bits: 1"),
])
def test_a_step_that_cannot_apply_says_so_at_load(tmp_path, change, step, reason):
    """Before any training: the error names the step and the reason and says where to stop."""
    values = json.loads(json.dumps(TINY_CONFIG))
    for section, fields in change.items():
        values[section].update(fields)
    cfg = write_config(tmp_path / "c.json", values)
    r = btsee("run", str(cfg), "--out", str(tmp_path / "run"), "--device", "cpu", check=False)
    assert r.returncode == 2, r.stderr
    assert f"step {step!r} cannot run" in r.stderr and reason in r.stderr and "--to " in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "backbone").exists()


def test_a_broken_board_file_is_one_line_naming_the_file(tiny_run_copy, tmp_path, monkeypatch, capsys):
    """A board file without its part, met by the dataflow step: exit status 1, one line."""
    import boards
    from btsee.cli import main

    for f in boards.BOARDS_DIR.glob("*.json"):
        (tmp_path / f.name).write_text(f.read_text())
    doc = json.loads((boards.BOARDS_DIR / "pynq-z2.json").read_text())
    doc.pop("part")
    doc["name"] = "no-part"
    (tmp_path / "no-part.json").write_text(json.dumps(doc))
    monkeypatch.setattr(boards, "BOARDS_DIR", tmp_path)
    values = json.loads(json.dumps(TINY_CONFIG))
    values["hardware"]["board"] = "no-part"
    cfg = write_config(tmp_path / "c.json", values)
    code = main(["run", str(cfg), "--out", str(tiny_run_copy), "--from", "dataflow", "--to", "dataflow",
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1
    assert str(tmp_path / "no-part.json") in err and "part" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_values_off_the_integer_grid_are_a_project_error():
    import numpy as np

    from hw.export import ExportError, integer_codes

    with pytest.raises(ExportError, match="head 0 logits"):
        integer_codes(np.array([0.1, 0.35]), 0.1, "head 0 logits")
    assert issubclass(ExportError, BtseeError)


def test_debug_shows_the_traceback_of_a_project_error(tmp_path):
    """One line by default; --debug (or BTSEE_DEBUG=1) adds the traceback for developers."""
    import os

    cfg = write_config(tmp_path / "c.json", {"data": {"root": str(tmp_path / "nothing")}})
    plain = btsee("run", str(cfg), "--out", str(tmp_path / "x"), check=False)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert len(plain.stderr.strip().splitlines()) == 1
    debug = btsee("--debug", "run", str(cfg), "--out", str(tmp_path / "x"), check=False)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "DataError" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()
    env = dict(os.environ, BTSEE_DEBUG="1")
    variable = btsee("run", str(cfg), "--out", str(tmp_path / "x"), check=False, env=env)
    assert variable.returncode == 1 and "Traceback" in variable.stderr


def test_debug_goes_before_board_test_too(tmp_path):
    """`btsee --debug board-test PKG` reaches board-test (it has its own parser) and shows
    the traceback of a refused package; without --debug, one line."""
    missing = str(tmp_path / "no_package")
    plain = btsee("board-test", missing, "--backend", "virtual", check=False)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().startswith("board-test: error:") and len(plain.stderr.strip().splitlines()) == 1
    debug = btsee("--debug", "board-test", missing, "--backend", "virtual", check=False)
    assert debug.returncode == 1 and "unrecognized arguments" not in debug.stderr
    assert "Traceback" in debug.stderr and debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()


def test_version_and_debug_anywhere_on_the_line(tmp_path):
    """`btsee --version`; `--debug` after the command works as before it: a config error
    then shows its traceback and keeps exit status 2."""
    from btsee import __version__

    r = btsee("--version", check=False)
    assert r.returncode == 0 and r.stdout.strip() == f"btsee {__version__}"
    values = json.loads(json.dumps(TINY_CONFIG))
    values["model"]["weight_bits"] = None
    values["model"]["act_bits"] = None
    cfg = write_config(tmp_path / "c.json", values)
    plain = btsee("run", str(cfg), "--out", str(tmp_path / "run"), "--device", "cpu", check=False)
    late = btsee("run", str(cfg), "--out", str(tmp_path / "run"), "--device", "cpu", "--debug", check=False)
    assert plain.returncode == late.returncode == 2 and "Traceback" not in plain.stderr
    assert "Traceback" in late.stderr and late.stderr.strip().splitlines()[-1] == plain.stderr.strip()


def test_a_finished_run_reporting_mismatches_exits_with_its_own_status(tiny_run_copy, capsys):
    """Every step up to date, but report.json counts mismatched images (as a failed
    comparison would write them): exit status EXIT_MISMATCH and one line naming where."""
    from btsee.cli import EXIT_MISMATCH, main, mismatches_found

    assert mismatches_found(tiny_run_copy) == ""  # the tiny run is exact
    report = tiny_run_copy / "report.json"
    doc = json.loads(report.read_text())
    doc["bit_exact"]["golden_vs_netlist"]["mismatches"] = 3
    report.write_text(json.dumps(doc))
    code = main(["run", str(tiny_run_copy / "config.json"), "--out", str(tiny_run_copy), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_MISMATCH
    assert err == f"btsee: mismatch found: 3 in {report} bit_exact.golden_vs_netlist.mismatches"
