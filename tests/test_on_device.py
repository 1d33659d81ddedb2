"""On-device accuracy tests (marker `board`): a device's class and exit index equal the deploy
package's golden expected outputs, image by image.

In `make test` they run on the tiny run's package against the virtual device and the RTL
simulation; the pynq device is skipped off the board, with the reason. `make deploy` copies
this file to the board and runs it there on the deployed package:

    BTSEE_PACKAGE=package BTSEE_DEVICES=pynq python3 -m pytest -m board test_on_device.py

It imports only the driver (boards/, calib/), numpy and pytest, so it runs on the board.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from boards.board_test import board_test, format_table

pytestmark = pytest.mark.board
SELECTED = os.environ.get("BTSEE_DEVICES", "pynq,virtual,rtl").split(",")


@pytest.fixture(scope="module")
def package_dir(request) -> Path:
    """BTSEE_PACKAGE, else the tiny run's package (tests/conftest.py)."""
    if path := os.environ.get("BTSEE_PACKAGE"):
        return Path(path)
    return request.getfixturevalue("tiny_run") / "package"


def _why_skip(device: str, package_dir: Path) -> str | None:
    if device not in SELECTED:
        return f"BTSEE_DEVICES={','.join(SELECTED)} leaves out the {device} device"
    if device == "pynq":
        if importlib.util.find_spec("pynq") is None:
            return "not on a PYNQ board: the pynq module is not importable (make deploy runs this on the board)"
        if not (package_dir / "design.bit").is_file():
            return f"{package_dir} has no design.bit: build the bitstream with Vivado, then rerun the package step"
    return None


@pytest.mark.parametrize("device", ["pynq", "virtual", "rtl"])
def test_the_device_gives_the_golden_class_and_exit_of_every_image(device, package_dir, tmp_path):
    if reason := _why_skip(device, package_dir):
        pytest.skip(reason)
    options = {}
    if device == "rtl":  # the rtl step's compiled simulation of the same sources, when beside the package
        run_build = package_dir.parent / "rtl" / "multi_exit" / "build"
        options["build"] = run_build if run_build.is_dir() else tmp_path / "rtl_build"
    report = board_test(package_dir, device, batch=64, **options)
    print(format_table(report))
    vectors = report["images"]
    assert vectors > 0 and sum(report["exit_counts"]) == vectors
    assert report["mismatched_images"] == 0, report["first_mismatched"]
    assert report["classes_differ"] == report["exit_indices_differ"] == 0
    assert report["accuracy"] == report["golden_accuracy"]
    assert report["images_per_second"] > 0
