"""PNG plots of the run folder (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from calib.atomic import atomic_write  # noqa: E402


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def sample_grid(images: np.ndarray, labels: np.ndarray, classes: list[str], path: Path,
                per_class: int = 8) -> Path:
    """A grid of `per_class` training images for each class; images (N, C, H, W) uint8."""
    k = len(classes)
    fig, axes = plt.subplots(k, per_class, figsize=(per_class * 0.9, k * 0.95))
    axes = np.asarray(axes).reshape(k, per_class)
    for c in range(k):
        idx = np.flatnonzero(labels == c)[:per_class]
        for j in range(per_class):
            ax = axes[c, j]
            ax.axis("off")
            if j < len(idx):
                img = images[idx[j]]
                ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0),
                          cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=255)
        axes[c, 0].set_title(classes[c], fontsize=7, loc="left")
    return _save(fig, path)


def training_curves(history: list[dict], path: Path) -> Path:
    """Loss and train/validation accuracy per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(epochs, [h["train_loss"] for h in history], marker="o")
    a.set_xlabel("epoch")
    a.set_ylabel("training loss")
    b.plot(epochs, [h["train_accuracy"] for h in history], marker="o", label="train")
    from qat.train import VAL_MONITOR_IMAGES

    b.plot(epochs, [h["val_accuracy"] for h in history], marker="o",
           label=f"validation (first {VAL_MONITOR_IMAGES:,})")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy")
    b.legend()
    for ax in (a, b):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def exits_by_class(fractions: np.ndarray, points: list[str], classes: list[str], path: Path) -> Path:
    """Stacked bars: for each true class, the share of test samples leaving at each exit.

    fractions (K+1, C): rows are exits in order, the last row the final classifier."""
    k1, c = fractions.shape
    fig, ax = plt.subplots(figsize=(max(6, c * 0.7), 3.6))
    bottom = np.zeros(c)
    labels = [f"exit {i + 1} ({p})" for i, p in enumerate(points)] + ["final classifier"]
    for i in range(k1):
        ax.bar(np.arange(c), fractions[i], bottom=bottom, label=labels[i])
        bottom += fractions[i]
    ax.set_xticks(np.arange(c), classes, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("share of test samples")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_title("where each class leaves the network")
    return _save(fig, path)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, accuracy) points no other point beats on both axes (at most as costly and
    at least as accurate, one strictly), sorted by cost; duplicates are kept once."""
    front: list[tuple[float, float]] = []
    for cost, acc in sorted(set(points), key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((cost, acc))
    return front


def sweep_pareto(rows: list[dict], backbone_test: float, path: Path) -> Path:
    """Test accuracy against MAC fraction for every sweep row, one colour per method, with
    each method's Pareto front as a step line."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    style = {"bts": ("tab:blue", "o"), "joint": ("tab:orange", "s"), "global": ("tab:green", "^"),
             "oracle": ("tab:gray", "x"), "bts-soft": ("tab:purple", "D"),
             "bts-distill": ("tab:red", "v"), "bts-labels": ("tab:brown", "P")}
    for method, (color, marker) in style.items():
        pts = [(r["test_mac_fraction"], r["test_accuracy"]) for r in rows if r["method"] == method]
        if pts:
            x, y = zip(*pts)
            ax.scatter(x, np.asarray(y) * 100, s=16, c=color, marker=marker, label=method, alpha=0.5)
            fx, fy = zip(*pareto_front(pts))
            ax.step(fx, np.asarray(fy) * 100, where="post", color=color, lw=1.2)
    for drop, ls in ((1, "--"), (2, ":")):
        ax.axhline((backbone_test * 100) - drop, color="k", ls=ls, lw=0.8, label=f"backbone - {drop} pt")
    ax.axhline(backbone_test * 100, color="k", lw=1.0, label="backbone")
    ax.set_xlabel("expected MACs / backbone MACs (test)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(max(0, backbone_test * 100 - 8), min(100, backbone_test * 100 + 5))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("early exits: accuracy against compute (lines: each method's Pareto front)")
    return _save(fig, path)


def resources_by_segment(per_segment: dict[str, dict], board_lut: int | None, path: Path) -> Path:
    """LUTs and cycles per frame of each segment (FINN estimates), in execution order."""
    names = list(per_segment)
    lut = [per_segment[n]["LUT"] for n in names]
    cycles = [per_segment[n]["cycles_per_frame"] for n in names]
    colors = ["tab:blue" if n.startswith("backbone") else "tab:orange" for n in names]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    a.bar(names, lut, color=colors)
    a.set_ylabel("LUT (FINN estimate)")
    title = f"total {sum(lut):,.0f} LUT" + (f" of {board_lut:,}" if board_lut else "")
    a.set_title(title, fontsize=9)
    b.bar(names, cycles, color=colors)
    b.set_ylabel("cycles per frame")
    b.set_title("blue: backbone segments, orange: exit heads", fontsize=9)
    for ax in (a, b):
        ax.tick_params(axis="x", rotation=45, labelsize=8)
    fig.tight_layout()
    return _save(fig, path)


def synthesized_resources(per_segment: dict[str, dict], board_lut: int | None, path: Path,
                          glue: dict | None = None, design_cycles: float | None = None) -> Path:
    """Per segment, in execution order: LUTs from Yosys synthesis (logic + LUTRAM, stacked)
    beside FINN's estimate, and cycles per frame measured in the RTL simulation beside
    FINN's estimate. `per_segment[name]` has LUT, LUTRAM, finn_estimate.LUT,
    cycles_per_frame.rtl and cycles_per_frame.finn_estimate. `glue` (LUT, LUTRAM) adds the
    exit glue's bar; `design_cycles` the whole design's measured cycles per image."""
    names = list(per_segment)
    bars = names + (["exit glue"] if glue else [])
    x = np.arange(len(bars))
    parts = [per_segment[n] for n in names] + ([glue] if glue else [])
    lut = np.array([p["LUT"] for p in parts], float)
    lutram = np.array([p["LUTRAM"] for p in parts], float)
    finn = np.array([per_segment[n]["finn_estimate"]["LUT"] for n in names] + ([0.0] if glue else []), float)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.4))
    a.bar(x - 0.2, lut, 0.4, color="tab:blue", label="synthesized: logic LUT")
    a.bar(x - 0.2, lutram, 0.4, bottom=lut, color="tab:cyan", label="synthesized: LUTRAM")
    a.bar(x + 0.2, finn, 0.4, color="tab:gray", label="FINN estimate")
    a.set_ylabel("LUT")
    total = lut.sum() + lutram.sum()
    a.set_title(f"Yosys synth_xilinx: {total:,.0f} LUT" + (f" of {board_lut:,}" if board_lut else "")
                + f" (FINN estimated {finn.sum():,.0f})", fontsize=9)
    a.legend(fontsize=7)
    a.set_xticks(x, bars)
    xs = np.arange(len(names))
    rtl = [per_segment[n]["cycles_per_frame"]["rtl"] for n in names]
    est = [per_segment[n]["cycles_per_frame"]["finn_estimate"] for n in names]
    b.bar(xs - 0.2, rtl, 0.4, color="tab:green", label="RTL simulation (Verilator)")
    b.bar(xs + 0.2, est, 0.4, color="tab:gray", label="FINN estimate")
    if design_cycles:
        b.axhline(design_cycles, color="tab:red", linestyle="--",
                  label=f"whole multi-exit design: {design_cycles:,.0f} per image")
    b.set_ylabel("cycles per frame")
    b.set_ylim(0, 1.3 * max([*rtl, *est, design_cycles or 0]))  # room for the legend above the bars
    b.legend(fontsize=7, loc="upper left")
    b.set_xticks(xs, names)
    for ax in (a, b):
        ax.tick_params(axis="x", rotation=45, labelsize=8)
    fig.tight_layout()
    return _save(fig, path)


def throughput_vs_luts(result, budget: float, board_lut: int, chosen, no_exit, path: Path) -> Path:
    """Sustained images/s against modelled LUTs: the early-exit and no-exit fronts of the
    folding search (`hw.fold.search.SearchResult`), the LUT budget and the board's LUTs, the
    chosen designs circled."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for designs, label, color in ((result.no_exit, "no exit (backbone only)", "tab:blue"),
                                  (result.early_exit, "early exit (exit-aware folding)", "tab:orange")):
        if designs:
            ax.step([d.resources["LUT"] for d in designs], [d.fps for d in designs], where="post", marker=".",
                    color=color, label=label)
    for d, color in ((chosen, "tab:orange"), (no_exit, "tab:blue")):
        if d is not None:
            ax.plot([d.resources["LUT"]], [d.fps], "o", mfc="none", ms=11, color=color)
    ax.axvline(budget, color="gray", ls="--", lw=1, label=f"budget {budget:,.0f} LUT")
    ax.axvline(board_lut, color="black", lw=1, label=f"board {board_lut:,} LUT")
    ax.set_xlabel("LUT + LUTRAM (modelled from synthesis)")
    ax.set_ylabel("sustained images/s")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def ratio_by_budget(rows: list[dict], default_budget: int, board_lut: int, path: Path) -> Path:
    """bench_folding's curve: left, images/s of the early-exit design and of the no-exit
    design at equal resources against the LUT budget, measured in RTL (filled) and modelled
    (open); right, their ratio, measured and modelled, with 1.0 marked."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    xs = [r["budget_lut_modelled"] for r in rows]
    ee = [r["early_exit"]["images_per_second_rtl"] for r in rows]
    ne = [(d := r["no_exit_equal_resources"]) and max(d["images_per_second_rtl"],
                                                       d.get("images_per_second_segments_alone", 0.0)) for r in rows]
    a.plot(xs, ee, "o-", color="tab:orange", label="early exit, RTL")
    a.plot(xs, [r["early_exit"]["model"]["fps"] for r in rows], "o--", mfc="none", color="tab:orange",
           label="early exit, model")
    a.plot([x for x, v in zip(xs, ne) if v], [v for v in ne if v], "s-", color="tab:blue",
           label="no exit at equal LUT, DSP, BRAM18, RTL")
    a.set_xlabel("LUT budget (modelled LUT + LUTRAM)")
    a.set_ylabel("sustained images/s")
    b.plot([x for x, r in zip(xs, rows) if r["ratio_rtl"]], [r["ratio_rtl"] for r in rows if r["ratio_rtl"]], "o-",
           color="tab:green", label="measured (RTL, synthesized)")
    b.plot([x for x, r in zip(xs, rows) if r["ratio_model"]], [r["ratio_model"] for r in rows if r["ratio_model"]],
           "o--", mfc="none", color="tab:green", label="model (fold step)")
    b.axhline(1.0, color="gray", lw=1)
    b.set_xlabel("LUT budget (modelled LUT + LUTRAM)")
    b.set_ylabel("early exit / no exit")
    for ax in (a, b):
        ax.axvline(default_budget, color="gray", ls="--", lw=1, label=f"default budget {default_budget:,}")
        ax.axvline(board_lut, color="black", lw=1, label=f"board {board_lut:,}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
