"""Progress of long work that shows wherever the output goes.

On a terminal, a tqdm bar. Where no terminal shows a bar (output piped to a file, CI logs)
tqdm's bars would vanish (`disable=None`) or fill the log with carriage returns, so the
same calls print a plain line instead, at most every LINE_INTERVAL seconds and once at the
end: `desc: 3/7 segment (41 s)`. No tqdm needed off a terminal (the board has none).
"""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TextIO

LINE_INTERVAL = 30.0
"""Seconds between two progress lines where there is no terminal."""


class ProgressLines:
    """The subset of tqdm's interface the project uses (iterate, update, close, context
    manager, set_postfix), as occasional log lines on `file`."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", file: TextIO | None = None, interval: float = LINE_INTERVAL, **_ignored) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit = total, desc, unit
        self.file = file or sys.stderr
        self.interval = interval
        self.n = 0
        self.postfix = ""
        self.start = self.last = time.monotonic()
        self.closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update()
        self.close()

    def __enter__(self) -> "ProgressLines":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def update(self, n: int | float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._line()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if time.monotonic() - self.start >= self.interval:  # short work needs no line
                self._line()

    def _line(self) -> None:
        of = f"/{self.total:,}" if self.total is not None else ""
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"  {self.desc}: {self.n:,}{of} {self.unit} ({time.monotonic() - self.start:.0f} s{extra})",
              file=self.file, flush=True)


def progress(iterable: Iterable | None = None, **options):
    """A tqdm bar on a terminal (stderr is one), else ProgressLines; `options` are tqdm's
    (total, desc, unit, leave, ...); disable=True shows nothing (a process other than
    the main one of a distributed run)."""
    if options.pop("disable", None) is True:
        return ProgressLines(iterable, **options, interval=float("inf"))
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(iterable, **options)
    return ProgressLines(iterable, **options)
