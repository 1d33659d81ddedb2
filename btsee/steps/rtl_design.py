"""The whole multi-exit design in the `rtl` step: generated from the segments' RTL and the
calibrated thresholds (`hw.rtl.multi_exit`), compiled in Verilator once per content
fingerprint, and simulated on the first `hardware.rtl_images` test images in order,
pixels in and (class, exit index) out, twice: free-running (cycles from the first pixel in
to the last decision out) and with random input stalls and output backpressure. Every
image's class and exit index, and the integer logits of every head and of the final
classifier (recorded inside the design), are compared with the golden simulator's.
"""
from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from btsee.flow import Context
from btsee.run_folder import THRESHOLDS_FILE, load_golden

DESIGN_FOLDER = "rtl/multi_exit"


def design_chain(manifest: dict, rtls: dict) -> tuple[list | None, str | None]:
    """([(backbone, head or None), ...] of SegmentRtls, None) when every segment of the
    manifest has RTL and they form the multi-exit chain (a head after each backbone segment
    whose exit the manifest builds, `exits_built`; all but the last when it says nothing);
    else (None, why not)."""
    segments = manifest["segments"]
    missing = [s["name"] for s in segments if s["name"] not in rtls]
    if missing:
        return None, f"segments without RTL: {', '.join(missing)}"
    backbones = [s for s in segments if s["kind"] == "backbone"]
    heads = {s["source"]: s for s in segments if s["kind"] == "head"}
    built = set(manifest.get("exits_built", range(len(backbones) - 1)))
    chain = []
    for k, b in enumerate(backbones):
        expected_source = "input" if k == 0 else backbones[k - 1]["name"]
        if b["source"] != expected_source:
            return None, f"{b['name']} reads {b['source']}, not {expected_source}"
        head = heads.get(b["name"])
        if (head is None) == (k in built):
            return None, (f"{b['name']}: " + ("no head, but exit " if head is None else "a head, but no exit ")
                          + f"{k} is built (exits_built {sorted(built)})")
        chain.append((rtls[b["name"]], rtls[head["name"]] if head else None))
    return chain, None


def generate_design(ctx: Context, chain: list, thresholds: list, score: str, buffer_frames: int):
    from hw.rtl.multi_exit import generate_multi_exit

    return generate_multi_exit(chain, ctx.out / THRESHOLDS_FILE, thresholds, score, ctx.out / DESIGN_FOLDER,
                               buffer_frames=buffer_frames)


def model_vs_rtl(manifest: dict, exits, cycles: dict, buffers: dict, free_run: dict, log) -> dict:
    """The pipeline model (`hw.fold.pipeline`) on the same images in the same order as the
    whole design's free-running simulation, once with the segments' cycles per frame measured
    alone in RTL and once with FINN's; the first against the simulation's cycles."""
    from btsee.steps.folding import topology_of
    from hw.fold.pipeline import PipelineSpec, simulate_pipeline

    topo = topology_of(manifest)
    stages = topo.stages()
    words = [int(b["frame_words"]) for b in buffers.values()]
    doc = {}
    for source in ("rtl", "finn_estimate"):
        spec = PipelineSpec([max(cycles[b][source] for b in bbs) for bbs, _ in stages],
                            [cycles[x][source] for _, x in stages[:-1]], words,
                            [manifest["buffer_frames"]] * (len(stages) - 1))
        run = simulate_pipeline(spec, exits)
        doc[source] = {"cycles_first_pixel_to_last_decision": round(run.total_cycles),
                       "steady_cycles_per_image": round(run.steady_cycles_per_image, 1),
                       "buffer_peak_frames": run.buffer_peak_frames}
    measured = free_run["cycles_first_pixel_to_last_decision"]
    doc["rtl_over_model"] = round(measured / doc["rtl"]["cycles_first_pixel_to_last_decision"], 4)
    doc["rtl_over_finn_model"] = round(measured / doc["finn_estimate"]["cycles_first_pixel_to_last_decision"], 4)
    # throughput alone, by the one steady-state rule (hw.steady_state) on both sides: the
    # totals also hold each segment's latency from first pixel to first word, which the
    # model (frame intervals) leaves out and which weighs on a run of few images
    doc["rtl_over_model_steady"] = round(free_run["steady_cycles_per_image"] / doc["rtl"]["steady_cycles_per_image"], 4)
    log(f"  pipeline model with the segments' RTL cycles: {doc['rtl']['cycles_first_pixel_to_last_decision']:,} "
        f"cycles (RTL/model {doc['rtl_over_model']}, steady state {doc['rtl_over_model_steady']}); with FINN's: "
        f"{doc['finn_estimate']['cycles_first_pixel_to_last_decision']:,} (RTL/model {doc['rtl_over_finn_model']})")
    return doc


def simulate_design(design, pixel_words: np.ndarray, golden, passes: list[tuple],
                    seed: int, hang_cycles: int) -> dict:
    """Compiles the design (if needed) and runs the passes (label, input stall %, output
    stall %[, images: the first that many, all by default]) side by side; per pass the
    comparison with the `golden` CascadeResult and the cycle counts. `pixel_words`:
    (n * words per image, elems) input codes."""
    from hw.rtl.dsp_path import compile_for_simulation
    from hw.rtl.stream import TESTBENCH_TOP

    t0 = time.time()
    binary, compiled = compile_for_simulation(TESTBENCH_TOP, design.testbench(), design.paths(),
                                              design.out_dir / "build")
    out = {"compiled": compiled, "compile_seconds": round(time.time() - t0, 1)}
    out.update(run_design_passes(design, binary, design.out_dir, pixel_words, golden, passes, seed, hang_cycles))
    return out


def run_design_passes(design, binary, folder, pixel_words: np.ndarray, golden, passes: list[tuple],
                      seed: int, hang_cycles: int, monitors: bool = True) -> dict:
    """Runs the design's simulation `binary` (its RTL, or its netlist without `monitors`) in
    folder/sim_<label> once per pass (label, input stall %, output stall %[, images]), side
    by side; per pass the comparison with the `golden` CascadeResult on its images (every
    head's logits too with `monitors`) and the cycle counts."""
    from hw.rtl.multi_exit import unpack_decisions
    from hw.rtl.stream import simulate_streams, steady_interval, unpack_hex

    t1 = time.time()
    out = {}
    watched = design.logit_monitors if monitors else {}
    words_per_image = len(pixel_words) // len(golden.classes)
    everything = golden

    def run_pass(label: str, in_stall: int, out_stall: int, images: int | None = None) -> dict:
        n = len(everything.classes) if images is None else min(images, len(everything.classes))
        golden = everything.first(n)
        sim = folder / f"sim_{label}"
        if sim.exists():
            shutil.rmtree(sim)
        sim.mkdir()
        for f in design.data_files if monitors else ():  # a netlist has its memory images baked in
            shutil.copyfile(design.out_dir / "src" / f, sim / f)
        run = simulate_streams(binary, sim, {design.input_port(): pixel_words[:n * words_per_image]},
                               {design.output_port(): n},
                               stalls={"in0_V": in_stall, "out0_V": out_stall},
                               monitors=tuple(watched), seed=seed, max_cycles=hang_cycles,
                               subject=design.out_dir / "src" / f"{design.top}.sv")
        (sim / "in0_V.hex").unlink()
        classes, exits = unpack_decisions(run.outputs["out0_V"][:, 0], design.class_bits)
        wrong = (classes != golden.classes) | (exits != golden.exit_index)
        logits = {}
        for i, (name, mon) in enumerate(watched.items()):
            reached = golden.reached[i] if i < design.exits else golden.reached[-1]
            want = golden.head_logits[i][reached] if i < design.exits else golden.final_logits[reached]
            values = unpack_hex(run.monitors[name], 1, mon["bits"], True)[:, 0]  # every logit that passed
            if values.size != want.size:
                differ = np.flatnonzero(reached)  # every image that reached it counts as wrong
            else:
                differ = np.flatnonzero(reached)[(values.reshape(want.shape) != want).any(axis=1)]
            wrong[differ] = True
            logits[name] = {"images": int(reached.sum()), "logit_rows_recorded": int(values.size // design.classes),
                            "mismatched_images": int(len(differ))}
        total = int(run.cycles["out0_V"][-1] - run.start_cycle)
        steady = steady_interval(run.cycles["out0_V"] - run.start_cycle)
        bad = np.flatnonzero(wrong)
        return {"images": n, "input_stall_percent": in_stall, "output_stall_percent": out_stall,
                "mismatched_images": int(len(bad)), "first_mismatched": [int(i) for i in bad[:10]],
                "classes_differ": int((classes != golden.classes).sum()),
                "exit_indices_differ": int((exits != golden.exit_index).sum()),
                "logits": logits, "cycles_first_pixel_to_last_decision": total,
                "cycles_per_image": round(total / n, 1), "steady_cycles_per_image": round(steady, 1),
                "exits_taken": np.bincount(exits, minlength=design.exits + 1).tolist()}

    with ThreadPoolExecutor(len(passes)) as pool:  # each pass is its own simulator process
        results = list(pool.map(lambda p: run_pass(*p), passes))
    out.update({p[0]: r for p, r in zip(passes, results)})
    out["simulate_seconds"] = round(time.time() - t1, 1)
    return out


def golden_design_result(ctx: Context, n: int):
    """(golden CascadeResult on the first n test images, thresholds tables, score) of the
    design the fold step chose: only the exits it builds (fold/manifest.json `exits_built`)
    may take images, and the result counts exits among those (as the design's output word
    does), with their heads' logits only. The thresholds artifact is checked against the run's model."""
    from btsee.run_folder import FOLD_MANIFEST, read_manifest
    from btsee.steps.common import load_splits

    cascade, artifact = load_golden(ctx.out)
    tables = [e["thresholds"] for e in artifact["exits"]]
    built = list(read_manifest(ctx.out, FOLD_MANIFEST).get("exits_built", range(len(tables))))
    cascade.thresholds = [t if k in built else [None] * len(t) for k, t in enumerate(tables)]
    result = project_onto_exits(cascade.run(load_splits(ctx).test.images[:n]), built)
    return result, [tables[k] for k in built], artifact["exits"][0]["score"]


def project_onto_exits(result, built: list[int]):
    """The golden CascadeResult of a cascade whose other exits never take an image, as the
    design building only the exits `built` reports it: exit indices counted among those,
    their heads' logits, scores and reach (and the final classifier's)."""
    from dataclasses import replace

    n_heads = len(result.head_logits)
    return replace(result, exit_index=np.searchsorted(np.array([*built, n_heads]), result.exit_index),
                   head_logits=[result.head_logits[k] for k in built],
                   reached=[result.reached[k] for k in built] + [result.reached[-1]],
                   scores=[result.scores[k] for k in built])


def read_design(ctx: Context, doc: dict):
    """The MultiExitRtl the `rtl` step simulated (rtl/rtl.json `multi_exit`), its sources
    unchanged since and the thresholds artifact the one it was built from; None when the
    step built none. Otherwise an ArtifactError naming the file."""
    from calib.errors import ArtifactError
    from calib.schema import sha256_of
    from hw.rtl.multi_exit import MultiExitRtl
    from hw.rtl.tools import sources_digest

    record = doc.get("multi_exit")
    if not record:
        return None
    design = MultiExitRtl.load(ctx.out / record["folder"])
    if sources_digest(design.paths()) != record["sources_sha256"]:
        raise ArtifactError(f"{design.out_dir / 'src'}: the sources changed since the rtl step simulated them "
                            "(rtl/rtl.json, multi_exit.sources_sha256); rerun it")
    if sha256_of(ctx.out / THRESHOLDS_FILE) != design.thresholds_sha256:
        raise ArtifactError(f"{ctx.out / THRESHOLDS_FILE}: changed since the rtl step built the design from it "
                            f"(sha256 {design.thresholds_sha256} in {design.out_dir / 'multi_exit.json'}); rerun it")
    return design


def glue_resources(ctx: Context, design, segment_tops: list[str]) -> dict:
    """The design's top level synthesized with its segments as black boxes: the exit glue's
    resources (decision units, forks, conditional buffers, decision queues, merge, width
    converters), with the wall time."""
    from hw.rtl.synth import synthesize_glue

    t = time.time()
    r = synthesize_glue(design, segment_tops, ctx.out / "synth" / "exit_glue")
    return dict(r, seconds=round(time.time() - t, 1))


def lut_shares(per_segment: dict, glue: dict, board_luts: int) -> dict:
    """The heads' share of the design's LUTs and the exit glue's share of the board's, with
    LUTs counted in every role (logic + distributed RAM and shift registers)."""
    from hw.rtl.synth import lut_sites as luts

    heads = sum(luts(r) for name, r in per_segment.items() if name.startswith("head"))
    total = sum(luts(r) for r in per_segment.values()) + luts(glue)
    return {"luts_counted": "LUT + LUTRAM (every LUT site used)", "design_luts": total, "heads_luts": heads,
            "heads_share_of_design": round(heads / total, 4) if total else 0.0, "exit_glue_luts": luts(glue),
            "exit_glue_share_of_board": round(luts(glue) / board_luts, 4) if board_luts else 0.0,
            "board_luts": board_luts}
