"""One API over three devices that run a deploy package's multi-exit design.

    device = open_device(open_package("runs/default/package"), "virtual")   # boards/devices.py
    run = device.run(images)          # (N, C, H, W) uint8 -> class and exit index per image
    run.classes, run.exit_index, run.exit_counts, run.images_per_second

Every device takes the same input DMA buffer (`boards.streams.pack_images`) and returns
the same decision buffer; only `transfer` differs:

    pynq     the bitstream on a PYNQ board: AXI DMA in and out (boards/pynq_device.py)
    virtual  the golden simulator on the package's integer graphs; images that exit never
             enter the later segments (hw/devices/virtual_device.py, host only)
    rtl      Verilator simulation of the package's whole-design sources, for small batches
             (hw/devices/rtl_device.py, host only)
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from boards.package import DRIVER, DeployPackage, PackageError
from boards.streams import (StreamError, StreamLayout, check_images, default_packing, pack_images,
                            unpack_decisions)


@dataclass
class DeviceRun:
    """What a device returned for a batch of images, with how long it took."""

    classes: np.ndarray  # (N,) int64
    exit_index: np.ndarray  # (N,) int64; the number of exits = the final classifier
    exits: int
    transfer_seconds: float
    """Time inside the device's transfers (DMA, simulation), summed over batches."""
    total_seconds: float
    """Wall time of `run`, packing and unpacking included."""
    extra: dict = field(default_factory=dict)
    """Device-specific figures (the RTL device's simulated clock cycles)."""

    @property
    def images(self) -> int:
        return len(self.classes)

    @property
    def exit_counts(self) -> list[int]:
        """Images per exit, the final classifier last."""
        return np.bincount(self.exit_index, minlength=self.exits + 1).tolist()

    @property
    def images_per_second(self) -> float:
        """Images per second of transfer time."""
        return self.images / self.transfer_seconds if self.transfer_seconds > 0 else float("inf")


class Device(ABC):
    """A backend that takes input DMA buffers and returns decision buffers."""

    name = "device"

    def __init__(self, package: DeployPackage, batch: int):
        if not package.has_design:
            raise PackageError(f"{package.path(DRIVER)}: the package has no whole multi-exit design "
                               f"({package.driver.get('why', 'no reason recorded')})")
        self.package = package
        self.layout = StreamLayout.from_driver(package.driver, str(package.path(DRIVER)))
        if not isinstance(batch, int) or batch < 1:
            raise StreamError(f"batch must be a positive number of images, got {batch!r}")
        if batch > (limit := self.batch_limit()):
            raise StreamError(f"batch {batch} is larger than the {self.name} device's buffers allow "
                              f"({limit} images)")
        self.batch = batch
        self.packing = default_packing()

    def batch_limit(self) -> int:
        """The most images one transfer may carry (a backend lowers it to its buffers)."""
        return 1 << 30

    @abstractmethod
    def transfer(self, in_buffer: np.ndarray, images: int) -> np.ndarray:
        """(images * words_per_image, in_bytes) uint8 in -> (images, out_bytes) uint8 decisions."""

    def extra(self) -> dict:
        """Device-specific figures for the last `run` (none by default)."""
        return {}

    def close(self) -> None:
        """Frees what the device holds (buffers, overlays)."""

    def run(self, images: np.ndarray) -> DeviceRun:
        """Class and exit index of each image, sent in batches of at most `batch`; bad
        images are a StreamError that says what is wrong before anything is sent."""
        start = time.perf_counter()
        images = check_images(images, self.layout)
        out, in_transfer = [], 0.0
        for first in range(0, len(images), self.batch):
            chunk = images[first:first + self.batch]  # (n, C, H, W)
            buffer = pack_images(chunk, self.layout, self.packing)  # (n * words, in_bytes)
            t = time.perf_counter()
            decisions = self.transfer(buffer, len(chunk))  # (n, out_bytes)
            in_transfer += time.perf_counter() - t
            if decisions.shape != (len(chunk), self.layout.out_bytes):
                raise StreamError(f"the {self.name} device returned a {decisions.shape} buffer for {len(chunk)} "
                                  f"images of {self.layout.out_bytes} bytes")
            out.append(decisions)
        classes, exit_index = unpack_decisions(np.concatenate(out), self.layout, self.packing)
        bad = np.flatnonzero((exit_index > self.layout.exits) | (classes >= self.layout.classes))
        if bad.size:
            raise StreamError(f"the {self.name} device returned impossible decisions, first at image {bad[0]}: "
                              f"class {classes[bad[0]]}, exit {exit_index[bad[0]]}")
        return DeviceRun(classes, exit_index, self.layout.exits, in_transfer, time.perf_counter() - start,
                         self.extra())
