"""The synthesized netlists of the default run against golden at full counts: every
segment's netlist on 100 test images and the whole design's (the exit glue's netlist
with every segment's under it) on 200 test images in order, with random stalls. Writes
bench/results/netlist.json (the keys of `synth/netlist.json`); exits 1 on any mismatch.
`make demo` runs the same check on 20 images per segment (`btsee.steps.netlist`).
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "runs" / "default"
SEGMENT_IMAGES = 100
DESIGN_IMAGES = 200


def main() -> int:
    subprocess.run([sys.executable, "-m", "btsee.cli", "run", "configs/default.yaml", "--out", str(RUN),
                    "--device", "cpu", "--resume"], cwd=ROOT, check=True)
    sys.path.insert(0, str(ROOT))
    from btsee.config import load_config
    from btsee.flow import Context
    from btsee.steps.netlist import netlist_checks, summary
    from calib.atomic import atomic_write_json

    ctx = Context(load_config(RUN / "config.json"), RUN, env=None)
    t0 = time.time()
    doc = netlist_checks(ctx, SEGMENT_IMAGES, DESIGN_IMAGES, log=lambda line: print(line, flush=True))
    out = dict(doc, benchmark="netlist", config="configs/default.yaml", summary=summary(doc),
               seconds=round(time.time() - t0, 1))
    atomic_write_json(ROOT / "bench" / "results" / "netlist.json", out)
    print(f"golden vs netlist: {doc['mismatches']} mismatched images ({out['seconds']:.0f} s)", flush=True)
    return 1 if doc["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
