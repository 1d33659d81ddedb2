"""Fault injection over a finished run folder: every damaged input is refused cleanly.

The artifacts come from the declarations, not from a list kept here: each step's
`inputs` (btsee.steps.STEPS), the files `btsee simulate RUN` reads
(btsee.simulate_command.INPUTS), the graph files each manifest lists
(btsee.run_folder.LISTED_FILES) and the two files the flow keeps itself (steps.json,
report.json). For each (artifact, consumer) pair every applicable fault is injected into
the tiny run's folder and the consumer is run through the CLI's entry point; each must end
with a non-zero exit status, one line naming the file and no traceback, and leave every
file of the run folder as it was (size, time and inode before and after).

Faults: for every file missing, empty, truncated, replaced by another format, bytes
flipped; for JSON each field its schema says a reader uses dropped, and each number set to
NaN; for .npz each array dropped, set to NaN and to Inf (floats), given another shape; for
torch files each top-level field dropped, and one tensor dropped, set to NaN and Inf, and
given another shape.
"""
from __future__ import annotations

import errno
import io
import json
import os
import shutil
import tempfile
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from btsee.cli import main
from btsee.flow import STATE
from btsee.report import REPORT
from btsee.run_folder import BACKBONE_CHECKPOINT, LISTED_FILES, SCHEMAS, listed_files
from btsee.simulate_command import INPUTS as SIMULATE_INPUTS
from btsee.steps import STEPS
from calib.schema import Optional
from conftest import TINY_CONFIG, write_config

SIMULATE_COMMAND = "btsee simulate"
RESUME = "backbone --resume"  # the backbone step continuing from its epoch checkpoint
FLOW_FILES = (STATE, REPORT)
FLOW_FILE_CONSUMER = "calibrate"  # any step: the flow reads its own files before every step
OPTIONAL_FILES = (STATE, REPORT, BACKBONE_CHECKPOINT)  # absent is normal: "missing" is no fault
LISTED_GRAPH_FAULTS = ("missing", "bytes flipped")  # on every listed graph after the first


def consumers() -> dict[str, list[str]]:
    """{run-folder file: the steps (and commands) that read it}, from their declarations."""
    found: dict[str, list[str]] = {}
    for step in STEPS:
        for rel in step.inputs:
            found.setdefault(rel, []).append(step.name)
    for rel in SIMULATE_INPUTS:
        found.setdefault(rel, []).append(SIMULATE_COMMAND)
    for rel in FLOW_FILES:
        found.setdefault(rel, []).append(FLOW_FILE_CONSUMER)
    found[BACKBONE_CHECKPOINT] = [RESUME]  # read only with --resume, so no step declares it
    return found


PAIRS = [(rel, c) for rel, cs in consumers().items() for c in cs]
MANIFEST_PAIRS = [(rel, c) for rel, c in PAIRS if rel in LISTED_FILES]


# ---- the faults -------------------------------------------------------------------------

@dataclass
class Fault:
    name: str
    apply: Callable[[Path], None]


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def generic_faults() -> list[Fault]:
    def flip(p: Path) -> None:
        data = bytearray(p.read_bytes())
        mid = len(data) // 2
        for i in range(mid, min(len(data), mid + 64)):
            data[i] ^= 0xFF
        p.write_bytes(bytes(data))

    def other_format(p: Path) -> None:
        if p.suffix == ".json":  # a zip archive (what .npz and .pt files are) where JSON was
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr("a.txt", "not json")
            p.write_bytes(buf.getvalue())
        else:
            p.write_text(json.dumps({"format": "something else", "values": [1, 2, 3]}))

    return [Fault("missing", lambda p: p.unlink()),
            Fault("empty", lambda p: _write(p, b"")),
            Fault("truncated", lambda p: _write(p, p.read_bytes()[: len(p.read_bytes()) // 2])),
            Fault("other format", other_format),
            Fault("bytes flipped", flip)]


def _schema_paths(doc: Any, schema: Any, path: tuple = ()) -> tuple[list[tuple], list[tuple]]:
    """(fields to drop, numeric fields to set to NaN) that `schema` declares and `doc` has."""
    drops: list[tuple] = []
    numbers: list[tuple] = []
    if isinstance(schema, Optional):
        schema = schema.inner
    if isinstance(schema, dict) and isinstance(doc, dict):
        keys = [next(iter(doc))] if list(schema) == [str] and doc else [k for k in schema if k in doc]
        for k in keys:
            sub = schema[str] if list(schema) == [str] else schema[k]
            if list(schema) != [str]:
                drops.append(path + (k,))
            d, n = _schema_paths(doc[k], sub, path + (k,))
            drops += d
            numbers += n
    elif isinstance(schema, list) and isinstance(doc, list) and doc:
        # the first item that is not null, so that the NaN replaces a number
        i = next((j for j, v in enumerate(doc) if v is not None), 0)
        d, n = _schema_paths(doc[i], schema[0], path + (i,))
        drops += d
        numbers += n
    elif schema in (int, float) and isinstance(doc, (int, float)) and not isinstance(doc, bool):
        numbers.append(path)
    return drops, numbers


def _edit_json(path: Path, field: tuple, action: str) -> None:
    doc = json.loads(path.read_text())
    parent = doc
    for k in field[:-1]:
        parent = parent[k]
    if action == "drop":
        del parent[field[-1]]
    else:
        parent[field[-1]] = float(action)
    path.write_text(json.dumps(doc))  # json writes NaN as the bare token NaN, as Python reads it


def json_faults(rel: str, doc: Any) -> list[Fault]:
    drops, numbers = _schema_paths(doc, SCHEMAS.get(rel, Any))
    label = lambda f: ".".join(map(str, f))  # noqa: E731
    return ([Fault(f"field {label(f)} dropped", lambda p, f=f: _edit_json(p, f, "drop")) for f in drops]
            + [Fault(f"field {label(f)} NaN", lambda p, f=f: _edit_json(p, f, "nan")) for f in numbers])


def npz_faults(arrays: dict[str, np.ndarray]) -> list[Fault]:
    def rewrite(p: Path, change: Callable[[dict], None]) -> None:
        with np.load(p, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        change(a)
        with p.open("wb") as f:
            np.savez(f, **a)

    def setter(key: str, value: float) -> Callable[[dict], None]:
        def change(a: dict) -> None:
            x = a[key].astype(np.float64).copy()
            x.reshape(-1)[0] = value
            a[key] = x
        return change

    faults = []
    for key, value in arrays.items():
        faults.append(Fault(f"array {key} dropped", lambda p, k=key: rewrite(p, lambda a: a.pop(k))))
        faults.append(Fault(f"array {key} reshaped", lambda p, k=key: rewrite(
            p, lambda a: a.__setitem__(k, a[k][..., None]))))
        if value.dtype.kind == "f" and value.size:
            for v in ("nan", "inf"):
                faults.append(Fault(f"array {key} {v}", lambda p, k=key, v=v: rewrite(p, setter(k, float(v)))))
    return faults


def _first_tensor(state: dict) -> tuple[dict, str]:
    """(the state dict holding the file's first floating-point tensor, its key)."""
    for sd in [state.get("state_dict"), state.get("model"), *(state.get("state_dicts") or [])]:
        if isinstance(sd, dict):
            for k, v in sd.items():
                if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel():
                    return sd, k
    raise AssertionError("no floating-point tensor in the torch file")


def torch_faults(state: dict) -> list[Fault]:
    def rewrite(p: Path, change: Callable[[dict], None]) -> None:
        s = torch.load(p, map_location="cpu", weights_only=True)
        change(s)
        torch.save(s, p)

    def on_tensor(change: Callable[[dict, str], None]) -> Callable[[dict], None]:
        return lambda s: change(*_first_tensor(s))

    def fill(value: float) -> Callable[[dict, str], None]:
        def change(sd: dict, k: str) -> None:
            sd[k] = sd[k].clone()
            sd[k].view(-1)[0] = value
        return change

    _, name = _first_tensor(state)
    faults = [Fault(f"field {k} dropped", lambda p, k=k: rewrite(p, lambda s: s.pop(k))) for k in state]
    faults += [Fault(f"tensor {name} dropped", lambda p: rewrite(p, on_tensor(lambda sd, k: sd.pop(k)))),
               Fault(f"tensor {name} NaN", lambda p: rewrite(p, on_tensor(fill(float("nan"))))),
               Fault(f"tensor {name} Inf", lambda p: rewrite(p, on_tensor(fill(float("inf"))))),
               Fault(f"tensor {name} reshaped", lambda p: rewrite(p, on_tensor(
                   lambda sd, k: sd.__setitem__(k, sd[k].reshape(-1)[:-1] if sd[k].numel() > 1 else sd[k][None]))))]
    return faults


def faults_for(run: Path, rel: str) -> list[Fault]:
    """Every applicable fault for run-folder file `rel` (by its format and contents)."""
    path = run / rel
    faults = generic_faults()
    if rel in OPTIONAL_FILES:
        faults = [f for f in faults if f.name != "missing"]
    if path.suffix == ".json":
        faults += json_faults(rel, json.loads(path.read_text()))
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            faults += npz_faults({k: z[k] for k in z.files})
    elif path.suffix == ".pt":
        faults += torch_faults(torch.load(path, map_location="cpu", weights_only=True))
    return faults


# ---- running a consumer on a damaged folder ---------------------------------------------

def folder_digest(run: Path) -> dict[str, tuple[int, int, int]]:
    """{file: (size, mtime in ns, inode)} of every file under `run`: any write changes it
    (in place: the time; atomically replaced: the inode), without reading 66 MB of RTL
    builds and netlists twice per fault."""
    out = {}
    for folder, _, files in os.walk(run):
        for name in files:
            st = os.stat(os.path.join(folder, name))
            out[os.path.relpath(os.path.join(folder, name), run)] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def run_consumer(consumer: str, run: Path, config: Path) -> tuple[int, str]:
    """(exit status, stderr) of the consumer run through the CLI's entry point."""
    if consumer == SIMULATE_COMMAND:
        argv = ["simulate", str(run), "--limit", "8"]
    elif consumer == RESUME:
        argv = ["run", str(config), "--out", str(run), "--from", "backbone", "--to", "backbone", "--resume",
                "--device", "cpu"]
    else:
        argv = ["run", str(config), "--out", str(run), "--from", consumer, "--to", consumer, "--device", "cpu"]
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse
            code = e.code
        except Exception as e:  # a bug: the suite reports it as a traceback
            import traceback

            code = f"uncaught {type(e).__name__}"
            traceback.print_exc(file=err)
    return code, err.getvalue()


@pytest.fixture(scope="module")
def fault_run(tiny_run, tmp_path_factory) -> tuple[Path, Path]:
    """(a private copy of the tiny run, its config) that the faults are injected into."""
    d = tmp_path_factory.mktemp("faults")
    run = d / "run"
    shutil.copytree(tiny_run, run)
    config = write_config(d / "tiny.json", TINY_CONFIG)
    assert run_consumer("calibrate", run, config)[0] == 0  # the folder works before any fault
    return run, config


def restore(run: Path, pristine: Path) -> None:
    shutil.rmtree(run)
    shutil.copytree(pristine, run)


def inject_all(run: Path, config: Path, rel: str, consumer: str, pristine: Path,
               only: tuple[str, ...] | None = None) -> list[str]:
    """Injects every fault of `rel` (those named in `only`, when given) in turn, runs
    `consumer`, restores the file (the whole folder from `pristine` if the consumer changed
    it); returns one line per fault that was not refused cleanly."""
    path = run / rel
    original = path.read_bytes()
    failures = []
    faults = [f for f in faults_for(run, rel) if only is None or f.name in only]
    assert len(faults) >= (4 if only is None else len(only))
    for fault in faults:
        try:
            fault.apply(path)
            before = folder_digest(run)
            code, err = run_consumer(consumer, run, config)
            after = folder_digest(run)
        finally:
            path.write_bytes(original)
        lines = err.strip().splitlines()
        problems = []
        if code in (0, None):
            problems.append("exit status 0")
        if "Traceback" in err:
            problems.append("traceback:\n" + err[-1500:])
        elif len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr: {err[-600:]!r}")
        if str(path) not in err:
            problems.append(f"file not named: {err.strip()[-300:]!r}")
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        if changed:
            problems.append(f"run folder changed: {changed}")
            restore(run, pristine)
        if problems:
            failures.append(f"{rel} [{fault.name}] -> {consumer}: " + "; ".join(problems))
    return failures


@pytest.mark.parametrize("rel, consumer", PAIRS, ids=[f"{r}->{c}" for r, c in PAIRS])
def test_every_fault_of_an_artifact_is_refused_cleanly(fault_run, tiny_run, rel, consumer):
    run, config = fault_run
    failures = inject_all(run, config, rel, consumer, tiny_run)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("rel, consumer", MANIFEST_PAIRS, ids=[f"{r}->{c}" for r, c in MANIFEST_PAIRS])
def test_every_fault_of_a_listed_graph_is_refused_cleanly(fault_run, tiny_run, rel, consumer):
    """The graph files a manifest lists (and pins by SHA-256), damaged one by one: every
    fault on the first graph, and on each of the others a missing file and flipped bytes
    (one check, the manifest's SHA-256 pin, serves them all; every fault on every graph
    for 10 consumers was about 500 s of make test)."""
    run, config = fault_run
    graphs = listed_files(run, rel)
    assert graphs, f"{rel} lists no files"
    failures = inject_all(run, config, graphs[0], consumer, tiny_run)
    failures += [f for g in graphs[1:]
                 for f in inject_all(run, config, g, consumer, tiny_run, only=LISTED_GRAPH_FAULTS)]
    assert not failures, "\n".join(failures)


def test_the_pairs_come_from_the_declarations():
    """Every step input and every flow-kept file is in the suite, with each consumer."""
    pairs = set(PAIRS)
    for step in STEPS:
        assert all((rel, step.name) in pairs for rel in step.inputs)
    assert {(rel, SIMULATE_COMMAND) for rel in SIMULATE_INPUTS} <= pairs
    assert len(PAIRS) >= 30


# ---- writes that fail, and a config that points at missing files ------------------------

TARGET = "thresholds.json"  # the artifact whose rewrite fails


def _disk_full(monkeypatch) -> None:
    real = Path.write_text

    def half_then_full(self, text, *args, **kwargs):  # what a full disk does mid-write
        if TARGET not in self.name:
            return real(self, text, *args, **kwargs)
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Path, "write_text", half_then_full)


def _no_permission(monkeypatch) -> None:
    real = tempfile.mkstemp

    def refuse(*args, **kwargs):
        if TARGET in kwargs.get("prefix", ""):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(*args, **kwargs)
    monkeypatch.setattr(tempfile, "mkstemp", refuse)


@pytest.mark.parametrize("failure, reason", [(_disk_full, "No space left on device"),
                                             (_no_permission, "Permission denied")])
def test_a_failed_write_keeps_the_previous_artifact(fault_run, tiny_run, monkeypatch, failure, reason):
    """The calibrate step rewriting calibrate/thresholds.json when the disk is full or the
    folder is not writable: one line naming the file, and every file as it was."""
    run, config = fault_run
    target = run / "calibrate" / "thresholds.json"
    before = folder_digest(run)
    failure(monkeypatch)
    code, err = run_consumer("calibrate", run, config)
    monkeypatch.undo()
    after = folder_digest(run)
    if after != before:
        restore(run, tiny_run)
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(target) in err and reason in err and "previous version is kept" in err
    assert after == before  # no half-written file, no temporary file left behind


@pytest.mark.parametrize("change, argv_tail, named", [
    ({"data": {"root": "/nonexistent/fashion-mnist"}}, ["--from", "data", "--to", "data"], "/nonexistent/fashion-mnist"),
    ({"hardware": {"board": "no-such-board"}}, ["--from", "dataflow", "--to", "dataflow"], "no-such-board"),
    (None, ["--from", "calibrate", "--to", "calibrate"], "missing.yaml"),
])
def test_a_config_pointing_at_a_missing_file_is_refused(fault_run, tmp_path, change, argv_tail, named):
    run, _ = fault_run
    if change is None:
        config = tmp_path / "missing.yaml"
    else:
        values = json.loads(json.dumps(TINY_CONFIG))
        for section, fields in change.items():
            values.setdefault(section, {}).update(fields)
        config = write_config(tmp_path / "c.json", values)
    before = folder_digest(run)
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = main(["run", str(config), "--out", str(run), "--device", "cpu", *argv_tail])
    assert code in (1, 2) and named in err.getvalue() and "Traceback" not in err.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1
    assert folder_digest(run) == before


@pytest.mark.parametrize("flag", ["--images", "--thresholds"])
def test_simulate_pointed_at_a_missing_file_is_refused(fault_run, tmp_path, flag):
    run, _ = fault_run
    missing = tmp_path / f"missing{'.npy' if flag == '--images' else '.json'}"
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = main(["simulate", str(run), flag, str(missing)])
    assert code == 1 and str(missing) in err.getvalue() and "Traceback" not in err.getvalue()
