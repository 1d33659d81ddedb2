"""Shared fixtures: real Fashion-MNIST from the Debian package, and one tiny trained run.

`tiny_run` trains a small W4A4 CNV on a few hundred real images in seconds, once per
session; later tests reuse its run folder instead of training again.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qat.data import FASHION_MNIST_ROOT, load_fashion_mnist  # noqa: E402

TINY_CONFIG = {
    "name": "tiny",
    "data": {"limit_train": 512, "limit_val": 256, "limit_test": 256},
    "model": {"name": "cnv", "width": 0.125, "weight_bits": 4, "act_bits": 4},
    "train": {"epochs": 2, "batch_size": 64, "lr": 0.005, "warmup_epochs": 0.0},
    "exits": {"points": ["block1", "block2", "block3"], "epochs": 2, "batch_size": 64},
    "calibration": {"margin": 0.05, "min_support": 5},
    # a small exit-aware design; 40 images so that pipeline filling is a small part of the RTL's cycles;
    # every exit built, whatever the search would pick on this machine's tiny model (the tests build
    # subsets themselves: tests/test_rtl_flow.py); thresholds of 16 words and more in block RAM, so that
    # the netlist tests simulate that mapping too
    "hardware": {"chain_images": 64, "rtl_images": 40, "lut_budget": 10000, "netlist_images": 4,
                 "netlist_design_images": 2, "exits_built": [0, 1, 2], "threshold_bram_depth": 16},
}


def write_config(path: Path, values: dict) -> Path:
    path.write_text(json.dumps(values, indent=2))
    return path


def btsee(*args: str, check: bool = True, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """Runs the btsee command in a fresh interpreter (in `env`, else this environment
    without BTSEE_DEBUG); returns the completed process."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "BTSEE_DEBUG"}
    r = subprocess.run([sys.executable, "-m", "btsee.cli", *args], cwd=ROOT,
                       env=dict(env, PYTHONPATH=str(ROOT)), capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"btsee {' '.join(args)} exited {r.returncode}:\n{r.stderr[-3000:]}")
    return r


@pytest.fixture(scope="session")
def fmnist():
    """The real Fashion-MNIST train/test sets (the Debian package is installed by make setup)."""
    if not FASHION_MNIST_ROOT.is_dir():
        pytest.fail(f"{FASHION_MNIST_ROOT} missing: run `make setup` (installs dataset-fashion-mnist)")
    return load_fashion_mnist(FASHION_MNIST_ROOT)


TINY_RUN_FIXTURES = {"tiny_run", "tiny_run_copy"}


def _shared_temp(config) -> Path:
    """The temporary folder every pytest-xdist worker of this session sees (each worker's
    own base temp lies under it); the base temp itself without xdist."""
    base = config._tmp_path_factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


def build_tiny_run(shared: Path) -> Path:
    """shared/tiny_run/run with every step done on the tiny config, built at most once per
    session under a file lock: whoever holds the lock builds it or finds it built."""
    from filelock import FileLock

    d = shared / "tiny_run"
    done = d / "built"
    with FileLock(str(shared / "tiny_run.lock")):
        if not done.exists():
            if d.exists():  # an earlier build failed or was killed: start over
                shutil.rmtree(d)
            d.mkdir()
            cfg = write_config(d / "tiny.json", TINY_CONFIG)
            btsee("run", str(cfg), "--out", str(d / "run"), "--device", "cpu")
            done.touch()
    return d / "run"


_background_build: subprocess.Popen | None = None


def pytest_collection_finish(session) -> None:
    """When the selected tests use the tiny run, one process (the first worker to get here)
    starts building it in the background at once, so that the tests that do not need it
    run meanwhile instead of both workers waiting for it. The fixture then waits on the
    build's lock (and builds it itself if the background build failed)."""
    global _background_build
    if not any(TINY_RUN_FIXTURES & set(getattr(item, "fixturenames", ())) for item in session.items):
        return
    shared = _shared_temp(session.config)
    try:
        (shared / "tiny_run.started").open("x").close()  # one process of the session wins this
    except FileExistsError:
        return
    holding = shared / "tiny_run.holding"
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from pathlib import Path; "
              f"import conftest; from filelock import FileLock; "
              f"lock = FileLock({str(shared / 'tiny_run.lock')!r}); lock.acquire(); "
              f"Path({str(holding)!r}).touch(); conftest.build_tiny_run(Path({str(shared)!r})); lock.release()")
    log = (shared / "tiny_run.log").open("w")
    _background_build = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    for _ in range(600):  # until it holds the lock, so no fixture starts a second build first
        if holding.exists() or _background_build.poll() is not None:
            break
        time.sleep(0.1)


def pytest_sessionfinish(session, exitstatus) -> None:
    """The background build is waited for (another worker may still need it), or stopped
    when the session was interrupted."""
    if _background_build is None or _background_build.poll() is not None:
        return
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        _background_build.terminate()
    _background_build.wait()


@pytest.fixture(scope="session")
def tiny_run(request) -> Path:
    """A run folder with every step done on the tiny config: built once per session
    (`build_tiny_run`, usually started in the background at collection), shared by the
    pytest-xdist workers; tests that change it take `tiny_run_copy`."""
    return build_tiny_run(_shared_temp(request.config))


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the tiny run folder that a test may change."""
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst)
    return dst


def finn_rtllib(*parts: str) -> Path:
    """A file of the installed finn-plus's finn-rtllib (read only: patches go to copies)."""
    import finn

    return Path(finn.__file__).parent.joinpath("finn-rtllib", *parts)


def assert_same_words_and_cycles(finn_runs: list, patched_runs: list, expected, frames: int) -> None:
    """A finn-rtllib file and its patched copy, simulated alike (`hw.rtl.stream.simulate`
    runs in the same order): each run gives the expected words, and the patched copy ends
    each of its `frames` frames at the very cycle FINN's does."""
    import numpy as np

    assert len(finn_runs) == len(patched_runs)
    for theirs, mine in zip(finn_runs, patched_runs):
        assert np.array_equal(theirs.codes, expected)
        assert np.array_equal(mine.codes, expected)
        assert len(mine.frame_end_cycles) == frames
        assert np.array_equal(mine.frame_end_cycles, theirs.frame_end_cycles)


FIRST_MODULES = ("test_faults.py", "test_resnet_flow.py")
"""Test files run first, in this order: with `--dist loadscope --no-loadscope-reorder` (make
test) each of the two workers starts with one. The first waits for the tiny run's
background build; the second builds ResNet-8's run meanwhile, where with xdist's
largest-first order both workers started with tests waiting for the tiny run."""


def pytest_collection_modifyitems(session, config, items) -> None:
    """Moves the tests of FIRST_MODULES to the front, in that order; the rest keep theirs."""
    def rank(item) -> int:
        name = item.path.name
        return FIRST_MODULES.index(name) if name in FIRST_MODULES else len(FIRST_MODULES)
    items.sort(key=rank)  # stable
