"""Build, synthesize and time a folded design of the fold step's search, early-exit or not,
the same way for both: every segment rebuilt by FINN with the folding the search chose,
generated as RTL, synthesized by Yosys; the whole design (`hw.rtl.multi_exit`, building
the search's subset of the exits; none for the backbone alone) generated, its exit glue
synthesized, and simulated in Verilator through the DSP datapath on test images in order,
compared image by image with the golden simulator and timed by `hw.steady_state`'s rule.

Everything lands in one work folder; a segment folded the same way, and a whole design
with the same segments and exits, is built once (`DesignBuilder.segments`, `.designs`).
"""
from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hw.rtl.synth import lut_sites as luts

SEGMENT_IMAGES = 20
"""Test images each segment of a no-exit chain simulates alone."""


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class BuiltSegment:
    name: str
    rtl: object            # SegmentRtl
    resources: dict
    finn_cycles: int
    seconds: float


@dataclass
class DesignBuilder:
    """Builds designs of one run (`ctx`, the default run) into `work`."""

    ctx: object
    work: Path
    manifest: dict          # the dataflow manifest (every segment)
    segments: dict[str, BuiltSegment] = field(default_factory=dict)
    designs: dict[str, dict] = field(default_factory=dict)
    golden: dict = field(default_factory=dict)

    def segment(self, name: str, option) -> BuiltSegment:
        """Segment `name` with the folding `option` (a FoldOption of the search): FINN's build
        of that folding (whose cycles and resources must be the search's), its RTL and its
        synthesis."""
        from boards import load_board
        from hw.finn.convert import DataflowError
        from hw.finn.estimate import estimate_segment
        from hw.rtl.segment import generate_segment
        from hw.rtl.synth import synthesize

        key = f"{name}_{_key(repr(sorted(option.config.items())))}"
        if key in self.segments:
            return self.segments[key]
        folder = self.work / "segments" / key
        done = folder / "built.json"
        if done.is_file():  # built by an earlier run of the bench: the same folding, the same sources
            from hw.rtl.segment import SegmentRtl

            d = json.loads(done.read_text())
            self.segments[key] = BuiltSegment(name, SegmentRtl.load(folder / "rtl"), d["resources"],
                                              d["finn_cycles"], d["seconds"])
            return self.segments[key]
        t = time.time()
        print(f"  segment {name}: FINN build, RTL and Yosys of {dict(sorted(option.config.items()))} "
              f"({option.cycles:,} cycles/frame)", flush=True)
        h = self.ctx.config.hardware
        board = load_board(h.board)
        seg = next(s for s in self.manifest["segments"] if s["name"] == name)
        est = estimate_segment(self.ctx.out / seg["hw_file"], seg["input_type"], folder / "finn",
                               board=board.finn_board, clock_period_ns=h.clock_ns(),
                               target_fps=int(round(option.target_fps)), mvau_wwidth_max=h.mvau_wwidth_max,
                               folding_config=option.config)
        if int(est.cycles_per_frame) != option.cycles or float(est.dsp) != option.dsp:
            raise DataflowError(f"{name}: FINN's build of {option.config} gives {est.cycles_per_frame} cycles and "
                                f"{est.dsp} DSP, the search assumed {option.cycles} and {option.dsp}")
        rtl = generate_segment(name, est.folded_graph, folder / "rtl", board.part, h.clock_ns())
        syn = synthesize(rtl, folder / "synth")
        self.segments[key] = BuiltSegment(name, rtl, syn["resources"], int(est.cycles_per_frame),
                                          round(time.time() - t, 1))
        done.write_text(json.dumps({"resources": syn["resources"], "finn_cycles": int(est.cycles_per_frame),
                                    "seconds": self.segments[key].seconds, "config": option.config}))
        return self.segments[key]

    def golden_result(self, n: int, built: tuple[int, ...]):
        """(golden CascadeResult of the first n test images with only the exits `built`,
        projected onto them, the thresholds tables of those exits, the score)."""
        from btsee.run_folder import load_golden
        from btsee.steps.common import load_splits
        from btsee.steps.rtl_design import project_onto_exits

        if (n, built) in self.golden:
            return self.golden[(n, built)]
        cascade, artifact = load_golden(self.ctx.out)
        tables = [e["thresholds"] for e in artifact["exits"]]
        cascade.thresholds = [t if k in built else [None] * len(t) for k, t in enumerate(tables)]
        result = project_onto_exits(cascade.run(load_splits(self.ctx).test.images[:n]), list(built))
        self.golden[(n, built)] = result, [tables[k] for k in built], artifact["exits"][0]["score"]
        return self.golden[(n, built)]

    def design(self, design, buffer_frames: int, images: int) -> dict:
        """The whole design `design` (a search Design): its segments built in parallel (two at
        a time), the top level generated with its exits, the glue synthesized, and the RTL
        simulated free-running on the first `images` test images in order. Returns its
        synthesized resources (segments + glue), images/s, mismatches and timings."""
        from boards import load_board
        from btsee.run_folder import THRESHOLDS_FILE
        from btsee.steps.folding import topology_of
        from btsee.steps.rtl import golden_streams
        from btsee.steps.rtl_design import simulate_design
        from hw.finn.builder import finn_builder
        from hw.rtl.multi_exit import generate_multi_exit
        from hw.rtl.synth import synthesize_glue

        t0 = time.time()
        topo = topology_of(self.manifest).with_exits(design.exits_built)
        names = [n for bbs, h in topo.stages() for n in bbs + ([h] if h else [])]
        with ThreadPoolExecutor(2) as pool:
            built = dict(zip(names, pool.map(lambda n: self.segment(n, design.choice[n]), names)))
        key = _key(json.dumps([[n, built[n].rtl.out_dir.parent.name] for n in names] + [buffer_frames, images]))
        if key in self.designs:
            return self.designs[key]
        folder = self.work / "designs" / key
        if (folder / "row.json").is_file():  # measured by an earlier run of the bench
            self.designs[key] = json.loads((folder / "row.json").read_text())
            return self.designs[key]
        print(f"  design {key}: exits {list(design.exits_built)}, modelled {design.fps:,.0f} images/s; glue "
              f"synthesis and RTL simulation of {images} images", flush=True)
        chain = []  # [(backbone, its head or None)]: a stage's head follows its last segment
        for bbs, head in topo.stages():
            for i, b in enumerate(bbs):
                chain.append((built[b].rtl, built[head].rtl if head and i == len(bbs) - 1 else None))
        golden, tables, score = self.golden_result(images, design.exits_built)
        with finn_builder(folder / "finn"):  # FINN's settings (finn-rtllib), also when every segment is cached
            rtl = generate_multi_exit(chain, self.ctx.out / THRESHOLDS_FILE, tables, score, folder / "rtl",
                                      buffer_frames=buffer_frames)
        glue = synthesize_glue(rtl, [s.rtl.top for s in built.values()], folder / "glue")["resources"]
        first = chain[0][0]
        seg0 = next(s for s in self.manifest["segments"] if s["name"] == first.name)
        pixels = golden_streams(self.ctx, self.manifest, [seg0], images)[first.name]["in"]  # any folding's input
        words = pixels.reshape(-1, rtl.input.elems)
        serial = sum(s.finn_cycles for s in built.values())
        run = simulate_design(rtl, words, golden, [("free_running", 0, 0)], 1, 2 * images * serial + 1_000_000)
        free = run["free_running"]
        clock_hz = 1e9 / self.ctx.config.hardware.clock_ns()
        total = {k: sum(int(s.resources.get(k, 0)) for s in built.values()) + int(glue.get(k, 0))
                 for k in ("LUT", "LUTRAM", "FF", "DSP", "BRAM18")}
        board_luts = load_board(self.ctx.config.hardware.board).resources["LUT"]
        heads = sum(luts(built[h].resources) for _, h in topo.stages() if h)
        self.designs[key] = {
            "exits_built": list(design.exits_built), "buffer_frames": buffer_frames,
            "synthesized": total, "luts": luts(total), "heads_share_of_luts": round(heads / luts(total), 4),
            "glue": glue, "images": images, "mismatched_images": free["mismatched_images"],
            "steady_cycles_per_image": free["steady_cycles_per_image"],
            "images_per_second_rtl": round(clock_hz / free["steady_cycles_per_image"], 1),
            "model": {"fps": round(design.fps, 1), "resources": {k: round(v, 1) for k, v in design.resources.items()}},
            "segments": {n: {"cycles_finn": built[n].finn_cycles, "synthesized": built[n].resources,
                             "folding": design.choice[n].folding} for n in names},
            "board_share_of_luts": round(luts(total) / board_luts, 4),
            "compile_seconds": run["compile_seconds"], "simulate_seconds": run["simulate_seconds"],
            "seconds": round(time.time() - t0, 1), "folder": str(folder)}
        if not design.exits_built:  # the chain alone: each segment's own pace too (what FIFOs between them allow)
            self.designs[key]["segments_alone"] = self.segments_alone(names, built)
            slowest = max(r["cycles_per_frame"] for r in self.designs[key]["segments_alone"].values())
            self.designs[key]["images_per_second_segments_alone"] = round(clock_hz / slowest, 1)
        (folder / "row.json").write_text(json.dumps(self.designs[key]))
        return self.designs[key]

    def segments_alone(self, names: list[str], built: dict) -> dict:
        """Each segment of a chain simulated alone in RTL, free-running and with stalls, on
        SEGMENT_IMAGES test images against golden: its cycles per frame (steady state) and
        mismatched images."""
        from btsee.steps.rtl import _simulate_segment, golden_streams

        out = {}
        for n in names:
            seg = dict(next(s for s in self.manifest["segments"] if s["name"] == n),
                       folded_file=str(built[n].rtl.out_dir.parent / "finn" / "intermediate_models"
                                       / "step_generate_estimate_reports.onnx"))
            golden = golden_streams(self.ctx, self.manifest, [seg], SEGMENT_IMAGES)[n]
            r = _simulate_segment(built[n].rtl, built[n].rtl.out_dir.parent / "alone", golden, built[n].finn_cycles)
            out[n] = {"cycles_per_frame": r["free_running"]["cycles_per_frame"], "finn_cycles": built[n].finn_cycles,
                      "mismatched_images": r["free_running"]["mismatched_images"] + r["stalled"]["mismatched_images"]}
        return out


def within(res: dict, limits: dict) -> bool:
    """Synthesized resources `res` within `limits` on LUT + LUTRAM, DSP and BRAM18 each."""
    return luts(res) <= luts(limits) and res["DSP"] <= limits["DSP"] and res["BRAM18"] <= limits["BRAM18"]


def summary(d: dict | None) -> dict | None:
    """A design's row without its per-segment detail."""
    return d and {k: v for k, v in d.items() if k != "segments"}


def no_exit_fps(d: dict) -> float:
    """A no-exit design's images/s: the faster of its whole chain in RTL and its slowest
    segment alone in RTL (the chain's pace with FIFOs between segments, which our top level
    does not insert): the comparison never shortchanges the backbone alone."""
    return max(d["images_per_second_rtl"], d.get("images_per_second_segments_alone", 0.0))


def mismatches(d: dict | None) -> int:
    """Images that differed from golden in a design's runs (whole design, and segments alone)."""
    if not d:
        return 0
    return d["mismatched_images"] + sum(r["mismatched_images"] for r in d.get("segments_alone", {}).values())


def ratio(a: dict | None, b: dict | None) -> float | None:
    """Early-exit images/s (`a`, RTL) over the no-exit design's (`b`, `no_exit_fps`)."""
    return round(a["images_per_second_rtl"] / no_exit_fps(b), 3) if a and b else None
