"""docs/hardware.md's ResNet-8 table, rendered from bench/results/resnet8.json
(bench/bench_resnet8.py); bench/readme_figures.py merges RENDER into its own."""
from __future__ import annotations


def _count(value) -> str:
    return "—" if value is None else f"{value:,}"


def render_resnet8(doc: dict) -> str:
    """Our ResNet-8 designs beside the published ones: images/s, clock, resources, accuracy."""
    u, e, n = doc["no_exit_uniform"], doc["early_exit"], doc["no_exit"]
    budget = f"{doc['lut_budget']:,}"
    rows = [
        (f"ours, no exit, every segment folded for {u['target_fps']:,} images/s (the backbone segments of "
         f"that run; slowest: {u['slowest']})", u["images_per_second"], u["clock_mhz"], u, None,
         "Fashion-MNIST, W4A4", "RTL simulation, slowest segment"),
        (f"ours, early exit ({_exits(e, doc['commit'])}), fastest within {budget} modelled LUT", e["images_per_second"],
         e["clock_mhz"], e, e["accuracy"]["early_exit"], "Fashion-MNIST, W4A4",
         f"RTL simulation, whole design, {e['images']:,} test images in order"),
        (f"ours, no exit, fastest within {budget} modelled LUT", n["images_per_second"], n["clock_mhz"], n,
         n["accuracy"]["backbone"], "Fashion-MNIST, W4A4",
         f"RTL simulation, whole design, {n['images']:,} test images in order"),
    ] + [(p["design"], p["images_per_second"], p["clock_mhz"], p, p["accuracy"], p["data"], p["throughput"])
         for p in doc["published"]]
    lines = ["| design | images/s | clock MHz | LUT (+ LUTRAM) | DSP | BRAM18 | accuracy | data | throughput from |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, fps, clock, res, acc, data, source in rows:
        lines.append(f"| {name} | {fps:,.0f} | {_count(clock)} | {_count(res['LUT'])} | {_count(res['DSP'])} | "
                     f"{_count(res['BRAM18'])} | {'—' if acc is None else f'{acc:.3f}'} | {data} | {source} |")
    equal = ("the no-exit design uses no more LUT, DSP or BRAM18 than the early-exit one"
             if doc["no_exit_within_early_exit_resources"] else
             "the no-exit design is not within the early-exit one's resources in every column: compare them above")
    lines += ["", f"Early exit over no exit within {budget} modelled LUT: **{doc['ratio']}x** measured in RTL ({equal}); "
              f"the exits' bound, 1 / MAC fraction, is {doc['bound']}x (MAC fraction {e['mac_fraction']:.3f}). "
              f"Our resources are Yosys's (no place and route), our clock the target, not a met timing. "
              f"Training: {doc['training']['train']['epochs']} epochs on 2 CPU cores, not the config's GPU "
              f"schedule. Measured at {doc['commit']} by `make bench` (`bench/bench_resnet8.py`, "
              f"its runs' step times summed: {doc['step_seconds'] / 60:.0f} minutes on 2 cores).", "",
              _full_counts(doc["full_count_checks"])]
    return "\n".join(lines) + "\n"


def _exits(design: dict, commit: str) -> str:
    """Which exits a design built, by name (by index into the points configured at `commit`
    in results written before the bench recorded the names)."""
    built = design["exits_built"]
    if "exit_points" not in design:
        return f"exits {built} of the points configured at {commit}"
    return "exits after " + ", ".join(design["exit_points"][i] for i in built) if built else "no exit built"


def _full_counts(checks: dict) -> str:
    """One sentence: the full-count RTL checks of each design and what they found."""
    parts = []
    for name, c in checks.items():
        segs = ", ".join(f"{seg} {p['free_running']['mismatched_images']} + {p['stalled']['mismatched_images']}"
                         for seg, p in c["segments"].items())
        whole = c["whole_design"]["stalled"]["mismatched_images"] if c["whole_design"] else "not built"
        parts.append(f"{name.replace('_', ' ')}: {segs} (free-running + stalled); whole design with stalls {whole}")
    first = next(iter(checks.values()))
    return (f"At full counts (`btsee.steps.rtl_checks`), every segment on the first {first['images']:,} test images "
            f"in order, free-running and with {first['stalls_percent']['input']}/{first['stalls_percent']['output']} % "
            f"stalls, and each whole design on them with stalls; mismatched images: " + "; ".join(parts) + ".")


def render_resnet8_summary(doc: dict) -> str:
    """One paragraph for the README: the no-exit ResNet-8 against fpgaConvNet's target, and
    early exit against no exit."""
    u, ref = doc["no_exit_uniform"], doc["published"][0]
    within = all(u[k] <= ref[k] for k in ("LUT", "DSP", "BRAM18"))
    met = "met" if within and u["images_per_second"] >= ref["images_per_second"] else "not met"
    wrong = sum(c["mismatches"] for c in doc["full_count_checks"].values())
    exact = "every segment and whole design equal to golden" if wrong == 0 else f"{wrong} mismatched images"
    return (f"Full-size ResNet-8 (W4A4, Fashion-MNIST; `bench/results/resnet8.json`), {exact}: with no exit, {u['images_per_second']:,.0f} images/s in RTL at {u['clock_mhz']:.0f} MHz "
            f"in {u['LUT']:,} LUT + LUTRAM, {u['DSP']} DSP and {u['BRAM18']} BRAM18 (Yosys). Target: fpgaConvNet's "
            f"{ref['images_per_second']:,} images/s within {ref['LUT']:,} / {ref['DSP']} / {ref['BRAM18']} on the same "
            f"chip ({met}; theirs is CIFAR-10 at {ref['clock_mhz']} MHz, measured on the board). Early exit over no exit "
            f"within {doc['lut_budget']:,} modelled LUT: {doc['ratio']}× (bound {doc['bound']}×).\n")


RENDER = {"resnet8": ("resnet8", render_resnet8), "resnet8_summary": ("resnet8", render_resnet8_summary)}
"""Block name -> (the bench/results JSON it reads, its renderer)."""
