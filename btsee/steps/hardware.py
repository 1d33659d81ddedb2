"""The hardware steps: `export` (one QONNX graph per backbone segment and exit head,
checked against Brevitas) and `dataflow` (each through finn-plus to FINN HW layers, and
FINN's estimates of exactly those graphs for the board)."""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

from boards import load_board
from btsee.flow import Context
from btsee.report import update_report
from btsee.run_folder import DATAFLOW_MANIFEST, EXPORT_MANIFEST, HEADS_FILE, read_manifest
from btsee.steps.common import backbone, load_splits
from calib.atomic import atomic_write, atomic_write_json
from calib.progress import progress
from calib.schema import sha256_of

EXPORT_CHECK_IMAGES = 64
RESOURCES_SOURCE = ("FINN estimates from the estimate-only build (no Vivado): analytical, without FIFOs, "
                    "width converters, the shell and the project's exit RTL; MVAU_rtl and Pool count 0 LUT "
                    "(the synth step replaces these with synthesized figures)")


def step_export(ctx: Context) -> Context:
    """One cleaned QONNX graph per backbone segment and exit head, checked against PyTorch."""
    from hw.export import cascade_segments, check_segments, export_segment, torch_codes
    from qat.heads import load_heads

    points, heads = load_heads(ctx.out / HEADS_FILE)
    segments = cascade_segments(backbone(ctx), heads, points)
    pixels = load_splits(ctx).test.images[:EXPORT_CHECK_IMAGES]
    codes = torch_codes(segments, pixels[:1])
    paths, entries = {}, []
    for seg in segments:
        rel = f"export/{seg.name}.onnx"
        paths[seg.name] = export_segment(seg, torch.from_numpy(codes[seg.source]), ctx.out / rel)
        entries.append({"name": seg.name, "kind": seg.kind, "file": rel, "sha256": sha256_of(ctx.out / rel),
                        "source": seg.source,
                        "input_type": seg.input_type, "output_scale": seg.output_scale})
    check = check_segments(segments, paths, pixels)
    atomic_write_json(ctx.out / EXPORT_MANIFEST, {"points": points, "segments": entries,
                                                  "qonnx_vs_brevitas": check})
    ctx.log(f"  {len(segments)} QONNX graphs in {ctx.out / 'export'}; qonnx vs Brevitas on "
            f"{check['checked']} test images: {check['mismatches']} with any integer output differing")
    update_report(ctx.out, {"export": {"segments": [e["name"] for e in entries],
                                       "qonnx_vs_brevitas": {"checked": check["checked"],
                                                             "mismatches": check["mismatches"]}}})
    return ctx


def step_dataflow(ctx: Context) -> Context:
    """Each exported segment through finn-plus to HW layers (RTL-ready: standalone
    thresholds, RTL preferred), checked to leave no compute in software, its thresholds
    made exact (`hw.finn.exact_thresholds`), and FINN's estimate-only build of each for the
    configured board, whose folded and specialized graph the `rtl` step generates HDL from."""
    from hw.finn import residual
    from hw.finn.convert import check_hw_only, load_qonnx, software_nodes, to_hw
    from hw.finn.exact_thresholds import exact_thresholds
    from hw.finn.estimate import estimate_segment

    h = ctx.config.hardware
    board = load_board(h.board)
    clock_ns = h.clock_ns()
    manifest = read_manifest(ctx.out, EXPORT_MANIFEST)
    entries, totals = [], {"LUT": 0.0, "BRAM18": 0.0, "DSP": 0.0}
    per_segment = {}
    for seg in progress(manifest["segments"], desc="dataflow", unit="segment", leave=False):
        path = ctx.out / seg["file"]
        model = load_qonnx(path, seg["input_type"])
        if residual.is_residual(model):  # a ResNet's blocks: forks and residual adds
            hw = residual.to_hw(model, seg["input_type"], str(path))
        else:
            hw = to_hw(model, seg["input_type"])
        check_hw_only(hw, str(path))
        hw, corrections = exact_thresholds(model, hw, str(path))
        for c in corrections:
            ctx.log(f"  {seg['name']}: {c['layer']} channel {c['channel']}, code {c['code']}: FINN's threshold "
                    f"{c['finn']} corrected to the exact {c['exact']}")
        rel = f"dataflow/{seg['name']}.onnx"
        atomic_write(ctx.out / rel, lambda tmp: hw.save(str(tmp)))
        est = estimate_segment(ctx.out / rel, seg["input_type"],
                               ctx.out / "dataflow" / "estimates" / seg["name"], board=board.finn_board,
                               clock_period_ns=clock_ns, target_fps=h.target_fps,
                               mvau_wwidth_max=h.mvau_wwidth_max, threshold_bram_depth=h.threshold_bram_depth)
        ops: dict[str, int] = {}
        for n in hw.graph.node:
            ops[n.op_type] = ops.get(n.op_type, 0) + 1
        est_doc = est.to_dict()
        est_doc["report_dir"] = str(Path(est.report_dir).relative_to(ctx.out))
        folded = f"dataflow/{seg['name']}.folded.onnx"  # specialized and folded: the RTL step's graph
        atomic_write(ctx.out / folded, lambda tmp: shutil.copyfile(est.folded_graph, tmp))
        entries.append(dict(seg, qonnx_file=seg["file"], hw_file=rel, hw_sha256=sha256_of(ctx.out / rel),
                            folded_file=folded, folded_sha256=sha256_of(ctx.out / folded), nodes=ops,
                            software=[f"{n.name} ({n.op_type})" for n in software_nodes(hw)],
                            threshold_corrections=corrections, estimate=est_doc))
        for key, value in (("LUT", est.lut), ("BRAM18", est.bram18), ("DSP", est.dsp)):
            totals[key] += value
        per_segment[seg["name"]] = {"LUT": est.lut, "BRAM18": est.bram18, "DSP": est.dsp,
                                    "cycles_per_frame": est.cycles_per_frame, "target_met": est.target_met}
        ctx.log(f"  {seg['name']:15s} " + " ".join(f"{k}x{v}" for k, v in ops.items())
                + f" | {est.lut:,.0f} LUT, {est.bram18:g} BRAM18, {est.dsp:g} DSP, "
                f"{est.cycles_per_frame:,} cycles/frame{'' if est.target_met else ' (target missed)'}")
    atomic_write_json(ctx.out / DATAFLOW_MANIFEST, {"points": manifest["points"], "segments": entries})
    resources = dict(totals, source=RESOURCES_SOURCE, board=board.name, part=board.part,
                     board_resources=board.resources, clock_mhz=1000.0 / clock_ns,
                     target_fps=h.target_fps, per_segment=per_segment)
    ctx.log(f"  total {totals['LUT']:,.0f} LUT, {totals['BRAM18']:g} BRAM18, {totals['DSP']:g} DSP "
            f"(FINN estimates; MVAU_rtl and Pool count 0 LUT) of {board.resources.get('LUT', 0):,} LUT and "
            f"{board.resources.get('BRAM18', 0)} BRAM18 on {board.name}")
    from btsee.plots import resources_by_segment

    resources_by_segment(per_segment, board.resources.get("LUT"), ctx.out / "dataflow/resources.png")
    update_report(ctx.out, {"resources": resources, "plots": {"resources": "dataflow/resources.png"}})
    return ctx
