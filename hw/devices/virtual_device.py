"""The virtual device: the golden simulator over the package's integer graphs (host only).

It runs the segments the package carries in golden/ with the package's thresholds, as the
hardware does: an image that exits never enters the later segments. It reads the same
input DMA buffer as the board and writes the same decision buffer, so a test that passes
here exercises the driver's packing and unpacking too.
"""
from __future__ import annotations

import json

import numpy as np

from boards.device import Device
from boards.package import GOLDEN_FOLDER, THRESHOLDS, DeployPackage, PackageError
from boards.streams import decisions_to_buffer, images_from_buffer

GOLDEN_MANIFEST = f"{GOLDEN_FOLDER}/manifest.json"


class VirtualDevice(Device):
    name = "virtual"

    def __init__(self, package: DeployPackage, batch: int):
        super().__init__(package, batch)
        from hw.golden import load_cascade

        manifest = json.loads(package.path(GOLDEN_MANIFEST).read_text())
        exits = json.loads(package.path(THRESHOLDS).read_text())["exits"]
        try:
            self.cascade = load_cascade(package.folder, manifest, [e["thresholds"] for e in exits],
                                        exits[0]["score"])
        except (KeyError, IndexError, ValueError) as e:
            raise PackageError(f"{package.path(THRESHOLDS)} does not fit {package.path(GOLDEN_MANIFEST)}: {e}") from e

    def transfer(self, in_buffer: np.ndarray, images: int) -> np.ndarray:
        pixels = images_from_buffer(in_buffer, self.layout)  # (images, C, H, W) int64
        if not self.layout.signed and self.layout.bits <= 8:
            pixels = pixels.astype(np.uint8)
        result = self.cascade.run(pixels)
        return decisions_to_buffer(result.classes, result.exit_index, self.layout)
