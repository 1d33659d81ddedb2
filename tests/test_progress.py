"""Progress shows where no terminal shows a bar (CI logs, a piped `make demo`)."""
from __future__ import annotations

import io

from calib.progress import ProgressLines, progress


def test_without_a_terminal_progress_is_lines_with_counts():
    out = io.StringIO()
    bar = ProgressLines(total=3, desc="rtl: verilate + simulate", unit="design", file=out, interval=0.0)
    with bar:
        for _ in range(3):
            bar.update()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  rtl: verilate + simulate: 1/3 design (")
    assert lines[-1].startswith("  rtl: verilate + simulate: 3/3 design (") and "\r" not in out.getvalue()


def test_iterating_counts_every_item_and_short_work_prints_nothing():
    out = io.StringIO()
    assert list(ProgressLines(range(5), desc="x", file=out, interval=0.0)) == list(range(5))
    assert out.getvalue().splitlines()[-1].startswith("  x: 5/5 it")
    quiet = io.StringIO()
    assert list(ProgressLines(range(5), desc="x", file=quiet)) == list(range(5))  # under 30 s: no line
    assert quiet.getvalue() == ""


def test_progress_chooses_lines_off_a_terminal_and_nothing_when_disabled(capsys):
    bar = progress(range(2), desc="y", unit="segment")  # pytest's captured stderr is no terminal
    assert isinstance(bar, ProgressLines) and list(bar) == [0, 1]
    silent = progress(range(2), desc="z", disable=True)
    assert list(silent) == [0, 1] and silent.interval == float("inf") and "z:" not in capsys.readouterr().err
