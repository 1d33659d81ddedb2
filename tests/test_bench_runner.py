"""`make bench` (bench/run_all.py) never goes quiet: a silent bench gets a line saying which
bench it is and what it last said, its output is kept in a log, and a failure stops the run."""
from __future__ import annotations

import subprocess
import sys

import pytest

from bench.run_all import run_streamed


def test_a_silent_bench_gets_heartbeat_lines_naming_it_and_its_last_line(tmp_path):
    script = "import time; print('design budget 12,000 LUT', flush=True); time.sleep(1.0); print('done')"
    shown: list[str] = []
    log = tmp_path / "logs" / "bench_x.log"
    run_streamed([sys.executable, "-c", script], "bench_x", log, tmp_path, heartbeat=0.2, echo=shown.append)
    beats = [s for s in shown if "still running" in s]
    assert beats, shown
    assert all(b.startswith("  [bench_x] still running, ") and b.endswith("last: design budget 12,000 LUT")
               for b in beats)
    assert shown[0] == "design budget 12,000 LUT" and shown[-1] == "done"
    assert log.read_text() == "design budget 12,000 LUT\ndone\n"  # the log holds the bench's own lines


def test_a_chatty_bench_gets_no_heartbeat_and_a_failing_one_raises(tmp_path):
    shown: list[str] = []
    run_streamed([sys.executable, "-c", "print('a'); print('b')"], "quick", tmp_path / "q.log", tmp_path,
                 heartbeat=5.0, echo=shown.append)
    assert shown == ["a", "b"]
    with pytest.raises(subprocess.CalledProcessError):
        run_streamed([sys.executable, "-c", "import sys; print('x'); sys.exit(3)"], "bad", tmp_path / "b.log",
                     tmp_path, echo=shown.append)
