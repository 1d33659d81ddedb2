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


def test_a_line_comes_every_interval_while_nothing_completes_and_stops_at_close():
    """One simulation or synthesis can take minutes: the ticker repeats the count meanwhile."""
    import time

    out = io.StringIO()
    bar = ProgressLines(total=2, desc="synth", unit="design", file=out, interval=0.2)
    time.sleep(0.75)
    waiting = out.getvalue().splitlines()
    assert len(waiting) >= 2 and all(line.startswith("  synth: 0/2 design (") for line in waiting), waiting
    bar.update(2)
    bar.close()
    closed = out.getvalue()
    time.sleep(0.5)
    assert out.getvalue() == closed  # no line after close
    assert closed.splitlines()[-1].startswith("  synth: 2/2 design (")


def test_a_loop_left_early_stops_the_ticker():
    import time

    out = io.StringIO()
    for i in ProgressLines(range(10), desc="x", file=out, interval=0.2):
        if i == 1:
            break
    time.sleep(0.1)  # the abandoned generator is closed when the loop drops it
    before = out.getvalue()
    time.sleep(0.5)
    assert out.getvalue() == before


def test_the_step_heartbeat_speaks_only_after_a_quiet_interval():
    """A step that shows nothing gets `[step]: still running (N s)` lines; a logged line
    (note_output) or a progress line keeps it quiet for an interval; none after the step."""
    import time

    from calib.progress import heartbeat, note_output

    out = io.StringIO()
    with heartbeat("[exits]", interval=0.5, file=out):
        time.sleep(1.6)
        note_output()
        quiet_start = len(out.getvalue().splitlines())
        for _ in range(10):  # a log line every 0.05 s: no heartbeat meanwhile
            time.sleep(0.05)
            note_output()
        assert len(out.getvalue().splitlines()) == quiet_start
    lines = out.getvalue().splitlines()
    assert quiet_start >= 2 and all(line.startswith("  [exits]: still running (") for line in lines), lines
    time.sleep(0.5)
    assert out.getvalue().splitlines() == lines  # stopped with the block
    off = io.StringIO()
    with heartbeat("[x]", interval=0.1, file=off, enabled=False):
        time.sleep(0.3)
    assert off.getvalue() == ""
