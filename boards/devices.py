"""The device backends by name, and the one way to open one (boards/device.py has the API)."""
from __future__ import annotations

from boards.device import Device
from boards.package import DeployPackage

DEVICES = ("pynq", "virtual", "rtl")
"""pynq on the board; virtual and rtl on a host (they need the project's hw/ and its tools)."""


def open_device(package: DeployPackage, kind: str, batch: int = 100, **options) -> Device:
    """The `kind` device (DEVICES) over `package`; `options` go to its backend (the RTL
    device's build folder)."""
    if kind == "pynq":
        from boards.pynq_device import PynqDevice
        return PynqDevice(package, batch)
    if kind == "virtual":
        from boards.virtual_device import VirtualDevice
        return VirtualDevice(package, batch)
    if kind == "rtl":
        from boards.rtl_device import RtlDevice
        return RtlDevice(package, batch, **options)
    raise ValueError(f"unknown device {kind!r}; devices are {', '.join(DEVICES)}")
