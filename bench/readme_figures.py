"""The README's benchmark figures, rendered from bench/results/*.json, never typed by hand.

Each block of the README (and of docs/*.md) between `<!-- bench:NAME -->` and
`<!-- /bench:NAME -->` is what `render(NAME)` makes of bench/results/NAME.json.
`python bench/readme_figures.py` rewrites those blocks; tests/test_readme_figures.py fails
when a page and the JSON disagree.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fold_designs import SEGMENT_IMAGES  # noqa: E402  (results written before the key was)

RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- bench:(\w+) -->\n)(.*?)(<!-- /bench:\2 -->)", re.S)


def over_board(d: dict, board: dict) -> list[str]:
    """The resources (LUT, DSP, BRAM18) in which the synthesized design `d` exceeds `board`'s."""
    s = d["synthesized"]
    used = {"LUT": d["luts"], "DSP": s["DSP"], "BRAM18": s["BRAM18"]}
    return [k for k, v in used.items() if v > board[k]]


def _res(d: dict | None, board: dict) -> str:
    if not d:
        return "none fits | —"
    s = d["synthesized"]
    fps = max(d["images_per_second_rtl"], d.get("images_per_second_segments_alone", 0.0))
    chain = (f" (chain {d['images_per_second_rtl']:,.0f})" if "images_per_second_segments_alone" in d
             and fps != d["images_per_second_rtl"] else "")
    over = over_board(d, board)
    over = f" (over the board's {', '.join(over)})" if over else ""
    return f"{d['luts']:,} / {s['DSP']} / {s['BRAM18']}{over} | {fps:,.0f}{chain}"


def render_folding(doc: dict) -> str:
    """The ratio across the board: one row per budget, the headline and the targets."""
    head = doc["headline"]
    lines = [f"Measured by `make bench` (`bench/bench_folding.py`) on {doc['board']} at 100 MHz: {doc['comparison']}. "
             f"Resources are Yosys's (LUT + LUTRAM / DSP / BRAM18); images/s from Verilator, test images in order "
             f"(at the default budget the early-exit design runs all {head['test_images']:,}, elsewhere the first "
             f"{doc['curve_images']:,}; the no-exit designs, whose every image takes the same "
             f"cycles, the first {doc['no_exit_images']:,}).", "",
             "| LUT budget | exits built | early exit: LUT / DSP / BRAM18 | images/s | no exit at equal resources: "
             "LUT / DSP / BRAM18 | images/s | ratio (RTL) | ratio (model) |",
             "|---:|:---:|---:|---:|---:|---:|---:|---:|"]
    lines[0] += (" In brackets: the no-exit design's whole chain, whose segments meet without FIFOs in our top "
                 "level, where it is slower than its slowest segment alone (each segment on "
                 f"{doc.get('segment_images', SEGMENT_IMAGES)} images).")
    from boards import load_board

    board = doc.get("board_resources") or load_board(doc["board"]).resources  # results written before the key was
    for r in doc["budgets"]:
        ee = r["early_exit"]
        exits = ", ".join(map(str, ee["exits_built"])) or "none"
        default = " (default)" if r["budget_lut_modelled"] == doc["default_budget_lut"] else ""
        lines.append(f"| {r['budget_lut_modelled']:,}{default} | {exits} | {_res(ee, board)} | "
                     f"{_res(r['no_exit_equal_resources'], board)} | {r['ratio_rtl'] if r['ratio_rtl'] else '—'} | "
                     f"{r['ratio_model'] if r['ratio_model'] else '—'} |")
    lines.append("")
    names = {"ratio_at_default_budget": "ratio at the default budget", "ratio_everywhere": "lowest ratio measured",
             "ratio_from_20000_luts": "lowest ratio from 20,000 LUTs",
             "heads_share_of_luts": "heads' share of the default design's LUTs"}
    for k, t in doc["targets"].items():
        mark = {True: "met", False: "**not met**", None: "not measured"}[t["met"]]
        op = "≤" if k == "heads_share_of_luts" else "≥"
        lines.append(f"- {names[k]}: {t['value']} (target {op} {t['target']}: {mark})")
    over = [f"{r['budget_lut_modelled']:,}" for r in doc["budgets"] if over_board(r["early_exit"], board)]
    if over:
        lines.append(f"- early-exit designs larger than the board once synthesized (the search's LUT and DSP models "
                     f"underestimate): budgets {', '.join(over)}")
    bad = doc["mismatched_images"]
    lines.append(f"- images differing from golden: {bad['early_exit']} (early exit), {bad['no_exit']} (no exit)")
    return "\n".join(lines) + "\n"


RENDER = {"folding": render_folding}


def render(name: str) -> str:
    return RENDER[name](json.loads((RESULTS / f"{name}.json").read_text()))


def rewrite(text: str) -> str:
    """`text` with every bench block rendered afresh (an unknown name is left as it is)."""
    return BLOCK.sub(lambda m: m.group(1) + (render(m.group(2)) if m.group(2) in RENDER else m.group(3))
                     + m.group(4), text)


def main() -> int:
    for page in PAGES:
        text = page.read_text()
        new = rewrite(text)
        if new != text:
            page.write_text(new)
            print(f"readme_figures: rewrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
