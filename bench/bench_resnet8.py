"""ResNet-8 at full size in hardware (configs/fmnist-resnet8.yaml's model: 16/32/64
channels, W4A4, 8-bit input, exit points after the stem and stages 1 and 2), trained
briefly on this machine's CPU and taken through `rtl` and `synth` three ways, in
runs/bench_resnet8/:

* `uniform`: every segment folded for UNIFORM_FPS. Its backbone segments alone are the
  no-exit ResNet-8 set beside fpgaConvNet's MLPerf Tiny figure on the same chip: images/s
  = the clock over the slowest backbone segment's cycles per frame in RTL simulation,
  resources = their synthesized sum.
* `early_exit` and `no_exit`: the fold step's fastest design within LUT_BUDGET with the
  exits it picks, and with none; each simulated whole, in RTL, on the first RTL_IMAGES
  test images in order, and synthesized.

Then all three at full counts (`btsee.steps.rtl_checks`): every segment on those
RTL_IMAGES free-running and with stalls, and the whole design on them with stalls.

Writes bench/results/resnet8.json; docs/hardware.md renders it (bench/resnet8_figures.py).
Exits 1 on any mismatch against golden.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_default_run import commit_of  # noqa: E402
from bench.trained_runs import REUSED_STEPS, start_from_backbone  # noqa: E402

RUNS = ROOT / "runs" / "bench_resnet8"
OUT = ROOT / "bench" / "results" / "resnet8.json"
BASE_CONFIG = "configs/fmnist-resnet8.yaml"
TRAINING = {"train": {"epochs": 2, "augment": False, "warmup_epochs": 0.0}, "exits": {"epochs": 2}}
"""Two epochs without augmentation (772 s of backbone training on 2 cores); the shipped
config's eight with augmentation are meant for a GPU. The hardware does not depend on how long it trained."""
UNIFORM_FPS = 3200
LUT_BUDGET = 30000
RTL_IMAGES = 1000
DESIGNS = {"early_exit": {"lut_budget": LUT_BUDGET},
           "no_exit": {"lut_budget": LUT_BUDGET, "exits_built": []},
           "uniform": {"folding": "uniform", "target_fps": UNIFORM_FPS}}
"""Run name -> its `hardware` section beyond the shared one; the first run trains, the
others start from its data and backbone."""
PUBLISHED = [
    {"design": "fpgaConvNet, MLPerf Tiny v1.1 closed (mlcommons/tiny_results_v1.1), ZedBoard xc7z020",
     "images_per_second": 2431, "clock_mhz": 143, "LUT": 47000, "DSP": 211, "BRAM18": 186,
     "accuracy": 0.860, "data": "CIFAR-10, INT8", "throughput": "MLPerf harness on the board"},
    {"design": "hls4ml, MLPerf Tiny v1.0 open, PYNQ-Z2", "images_per_second": 131, "clock_mhz": None,
     "LUT": None, "DSP": None, "BRAM18": None, "accuracy": None, "data": "CIFAR-10",
     "throughput": "MLPerf harness on the board"}]
"""Published figures quoted beside ours (BRAM18 = 2 x fpgaConvNet's 93 BRAM36)."""


def config_for(name: str, hardware: dict) -> dict:
    """The shipped ResNet-8 config with TRAINING's changes and `hardware` added."""
    values = yaml.safe_load((ROOT / BASE_CONFIG).read_text())
    values["name"] = f"bench-resnet8-{name}"
    for section, changes in TRAINING.items():
        values[section].update(changes)
    values["hardware"].update(chain_images=200, rtl_images=RTL_IMAGES, **hardware)
    return values


def run(name: str, hardware: dict, first: Path | None) -> Path:
    """runs/bench_resnet8/<name> through synth (steps done before are kept; a later run
    starts from the first one's data and backbone)."""
    folder = RUNS / name
    if first is not None:
        start_from_backbone(folder, first)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder.parent / f"{name}.json"
    cfg.write_text(json.dumps(config_for(name, hardware), indent=1))
    subprocess.run([sys.executable, "-m", "btsee.cli", "run", str(cfg), "--out", str(folder), "--device", "cpu",
                    "--resume", "--to", "synth"], cwd=ROOT, check=True)
    return folder


def _resources(rows: list[dict]) -> dict:
    return {"LUT": sum(r["LUT"] + r["LUTRAM"] for r in rows), "DSP": sum(r["DSP"] for r in rows),
            "BRAM18": sum(r["BRAM18"] for r in rows)}


def backbone_alone(folder: Path) -> dict:
    """The no-exit design made of a run's backbone segments: images/s at the clock over the
    slowest one's RTL cycles per frame, and their synthesized LUT (+ LUTRAM), DSP, BRAM18."""
    report = json.loads((folder / "report.json").read_text())
    manifest = json.loads((folder / "dataflow" / "manifest.json").read_text())
    res = report["resources"]
    backbone = [s["name"] for s in manifest["segments"] if s["kind"] == "backbone"]
    cycles = {n: res["per_segment"][n]["cycles_per_frame"] for n in backbone}
    slowest = max(backbone, key=lambda n: cycles[n]["rtl"])
    return {"segments": cycles, "slowest": slowest, "clock_mhz": res["clock_mhz"],
            "images_per_second": round(res["clock_mhz"] * 1e6 / cycles[slowest]["rtl"], 1),
            **_resources([res["per_segment"][n] for n in backbone])}


def whole_design(folder: Path) -> dict:
    """A run's whole design: its RTL images/s on the test images in order, synthesized
    resources (LUT + LUTRAM, glue included), accuracy, MAC fraction and exits."""
    report = json.loads((folder / "report.json").read_text())
    res, design = report["resources"], report["rtl"]["multi_exit"]
    return {"images_per_second": design["images_per_second"], "images": design["images"],
            "steady_cycles_per_image": design["steady_cycles_per_image"], "clock_mhz": design["clock_mhz"],
            "exit_points": report["exits"]["points"], "exits_built": report["throughput_fps"]["exits_built"],
            "exits_taken": design["exits_taken"],
            "LUT": res["LUT"] + res["LUTRAM"], "DSP": res["DSP"], "BRAM18": res["BRAM18"],
            "accuracy": report["accuracy"], "mac_fraction": report["mac_fraction"],
            "modelled_images_per_second": report["throughput_fps"]["early_exit"],
            "golden_vs_rtl": report["bit_exact"]["golden_vs_rtl"]["mismatches"],
            "golden_vs_rtl_segments": report["bit_exact"]["golden_vs_rtl_segments"]["mismatches"]}


def full_count_checks(folder: Path) -> dict:
    """`rtl_checks` on a run at RTL_IMAGES: per segment and for the whole design, the
    images compared and the mismatched ones in each pass, and the seconds it took."""
    from btsee.config import load_config
    from btsee.flow import Context
    from btsee.steps.rtl_checks import rtl_checks

    t0 = time.time()
    doc = rtl_checks(Context(load_config(folder / "config.json"), folder, env=None), RTL_IMAGES,
                     log=lambda line: print(line, flush=True))
    passes = {name: {label: {k: r[label][k] for k in ("images", "mismatched_images")}
                     for label in ("free_running", "stalled")} for name, r in doc["segments"].items()}
    design = doc["design"] and {"stalled": {k: doc["design"]["stalled"][k] for k in ("images", "mismatched_images")}}
    return {"images": doc["images"], "stalls_percent": doc["stalls_percent"], "mismatches": doc["mismatches"],
            "segments": passes, "whole_design": design, "seconds": round(time.time() - t0, 1)}


def step_seconds(folders: dict[str, Path]) -> float:
    """Seconds the runs' steps took when they ran (steps.json), a later run's copied data
    and backbone steps counted once."""
    total = 0.0
    for k, folder in enumerate(folders.values()):
        state = json.loads((folder / "steps.json").read_text())
        total += sum(v.get("seconds", 0.0) for name, v in state.items() if k == 0 or name not in REUSED_STEPS)
    return round(total, 1)


def main() -> int:
    t0 = time.time()
    folders: dict[str, Path] = {}
    for name, hardware in DESIGNS.items():
        folders[name] = run(name, hardware, next(iter(folders.values()), None))
    from btsee.cli import mismatches_found
    from calib.atomic import atomic_write_json

    early, plain = whole_design(folders["early_exit"]), whole_design(folders["no_exit"])
    at_equal = all(plain[k] <= early[k] for k in ("LUT", "DSP", "BRAM18"))
    checks = {name: full_count_checks(folder) for name, folder in folders.items()}
    doc = {"benchmark": "resnet8", "config": BASE_CONFIG, "training": TRAINING, "commit": commit_of(ROOT),
           "no_exit_uniform": dict(backbone_alone(folders["uniform"]), target_fps=UNIFORM_FPS),
           "lut_budget": LUT_BUDGET, "early_exit": early, "no_exit": plain,
           "ratio": round(early["images_per_second"] / plain["images_per_second"], 3),
           "no_exit_within_early_exit_resources": at_equal,
           "bound": round(1 / early["mac_fraction"], 3), "published": PUBLISHED, "full_count_checks": checks,
           "step_seconds": step_seconds(folders), "seconds": round(time.time() - t0, 1)}
    atomic_write_json(OUT, doc)
    found = {name: m for name, f in folders.items() if (m := mismatches_found(f))}
    found.update({f"{name} (full counts)": c["mismatches"] for name, c in checks.items() if c["mismatches"]})
    print(f"resnet8: {OUT}; no exit at {UNIFORM_FPS} fps folding: {doc['no_exit_uniform']['images_per_second']:,.0f} "
          f"images/s; early exit / no exit within {LUT_BUDGET:,} LUT: {doc['ratio']}x; mismatches: {found or 'none'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
