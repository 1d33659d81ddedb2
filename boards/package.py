"""Opening a deploy package (the `package` step's folder) on the board or the host.

`open_package` checks the package before anything runs on it: every file the manifest
lists must be there with its SHA-256, and no other file may be there. numpy and the
standard library only, so it runs on the board.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calib.errors import BtseeError
from calib.schema import sha256_of

MANIFEST = "manifest.json"
DRIVER = "driver.json"
THRESHOLDS = "thresholds.json"
TEST_VECTORS = "test_vectors.npz"
BITSTREAM = "design.bit"
HARDWARE_HANDOFF = "design.hwh"
"""File names inside a package (the `package` step writes them)."""
GOLDEN_FOLDER = "golden"
"""The segments' integer graphs and their manifest: what the virtual device runs."""
RTL_FOLDER = "rtl"
"""The whole design's sources and multi_exit.json: what the RTL device simulates."""


class PackageError(BtseeError):
    """A deploy package that is incomplete, changed or malformed; names the file."""


def package_files(folder: Path) -> list[str]:
    """Every file under `folder` but the manifest, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
                  and p.relative_to(folder).as_posix() != MANIFEST)


@dataclass(frozen=True)
class GoldenVectors:
    """The package's test images, their labels and the golden simulator's outputs."""

    images: np.ndarray  # (N, C, H, W) uint8
    labels: np.ndarray  # (N,) int64, the data set's labels
    classes: np.ndarray  # (N,) int64, the golden simulator's class
    exit_index: np.ndarray  # (N,) int64, the golden simulator's exit (exits = the final classifier)


@dataclass(frozen=True)
class DeployPackage:
    folder: Path
    manifest: dict
    driver: dict
    """driver.json: the stream formats, the decision layout, the DMA (see `package` step)."""

    @property
    def has_bitstream(self) -> bool:
        return BITSTREAM in self.manifest["files"]

    @property
    def has_design(self) -> bool:
        return self.driver.get("design") is not None

    def path(self, name: str) -> Path:
        return self.folder / name

    def test_vectors(self) -> GoldenVectors:
        """The package's test images with the golden expected class and exit index."""
        path = self.path(TEST_VECTORS)
        with np.load(path) as npz:
            missing = {"images", "labels", "classes", "exit_index"} - set(npz.files)
            if missing:
                raise PackageError(f"{path}: arrays {sorted(missing)} are missing")
            vectors = GoldenVectors(npz["images"], npz["labels"].astype(np.int64),
                                    npz["classes"].astype(np.int64), npz["exit_index"].astype(np.int64))
        n = len(vectors.images)
        if vectors.images.ndim != 4 or any(len(a) != n for a in (vectors.labels, vectors.classes, vectors.exit_index)):
            raise PackageError(f"{path}: images must be (N, C, H, W) with N labels, classes and exit indices; got "
                               f"{vectors.images.shape}, {len(vectors.labels)}, {len(vectors.classes)}, "
                               f"{len(vectors.exit_index)}")
        return vectors


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PackageError(f"{path}: not a readable JSON file ({e})") from e
    if not isinstance(doc, dict):
        raise PackageError(f"{path}: holds a {type(doc).__name__}, not a JSON object")
    return doc


def open_package(folder: str | Path) -> DeployPackage:
    """The package in `folder`, every file checked against manifest.json: a missing,
    changed or unlisted file is a PackageError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PackageError(f"{folder}: no such package folder (the `package` step writes one into the run folder)")
    manifest = _read_json(folder / MANIFEST)
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise PackageError(f"{folder / MANIFEST}: field 'files' must map each file to its sha256")
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            raise PackageError(f"{path}: missing from the package (listed in {folder / MANIFEST})")
        if sha256_of(path) != digest:
            raise PackageError(f"{path}: changed since the package was made (its sha256 is not the one in "
                               f"{folder / MANIFEST}); rebuild the package with the `package` step")
    if extra := sorted(set(package_files(folder)) - set(files)):
        raise PackageError(f"{folder / extra[0]}: not listed in {folder / MANIFEST} "
                           f"({len(extra)} unlisted file(s)); a package holds only what its manifest lists")
    for name in (DRIVER, THRESHOLDS, TEST_VECTORS):
        if name not in files:
            raise PackageError(f"{folder / MANIFEST}: lists no {name}")
    return DeployPackage(folder, manifest, _read_json(folder / DRIVER))
