"""The method page's tables (docs/method.md), rendered from the benches' JSON by
bench/readme_figures.py: the exit-training sweep, the method ranking over three
backbones, the accuracy budget's re-split study and the variants over seeds.
Each renderer takes the bench's JSON document and returns the Markdown of its block.
"""
from __future__ import annotations

SWEEP_ROWS = {"bts": "bts + CPM (v1)", "joint": "joint + CPM", "global": "joint + global max-softmax threshold",
              "bts-soft": "bts, soft weights (v2)", "bts-distill": "bts, KL to the backbone at T = 2 (v2)",
              "bts-labels": "bts, ground-truth targets"}
"""exits_sweep.json's method keys -> the table's rows, in order."""

BACKBONES = {"cnv-w4a4": "CNV, W4A4", "cnv-float": "CNV, float", "resnet8-w4a4": "ResNet-8, W4A4"}
"""method_ranking.json's backbone keys -> the table's rows, in order."""

BUDGET_COLUMNS = {"plain": "plain", "bound": "bound on the fitting images",
                  "holdout+bound, best": "hold-out + bound, boldest passing (the first guard's rule)",
                  "guard, expected drop": "guard at 0.9 on the expected drop",
                  "guard": "**guard at 0.9 on 10,000 unseen images (the default)**",
                  "guard@0.95": "the same at 0.95"}
"""budget.json's guard methods -> the table's columns, in order (the default in bold)."""

SEED_ROWS = {"v1": "v1: the former default (bts + CPM at margin −0.05, one 32-channel conv, no budget)",
             "bts+cpm": "bts + CPM, per-exit budget", "joint+cpm": "joint + CPM, per-exit budget",
             "joint+global": "joint + global threshold, per-exit budget",
             "joint+global shared": "joint + global threshold, one shared knob",
             "bts+cpm block1-4": "bts + CPM, per-exit budget, heads at block1–block4"}
"""seeds.json's variant keys -> the table's rows, in order."""


def _drop_mac(chosen: dict) -> str:
    return f"{chosen['test_drop_points']:.2f} pt, {chosen['test_mac_fraction']:.3f}"


def render_exits_sweep(doc: dict) -> str:
    """Each training method's configuration chosen on validation at 1 and 2 points, on test."""
    chosen = doc["chosen_on_validation"]
    lines = ["| method | chosen for ≤ 1 pt on validation: test drop, MAC fraction | chosen for ≤ 2 pt: test drop, "
             "MAC fraction |", "| --- | --- | --- |"]
    lines += [f"| {label} | {_drop_mac(chosen[f'{key}@1pt'])} | {_drop_mac(chosen[f'{key}@2pt'])} |"
              for key, label in SWEEP_ROWS.items()]
    pairs = doc["bts_vs_joint"]
    lines += ["", f"Over the {pairs['configurations']} paired configurations, joint does not beat bts on both axes "
              f"in {pairs['bts_not_dominated_by_joint']}, and bts is at least as good as joint on both in "
              f"{pairs['bts_at_least_as_good_on_both']} (`bench/results/exits_sweep.json`)."]
    return "\n".join(lines) + "\n"


def render_method_ranking(doc: dict) -> str:
    """bts against joint (and the global threshold) on each backbone."""
    lines = ["| backbone | backbone test accuracy | bts not dominated by joint | bts at least as good on both | "
             "bts @ 1 pt: test drop, MAC | joint @ 1 pt | global @ 1 pt | bts @ 2 pt | joint @ 2 pt |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key, label in BACKBONES.items():
        b = doc["backbones"][key]
        pairs, chosen = b["bts_vs_joint"], b["chosen_on_validation"]
        cells = [_drop_mac(chosen[c]) for c in ("bts@1pt", "joint@1pt", "global@1pt", "bts@2pt", "joint@2pt")]
        lines.append(f"| {label} | {b['backbone_accuracy']['test']:.4f} | {pairs['bts_not_dominated_by_joint']} of "
                     f"{pairs['configurations']} | {pairs['bts_at_least_as_good_on_both']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_budget(doc: dict) -> str:
    """How often each guard lets the test drop exceed the budget over the re-splits, and its MACs."""
    lines = ["| policy, budget | " + " | ".join(BUDGET_COLUMNS.values()) + " |",
             "| --- |" + " --- |" * len(BUDGET_COLUMNS)]
    for policy, name in (("cpm", "CPM"), ("global", "global")):
        for points in (1, 2):
            cells = []
            for method in BUDGET_COLUMNS:
                r = doc["resplit"][f"{policy}/{points}pt/{method}"]
                cell = f"{round(100 * r['exceedance_rate'])} %, {r['mac_fraction_mean']:.3f}"
                cells.append(f"**{cell}**" if method == "guard" else cell)
            lines.append(f"| {name}, {points} pt | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _spread(s: dict, digits: int) -> str:
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f} [{s['min']:.{digits}f}, {s['max']:.{digits}f}]"


def render_seeds_table(doc: dict) -> str:
    """Every variant over the seeds: mean ± sample std [min, max]; the one chosen on validation in bold."""
    lines = ["| variant | test drop (pt) | test MAC fraction | validation MAC fraction (mean) |",
             "| --- | --- | --- | --- |"]
    for key, label in SEED_ROWS.items():
        v = doc["variants"][key]
        val = v["validation_mac_fraction"]
        cells = [label, _spread(v["test_drop_points"], 2), _spread(v["test_mac_fraction"], 3)]
        if key == doc["chosen_on_validation"]:
            cells = [f"**{c}**" for c in cells]
        cells.append(f"{val['mean']:.3f}" if val else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


RENDER = {"exits_sweep": ("exits_sweep", render_exits_sweep),
          "method_ranking": ("method_ranking", render_method_ranking),
          "budget": ("budget", render_budget), "seeds_table": ("seeds", render_seeds_table)}
"""Block name -> (the bench/results JSON it reads, its renderer), for bench/readme_figures.py."""
