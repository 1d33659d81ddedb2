"""`torch.save` made atomic with `calib.atomic` (temporary file, then rename)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from calib.atomic import atomic_write


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    """`torch.save(obj)` to a temporary file beside `path`, then renamed onto it."""
    import torch

    def write(tmp: Path) -> None:
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:  # torch's stream writer reports a failed write (disk full) this way
            raise OSError(str(e)) from e

    return atomic_write(path, write)
