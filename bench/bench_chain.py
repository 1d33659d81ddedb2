"""The bit-exactness chain golden = qonnx = FINN on every test image of the default run
(10,000 for Fashion-MNIST): qonnx executing the exported QONNX graphs in float64 and FINN
executing the HW-layer graphs, each segment's integer outputs and the exit decisions
compared with ==. `make demo` runs the same check on the first `hardware.chain_images`
(1,000 in configs/default.yaml) to stay within its time budget. Writes
bench/results/chain.json (the keys of report.json `bit_exact`); exits 1 on any mismatch.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "runs" / "default"


def main() -> int:
    subprocess.run([sys.executable, "-m", "btsee.cli", "run", "configs/default.yaml", "--out", str(RUN),
                    "--device", "cpu", "--resume", "--to", "simulate"], cwd=ROOT, check=True)
    sys.path.insert(0, str(ROOT))
    from btsee.config import load_config
    from btsee.flow import Context
    from btsee.steps.simulate import chain_check
    from calib.atomic import atomic_write_json

    ctx = Context(load_config(RUN / "config.json"), RUN, env=None)
    t0 = time.time()
    doc = chain_check(ctx, None)
    for key in ("golden_vs_qonnx", "golden_vs_finn", "golden_vs_qonnx_float32"):
        r = doc[key]
        print(f"golden vs {key.removeprefix('golden_vs_')} on {r['images']:,} test images: "
              f"{r['mismatching_images']} with any integer output differing ({r['seconds']:.0f} s)", flush=True)
    out = dict(doc, benchmark="chain", config="configs/default.yaml", seconds=round(time.time() - t0, 1))
    atomic_write_json(ROOT / "bench" / "results" / "chain.json", out)
    return 1 if doc["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
