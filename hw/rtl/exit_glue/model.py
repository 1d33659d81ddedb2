"""The Python model of the exit glue: how the golden cascade routes images, stream by
stream, as the fork, the conditional buffers and the exit merge do in hardware.

`exit_merge` is the golden leave-at-first rule (`calib.cascade.FirstExit`) applied to the
decision streams; `exit_buffer` keeps the frames of the images a head lets go on;
`reaching` gives, from the per-image exit indices, which images each stream carries.
"""
from __future__ import annotations

import numpy as np

from calib.cascade import FirstExit


def fork(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fork: the input words on both outputs."""
    return words, words


def queue(words: np.ndarray) -> np.ndarray:
    """The decision queue: its words, unchanged and in order."""
    return words


def exit_buffer(frames: np.ndarray, exits: np.ndarray) -> np.ndarray:
    """(n, FRAME, ...) frames of n images and their (n,) exit bits -> the frames of the
    images that go on, in order."""
    return frames[np.asarray(exits) == 0]


def exit_merge(decisions: list[np.ndarray], final_classes: np.ndarray) -> np.ndarray:
    """decisions[k]: (n_k, 2) rows (class, exits) of the images that reach exit k, in
    order; final_classes: (n_final,) of those that reach the final classifier -> (n, 2)
    rows (class, exit index) per image in input order."""
    n = len(decisions[0]) if decisions else len(final_classes)
    first = FirstExit(n, len(decisions))
    open_ = np.arange(n)  # (n_k,) the images reaching exit k
    for k, d in enumerate(decisions):
        if len(d) != len(open_):
            raise ValueError(f"exit {k}: {len(d)} decisions for {len(open_)} images reaching it")
        takes, pred = np.zeros(n, bool), np.zeros(n, np.int64)
        takes[open_], pred[open_] = d[:, 1] == 1, d[:, 0]
        leaving = first.offer(k, takes, pred)
        open_ = open_[~leaving[open_]]
    if len(final_classes) != len(open_):
        raise ValueError(f"{len(final_classes)} final decisions for {len(open_)} images reaching it")
    final = np.zeros(n, np.int64)
    final[open_] = final_classes
    first.finish(final)
    return np.stack([first.pred, first.exit_index], axis=1)


def reaching(exit_index: np.ndarray, stage: int) -> np.ndarray:
    """(n,) exit index per image -> (n,) bool: the image reaches exit `stage` (or the
    final classifier when stage = the number of exits)."""
    return np.asarray(exit_index) >= stage
