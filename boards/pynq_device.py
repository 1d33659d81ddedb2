"""The PYNQ device: the package's bitstream on the board, images in and decisions out
through the block design's AXI DMA (numpy + pynq; runs on the board's ARM cores).

The block design (hw/vivado/project.py) has an AXI DMA named `dma` (MM2S: pixel words into
the design, S2MM: decision words out) and an AXI GPIO named `batch` that tells the design
after how many decisions to raise TLAST, which ends the S2MM transfer. finn-plus-driver's
FINNDMAOverlay drives FINN's own IODMA blocks, not AXI DMA, so the transfers here use
pynq's DMA driver; finn-plus-driver's packing formats the buffers (boards/streams.py).
"""
from __future__ import annotations

import numpy as np

from boards.device import Device
from boards.package import BITSTREAM, HARDWARE_HANDOFF, DeployPackage, PackageError

DMA_IP = "dma"
BATCH_GPIO_IP = "batch"
"""Names of the cells in the block design (hw/vivado/project.py)."""


class PynqDevice(Device):
    name = "pynq"

    def __init__(self, package: DeployPackage, batch: int):
        for name in (BITSTREAM, HARDWARE_HANDOFF):
            if name not in package.manifest["files"]:
                raise PackageError(f"{package.path(name)}: the package has no {name}; build the bitstream "
                                   "(make bitstream on a machine with Vivado) and run the package step again")
        super().__init__(package, batch)
        try:
            import pynq
        except ImportError as e:
            raise PackageError(f"the pynq device needs the pynq package (on a PYNQ board image): {e}") from e
        self._pynq = pynq
        self.overlay = pynq.Overlay(str(package.path(BITSTREAM)))  # reads design.hwh beside it
        for ip in (DMA_IP, BATCH_GPIO_IP):
            if ip not in self.overlay.ip_dict:
                raise PackageError(f"{package.path(HARDWARE_HANDOFF)}: no IP named {ip!r} in the overlay "
                                   f"(has {sorted(self.overlay.ip_dict)})")
        self.dma = getattr(self.overlay, DMA_IP)
        self.batch_gpio = getattr(self.overlay, BATCH_GPIO_IP)
        self._buffers: dict[int, tuple] = {}

    def batch_limit(self) -> int:
        """AXI DMA moves at most 2**length_bits - 1 bytes per transfer."""
        length_bits = int(self.package.driver["dma"]["length_bits"])
        return ((1 << length_bits) - 1) // (self.layout.words_per_image * self.layout.in_bytes)

    def _buffers_for(self, images: int) -> tuple:
        """(input, output) DMA buffers for `images` images, allocated once per size."""
        if images not in self._buffers:
            allocate = self._pynq.allocate
            self._buffers[images] = (
                allocate(shape=(images * self.layout.words_per_image, self.layout.in_bytes), dtype=np.uint8),
                allocate(shape=(images, self.layout.out_bytes), dtype=np.uint8))
        return self._buffers[images]

    def transfer(self, in_buffer: np.ndarray, images: int) -> np.ndarray:
        ibuf, obuf = self._buffers_for(images)
        np.copyto(ibuf, in_buffer)
        ibuf.flush()
        self.batch_gpio.channel1.write(images, 0xFFFFFFFF)  # TLAST after this many decisions
        self.dma.recvchannel.transfer(obuf)
        self.dma.sendchannel.transfer(ibuf)
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()
        obuf.invalidate()
        return np.array(obuf, dtype=np.uint8)

    def close(self) -> None:
        for ibuf, obuf in self._buffers.values():
            ibuf.freebuffer()
            obuf.freebuffer()
        self._buffers.clear()
