"""On-device accuracy test: a device's class and exit index against the package's golden
expected outputs, image by image, with accuracy, exit fractions and images per second.

    python -m boards.board_test PACKAGE [--backend pynq|virtual|rtl] [--json FILE]
    btsee board-test PACKAGE ...          (the same, from the host's btsee command)

Exit status 0 when every image matches, 1 when some differ or the package is refused
(the message names the file), 2 for bad arguments. BTSEE_DEBUG=1 (or `btsee --debug
board-test`) prints a refusal's traceback too. The report is JSON (written atomically)
and a short table on stdout. numpy, pynq and calib only on the board.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

import numpy as np

from boards.devices import DEVICES, open_device
from boards.package import open_package
from calib.atomic import atomic_write_json
from calib.errors import BtseeError

DEFAULT_BATCH = 100
REPORT_FOLDER = "board_test"
"""Beside the package: the reports, and the RTL device's compiled simulation."""


def board_test(package_dir: Path, device: str, batch: int = DEFAULT_BATCH, images: int | None = None,
               **options) -> dict:
    """Runs the package's test vectors (the first `images`) on `device`; the report: per-image
    agreement with the golden class and exit index, accuracy, exit fractions, speed."""
    package = open_package(package_dir)
    vectors = package.test_vectors()
    n = len(vectors.images) if images is None else min(images, len(vectors.images))
    dev = open_device(package, device, batch, **options)
    try:
        run = dev.run(vectors.images[:n])
    finally:
        dev.close()
    labels, classes, exits = vectors.labels[:n], vectors.classes[:n], vectors.exit_index[:n]
    wrong = np.flatnonzero((run.classes != classes) | (run.exit_index != exits))
    counts = run.exit_counts
    return {
        "package": str(package.folder), "board": package.manifest.get("board"), "device": device,
        "packing": dev.packing, "images": n, "batch": batch,
        "mismatched_images": int(len(wrong)), "first_mismatched": [int(i) for i in wrong[:10]],
        "classes_differ": int((run.classes != classes).sum()),
        "exit_indices_differ": int((run.exit_index != exits).sum()),
        "accuracy": float((run.classes == labels).mean()),
        "golden_accuracy": float((classes == labels).mean()),
        "exit_counts": counts, "exit_fractions": [round(c / n, 4) for c in counts],
        "images_per_second": round(run.images_per_second, 1),
        "images_per_second_end_to_end": round(n / run.total_seconds, 1),
        **run.extra,
    }


def format_table(report: dict) -> str:
    """The report in a few aligned lines for the terminal."""
    exits = " / ".join(f"{f:.3f}" for f in report["exit_fractions"])
    rows = [("device", f"{report['device']} ({report['board']}), packing: {report['packing']}"),
            ("images", f"{report['images']} in batches of {report['batch']}"),
            ("match golden", f"{report['images'] - report['mismatched_images']} of {report['images']} (class differs "
                             f"{report['classes_differ']}, exit differs {report['exit_indices_differ']})"),
            ("accuracy", f"{report['accuracy']:.4f} (golden {report['golden_accuracy']:.4f})"),
            ("exit fractions", f"{exits} (last: the final classifier)"),
            ("images/s", f"{report['images_per_second']:,.1f} in transfers, "
                         f"{report['images_per_second_end_to_end']:,.1f} end to end")]
    if report.get("simulated_images_per_second"):
        rows.append(("simulated", f"{report['simulated_cycles']:,} cycles = {report['simulated_images_per_second']:,.1f} "
                                  f"images/s at {report['clock_mhz']:g} MHz"))
    return "\n".join(f"{k:15s} {v}" for k, v in rows)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="board-test", description="Check a device against a deploy package's "
                                                                "golden class and exit index, image by image.")
    p.add_argument("package", type=Path, help="the deploy package folder (the run folder's package/)")
    p.add_argument("--backend", choices=DEVICES, default="pynq",
                   help="pynq on the board; virtual or rtl on a host (not the torch device of btsee run)")
    p.add_argument("--device", dest="backend", choices=DEVICES, help=argparse.SUPPRESS)  # its name before 2026-12
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="images per DMA transfer (default %(default)s)")
    p.add_argument("--images", type=int, help="test only the first N of the package's images")
    p.add_argument("--json", type=Path, help=f"report file (default: {REPORT_FOLDER}/DEVICE.json beside the package)")
    p.add_argument("--build", type=Path, help="rtl device: folder of the compiled simulation, reused when the sources "
                                              f"are the same (default: {REPORT_FOLDER}/rtl_build beside the package)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    folder = args.package.resolve().parent / REPORT_FOLDER
    options = {"build": args.build or folder / "rtl_build"} if args.backend == "rtl" else {}
    try:
        report = board_test(args.package, args.backend, args.batch, args.images, **options)
    except BtseeError as e:
        if os.environ.get("BTSEE_DEBUG", "") not in ("", "0"):
            traceback.print_exc()
        print(f"board-test: error: {e}", file=sys.stderr)
        return 1
    out = args.json or folder / f"{args.backend}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, report)
    print(format_table(report))
    print(f"report: {out}")
    if report["mismatched_images"]:
        print(f"board-test: {report['mismatched_images']} images differ from the golden outputs, first "
              f"{report['first_mismatched']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

