"""The README's and docs' benchmark figures are those of bench/results/*.json
(bench/readme_figures.py)."""
from __future__ import annotations

import json

from bench import readme_figures


def test_readme_blocks_match_the_json():
    names = [m.group(2) for m in readme_figures.BLOCK.finditer(readme_figures.README.read_text())]
    assert "folding_curve" in names, "the README has no <!-- bench:folding_curve --> block"
    for page in readme_figures.PAGES:
        text = page.read_text()
        assert readme_figures.rewrite(text) == text, f"{page}: figures differ from bench/results: run " \
                                                     "bench/readme_figures.py"


def test_a_changed_figure_is_caught(tmp_path, monkeypatch):
    """Teeth: a README whose table says another ratio than the JSON fails the comparison."""
    for f in readme_figures.RESULTS.glob("*.json"):
        (tmp_path / f.name).write_text(f.read_text())
    doc = json.loads((readme_figures.RESULTS / "folding.json").read_text())
    doc["budgets"][0]["ratio_rtl"] = 99.9
    (tmp_path / "folding.json").write_text(json.dumps(doc))
    text = readme_figures.README.read_text()
    monkeypatch.setattr(readme_figures, "RESULTS", tmp_path)
    assert readme_figures.rewrite(text) != text


def test_the_default_run_snapshot_keeps_its_report_and_the_design_passes(tmp_path):
    from bench.bench_default_run import snapshot

    report = {"bit_exact": {"mismatches": 0}, "accuracy": {"backbone": 0.9}}
    (tmp_path / "rtl").mkdir()
    (tmp_path / "report.json").write_text(json.dumps(report))
    passes = {"free_running": {"images": 1000, "mismatched_images": 0, "first_mismatched": [], "logits": {}},
              "stalled": {"images": 100, "mismatched_images": 2, "input_stall_percent": 25}}
    (tmp_path / "rtl" / "rtl.json").write_text(json.dumps({"multi_exit": dict(passes, compiled=True)}))
    doc = snapshot(tmp_path, "abc1234")
    assert doc["report"] == report and doc["commit"] == "abc1234"
    assert doc["whole_design_passes"] == {"free_running": {"images": 1000, "mismatched_images": 0},
                                          "stalled": {"images": 100, "mismatched_images": 2,
                                                      "input_stall_percent": 25}}
