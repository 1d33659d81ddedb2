"""Python model of axis_last.sv: where TLAST falls in the output stream."""
from __future__ import annotations

import numpy as np


def last_flags(words: int, batch: int) -> np.ndarray:
    """(words,) bool: TLAST of each output word when every `batch` words end a transfer
    (batch 0 counts as 1)."""
    size = max(batch, 1)
    return (np.arange(words) % size) == size - 1
