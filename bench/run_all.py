"""Runs every bench/bench_*.py in turn; each writes bench/results/<name>.json. Then the
README's figures are rendered afresh from those files (bench/readme_figures.py).

Each bench's output is shown as it comes and kept in runs/bench_logs/<name>.log. A bench
that prints nothing for HEARTBEAT seconds gets a line saying which bench it is, how long it
has run and the last thing it said (the design or run it is on), so a piped `make bench`
never goes quiet for longer than that."""
from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, TextIO

HERE = Path(__file__).resolve().parent
LOGS = HERE.parent / "runs" / "bench_logs"
HEARTBEAT = 30.0
"""Seconds of silence after which a bench gets a line saying it is still running."""


def _lines(stream: TextIO, into: queue.Queue) -> None:
    """Puts every line of `stream` into `into`, then None at its end."""
    for line in stream:
        into.put(line)
    into.put(None)


def run_streamed(cmd: list[str], name: str, log: Path, cwd: Path, heartbeat: float = HEARTBEAT,
                 echo: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
    """Runs `cmd`, echoing its stdout and stderr line by line and writing them to `log`; after
    every `heartbeat` seconds without output, echoes `[name] still running, N s; last: ...`.
    A non-zero exit status raises subprocess.CalledProcessError (as check=True would)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    last = "(nothing yet)"
    lines: queue.Queue = queue.Queue()
    with open(log, "w") as out, subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                 text=True, errors="replace", bufsize=1) as proc:
        assert proc.stdout is not None
        reader = threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        while True:
            try:
                line = lines.get(timeout=heartbeat)
            except queue.Empty:
                echo(f"  [{name}] still running, {time.monotonic() - start:.0f} s; last: {last}")
                continue
            if line is None:
                break
            out.write(line)
            out.flush()
            echo(line.rstrip("\n"))
            if line.strip():
                last = line.strip()[:160]
        reader.join()
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)


def main() -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    t0 = time.monotonic()
    for i, script in enumerate(scripts, 1):
        name = script.stem
        print(f"== {name} ({i}/{len(scripts)}, {time.monotonic() - t0:.0f} s into make bench; "
              f"log {LOGS / (name + '.log')})", flush=True)
        run_streamed([sys.executable, "-u", str(script)], name, LOGS / f"{name}.log", HERE.parent)
    subprocess.run([sys.executable, str(HERE / "readme_figures.py")], check=True, cwd=HERE.parent)
    print(f"== make bench: {len(scripts)} benches in {time.monotonic() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
