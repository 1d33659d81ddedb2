"""Python model of axis_last.sv: where TLAST falls in the output stream."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def tlast_flags(batches: Sequence[int], restarts: Iterable[int] = ()) -> np.ndarray:
    """(len(batches),) bool: TLAST of each output word, word i passing while the batch input
    is batches[i] (0 counts as 1); a reset just before word r (r in `restarts`) restarts the
    count. Like the RTL, a word ends the transfer once the words counted reach the batch size,
    so a batch shrunk below the count ends the transfer on the next word."""
    restart = set(restarts)
    flags = np.zeros(len(batches), bool)
    count = 0
    for i, batch in enumerate(batches):
        if i in restart:
            count = 0
        flags[i] = count >= max(int(batch), 1) - 1
        count = 0 if flags[i] else count + 1
    return flags


def last_flags(words: int, batch: int) -> np.ndarray:
    """(words,) bool: TLAST of each output word when every `batch` words end a transfer
    (batch 0 counts as 1)."""
    size = max(batch, 1)
    return (np.arange(words) % size) == size - 1
