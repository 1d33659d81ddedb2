"""The host-side device backends (the board runtime's `Device` API, `boards/device.py`):
the virtual device (the golden simulator) and the RTL device (Verilator). They need the
project's `hw` and its tools, so they live here and never go to the board;
`boards.devices.open_device` finds them by name."""
