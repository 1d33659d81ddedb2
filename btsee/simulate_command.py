"""`btsee simulate RUN`: the golden simulator of a finished run on its test split or on
the user's images, with the run's or another thresholds artifact of the same model."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from btsee.config import ConfigError, config_from_dict
from btsee.flow import FlowError
from btsee.run_folder import (BACKBONE_FILE, BACKBONE_MACS, DATA_SUMMARY, DATAFLOW_MANIFEST, HEAD_MACS, HEADS_FILE,
                              RUN_CONFIG, SPLIT_FILE, THRESHOLDS_FILE, load_golden, read_costs, read_json,
                              read_splits)
from calib.atomic import atomic_write
from calib.cascade import summarize


INPUTS = (DATAFLOW_MANIFEST, THRESHOLDS_FILE, DATA_SUMMARY, BACKBONE_FILE, HEADS_FILE, RUN_CONFIG, SPLIT_FILE,
          BACKBONE_MACS, HEAD_MACS)
"""The run-folder files `btsee simulate RUN` reads (without --images and --thresholds)."""


def _read_images(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 images (N, *shape) from a .npy file; errors name the file."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise FlowError(f"{path}: not a readable .npy array ({e})") from e
    if x.dtype != np.uint8 or x.shape[1:] != shape:
        raise FlowError(f"{path}: expected uint8 images of shape (N, {', '.join(map(str, shape))}), "
                        f"got {x.dtype} {x.shape}")
    return x


def simulate_command(run: Path, images: Path | None, thresholds: Path | None, limit: int | None,
                     save: Path | None) -> dict:
    """`btsee simulate`: returns the JSON summary it prints. Bad input is a BtseeError
    naming the file (the CLI prints it in one line)."""
    cascade, artifact = load_golden(run, thresholds)
    labels = None
    if images is None:
        config_path = run / RUN_CONFIG
        if not config_path.is_file():
            raise FlowError(f"{config_path} missing: give --images, or rerun `btsee run` on this folder")
        try:
            cfg = config_from_dict(read_json(run, RUN_CONFIG))
        except ConfigError as e:
            raise ConfigError(f"{config_path}: {e}") from e
        test = read_splits(run, cfg.data).test
        pixels, labels = test.images, test.labels
    else:
        pixels = _read_images(images, cascade.backbone[0].input_shape)
    if limit is not None:
        pixels = pixels[:limit]
        labels = labels[:limit] if labels is not None else None
    t0 = time.time()
    res = cascade.run(pixels)
    seconds = time.time() - t0
    out = {"images": len(pixels), "images_per_second": round(len(pixels) / seconds, 1)}
    if labels is not None:  # the evaluate step's summary, on the golden simulator's decisions
        costs = read_costs(run, [e["point"] for e in artifact["exits"]])
        s = summarize(res.exit_index, res.classes, labels, costs, artifact["num_classes"])
        out.update(exit_fraction=s["exit_fraction"], accuracy=s["accuracy"], mac_fraction=s["mac_fraction"])
    else:
        n_exits = len(cascade.heads) + 1
        out["exit_fraction"] = (np.bincount(res.exit_index, minlength=n_exits) / max(1, len(pixels))).tolist()
    if save is not None:
        arrays = {"classes": res.classes, "exit_index": res.exit_index, "final_logits": res.final_logits}
        for i, (z, r) in enumerate(zip(res.head_logits, res.reached)):
            arrays[f"head{i}_logits"], arrays[f"head{i}_reached"] = z, r
        atomic_write(save, lambda tmp: np.savez(tmp.open("wb"), **arrays))
        out["saved"] = str(save)
    return out
