"""finn-plus's dataflow builder made usable on a machine without Vivado.

`finn_builder` is the one place that makes the builder usable on a machine without
Vivado; it never sets XILINX_VIVADO (FINN reads it as "Vivado is here" and would try the
tool wherever it checks). Each of its parts answers one measured obstacle:

* Importing `finn.builder.build_dataflow_steps` runs `from finn.xsi import SimEngine`
  (used only as a type annotation); finn.xsi's lazy attribute hook then checks for Vivado
  and raises OSError. A stand-in `SimEngine` bound on finn.xsi beforehand satisfies the
  import; constructing it raises, so an RTL simulation still fails with a clear message.
* At the end of every build, success or failure, `exit_buildflow` writes the Vivado
  version into report/metadata_builder.json via `get_vivado_root()`, which raises without
  XILINX_VIVADO and would turn every build into a crash. The name bound in
  `finn.builder.build_dataflow` returns "none" for the build and is restored afterwards.
* The builder replaces sys.stdout/sys.stderr by loggers writing to its build log and
  never restores them (later prints of the caller would land in an old build's log), and
  it reconfigures the root logger with `basicConfig(force=True)`, which would close the
  caller's handlers. Both are saved and restored around the build, the handlers detached
  from the root logger meanwhile.
* FINN's settings are rebuilt from FINN_BUILD_DIR, which must be absolute ("Could not
  find global settings" otherwise); FINN caches them after the first build, so the cached
  build dir is pointed at this build's too, and both are restored afterwards.

The adapter changes process-wide state for the duration of one build, so builds in one
process take turns (a lock): two threads that each saved and restored sys.stdout around
their own build left it on the other's closed sink.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator


FINN_LOGGER = "finn_logger"
"""The logger FINN's transformations warn through (SetFolding for every target it misses,
streamlining for every residual Add it skips)."""


@contextlib.contextmanager
def quiet_finn_logger() -> Iterator[None]:
    """FINN's logger held to errors meanwhile: for warnings that are expected where we call."""
    logger = logging.getLogger(FINN_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


_ONE_BUILD_AT_A_TIME = threading.RLock()
"""Held for the whole of `finn_builder`: the state it swaps is the process's, not the thread's."""


def _bind_simengine_stand_in() -> None:
    """Binds the stand-in SimEngine on finn.xsi when Vivado is absent and none is bound."""
    if "XILINX_VIVADO" in os.environ:
        return
    import finn.xsi

    if "SimEngine" in vars(finn.xsi):
        return

    class SimEngine:
        """Stand-in bound when XILINX_VIVADO is unset: RTL simulation is unavailable."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("RTL simulation needs Vivado's xsim (XILINX_VIVADO is unset)")

    finn.xsi.SimEngine = SimEngine


@contextlib.contextmanager
def finn_builder(build_dir: Path, *, echo: bool = False) -> Iterator[Callable[..., int]]:
    """Yields finn-plus's `build_dataflow_cfg`, made usable without Vivado (module docstring).

    `build_dir` (made absolute, created) is FINN_BUILD_DIR for the build. With `echo`
    false the builder's console output is discarded (its build log keeps all of it).
    On exit, whatever happened: os.environ's FINN_BUILD_DIR, FINN's cached build dir,
    `get_vivado_root`, sys.stdout/sys.stderr, the root logger's handlers and level and the
    warnings hook are as before. XILINX_VIVADO is never set. Another thread's build waits.
    """
    with _ONE_BUILD_AT_A_TIME:
        with _finn_builder(build_dir, echo=echo) as build:
            yield build


@contextlib.contextmanager
def _finn_builder(build_dir: Path, *, echo: bool) -> Iterator[Callable[..., int]]:
    """`finn_builder` without the lock."""
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    saved_env = os.environ.get("FINN_BUILD_DIR")
    stdout, stderr = sys.stdout, sys.stderr
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    showwarning = warnings.showwarning
    sink = None if echo else open(os.devnull, "w")
    bd = None
    saved_root = saved_settings_dir = settings = None
    try:
        os.environ["FINN_BUILD_DIR"] = str(build_dir)
        _bind_simengine_stand_in()
        import finn.builder.build_dataflow as bd
        from finn.util.settings import get_settings

        settings = get_settings()
        saved_settings_dir = settings.finn_build_dir
        settings.finn_build_dir = build_dir
        saved_root = bd.get_vivado_root
        for h in handlers:  # else basicConfig(force=True) closes them
            root.removeHandler(h)
        if "XILINX_VIVADO" not in os.environ:
            bd.get_vivado_root = lambda: "none"
        if sink is not None:
            sys.stdout = sys.stderr = sink
        yield bd.build_dataflow_cfg
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        if sink is not None:
            sink.close()
        if bd is not None and saved_root is not None:
            bd.get_vivado_root = saved_root
        if settings is not None and saved_settings_dir is not None:
            settings.finn_build_dir = saved_settings_dir
        for h in list(root.handlers):
            if h not in handlers:  # the builder's: its log file, its console
                root.removeHandler(h)
                h.close()
        for h in handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(level)
        if warnings.showwarning is not showwarning:
            logging.captureWarnings(False)  # undoes the builder's captureWarnings(True)
            warnings.showwarning = showwarning
        if saved_env is None:
            os.environ.pop("FINN_BUILD_DIR", None)
        else:
            os.environ["FINN_BUILD_DIR"] = saved_env
