"""Runs every bench/bench_*.py in turn; each writes bench/results/<name>.json. Then the
README's figures are rendered afresh from those files (bench/readme_figures.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        subprocess.run([sys.executable, str(script)], check=True, cwd=HERE.parent)
    subprocess.run([sys.executable, str(HERE / "readme_figures.py")], check=True, cwd=HERE.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
