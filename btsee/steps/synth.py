"""The `synth` step (open tools, no Vivado): each segment the `rtl` step simulated,
synthesized by Yosys for xc7 (`hw.rtl.synth`), and the multi-exit top level with the
segments as black boxes (the exit glue): report.json `resources` from synthesis, FINN's
estimates kept beside them, the heads' and the glue's LUT shares; the netlists kept for the
`netlist` step; report.json `timing_depth` (`btsee.steps.timing_depth`).

Tool logs stay in the run folder (synth/<segment>/yosys.log, synth/blocks/yosys.log); a
failure is one line naming the tool, the file and the log.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from boards import load_board
from btsee.flow import Context
from btsee.report import update_report
from btsee.run_folder import FOLD_MANIFEST, FOLDING_FILE, SYNTH_FILE, read_json, read_manifest
from btsee.steps.rtl import WORKERS, read_rtl
from btsee.steps.rtl_design import glue_resources, lut_shares, read_design
from calib.atomic import atomic_write_json
from calib.progress import progress


def step_synth(ctx: Context) -> Context:
    """Each segment of the `rtl` step synthesized by Yosys for xc7; resources from synthesis."""
    from btsee.steps.timing_depth import block_jobs
    from hw.rtl.block_depth import block_depths_of
    from hw.rtl.synth import RESOURCE_KEYS
    from hw.rtl.tools import yosys_version

    h = ctx.config.hardware
    board = load_board(h.board)
    rtl_doc, rtls = read_rtl(ctx)
    design = read_design(ctx, rtl_doc)
    results = {}
    modelled = read_json(ctx.out, FOLDING_FILE)["early_exit"]["segments"]
    # the largest first (the fold step's modelled LUTs), so the last job to start is a short one
    by_size = sorted(rtls, key=lambda n: modelled.get(n, {}).get("LUT_modelled", 0), reverse=True)
    sources = [p for rtl in rtls.values() for p in rtl.paths()] + (design.paths() if design is not None else [])
    blocks = block_jobs([p for p in sources if p.suffix in (".sv", ".v")])
    dataflow = {s["name"]: s for s in read_manifest(ctx.out, FOLD_MANIFEST)["segments"]}
    with ThreadPoolExecutor(WORKERS) as pool, \
            progress(total=len(rtls) + (design is not None) + 1, desc="synth", unit="design",
                 leave=False) as bar:
        futures = {pool.submit(_timed_synthesis, rtls[name], ctx.out / "synth" / name): name for name in by_size}
        if design is not None:
            glue_job = pool.submit(glue_resources, ctx, design, [r.top for r in rtls.values()])
        # our blocks (timing depth), one Yosys run beside the largest segment's
        blocks_job = pool.submit(block_depths_of, blocks, ctx.out / "synth" / "blocks")
        for fut in as_completed(futures):  # each segment's line as soon as it is synthesized
            name = futures[fut]
            r = results[name] = fut.result()
            bar.update()
            est = dataflow[name]["estimate"]
            ctx.log(f"  {name:15s} " + ", ".join(f"{r['resources'][k]:,} {k}" for k in RESOURCE_KEYS)
                    + f" (FINN estimate {est['lut']:,.0f} LUT, {est['bram18']:g} BRAM18, {est['dsp']:g} DSP; "
                    f"{r['seconds']:.0f} s)")
        glue = glue_job.result() if design is not None else None
        bar.update(design is not None)
        block_results = blocks_job.result()
        bar.update()
    results = {name: results[name] for name in rtls}  # segment order from here on
    totals = dict.fromkeys(RESOURCE_KEYS, 0)
    per_segment = {}
    for name, r in results.items():
        est = dataflow[name]["estimate"]
        per_segment[name] = dict(r["resources"], finn_estimate={"LUT": est["lut"], "BRAM18": est["bram18"],
                                                                "DSP": est["dsp"]})
        for k in RESOURCE_KEYS:
            totals[k] += r["resources"][k]
    lut_budget = board.resources.get("LUT", 0)
    shares = None
    if glue is not None:
        for k in RESOURCE_KEYS:
            totals[k] += glue["resources"][k]
        shares = lut_shares(per_segment, glue["resources"], lut_budget)
        ctx.log(f"  {'exit glue':15s} " + ", ".join(f"{glue['resources'][k]:,} {k}" for k in RESOURCE_KEYS)
                + f" (the top level with the segments as black boxes; {glue['seconds']:.0f} s)")
        ctx.log(f"  heads: {shares['heads_luts']:,} of the design's {shares['design_luts']:,} LUTs "
                f"({shares['heads_share_of_design']:.1%}); exit glue: {shares['exit_glue_luts']:,} LUTs, "
                f"{shares['exit_glue_share_of_board']:.2%} of the board's {lut_budget:,} (LUT + LUTRAM)")
    tool = yosys_version()
    source = (f"synthesis: {tool}, synth_xilinx -family xc7 per segment"
              + (" and for the multi-exit top level with the segments as black boxes (the exit glue); the totals "
                 "are their sum" if glue is not None else "")
              + " (no place and route, no timing); LUT = logic LUTs, LUTRAM = LUTs used as distributed RAM or "
              "shift registers")
    finn_totals = {k: sum(per_segment[n]["finn_estimate"][k] for n in results) for k in ("LUT", "BRAM18", "DSP")}
    atomic_write_json(ctx.out / SYNTH_FILE, {
        "tool": tool, "part": board.part, "totals": totals,
        "segments": {n: dict(r, log=str(Path("synth") / n / "yosys.log")) for n, r in results.items()},
        "exit_glue": None if glue is None else dict(glue, log="synth/exit_glue/yosys.log"), "lut_shares": shares})
    ctx.log(f"  total {totals['LUT']:,} LUT + {totals['LUTRAM']:,} LUTRAM, {totals['FF']:,} FF, {totals['DSP']} DSP, "
            f"{totals['BRAM18']} BRAM18 (synthesized) of {lut_budget:,} LUT on {board.name}; FINN estimated "
            f"{finn_totals['LUT']:,.0f} LUT, {finn_totals['BRAM18']:g} BRAM18, {finn_totals['DSP']:g} DSP")
    from btsee.plots import synthesized_resources

    for name, seg in rtl_doc["segments"].items():
        per_segment[name]["cycles_per_frame"] = {"rtl": seg["free_running"]["cycles_per_frame"],
                                                 "finn_estimate": seg["finn_cycles_per_frame"]}
    design_cycles = (rtl_doc.get("multi_exit") or {}).get("free_running", {}).get("steady_cycles_per_image")
    synthesized_resources(per_segment, lut_budget, ctx.out / "synth/resources.png",
                          None if glue is None else glue["resources"], design_cycles)
    model_check = _lut_model_check(read_json(ctx.out, FOLDING_FILE), per_segment, glue, ctx.log)
    depth = _timing_depth(ctx, results, glue, block_results)
    not_covered = sorted(rtl_doc.get("not_covered", {}))
    if not_covered:
        ctx.log(f"  the totals leave out the segments the rtl step did not cover: {', '.join(not_covered)}")
    update_report(ctx.out, {"resources": dict(totals, source=source, board=board.name, part=board.part,
                                              board_resources=board.resources, finn_estimate=finn_totals,
                                              per_segment=per_segment, not_covered=not_covered,
                                              exit_glue=None if glue is None else glue["resources"],
                                              lut_shares=shares, lut_model_check=model_check),
                            "timing_depth": depth, "plots": {"resources": "synth/resources.png"}})
    return ctx


def _timing_depth(ctx: Context, results: dict, glue: dict | None, blocks: list[dict]) -> dict:
    """report.json `timing_depth` (`btsee.steps.timing_depth`) from the segments' and the
    glue's synthesis and our blocks' `block_depths_of` results, logged."""
    from btsee.steps.timing_depth import log_lines, timing_depth

    doc = timing_depth({n: r["depth"] for n, r in results.items()}, glue["depth"] if glue else None, blocks)
    for line in log_lines(doc):
        ctx.log(line)
    return doc


def _lut_model_check(folding: dict, per_segment: dict, glue: dict | None, log) -> dict:
    """The fold step's modelled LUTs (LUT + LUTRAM) of the design it chose against Yosys's."""
    modelled = folding["early_exit"]["segments"]
    rows = {n: {"modelled": modelled[n]["LUT_modelled"], "synthesized": r["LUT"] + r["LUTRAM"]}
            for n, r in per_segment.items() if n in modelled}
    total_model = folding["early_exit"]["resources"]["LUT"]
    total_synth = sum(r["synthesized"] for r in rows.values()) + (glue["resources"]["LUT"] + glue["resources"]["LUTRAM"]
                                                                  if glue else 0)
    doc = {"per_segment": rows, "modelled": round(total_model), "synthesized": total_synth,
           "synthesized_over_modelled": round(total_synth / total_model, 3) if total_model else None}
    log(f"  the fold step modelled {total_model:,.0f} LUT + LUTRAM for this design; Yosys: {total_synth:,} "
        f"({doc['synthesized_over_modelled']}x)")
    return doc


def _timed_synthesis(rtl, folder: Path) -> dict:
    """`hw.rtl.synth.synthesize` with its wall time in seconds."""
    from hw.rtl.synth import synthesize

    t = time.time()
    r = synthesize(rtl, folder)
    return dict(r, seconds=round(time.time() - t, 1))
