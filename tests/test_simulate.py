"""The dataflow and simulate steps: HW-layer graphs, the golden simulator, the bit-exactness
chain golden = qonnx = FINN, and the errors on bad input."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper

from btsee.config import load_config
from btsee.run_folder import load_golden, load_logits, read_splits
from calib.schema import sha256_of
from calib.rules import decide
from calib.thresholds import integer_threshold
from hw.finn.convert import (DataflowError, check_hw_only, convert_to_hw, is_hw, load_qonnx, qonnx_to_finn,
                             streamline)
from hw.golden import GoldenError, _thresholds_fn, compile_segment
from hw.verify.chain import cascade_of, qonnx_decisions, run_reference, segments_from_manifest

CHAIN_IMAGES = 64


def split_pixels(run, n=None):
    cfg = load_config(run / "config.json")
    test = read_splits(run, cfg.data).test
    return (test.images, test.labels) if n is None else (test.images[:n], test.labels[:n])


def test_dataflow_step_maps_every_compute_node_to_hw_layers(tiny_run):
    manifest = json.loads((tiny_run / "dataflow" / "manifest.json").read_text())
    assert [s["name"] for s in manifest["segments"]][:2] == ["backbone_0", "head_0"]
    for seg in manifest["segments"]:
        model = ModelWrapper(str(tiny_run / seg["hw_file"]))
        check_hw_only(model, seg["hw_file"])
        software = [n.op_type for n in model.graph.node if not is_hw(n)]
        assert set(software) <= {"Transpose", "Mul"} and software.count("Mul") == 1, software
        assert {"MVAU"} <= set(seg["nodes"])
        layers = {n.name: n for n in model.graph.node}
        for c in seg["threshold_corrections"]:  # FINN's float32 thresholds, made exact: the graph has them
            node = layers[c["layer"]]
            table = model.get_initializer(node.input[2] if node.op_type == "MVAU" else node.input[1])
            assert c["exact"] != c["finn"] and table[c["channel"], c["code"] - 1] == c["exact"]
        assert seg["estimate"]["lut"] > 0 and seg["estimate"]["cycles_per_frame"] > 0
        assert (tiny_run / seg["estimate"]["report_dir"] / "estimate_layer_resources.json").is_file()
    res = json.loads((tiny_run / "report.json").read_text())["resources"]  # the synth step's, FINN's beside
    per = res["per_segment"]
    assert set(per) == {s["name"] for s in manifest["segments"]}
    folded = json.loads((tiny_run / "fold" / "manifest.json").read_text())  # what rtl and synth built
    for k in ("LUT", "BRAM18", "DSP"):
        assert res["finn_estimate"][k] == pytest.approx(sum(s["estimate"][k.lower()] for s in folded["segments"]))
        assert res[k] == sum(s[k] for s in per.values()) + res["exit_glue"][k]  # the segments and the glue
    assert all(s["cycles_per_frame"]["finn_estimate"] > 0 for s in per.values())


def test_simulate_step_reports_an_exact_chain_and_the_evaluated_numbers(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    chain = report["bit_exact"]
    assert chain["images"] >= CHAIN_IMAGES
    for link in ("golden_vs_qonnx", "golden_vs_finn"):
        assert chain[link]["mismatching_images"] == 0, chain[link]["first_mismatches"]
        assert chain[link]["prediction_mismatches"] == 0
        assert chain[link]["exit_index_mismatches"] == 0
    assert chain["mismatches"] == 0
    golden = report["golden"]
    assert golden["equal_to_evaluate"] == {"accuracy": True, "mac_fraction": True, "exit_fraction": True}
    assert golden["accuracy"] == report["accuracy"]["early_exit"]
    assert golden["mac_fraction"] == report["mac_fraction"]
    agreement = report["brevitas_agreement"]
    assert agreement["images"] == golden["images"] == 256
    assert agreement["agreeing"] + len(agreement["mismatches"]) >= agreement["images"] - 20


def test_golden_equals_qonnx_and_finn_image_by_image(tiny_run):
    cascade, artifact = load_golden(tiny_run)
    pixels, _ = split_pixels(tiny_run, CHAIN_IMAGES)
    golden = cascade.segment_outputs(pixels)
    manifest = json.loads((tiny_run / "dataflow" / "manifest.json").read_text())
    segments = segments_from_manifest(tiny_run, manifest)
    heads = [s.name for s in segments if s.kind == "head"]
    deployed = cascade.run(pixels)
    for engine in ("qonnx", "finn"):
        ref = run_reference(segments, pixels, engine)
        for seg in segments:
            assert ref[seg.name].dtype == np.int64
            assert np.array_equal(golden[seg.name], ref[seg.name]), (engine, seg.name)
        decisions = [qonnx_decisions(ref[h], t, cascade.score) for h, t in zip(heads, cascade.thresholds)]
        for h, t, d in zip(heads, cascade.thresholds, decisions):
            assert np.array_equal(d, decide(golden[h], t, cascade.score))
        classes, exit_index = cascade_of(decisions, ref[segments[-1].name])
        assert np.array_equal(classes, deployed.classes)
        assert np.array_equal(exit_index, deployed.exit_index)


def test_golden_logits_are_the_brevitas_integers(tiny_run):
    cascade, _ = load_golden(tiny_run)
    pixels, _ = split_pixels(tiny_run)
    golden = cascade.segment_outputs(pixels)
    brevitas = load_logits(tiny_run, "test")
    same = np.ones(len(pixels), bool)
    for head, z in zip(cascade.heads, brevitas.heads):
        same &= (golden[head.name] == z).all(axis=1)
    same &= (golden[cascade.backbone[-1].name] == brevitas.final).all(axis=1)
    report = json.loads((tiny_run / "report.json").read_text())
    assert int(same.sum()) == report["brevitas_agreement"]["agreeing"]
    assert same.mean() >= 0.99


def test_exited_images_skip_the_later_segments(tiny_run):
    cascade, _ = load_golden(tiny_run)
    pixels, _ = split_pixels(tiny_run)
    cascade.workers = 1
    one = cascade.run(pixels)
    everything = cascade.run(pixels, exits=False)
    assert np.array_equal(one.classes, everything.classes)
    assert np.array_equal(one.exit_index, everything.exit_index)
    assert 0 < (one.exit_index < len(cascade.heads)).sum() < len(pixels)  # some exit, some do not
    for i, reached in enumerate(one.reached[1:], start=1):
        assert np.array_equal(reached, one.exit_index >= i)  # exited images never enter segment i
    for i, (z, reached) in enumerate(zip(one.head_logits, one.reached)):
        assert np.array_equal(z[reached], everything.head_logits[i][reached])
    cascade.workers, cascade.chunk = 2, 50  # threads over chunks change nothing
    threaded = cascade.run(pixels)
    assert np.array_equal(threaded.classes, one.classes)
    assert np.array_equal(threaded.exit_index, one.exit_index)
    assert all(np.array_equal(a, b) for a, b in zip(threaded.head_logits, one.head_logits))


def test_thresholds_are_integers_of_the_heads_logit_domain(tiny_run):
    doc = json.loads((tiny_run / "calibrate" / "thresholds.json").read_text())
    assert doc["format"] == "btsee-exit-thresholds/1" and len(doc["model_sha256"]) == 64
    for e in doc["exits"]:
        assert e["score"] == "margin" and e["scale"] > 0
        for t, f in zip(e["thresholds"], e["float_thresholds"]):
            assert (t is None) == (f is None)
            if t is not None:
                assert type(t) is int and f == t * e["scale"]
                assert integer_threshold(f, e["scale"]) == t  # the least m with m * scale >= f


def test_global_policy_thresholds_convert_exactly(tiny_run_copy, tmp_path):
    from conftest import TINY_CONFIG, btsee, write_config

    values = json.loads(json.dumps(TINY_CONFIG))
    values["calibration"].update(policy="global", score="margin", global_threshold=1.3)
    cfg = write_config(tmp_path / "global.json", values)
    btsee("run", str(cfg), "--out", str(tiny_run_copy), "--from", "calibrate", "--to", "evaluate")
    doc = json.loads((tiny_run_copy / "calibrate" / "thresholds.json").read_text())
    for e in doc["exits"]:
        assert e["thresholds"] == [integer_threshold(1.3, e["scale"])] * len(e["thresholds"])
    r = btsee("simulate", str(tiny_run_copy))
    report = json.loads((tiny_run_copy / "report.json").read_text())
    assert json.loads(r.stdout)["accuracy"] == report["accuracy"]["early_exit"]


def test_btsee_simulate_command(tiny_run, tmp_path):
    from conftest import btsee

    r = btsee("simulate", str(tiny_run), "--save", str(tmp_path / "sim.npz"))
    out = json.loads(r.stdout)
    report = json.loads((tiny_run / "report.json").read_text())
    assert out["images"] == 256
    assert out["accuracy"] == report["golden"]["accuracy"]
    assert out["mac_fraction"] == report["golden"]["mac_fraction"]
    with np.load(tmp_path / "sim.npz") as z:
        assert z["classes"].shape == (256,) and z["exit_index"].max() <= 3
        assert z["head0_logits"].shape == (256, 10) and z["head0_reached"].all()
    pixels, _ = split_pixels(tiny_run, 10)
    np.save(tmp_path / "ten.npy", pixels)
    r = btsee("simulate", str(tiny_run), "--images", str(tmp_path / "ten.npy"))
    assert json.loads(r.stdout)["images"] == 10
    np.save(tmp_path / "bad.npy", pixels[:, :, :28, :28])
    r = btsee("simulate", str(tiny_run), "--images", str(tmp_path / "bad.npy"), check=False)
    assert r.returncode == 1 and "bad.npy" in r.stderr and "Traceback" not in r.stderr


def test_thresholds_of_another_model_are_refused(tiny_run, tmp_path):
    from conftest import btsee

    doc = json.loads((tiny_run / "calibrate" / "thresholds.json").read_text())
    doc["model_sha256"] = "0" * 64
    other = tmp_path / "other_thresholds.json"
    other.write_text(json.dumps(doc))
    r = btsee("simulate", str(tiny_run), "--thresholds", str(other), check=False)
    assert r.returncode == 1
    assert str(other) in r.stderr and "model_sha256" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("damage", ["truncated", "not_qonnx"])
def test_a_bad_onnx_file_is_named(tiny_run_copy, tmp_path, damage):
    from conftest import TINY_CONFIG, btsee, write_config

    path = tiny_run_copy / "export" / "head_1.onnx"
    if damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        expect = "truncated"
    else:  # a valid ONNX model without any quantization node
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "plain",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
        onnx.save(helper.make_model(graph), str(path))
        expect = "not a QONNX graph"
    # the manifest pins each graph's SHA-256 (tests/test_faults.py damages graphs under it);
    # here it is re-pinned, so that the graph loader's own checks are what refuse the file
    manifest_path = tiny_run_copy / "export" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for seg in manifest["segments"]:
        if seg["file"] == "export/head_1.onnx":
            seg["sha256"] = sha256_of(path)
    manifest_path.write_text(json.dumps(manifest))
    cfg = write_config(tmp_path / "tiny.json", TINY_CONFIG)
    r = btsee("run", str(cfg), "--out", str(tiny_run_copy), "--from", "dataflow", "--to", "dataflow",
              check=False)
    assert r.returncode == 1
    assert str(path) in r.stderr and expect in r.stderr and "Traceback" not in r.stderr


def test_an_op_without_hw_layer_is_named(tiny_run, tmp_path):
    model = ModelWrapper(str(tiny_run / "export" / "head_0.onnx"))
    out = model.graph.output[0]
    model.graph.node.append(helper.make_node("Softmax", [out.name], ["probs"], axis=-1, name="Softmax_exit"))
    model.graph.output.remove(out)
    model.graph.output.append(helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10]))
    path = tmp_path / "softmax.onnx"
    model.save(str(path))
    hw = convert_to_hw(streamline(qonnx_to_finn(load_qonnx(path, "UINT4"), "UINT4"), "UINT4"), "UINT4")
    with pytest.raises(DataflowError, match=r"softmax.onnx: nodes? .*\(Softmax\).* no FINN HW layer"):
        check_hw_only(hw, str(path))


def test_golden_refuses_a_layer_it_does_not_model(tiny_run):
    manifest = json.loads((tiny_run / "dataflow" / "manifest.json").read_text())
    name = next(s["name"] for s in manifest["segments"] if "Pool" in s["nodes"])  # a backbone's 2x2 max pool
    model = ModelWrapper(str(tiny_run / "dataflow" / f"{name}.onnx"))
    pool = next(n for n in model.graph.node if n.op_type == "Pool")
    for a in pool.attribute:
        if a.name == "Function":
            a.s = b"AvgPool"
    # break the window+pool fusion too: the pool is then compiled on its own
    window = model.find_producer(pool.input[0])
    for a in window.attribute:
        if a.name == "depthwise":
            a.i = 0
    with pytest.raises(GoldenError, match=rf"{pool.name}.*AvgPool"):
        compile_segment(model, name)


def test_exact_qonnx_execution_rounds_like_real_arithmetic():
    """3 x c is just above 2.5 in exact arithmetic, exactly 2.5 in float32: qonnx's float32
    execution rounds the Quant to 2 (half to even), the float64 reference to 3."""
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    from hw.verify.exact_qonnx import widen_to_float64

    c = np.float32(0.8333334)
    assert Fraction(float(c)) * 3 > Fraction(5, 2) and np.float32(3) * c == np.float32(2.5)
    inits = [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in
             (("c", float(c)), ("scale", 1.0), ("zero", 0.0), ("bits", 8.0))]
    nodes = [helper.make_node("Mul", ["x", "c"], ["y"]),
             helper.make_node("Quant", ["y", "scale", "zero", "bits"], ["q"], domain="qonnx.custom_op.general",
                              signed=0, narrow=0, rounding_mode="ROUND")]
    graph = helper.make_graph(nodes, "boundary", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
                              [helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 1])], inits)
    model = ModelWrapper(qonnx_make_model(graph)).transform(InferShapes())
    x = np.full((1, 1), 3.0)
    assert execute_onnx(model, {"x": x.astype(np.float32)})["q"].item() == 2.0
    wide = widen_to_float64(model)
    assert execute_onnx(wide, {"x": x})["q"].item() == 3.0


def test_softmax_scores_have_no_hardware_form(tiny_run_copy, tmp_path):
    """Calibrating and evaluating on max-softmax scores works; the simulate step is refused
    when the config is loaded, and `btsee simulate` refuses the float thresholds."""
    from conftest import TINY_CONFIG, btsee, write_config

    values = json.loads(json.dumps(TINY_CONFIG))
    values["calibration"].update(score="softmax")
    cfg = write_config(tmp_path / "softmax.json", values)
    r = btsee("run", str(cfg), "--out", str(tiny_run_copy), "--from", "calibrate", check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "step 'simulate' cannot run" in r.stderr and "calibration.score 'softmax'" in r.stderr
    btsee("run", str(cfg), "--out", str(tiny_run_copy), "--from", "calibrate", "--to", "evaluate")
    report = json.loads((tiny_run_copy / "report.json").read_text())
    assert report["calibration"]["integer_thresholds"] is False  # evaluate ran on the float scores
    r = btsee("simulate", str(tiny_run_copy), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "exits[0].thresholds: no integer thresholds (score 'softmax')" in r.stderr


def test_threshold_lookup_is_exact_beyond_float32_integers():
    """A constructed layer whose lookup table (300 channels x a 60,001-value span, 18 M
    entries) is larger than float32 counts exactly (2**24): every code equals the count of
    thresholds reached, computed directly, on values on and next to every threshold."""
    rng = np.random.default_rng(0)
    channels, steps, span = 300, 15, 60_000
    base = rng.integers(-span // 2, 0, channels)  # (C,)
    thresholds = np.sort(base[:, None] + rng.integers(0, span, (channels, steps)), axis=1)  # (C, T)
    assert channels * (thresholds.max() - thresholds.min() + 2) > 2 ** 24
    pick = rng.integers(0, steps, (2000, channels))  # (N, C)
    x = thresholds[np.arange(channels), pick] + rng.integers(-1, 2, (2000, channels))  # (N, C)
    want = (x[:, :, None] >= thresholds[None]).sum(axis=2) + 3  # (N, C), ActVal 3
    got = _thresholds_fn(thresholds.astype(np.int64), 3, "constructed")(x.astype(np.float32))
    assert np.array_equal(got.astype(np.int64), want)


def test_golden_cascade_equals_a_per_image_reference(tiny_run):
    """The golden simulator's classes and exit indices equal a plain loop over images that
    applies the rules as written (tests/test_exit_decision.py) to its own integer logits."""
    from test_exit_decision import reference_decision

    cascade, artifact = load_golden(tiny_run)
    pixels, _ = split_pixels(tiny_run)
    full = cascade.run(pixels, exits=False)  # every head's logits on every image
    deployed = cascade.run(pixels)
    for n in range(len(pixels)):
        want = None
        for j, (z, t) in enumerate(zip(full.head_logits, cascade.thresholds)):
            cls, leaves, _ = reference_decision(z[n].tolist(), t, cascade.score)
            if leaves:
                want = (cls, j)
                break
        if want is None:
            row = full.final_logits[n].tolist()
            want = (row.index(max(row)), len(cascade.heads))
        assert (int(deployed.classes[n]), int(deployed.exit_index[n])) == want, n
    assert 0 < (deployed.exit_index < len(cascade.heads)).sum() < len(pixels)


def test_the_bench_chain_check_runs_the_images_it_is_given(tiny_run):
    """`chain_check` (make bench's golden = qonnx = FINN beyond the demo's chain_images): on
    the first images it is given, or on all of them, with the simulate step's keys."""
    from btsee.flow import Context
    from btsee.steps.simulate import chain_check

    from dataclasses import replace

    from btsee.steps.common import load_splits

    ctx = Context(load_config(tiny_run / "config.json"), tiny_run, env=None)
    few = chain_check(ctx, 6)
    assert few["images"] == few["golden_vs_finn"]["images"] == few["golden_vs_qonnx"]["images"] == 6
    assert few["mismatches"] == 0
    # "all of them" on a test split cut to 10 images (qonnx's execution of the whole split
    # would take most of a minute of make test)
    splits = load_splits(ctx)
    ctx.cache["splits"] = replace(splits, test=replace(splits.test, images=splits.test.images[:10],
                                                       labels=splits.test.labels[:10]))
    every = chain_check(ctx, None)
    assert every["golden_vs_finn"]["images"] == every["golden_vs_qonnx"]["images"] == 10
    assert every["mismatches"] == 0
