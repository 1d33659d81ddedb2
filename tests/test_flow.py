"""The step mechanism and the `btsee` command on the tiny run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from btsee.config import Config
from btsee.flow import Context, FlowError, Step, run_steps, select
from conftest import TINY_CONFIG, btsee, write_config
from qat.distributed import DistEnv


def test_report_has_the_foundation_keys(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    assert report["dataset"] == "fashion-mnist"
    assert report["model"]["name"] == "cnv"
    assert report["bits"] == {"weight": 4, "act": 4, "input": 8}
    assert 0.0 <= report["accuracy"]["backbone"] <= 1.0
    assert report["model"]["macs"] == sum(report["model"]["segment_macs"].values())
    assert report["data"]["sizes"] == {"train": 512, "val": 256, "test": 256}
    for rel in ("report.md", "data/samples.png", "backbone/training.png", "backbone/model.pt"):
        assert (tiny_run / rel).exists(), rel
    assert not list(tiny_run.rglob("*.tmp")), "no temporary files are left behind"


def test_report_json_is_no_input_of_any_step(tiny_run_copy, tmp_path):
    """MAC costs come from the backbone and exits steps' own artifacts: a report.json with
    other numbers, or none at all, changes nothing the evaluate step computes."""
    before = json.loads((tiny_run_copy / "evaluate" / "evaluation.json").read_text())
    report = json.loads((tiny_run_copy / "report.json").read_text())
    report["model"]["segment_macs"] = {k: 1 for k in report["model"]["segment_macs"]}
    report["exits"]["head_macs"] = [10 ** 9 for _ in report["exits"]["head_macs"]]
    (tiny_run_copy / "report.json").write_text(json.dumps(report))
    cfg = write_config(tmp_path / "tiny.json", TINY_CONFIG)
    btsee("run", str(cfg), "--out", str(tiny_run_copy), "--from", "evaluate", "--to", "evaluate",
          "--device", "cpu")
    assert json.loads((tiny_run_copy / "evaluate" / "evaluation.json").read_text()) == before
    (tiny_run_copy / "report.json").unlink()
    btsee("run", str(cfg), "--out", str(tiny_run_copy), "--from", "evaluate", "--to", "evaluate",
          "--device", "cpu")
    assert json.loads((tiny_run_copy / "evaluate" / "evaluation.json").read_text()) == before
    macs = json.loads((tiny_run_copy / "backbone" / "macs.json").read_text())
    assert macs["macs"] == sum(macs["segment_macs"].values()) > 0


def test_a_rerun_step_replaces_its_report_sections_whole(tmp_path):
    """A new model's segment MACs never mix with the old model's names (stale nested keys)."""
    from btsee.report import update_report

    update_report(tmp_path, {"model": {"segment_macs": {"block1": 5, "block2": 7, "classifier": 3}},
                             "accuracy": {"backbone": 0.9}})
    report = update_report(tmp_path, {"model": {"segment_macs": {"stage1": 4, "classifier": 2}},
                                      "accuracy": {"early_exit": 0.8}})
    assert report["model"]["segment_macs"] == {"stage1": 4, "classifier": 2}
    assert report["accuracy"] == {"backbone": 0.9, "early_exit": 0.8}


def test_up_to_date_steps_are_skipped(tiny_run_copy, tmp_path):
    cfg = write_config(tmp_path / "tiny.json", TINY_CONFIG)
    out = btsee("run", str(cfg), "--out", str(tiny_run_copy), "--device", "cpu").stdout
    for step in ("data", "backbone", "exits", "calibrate", "evaluate", "export"):
        assert f"[{step}] up to date, skipped" in out


def test_changed_training_reruns_the_backbone_not_the_data(tiny_run_copy, tmp_path):
    values = json.loads(json.dumps(TINY_CONFIG))
    values["train"]["epochs"] = 1
    cfg = write_config(tmp_path / "changed.json", values)
    out = btsee("run", str(cfg), "--out", str(tiny_run_copy), "--to", "backbone", "--device", "cpu").stdout
    assert "[data] up to date, skipped" in out
    assert "[backbone] train the quantized backbone" in out
    history = json.loads((tiny_run_copy / "backbone" / "history.json").read_text())
    assert len(history) == 1


def test_changed_calibration_reruns_only_calibrate_and_evaluate(tiny_run_copy, tmp_path):
    values = json.loads(json.dumps(TINY_CONFIG))
    values["calibration"]["margin"] = 0.1
    cfg = write_config(tmp_path / "changed.json", values)
    out = btsee("run", str(cfg), "--out", str(tiny_run_copy), "--from", "calibrate", "--to", "evaluate",
                "--device", "cpu").stdout
    assert "[calibrate] calibrate" in out and "[evaluate] measure" in out and "[exits]" not in out
    # every exit's figures on validation; each that takes (almost) nothing says why in the log
    exits = json.loads((tiny_run_copy / "report.json").read_text())["calibration"]["exits_on_validation"]
    assert list(exits) == TINY_CONFIG["exits"]["points"]
    reaching = TINY_CONFIG["data"]["limit_val"]
    for point, d in exits.items():
        assert d["reaching"] == reaching and 0 <= d["taken"] <= reaching
        assert d["head_right"] <= reaching and d["backbone_right"] <= reaching
        if d["taken"] < 0.02 * reaching:
            assert d["limit"] in ("images", "policy", "head") and f"exit {point}: takes {d['taken']} of" in out
        else:
            assert d["limit"] == ""
        reaching -= d["taken"]


def test_from_and_to_select_steps(tiny_run_copy, tmp_path):
    cfg = write_config(tmp_path / "tiny.json", TINY_CONFIG)
    out = btsee("run", str(cfg), "--out", str(tiny_run_copy), "--from", "data", "--to", "data",
                "--device", "cpu").stdout
    assert "[data] load the data set" in out and "[backbone]" not in out


def test_unknown_step_and_bad_config_are_clear_errors(tmp_path):
    cfg = write_config(tmp_path / "tiny.json", TINY_CONFIG)
    r = btsee("run", str(cfg), "--out", str(tmp_path / "x"), "--from", "nosuch", check=False)
    assert r.returncode == 1 and "unknown step 'nosuch'" in r.stderr
    bad = write_config(tmp_path / "bad.json", {"train": {"epoch": 3}})
    r = btsee("run", str(bad), "--out", str(tmp_path / "x"), check=False)
    assert r.returncode == 2 and "train.epoch: unknown key" in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_data_is_a_clear_error(tmp_path):
    cfg = write_config(tmp_path / "c.json", {"data": {"root": str(tmp_path / "nothing")}})
    r = btsee("run", str(cfg), "--out", str(tmp_path / "x"), check=False)
    assert r.returncode == 1
    assert str(tmp_path / "nothing") in r.stderr and "dataset-fashion-mnist" in r.stderr
    assert "Traceback" not in r.stderr


def test_step_without_its_input_is_named(tmp_path):
    calls = []

    def noop(ctx):
        calls.append(ctx)
        return ctx

    steps = [Step("a", noop, "a", ("train",), outputs=()),
             Step("b", noop, "b", ("train",), inputs=("a/out.bin",), outputs=())]
    ctx = Context(Config(), tmp_path, DistEnv(0, 1, None), log=lambda _m: None)
    with pytest.raises(FlowError, match="a/out.bin"):
        run_steps(steps, ctx, start="b")
    assert [s.name for s in select(steps, None, "a")] == ["a"]
    with pytest.raises(FlowError, match="comes after"):
        select(steps, "b", "a")


def test_steps_command_lists_the_steps():
    out = btsee("steps").stdout.split("\n")
    assert [line.split()[0] for line in out if line.strip()] == [
        "data", "backbone", "exits", "calibrate", "evaluate", "export", "dataflow", "fold", "simulate", "rtl", "synth",
        "netlist", "bitstream", "package"]


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "btsee"
    r = subprocess.run([str(script), "steps"], capture_output=True, text=True)
    assert r.returncode == 0 and "backbone" in r.stdout


def test_a_new_output_format_version_reruns_the_step(tmp_path):
    """A step whose version was bumped redoes its work on a folder written before; an
    unchanged version-1 step is still skipped."""
    from dataclasses import replace

    calls: list[str] = []

    def writes(name):
        def run(ctx):
            calls.append(name)
            (ctx.out / f"{name}.txt").write_text(name)
            return ctx
        return run

    steps = [Step("a", writes("a"), "a", ("train",), outputs=("a.txt",)),
             Step("b", writes("b"), "b", ("train",), inputs=("a.txt",), outputs=("b.txt",))]
    ctx = Context(Config(), tmp_path, DistEnv(0, 1, None), log=lambda _m: None)
    run_steps(steps, ctx)
    run_steps(steps, ctx)
    assert calls == ["a", "b"]
    run_steps([steps[0], replace(steps[1], version=2)], ctx)
    assert calls == ["a", "b", "b"]


def test_the_budget_fields_do_not_retrain_the_heads(tmp_path):
    """The exits step reads the calibration policy (bts trains on what earlier exits pass
    on), not the accuracy budget: changing max_drop or the guard reruns calibrate only."""
    from dataclasses import replace

    from btsee.flow import fingerprint
    from btsee.steps import STEPS_BY_NAME

    for step in ("exits", "calibrate"):
        for rel in STEPS_BY_NAME[step].inputs:  # stand-ins: their contents only enter the hash
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(rel)

    def prints(**calibration) -> tuple[str, str]:
        """(exits, calibrate) fingerprints with these calibration fields."""
        cfg = Config()
        cfg = replace(cfg, calibration=replace(cfg.calibration, **calibration))
        ctx = Context(cfg, tmp_path, DistEnv(0, 1, None), log=lambda _m: None)
        return fingerprint(STEPS_BY_NAME["exits"], ctx), fingerprint(STEPS_BY_NAME["calibrate"], ctx)

    exits, calibrate = prints()
    budget = prints(max_drop=2.0, confidence=0.95, guard_images=500)
    assert budget[0] == exits and budget[1] != calibrate
    assert prints(margin=0.1)[0] != exits and prints(policy="global")[0] != exits
