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
    # subsets themselves: tests/test_rtl_flow.py)
    "hardware": {"chain_images": 64, "rtl_images": 40, "lut_budget": 10000, "netlist_images": 4,
                 "netlist_design_images": 2, "exits_built": [0, 1, 2]},
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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, worker_id) -> Path:
    """A run folder with every step done on the tiny config: built once per `make test`,
    under a file lock that the pytest-xdist workers share (the first one to need it builds
    it, the others wait for it and read it; tests that change it take `tiny_run_copy`)."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # each xdist worker has its own base temp under one common parent
        shared = shared.parent
    d = shared / "tiny_run"
    done = d / "built"
    with FileLock(str(shared / "tiny_run.lock")):
        if not done.exists():
            if d.exists():  # a worker died while building it: start over
                shutil.rmtree(d)
            d.mkdir()
            cfg = write_config(d / "tiny.json", TINY_CONFIG)
            btsee("run", str(cfg), "--out", str(d / "run"), "--device", "cpu")
            done.touch()
    return d / "run"


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the tiny run folder that a test may change."""
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst)
    return dst
