"""What stops a Vivado build besides a failed run, read from its logs and reports (no Vivado
needed; the Tcl twins in btsee.tcl stop build.tcl itself):

- `log_problems`: a `$readmem` data file Vivado could not open ([Synth 8-4445]: the memory
  would be synthesized empty), an inferred latch ([Synth 8-327]) or a multi-driven net
  ([Synth 8-6859], [Synth 8-6858], [Synth 8-3352], [DRC MDRV-1]), one line each naming the
  source file and line;
- `timing_summary` / `timing_line`: the setup and hold slack of a report_timing_summary file
  and the one line that names the worst path when a slack is negative.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MESSAGE = re.compile(r"^\s*(?:CRITICAL WARNING|WARNING|ERROR):\s*\[(?P<id>[^\]]+)\]\s*(?P<text>.*)$")
"""A Vivado message line: severity, [id], text (INFO lines never stop the build)."""
LOCATION = re.compile(r"\s*\[(?P<file>[^\[\]]+):(?P<line>\d+)\]\s*$")
"""The trailing [file:line] of a message (the file is quoted on some hosts)."""
READMEM_MISSING = re.compile(r"could not open|cannot open|can not open|unable to open|not found")
MULTI_DRIVEN_IDS = frozenset({"Synth 8-6859", "Synth 8-6858", "Synth 8-3352", "DRC MDRV-1"})
LATCH_IDS = frozenset({"Synth 8-327"})


def problem_kind(message_id: str, text: str) -> str:
    """What a message says is wrong, or "" when it does not stop the build."""
    lower = text.lower()
    if "readmem" in lower and READMEM_MISSING.search(lower):
        return "$readmem data file not found"
    if message_id in LATCH_IDS or "inferring latch" in lower:
        return "inferred latch"
    if message_id in MULTI_DRIVEN_IDS or re.search(r"multi-driven net|multiple driver", lower):
        return "multi-driven net"
    return ""


def log_problems(text: str, log_name: str) -> list[str]:
    """One line per problem in the Vivado log `text` (named `log_name`):
    "file:line: kind (id): message", the file and line from the message or else the log's."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        m = MESSAGE.match(line)
        if not m:
            continue
        kind = problem_kind(m["id"], m["text"])
        if not kind:
            continue
        loc = LOCATION.search(m["text"])
        where = f"{loc['file'].strip(chr(34))}:{loc['line']}" if loc else f"{log_name}:{number}"
        message = m["text"][:loc.start()] if loc else m["text"]
        problems.append(f"{where}: {kind} ({m['id']}): {message.strip()}")
    return problems


def build_log_problems(logs: list[Path]) -> list[str]:
    """The problems of every log in `logs` that exists, each once, in order."""
    seen: dict[str, None] = {}
    for log in logs:
        if log.is_file():
            for problem in log_problems(log.read_text(errors="replace"), str(log)):
                seen.setdefault(problem, None)
    return list(seen)


@dataclass(frozen=True)
class TimingSummary:
    wns: float | None
    tns: float | None
    whs: float | None
    ths: float | None
    worst_setup: tuple[str, str, float] | None
    """(startpoint, endpoint, slack) of the first violated max-delay path in the report."""
    worst_hold: tuple[str, str, float] | None

    def failing(self) -> str | None:
        """"setup" or "hold" when that slack is negative, else None."""
        if any(v is not None and v < 0 for v in (self.wns, self.tns)):
            return "setup"
        if any(v is not None and v < 0 for v in (self.whs, self.ths)):
            return "hold"
        return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # NA: nothing constrained


def _violated_path(section: str) -> tuple[str, str, float] | None:
    m = re.search(r"Slack \(VIOLATED\)\s*:\s*(-?[\d.]+)\s*ns.*?\n\s*Source:\s*(\S+).*?\n\s*Destination:\s*(\S+)",
                  section, re.S)
    return (m[2], m[3], float(m[1])) if m else None


def timing_summary(text: str) -> TimingSummary | None:
    """The Design Timing Summary of a report_timing_summary file, with the worst violated
    setup and hold paths; None when the report has no such table."""
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if re.match(r"^\s*WNS\(ns\)\s+TNS\(ns\)", line)), None)
    if header is None:
        return None
    row = next((line.split() for line in lines[header + 1:] if line.strip() and not re.fullmatch(r"[-\s]+", line)),
               None)  # the first line after the header that is not its rule of dashes
    if row is None or len(row) < 6:
        return None
    max_at, min_at = text.find("Max Delay Paths"), text.find("Min Delay Paths")
    setup = text[max_at:min_at if min_at > max_at else len(text)] if max_at >= 0 else ""
    hold = text[min_at:] if min_at >= 0 else ""
    return TimingSummary(_number(row[0]), _number(row[1]), _number(row[4]), _number(row[5]),
                         _violated_path(setup), _violated_path(hold))


def timing_line(summary: TimingSummary, report: Path | str) -> str | None:
    """The one line a failing timing check stops the build with (as btsee_timing_gate words
    it), or None when timing is met."""
    check = summary.failing()
    if check is None:
        return None
    names, worst, total, path = (("WNS", "TNS"), summary.wns, summary.tns, summary.worst_setup) if check == "setup" \
        else (("WHS", "THS"), summary.whs, summary.ths, summary.worst_hold)
    start, end, slack = path if path else ("?", "?", worst)

    def ns(value: float | None) -> str:
        return "NA" if value is None else f"{value:.3f}"

    return (f"btsee: timing not met ({check}): {names[0]} {ns(worst)} ns, {names[1]} {ns(total)} ns; "
            f"worst path {start} -> {end}, slack {ns(slack)} ns; report {report}")
