"""The README's benchmark figures, rendered from bench/results/*.json, never typed by hand.

Each block of the README (and of docs/*.md) between `<!-- bench:NAME -->` and
`<!-- /bench:NAME -->` is what `render(NAME)` makes of the bench/results JSON that
`RENDER` names for it.
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
from bench.method_figures import RENDER as METHOD_RENDER  # noqa: E402
from bench.resnet8_figures import RENDER as RESNET8_RENDER  # noqa: E402

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


def render_folding_curve(doc: dict) -> str:
    """The headline in a few lines: the measured ratio at every budget, its targets."""
    points = []
    for r in doc["budgets"]:
        default = " (default)" if r["budget_lut_modelled"] == doc["default_budget_lut"] else ""
        ratio = f"{r['ratio_rtl']:.2f}×" if r["ratio_rtl"] else "—"
        points.append(f"{r['budget_lut_modelled']:,}{default}: {ratio}")
    t = doc["targets"]
    mark = {True: "met", False: "not met", None: "not measured"}
    return (f"Early-exit design against the fastest no-exit design within its synthesized LUT + LUTRAM, DSP and "
            f"BRAM18, both timed in RTL (Verilator), by modelled LUT budget on {doc['board']} at 100 MHz: "
            + "; ".join(points) + ".\n"
            f"Targets: ≥ {t['ratio_at_default_budget']['target']}× at the default budget "
            f"({mark[t['ratio_at_default_budget']['met']]}), ≥ {t['ratio_everywhere']['target']}× everywhere "
            f"({mark[t['ratio_everywhere']['met']]}), heads ≤ {t['heads_share_of_luts']['target']:.0%} of the "
            f"design's LUTs ({t['heads_share_of_luts']['value']:.1%}: {mark[t['heads_share_of_luts']['met']]}). "
            f"Images differing from golden: {doc['mismatched_images']['early_exit']} and "
            f"{doc['mismatched_images']['no_exit']}.\n")


def render_seeds_summary(doc: dict) -> str:
    """The configuration chosen on validation and its test figures over the seeds."""
    t = doc["chosen_test"]
    drop, macs = t["test_drop_points"], t["test_mac_fraction"]
    return (f"Over {len(doc['seeds'])} seeds of the whole default run (`bench/results/seeds.json`), the exit "
            f"configuration chosen on validation ({doc['chosen_on_validation']}, accuracy budget "
            f"{doc['budget_points']:g} point) keeps {macs['mean']:.1%} of the backbone's MACs on the test split "
            f"(std {macs['std']:.1%}, {macs['min']:.1%} to {macs['max']:.1%}) for an accuracy drop of "
            f"{drop['mean']:.2f} points (std {drop['std']:.2f}, {drop['min']:.2f} to {drop['max']:.2f}).\n")


def render_netlist_summary(doc: dict) -> str:
    """The netlist benchmark in one paragraph."""
    s = doc["summary"]
    return (f"Yosys's mapped netlists simulated with {s['stalls_percent']['input']} %/{s['stalls_percent']['output']} % "
            f"input/output stalls against golden (`bench/results/netlist.json`): every segment's on "
            f"{s['images']['per_segment']} test images and the whole design's on {s['images']['whole_design']} in "
            f"order, {s['mismatches']} mismatched images.\n")


def render_chain_summary(doc: dict) -> str:
    """The chain golden = qonnx = FINN on every test image in one paragraph."""
    q, f = doc["golden_vs_qonnx"], doc["golden_vs_finn"]
    return (f"Golden = qonnx = FINN on all {f['images']:,} test images of the default run "
            f"(`bench/results/chain.json`): {q['mismatching_images']} and {f['mismatching_images']} images with any "
            f"integer output differing, {q['prediction_mismatches'] + f['prediction_mismatches']} predictions and "
            f"{q['exit_index_mismatches'] + f['exit_index_mismatches']} exit indices differing "
            f"({q['seconds']:.0f} s for qonnx, {f['seconds']:.0f} s for FINN).\n")


def render_qat_speed(doc: dict) -> str:
    """Quantization-aware training and inference against float in one sentence."""
    r, q, f = doc["ratio_qat_over_float"], doc["qat"], doc["float"]
    return (f"Brevitas QAT against the same model in float, in one run on {doc['machine']['cpu_threads']} CPU "
            f"threads ({doc['model']}; `bench/results/qat_speed.json`): training {q['train_images_per_s']:,.0f} "
            f"against {f['train_images_per_s']:,.0f} images/s ({r['train']:.2f}×), inference "
            f"{q['inference_images_per_s']:,.0f} against {f['inference_images_per_s']:,.0f} images/s "
            f"({r['inference']:.2f}×).\n")


def render_default_design(doc: dict) -> str:
    """The default run's whole multi-exit design, checked and timed, as a table."""
    r, passes = doc["report"], doc["whole_design_passes"]
    me = r["rtl"]["multi_exit"]
    n, taken = me["images"], me["exits_taken"]
    reach = " / ".join(f"{n - sum(taken[:i]):,}" for i in range(len(taken)))
    heads = " / ".join(str(i) for i in range(len(taken) - 1))
    model = me["pipeline_model"]
    seg, net = r["bit_exact"]["golden_vs_rtl_segments"], r["bit_exact"]["golden_vs_netlist"]
    glue, shares, board = r["resources"]["exit_glue"], r["resources"]["lut_shares"], r["resources"]["board_resources"]
    depth = r["timing_depth"]
    ours = max(((name, b["levels"]) for name, b in depth["blocks"].items()), key=lambda x: x[1])
    deeper = ", ".join(depth["blocks_deeper_than_finn"]) or "none"
    stalled = passes["stalled"]
    rows = [
        ("the run", f"`{doc['config']}` at commit {doc['commit']} (`bench/results/default_run.json`): "
                    f"{r['accuracy']['backbone']:.2%} test accuracy for the backbone alone, "
                    f"{r['accuracy']['early_exit']:.2%} with the exits, "
                    f"{r['mac_fraction']:.3f} of its MACs per image"),
        (f"the whole design on the first {n:,} test images in order, free-running",
         f"{passes['free_running']['mismatched_images']} images differ from the golden simulator in class, exit "
         f"index or any logit of any head reached ({reach} images reach head {heads} / the final classifier)"),
        (f"the same on the first {stalled['images']:,} with {stalled['input_stall_percent']} %/"
         f"{stalled['output_stall_percent']} % input/output stalls",
         f"{stalled['mismatched_images']} images differ"),
        (f"cycles from the first pixel in to the last decision out ({n:,} images)",
         f"{me['cycles_first_pixel_to_last_decision']:,}: {me['steady_cycles_per_image']:,.0f} cycles per image in "
         f"steady state, **{me['images_per_second']:,.0f} images/s** at {me['clock_mhz']:g} MHz"),
        ("the pipeline model on the same images",
         f"{model['rtl']['cycles_first_pixel_to_last_decision']:,} cycles with each segment's RTL cycles per frame "
         f"(RTL / model {model['rtl_over_model']:.3f}), {model['finn_estimate']['cycles_first_pixel_to_last_decision']:,}"
         f" with FINN's ({model['rtl_over_finn_model']:.3f})"),
        ("validation images reaching each backbone segment (what the fold step folds for)",
         ", ".join(f"{k} {v:.1%}" for k, v in r["throughput_fps"]["reach"].items())),
        ("each segment's RTL alone (table below)",
         f"{seg['mismatches']} mismatched images on {seg['images']['free_running']} free-running and "
         f"{seg['images']['stalled']} stalled images per segment"),
        ("each segment's Yosys netlist, with stalls",
         f"{net['mismatches']} mismatched images on {net['images']['per_segment']} images per segment"),
        ("exit glue (the top level with the segments as black boxes)",
         f"{glue['LUT']:,} LUT + {glue['LUTRAM']:,} LUTRAM ({shares['exit_glue_share_of_board']:.1%} of the "
         f"board's {board['LUT']:,}), {glue['FF']:,} FF, {glue['BRAM18']} BRAM18 (three conditional buffers of "
         f"{r['throughput_fps']['buffer_frames']} frames)"),
        ("the heads' share of the design's LUT + LUTRAM",
         f"{shares['heads_luts']:,} of {shares['design_luts']:,}: {shares['heads_share_of_design']:.1%}"),
        ("timing depth (cells on the deepest register-to-register path)",
         f"FINN's layers: {depth['finn_reference']['levels']} ({depth['finn_reference']['segment']}); our deepest "
         f"block: {ours[1]} ({ours[0]}); blocks of ours deeper than FINN's: {deeper}"),
    ]
    return "| check | result |\n| --- | --- |\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)


def render_default_segments(doc: dict) -> str:
    """The default run's segments: RTL against FINN cycles, and what Yosys synthesized."""
    res = doc["report"]["resources"]
    keys = ("LUT", "LUTRAM", "FF", "DSP", "BRAM18")
    lines = ["| segment | cycles/frame: RTL / FINN | LUT | LUTRAM | FF | DSP | BRAM18 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, s in res["per_segment"].items():
        c = s["cycles_per_frame"]
        lines.append(f"| {name} | {c['rtl']:,.0f} / {c['finn_estimate']:,} | "
                     + " | ".join(f"{s[k]:,}" for k in keys) + " |")
    lines.append("| exit glue | | " + " | ".join(f"{res['exit_glue'][k]:,}" for k in keys) + " |")
    b = res["board_resources"]
    lines.append(f"| total ({res['part']}: {b['LUT']:,} LUT, {b['FF']:,} FF, {b['DSP']} DSP, {b['BRAM18']} BRAM18) | | "
                 + " | ".join(f"{res[k]:,}" for k in keys) + " |")
    fe = res["finn_estimate"]
    lines.append("")
    lines.append(f"FINN estimated {fe['LUT']:,.0f} LUT, {fe['DSP']} DSP and {fe['BRAM18']} BRAM18 for the same "
                 f"segments; the fold step's LUT model {res['lut_model_check']['modelled']:,} LUT + LUTRAM "
                 f"(Yosys / model {res['lut_model_check']['synthesized_over_modelled']:.3f}).")
    return "\n".join(lines) + "\n"


RENDER = {"folding": ("folding", render_folding), "folding_curve": ("folding", render_folding_curve),
          "seeds_summary": ("seeds", render_seeds_summary), "netlist_summary": ("netlist", render_netlist_summary),
          "chain_summary": ("chain", render_chain_summary), "qat_speed": ("qat_speed", render_qat_speed),
          "default_design": ("default_run", render_default_design),
          "default_segments": ("default_run", render_default_segments), **METHOD_RENDER, **RESNET8_RENDER}
"""Block name -> (the bench/results JSON it reads, its renderer)."""


def render(name: str) -> str:
    source, renderer = RENDER[name]
    return renderer(json.loads((RESULTS / f"{source}.json").read_text()))


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
