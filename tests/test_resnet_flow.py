"""ResNet-8 through the whole flow on a user's own image tree, as a new user would bring
it: 6 classes, RGB, 64x64 PNGs (made from Fashion-MNIST images). Residual blocks export,
convert to FINN HW layers (forks, residual adds, padding, the global pool) and run bit
exactly through golden = qonnx = FINN = RTL (every segment and the whole multi-exit design)
on every test image; the run is synthesized and goes on to package."""
from __future__ import annotations

import json

import pytest

from conftest import ROOT, btsee, write_config

HW_OPS_OF_A_RESNET = {"DuplicateStreams", "ElementwiseAdd", "FMPadding", "GlobalAccPool"}


POINTS = ("stem", "stage2")

TREE_CLASSES = ["ankle_boot", "bag", "coat", "dress", "sandal", "trouser"]
TREE_SIDE = 64
TREE_PER_CLASS = 120


def write_rgb_tree(root, fmnist) -> None:
    """root/<class>/<n>.png: TREE_PER_CLASS RGB images of TREE_SIDE x TREE_SIDE for each
    of 6 Fashion-MNIST classes (upscaled, the three channels made different)."""
    import numpy as np
    from PIL import Image

    images, labels = fmnist["train"].images, fmnist["train"].labels  # (N, 1, 28, 28), (N,)
    for label, name in zip((9, 8, 4, 3, 5, 1), TREE_CLASSES):
        (root / name).mkdir(parents=True)
        for i, image in enumerate(images[labels == label][:TREE_PER_CLASS, 0]):
            rgb = np.stack([image, image // 2, 255 - image], -1)  # (28, 28, 3)
            Image.fromarray(rgb).resize((TREE_SIDE, TREE_SIDE), Image.BILINEAR).save(root / name / f"{i:04d}.png")


@pytest.fixture(scope="module")
def resnet8_run(tmp_path_factory, fmnist):
    """A ResNet-8 (4/8/8 channels) run on the 6-class RGB 64x64 tree with exits after the
    stem and after stage 2, every step done but the netlist simulation. So backbone_0 is
    the stem alone and backbone_1 two residual blocks, the first forking the segment's own
    input."""
    from btsee.config import load_config

    load_config(ROOT / "configs" / "fmnist-resnet8.yaml")  # the shipped config loads
    d = tmp_path_factory.mktemp("resnet8")
    write_rgb_tree(d / "tree", fmnist)
    values = {"name": "resnet8-small",
              "data": {"dataset": "imagefolder", "root": str(d / "tree"), "image_size": TREE_SIDE,
                       "val_fraction": 0.2, "test_fraction": 0.2,
                       "limit_train": 256, "limit_val": 128, "limit_test": 128},
              "model": {"name": "resnet8", "channels": [4, 8, 8], "weight_bits": 4, "act_bits": 4},
              "train": {"epochs": 1, "batch_size": 64, "warmup_epochs": 0.0},
              "exits": {"points": list(POINTS), "epochs": 1, "batch_size": 64},
              "calibration": {"min_support": 5},
              # both heads built whatever the fold search would pick for this barely trained net
              "hardware": {"chain_images": None, "exits_built": [0, 1]}}
    cfg = write_config(d / "r8.json", values)
    # every step but netlist (make test's time; the CNV tiny run simulates its netlists)
    btsee("run", str(cfg), "--out", str(d / "run"), "--device", "cpu", "--to", "synth")
    btsee("run", str(cfg), "--out", str(d / "run"), "--device", "cpu", "--from", "bitstream")
    return d / "run", POINTS


def test_resnet8_segments_and_exits(resnet8_run):
    run, points = resnet8_run
    report = json.loads((run / "report.json").read_text())
    assert report["exits"]["points"] == list(points)
    assert report["data"]["shape"] == [3, TREE_SIDE, TREE_SIDE] and report["data"]["classes"] == len(TREE_CLASSES)
    assert list(report["model"]["segment_macs"]) == ["stem", "stage1", "stage2", "stage3", "classifier"]
    assert len(report["exit_fraction"]) == 3
    assert report["package"]["images"] > 0  # the run went through package, with no change to the code


def test_resnet8_maps_to_hw_layers_only(resnet8_run):
    run, _ = resnet8_run
    manifest = json.loads((run / "dataflow" / "manifest.json").read_text())
    ops = set().union(*(seg["nodes"] for seg in manifest["segments"]))
    assert HW_OPS_OF_A_RESNET <= ops
    for seg in manifest["segments"]:  # only boundary Transposes and the output scale stay in software
        assert all(n.endswith(("(Transpose)", "(Mul)")) for n in seg["software"]), seg["software"]
        assert sum(n.endswith("(Mul)") for n in seg["software"]) == 1


def test_resnet8_is_bit_exact_on_every_test_image(resnet8_run):
    run, _ = resnet8_run
    report = json.loads((run / "report.json").read_text())
    exact = report["bit_exact"]
    assert exact["images"] == report["data"]["sizes"]["test"] == 128
    for link in ("golden_vs_qonnx", "golden_vs_finn"):
        assert exact[link]["mismatching_images"] == 0, exact[link]
        assert exact[link]["prediction_mismatches"] == exact[link]["exit_index_mismatches"] == 0
    assert exact["mismatches"] == 0
    assert all(report["golden"]["equal_to_evaluate"].values())
    agreement = report["brevitas_agreement"]
    assert agreement["images"] == 128
    # a Brevitas mismatch is allowed only when the exact float64 execution sides with the golden model
    assert all(m["exact_reference_agrees_with_golden"] for m in agreement["mismatches"])


def test_exact_thresholds_of_a_residual_segment(resnet8_run):
    """The exact recomputation pairs the threshold layer after a residual add with the
    exported activation it implements: a threshold one step off is put back and reported,
    one several steps off means the layers were paired wrongly and is refused."""
    import numpy as np

    from hw.finn.convert import DataflowError, load_hw, load_qonnx
    from hw.finn.exact_thresholds import exact_thresholds

    run, _ = resnet8_run
    manifest = json.loads((run / "dataflow" / "manifest.json").read_text())
    seg = next(s for s in manifest["segments"] if s["name"] == "backbone_1")
    qonnx = load_qonnx(run / seg["file"], seg["input_type"])
    hw = load_hw(run / seg["hw_file"], seg["input_type"])
    after_add = next(n for n in hw.graph.node if n.op_type == "Thresholding"
                     and hw.find_producer(n.input[0]).op_type == "ElementwiseAdd")
    t = hw.get_initializer(after_add.input[1]).copy()  # (1, 15): one row for every channel
    gaps = np.diff(t[0])
    k = int(np.argmax(gaps))  # threshold k can move up by less than this gap and stay ascending
    assert gaps[k] > 5
    for step in (1, 5):
        moved = t.copy()
        moved[0, k] += step
        hw.set_initializer(after_add.input[1], moved)
        if step == 1:
            fixed, corrections = exact_thresholds(qonnx, hw, "backbone_1")
            assert [(c["layer"], c["finn"] - c["exact"]) for c in corrections] == [(after_add.name, 1)]
            assert np.array_equal(fixed.get_initializer(after_add.input[1]), t)
    with pytest.raises(DataflowError, match="more than float32 rounding"):
        exact_thresholds(qonnx, hw, "backbone_1")  # the 5-step move


def test_resnet8_whole_design_in_rtl(resnet8_run):
    """Every segment, the residual ones included (forks, residual adds, the global pool as
    blocks of ours, a FIFO on each shorter branch, a queue at the add's end of each branch
    with layers), is RTL equal to golden, and so is the
    whole multi-exit design on every test image, free-running and with stalls."""
    run, _ = resnet8_run
    report = json.loads((run / "report.json").read_text())
    rtl = json.loads((run / "rtl" / "rtl.json").read_text())
    assert rtl["not_covered"] == {}
    assert {"backbone_0", "backbone_1", "backbone_final", "head_0", "head_1"} == set(rtl["segments"])
    for name, seg in rtl["segments"].items():
        for mode in ("free_running", "stalled"):
            assert seg[mode]["images"] > 0 and seg[mode]["mismatched_images"] == 0, (name, mode)
    ops = {layer["op"] for seg in rtl["segments"].values() for layer in seg["layers"]}
    assert {"DuplicateStreams_hls", "ElementwiseAdd_hls", "GlobalAccPool_hls", "FMPadding_rtl"} <= ops
    forks = [layer for name in ("backbone_0", "backbone_1", "backbone_final")
             for layer in rtl["segments"][name]["layers"] if "skip_fifo" in layer]
    assert len(forks) == 3 and all(layer["skip_fifo"] > 0 for layer in forks)
    adds = [layer for seg in rtl["segments"].values() for layer in seg["layers"] if layer["op"] == "ElementwiseAdd_hls"]
    assert len(adds) == 3 and all(layer.get("join_queues") for layer in adds)  # the convolutions' branch ends in one
    whole = report["bit_exact"]["golden_vs_rtl"]
    assert whole["images"] == 128 and whole["mismatches"] == 0
    for mode, images in (("free_running", 128), ("stalled", 100)):
        assert whole[mode]["mismatched_images"] == 0, whole[mode]
        assert all(head["images"] == images and head["mismatched_images"] == 0
                   for head in whole[mode]["logits"].values()), whole[mode]
    assert report["resources"]["exit_glue"] is not None


def test_skip_fifo_one_row_deep_deadlocks(resnet8_run, tmp_path, monkeypatch):
    """backbone_1 with its skip FIFOs one image row deep, where its two 3x3 convolutions
    take in two rows and more before their first output: the fork waits on the full FIFO,
    the residual add on the convolutions, and the simulation stops as stuck. The computed
    depth (which passed the fixture's runs) is above two rows."""
    import numpy as np
    from qonnx.custom_op.registry import getCustomOp

    from boards import load_board
    from btsee.steps.rtl import compile_segment
    from hw.rtl import segment
    from hw.rtl.skip_fifo import skip_fifo_depths
    from hw.rtl.stream import simulate
    from hw.rtl.tools import RtlToolError

    run, _ = resnet8_run
    computed, rows = {}, []

    def one_row(model, fork) -> dict[str, int]:
        depths = skip_fifo_depths(model, fork)
        _, _, width, folds, _ = getCustomOp(fork).get_folded_output_shape()  # (1, H, W, C/PE, PE)
        rows.append(width * folds)
        computed.update({t: (d, rows[-1]) for t, d in depths.items()})
        return {t: rows[-1] if d else 0 for t, d in depths.items()}

    monkeypatch.setattr(segment, "skip_fifo_depths", one_row)
    board = load_board("pynq-z2")
    rtl = segment.generate_segment("backbone_1", run / "dataflow" / "backbone_1.folded.onnx", tmp_path / "seg",
                                   board.part, board.clock_period_ns)
    assert len(rows) == 2  # stage 1's fork (of the segment's input) and stage 2's
    assert [layer["skip_fifo"] for layer in rtl.layers if "skip_fifo" in layer] == rows
    assert max(depth / row for depth, row in computed.values()) > 2
    binary, _ = compile_segment(rtl, tmp_path / "seg")
    for f in rtl.data_files:
        (tmp_path / "sim").mkdir(exist_ok=True)
        (tmp_path / "sim" / f).write_bytes((rtl.out_dir / "src" / f).read_bytes())
    frame = rtl.input.words_per_frame
    words = np.random.default_rng(0).integers(0, 1 << rtl.input.bits, (2 * frame, rtl.input.elems))
    with pytest.raises(RtlToolError, match=r"no end after \d+ cycles: out0_V 0 of"):
        simulate(binary, tmp_path / "sim", words, rtl.input.bits, 2 * rtl.output.words_per_frame,
                 rtl.output.elems, rtl.output.bits, rtl.output.signed, max_cycles=20 * frame)
