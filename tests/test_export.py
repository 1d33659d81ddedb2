"""The export step: one QONNX graph per segment and head, equal to Brevitas on integers."""
from __future__ import annotations

import json

import onnx

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper


def test_export_writes_typed_graphs_equal_to_brevitas(tiny_run):
    manifest = json.loads((tiny_run / "export" / "manifest.json").read_text())
    names = [s["name"] for s in manifest["segments"]]
    assert names == ["backbone_0", "head_0", "backbone_1", "head_1", "backbone_2", "head_2",
                     "backbone_final"]
    for seg in manifest["segments"]:
        path = tiny_run / seg["file"]
        onnx.checker.check_model(onnx.load(str(path)))
        model = ModelWrapper(str(path))
        assert model.get_tensor_datatype(model.graph.input[0].name) == DataType[seg["input_type"]]
    check = manifest["qonnx_vs_brevitas"]
    assert check["checked"] == 64
    assert check["mismatches"] == 0, check["per_segment"]
    report = json.loads((tiny_run / "report.json").read_text())
    assert report["export"]["qonnx_vs_brevitas"] == {"checked": 64, "mismatches": 0}
