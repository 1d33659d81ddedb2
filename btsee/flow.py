"""The step mechanism: a named list of steps, `--from`/`--to`, skipping up-to-date steps.

A step is a function `step(ctx) -> ctx` that reads and writes files in the run folder.
It declares the config sections and the files of earlier steps it depends on, and the
files it writes. Its fingerprint hashes those config sections and input files; a step
whose outputs all exist and whose fingerprint matches the one recorded in
`DIR/steps.json` when it last finished is skipped.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from btsee.config import Config, ConfigError
from btsee.report import read_report
from calib.atomic import atomic_write_json
from calib.progress import heartbeat
from calib.errors import BtseeError
from calib.schema import read_json_file, sha256_of
from qat.distributed import DistEnv, barrier

STATE = "steps.json"
CONFIG_RECORD = "config.json"
"""The configuration of the last step that finished (what `btsee simulate RUN` reads back)."""


@dataclass
class Context:
    """What every step gets: the config, the run folder and the run's options."""

    config: Config
    out: Path
    env: DistEnv
    resume: bool = False
    log: Callable[[str], None] = print
    cache: dict = field(default_factory=dict)
    """Objects shared between steps of one invocation (loaded data, models)."""
    fingerprint: str = ""
    """The running step's fingerprint (set by `run_steps`; training checkpoints carry it)."""


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Context], Context]
    doc: str
    sections: tuple[str, ...]
    """Config sections the step's result depends on: a whole section ("exits") or one
    field of it ("calibration.margin")."""
    inputs: tuple[str, ...] = ()
    """Files of earlier steps it reads (relative to the run folder)."""
    outputs: tuple[str, ...] = ()
    """Files it writes (relative to the run folder)."""
    all_ranks: bool = False
    """Run on every DDP process (training); otherwise on rank 0 only."""
    cannot_run: Callable[[Config], str | None] | None = None
    """Why the step cannot apply to a config (None when it can); checked before any step runs."""
    external_inputs: Callable[[Config], tuple[Path, ...]] | None = None
    """Files outside the run folder whose contents the result depends on (a board file)."""
    version: int = 1
    """The format of the step's outputs: bump it when they change, so that run folders
    written before are redone by the step instead of refused by the next one."""


class FlowError(BtseeError):
    """The flow cannot run as asked (unknown step, missing inputs of a skipped step)."""


def _config_part(cfg: dict, name: str):
    """The config's section `name`, or one field of a section for "section.field"."""
    section, _, field = name.partition(".")
    return cfg[section][field] if field else cfg[section]


def fingerprint(step: Step, ctx: Context) -> str:
    """Hash of the step's config sections and the contents of its input files (in the run
    folder, then outside it: those by file name, not path, so that a run folder stays up
    to date in another clone)."""
    cfg = ctx.config.to_dict()
    h = hashlib.sha256(step.name.encode())
    if step.version != 1:  # version 1 adds nothing: fingerprints from before versions stay valid
        h.update(f"version {step.version}".encode())
    h.update(json.dumps({s: _config_part(cfg, s) for s in step.sections}, sort_keys=True).encode())
    for path in step.external_inputs(ctx.config) if step.external_inputs else ():  # by name and contents
        h.update(Path(path).name.encode() + sha256_of(Path(path)).encode())
    for rel in step.inputs:
        path = ctx.out / rel
        if not path.exists():
            raise FlowError(f"step {step.name!r} needs {path}, which no earlier step has written; "
                            f"run the steps before it first")
        h.update(rel.encode() + sha256_of(path).encode())
    return h.hexdigest()


def _read_state(out: Path) -> dict:
    """{step: {"fingerprint", "seconds", "finished"}} from DIR/steps.json ({} before the
    first step); a damaged file is a FlowError naming it."""
    path = out / STATE
    if not path.exists():
        return {}
    try:
        return read_json_file(path, {str: {"fingerprint": str}})
    except BtseeError as e:
        raise FlowError(f"{e}; delete it to rerun every step") from e


def is_up_to_date(step: Step, ctx: Context) -> bool:
    if not all((ctx.out / o).exists() for o in step.outputs):
        return False
    recorded = _read_state(ctx.out).get(step.name, {}).get("fingerprint")
    return recorded == fingerprint(step, ctx)


def select(steps: list[Step], start: str | None, stop: str | None) -> list[Step]:
    names = [s.name for s in steps]
    for n in (start, stop):
        if n is not None and n not in names:
            raise FlowError(f"unknown step {n!r}; the steps are {names}")
    i = names.index(start) if start else 0
    j = names.index(stop) + 1 if stop else len(steps)
    if i >= j:
        raise FlowError(f"--from {start} comes after --to {stop}")
    return steps[i:j]


def check_applicable(steps: list[Step], config: Config) -> None:
    """A ConfigError naming the first of `steps` that cannot apply to `config`, and why."""
    names = [s.name for s in steps]
    for i, step in enumerate(steps):
        reason = step.cannot_run(config) if step.cannot_run else None
        if reason:
            before = f"; stop before it with --to {names[i - 1]}" if i > 0 else ""
            raise ConfigError(f"step {step.name!r} cannot run on this configuration: {reason}{before}")


def run_steps(steps: list[Step], ctx: Context, start: str | None = None, stop: str | None = None,
              force: bool = False, check_input: Callable[[Context, str], None] | None = None) -> Context:
    """Runs the selected steps in order. Steps from `start` on (or all, with `force`) run
    even when up to date; others are skipped when up to date. A selected step that cannot
    apply to the config is a ConfigError before any step runs. With `check_input`, every
    input file of a step is checked (`check_input(ctx, rel)`) before the step starts."""
    selected = select(steps, start, stop)
    check_applicable(selected, ctx.config)
    ctx.out.mkdir(parents=True, exist_ok=True)
    _read_state(ctx.out)  # damaged run-folder files the flow itself keeps: refused before any step
    read_report(ctx.out)
    forced = force or start is not None
    for step in selected:
        if not forced and is_up_to_date(step, ctx):
            ctx.log(f"[{step.name}] up to date, skipped")
            continue
        barrier(ctx.env)
        ctx.log(f"[{step.name}] {step.doc}")
        t0 = time.time()
        if step.all_ranks or ctx.env.is_main:
            ctx.fingerprint = fingerprint(step, ctx)  # a missing input is refused here
            for rel in step.inputs if check_input else ():
                check_input(ctx, rel)
            with heartbeat(f"[{step.name}]", enabled=ctx.env.is_main):
                ctx = step.run(ctx)
        barrier(ctx.env)
        if ctx.env.is_main:
            missing = [o for o in step.outputs if not (ctx.out / o).exists()]
            if missing:
                raise FlowError(f"step {step.name!r} finished without writing {missing}")
            state = _read_state(ctx.out)
            state[step.name] = {"fingerprint": fingerprint(step, ctx),
                                "seconds": round(time.time() - t0, 2),
                                "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
            atomic_write_json(ctx.out / STATE, state)
            atomic_write_json(ctx.out / CONFIG_RECORD, ctx.config.to_dict())
        ctx.log(f"[{step.name}] done in {time.time() - t0:.1f} s")
    return ctx
