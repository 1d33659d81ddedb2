"""`torch.save` made atomic with `calib.atomic` (temporary file, then rename)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from calib.atomic import atomic_write


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    """`torch.save(obj)` to a temporary file beside `path`, then renamed onto it."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))
