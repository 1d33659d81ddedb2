"""Progress of long work that shows wherever the output goes.

On a terminal, a tqdm bar. Where no terminal shows a bar (output piped to a file, CI logs)
tqdm's bars would vanish (`disable=None`) or fill the log with carriage returns, so the
same calls print a plain line instead, at most every LINE_INTERVAL seconds and once at the
end: `desc: 3/7 segment (41 s)`. A line also comes every LINE_INTERVAL seconds while nothing
completes (one simulation or synthesis can take minutes): a ticker thread repeats the
count with the time elapsed, so a piped log never goes quiet for longer than that. No tqdm
needed off a terminal (the board has none).
"""
from __future__ import annotations

import sys
import threading
import time
import weakref
from typing import Iterable, Iterator, TextIO

LINE_INTERVAL = 30.0
"""Seconds between two progress lines where there is no terminal."""

_last_line = [time.monotonic()]
"""When a line was last shown (a progress line, or a log line through `note_output`)."""


def note_output() -> None:
    """Records that a line was just shown: a `heartbeat` stays quiet for LINE_INTERVAL."""
    _last_line[0] = time.monotonic()


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
        self._stop = threading.Event()
        if 0 < interval < float("inf"):  # interval 0 prints at every update anyway
            threading.Thread(target=_tick, args=(weakref.ref(self), self._stop, interval), daemon=True).start()

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable or ():
                yield item
                self.update()
        finally:  # also when the loop is left early: the ticker stops
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
            self._stop.set()
            if time.monotonic() - self.start >= self.interval:  # short work needs no line
                self._line()

    def _line(self) -> None:
        note_output()
        of = f"/{self.total:,}" if self.total is not None else ""
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"  {self.desc}: {self.n:,}{of} {self.unit} ({time.monotonic() - self.start:.0f} s{extra})",
              file=self.file, flush=True)


def _tick(ref: "weakref.ref[ProgressLines]", stop: threading.Event, interval: float) -> None:
    """The ticker: while the bar is open (and alive), prints its line whenever `interval`
    seconds have passed without one."""
    while not stop.wait(min(interval, 1.0)):
        bar = ref()
        if bar is None or bar.closed:
            return
        now = time.monotonic()
        if now - bar.last >= interval:
            bar.last = now
            bar._line()
        del bar


class heartbeat:
    """Context manager: off a terminal, while its block runs, prints `desc: still running
    (N s)` whenever no line has been shown for `interval` seconds (no progress line, no log
    line through `note_output`), so work that reports nothing for minutes still shows in a
    piped log. On a terminal, or when not `enabled`, it prints nothing."""

    def __init__(self, desc: str, interval: float = LINE_INTERVAL, file: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.desc, self.interval, self.file = desc, interval, file or sys.stderr
        self.enabled = enabled and not self.file.isatty()
        self._stop = threading.Event()

    def __enter__(self) -> "heartbeat":
        if self.enabled:
            self.start = time.monotonic()
            threading.Thread(target=self._beat, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def _beat(self) -> None:
        while not self._stop.wait(min(self.interval, 1.0)):
            if time.monotonic() - _last_line[0] >= self.interval:
                note_output()
                print(f"  {self.desc}: still running ({time.monotonic() - self.start:.0f} s)", file=self.file,
                      flush=True)


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
