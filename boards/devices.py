"""The device backends by name, and the one way to open one (boards/device.py has the API)."""
from __future__ import annotations

import importlib

from boards.device import Device
from boards.package import DeployPackage

DEVICES = ("pynq", "virtual", "rtl")
"""pynq on the board; virtual and rtl on a host (they need the project's hw/ and its tools)."""
HOST_DEVICES = {"virtual": ("hw.devices.virtual_device", "VirtualDevice"),
                "rtl": ("hw.devices.rtl_device", "RtlDevice")}
"""Where the host-side backends live (module, class): in hw/devices/, which the deploy
package does not carry to the board; imported by name only when asked for."""


def open_device(package: DeployPackage, kind: str, batch: int = 100, **options) -> Device:
    """The `kind` device (DEVICES) over `package`; `options` go to its backend (the RTL
    device's build folder)."""
    if kind == "pynq":
        from boards.pynq_device import PynqDevice
        return PynqDevice(package, batch)
    if kind in HOST_DEVICES:
        module, cls = HOST_DEVICES[kind]
        return getattr(importlib.import_module(module), cls)(package, batch, **options)
    raise ValueError(f"unknown device {kind!r}; devices are {', '.join(DEVICES)}")
