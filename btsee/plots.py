"""PNG plots of the run folder (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from qat.atomic import atomic_write  # noqa: E402


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
    b.plot(epochs, [h["val_accuracy"] for h in history], marker="o", label="validation")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy")
    b.legend()
    for ax in (a, b):
        ax.grid(alpha=0.3)
    return _save(fig, path)
