"""`make deploy BOARD=pynq-z2 HOST=user@board`: the deploy package and the driver onto the
board over ssh, what the driver needs installed there (pinned), the on-device test run
there, and its JSON report brought back (host side).

    python -m boards.deploy --board pynq-z2 --host xilinx@192.168.2.99 --package runs/default/package

On the board everything lands in ~/btsee_deploy: package/, the driver (boards/, calib/) and
the on-device pytest suite (test_on_device.py). The report comes back to
board_test/pynq.json beside the package.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from boards.package import open_package
from calib.errors import BtseeError

ROOT = Path(__file__).resolve().parents[1]
REMOTE_DIR = "btsee_deploy"
BOARD_PINS = ("finn-plus-driver==1.6.1", "qonnx==1.0.0", "bitstring==4.3.1", "bitarray==3.12.3")
"""Installed on the board with --no-deps when finn_plus_driver is missing (requirements.lock's pins)."""
PYNQ_PYTHON = "sudo -n -E /usr/local/share/pynq-venv/bin/python3"
"""The interpreter of a stock PYNQ image (its pynq venv; loading an overlay needs root)."""
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10")
USAGE = ("usage: make deploy BOARD=pynq-z2 HOST=user@board [PORT=22] [OUT=runs/default] [BOARD_PYTHON='...']\n"
         "  copies OUT/package and the driver to HOST over ssh, installs what is missing there,\n"
         "  runs the on-device accuracy test and brings OUT/board_test/pynq.json back")


class DeployError(BtseeError):
    """A deployment that cannot go on: names the host, file or command at fault."""


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    """Runs `cmd`; a failure is a DeployError with `what` and the tool's last lines."""
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise DeployError(f"{what}: {cmd[0]} is not installed (make setup installs openssh-client)") from e
    except subprocess.CalledProcessError as e:
        tail = "\n".join((e.stderr or e.stdout or "").strip().splitlines()[-5:])
        raise DeployError(f"{what} failed (exit status {e.returncode}): {shlex.join(cmd)}\n{tail}") from e


def deploy(package_dir: Path, host: str, board: str, python: str = PYNQ_PYTHON, port: int = 22, log=print) -> Path:
    """Deploys and tests on `host`; the path of the report brought back. A package that
    does not open, is for another board or has no bitstream, or a host that does not
    answer, is a DeployError before anything is copied."""
    package = open_package(package_dir)
    if package.manifest.get("board") != board:
        raise DeployError(f"{package.folder / 'manifest.json'}: the package is for {package.manifest.get('board')!r}, "
                          f"BOARD is {board!r}")
    if not package.has_bitstream:
        raise DeployError(f"{package.folder}: no design.bit in the package; build the bitstream on a machine with "
                          "Vivado (make bitstream), then rerun the package step")
    ssh = ["ssh", *SSH_OPTIONS, "-p", str(port), host]
    scp = ["scp", "-q", *SSH_OPTIONS, "-P", str(port)]
    _run([*ssh, "true"], f"reaching {host} over ssh (key-based login, 10 s timeout)")
    log(f"deploy: copying {package.folder} and the driver to {host}:{REMOTE_DIR}")
    _run([*ssh, f"rm -rf {REMOTE_DIR} && mkdir -p {REMOTE_DIR}"], f"preparing {host}:{REMOTE_DIR}")
    sources = [str(p) for p in (package.folder, ROOT / "boards", ROOT / "calib", ROOT / "tests" / "test_on_device.py")]
    _run([*scp, "-r", *sources, f"{host}:{REMOTE_DIR}/"], f"copying to {host}")
    remote_package = f"{REMOTE_DIR}/{package.folder.name}"
    install = (f"cd {REMOTE_DIR} && ({python} -c 'import finn_plus_driver' 2>/dev/null || "
               f"{python} -m pip install -q --no-deps {' '.join(BOARD_PINS)})")
    log(f"deploy: checking the driver's packages on {host} ({', '.join(BOARD_PINS)} when missing)")
    _run([*ssh, install], f"installing the driver's packages on {host} (set BOARD_PYTHON if {python!r} is wrong)")
    log(f"deploy: running the on-device test on {host}")
    test = subprocess.run([*ssh, f"cd {REMOTE_DIR} && {python} -m boards.board_test {package.folder.name} "
                                 "--backend pynq --json board_test.json"], capture_output=True, text=True)
    log(test.stdout.rstrip())
    suite = subprocess.run([*ssh, f"cd {REMOTE_DIR} && if {python} -c 'import pytest' 2>/dev/null; then "
                                  f"BTSEE_PACKAGE={package.folder.name} BTSEE_DEVICES=pynq {python} -m pytest -q "
                                  "-p no:cacheprovider -m board test_on_device.py; else echo 'no pytest on the board: "
                                  "the on-device suite was not run (board_test above checks the same)'; fi"],
                           capture_output=True, text=True)
    log(suite.stdout.rstrip()[-2000:])
    report = package.folder.parent / "board_test" / "pynq.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    _run([*scp, f"{host}:{REMOTE_DIR}/board_test.json", str(report)],
         f"bringing the report back from {host} (the test printed: {test.stderr.strip()[-300:]})")
    if suite.returncode != 0:
        raise DeployError(f"the on-device pytest suite on {host} failed (exit status {suite.returncode}): "
                          f"{(suite.stdout + suite.stderr).strip()[-500:]}")
    if test.returncode != 0:
        raise DeployError(f"the on-device test on {host} failed (exit status {test.returncode}): "
                          f"{test.stderr.strip()[-500:]}; report: {report} (package {remote_package})")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="deploy", description="Deploy a package to a board and test it there.")
    p.add_argument("--board", default="")
    p.add_argument("--host", default="", help="user@board (key-based ssh login)")
    p.add_argument("--port", type=int, default=22, help="the board's ssh port")
    p.add_argument("--package", type=Path, default=Path("runs/default/package"))
    p.add_argument("--python", default=PYNQ_PYTHON, help="the board's Python with pynq (default: %(default)s)")
    args = p.parse_args(argv)
    if not args.host or not args.board:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        report = deploy(args.package, args.host, args.board, args.python, args.port)
    except BtseeError as e:
        print(f"deploy: error: {e}", file=sys.stderr)
        return 1
    print(f"deploy: report {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
