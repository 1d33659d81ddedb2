"""The deployment steps: `bitstream` (the Vivado build folder of the RTL-verified multi-exit
design, built when Vivado is on PATH) and `package` (the deploy folder the board runtime
opens: bitstream and hardware handoff when built, thresholds, the driver's stream formats,
test images with the golden simulator's expected class and exit index, a hashed manifest)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from boards import board_file, load_board
from btsee.flow import Context
from btsee.report import update_report
from btsee.run_folder import (BITSTREAM_FILE, DATAFLOW_MANIFEST, FOLD_MANIFEST, PACKAGE_MANIFEST, RTL_FILE,
                              THRESHOLDS_FILE, read_json, read_manifest)
from calib.atomic import atomic_write_json
from calib.schema import sha256_of

BUILD_FOLDER = "bitstream"
PACKAGE_FOLDER = "package"
NO_DESIGN = ("no bitstream: the rtl step built no whole multi-exit design (report.json rtl.multi_exit.not_covered "
             "says why)")
PACKAGE_IMAGES = 200
"""Test images in the package, with the golden simulator's class and exit index for each."""


def vivado_on_path() -> str | None:
    return shutil.which("vivado")


def missing_vivado_message(build: Path, board: str) -> str:
    """The one message `make bitstream` prints without Vivado."""
    return (f"Vivado is not on PATH: the build folder {build} is complete (sources, block design, build.tcl) "
            f"but no bitstream was built for {board}. On a machine with Vivado 2022.1 or later run: "
            f"cd {build} && vivado -mode batch -source build.tcl")


def whole_design(ctx: Context):
    """The rtl step's whole multi-exit design (MultiExitRtl), or None when it built none."""
    from btsee.steps.rtl_design import DESIGN_FOLDER
    from hw.rtl.multi_exit import MultiExitRtl

    return MultiExitRtl.load(ctx.out / DESIGN_FOLDER) if read_json(ctx.out, RTL_FILE).get("multi_exit") else None


def step_bitstream(ctx: Context) -> Context:
    """The build folder of the whole design (rtl step) for the board; Vivado runs when present."""
    from hw.vivado.project import run_vivado, vivado_version, write_build_folder

    h = ctx.config.hardware
    board = load_board(h.board)
    folder = ctx.out / BUILD_FOLDER
    design = whole_design(ctx)
    if design is None:
        doc = {"board": board.name, "part": board.part, "build_script": "", "sources": 0, "vivado": None,
               "built": False, "missing": NO_DESIGN}
        ctx.log(f"  {NO_DESIGN}")
        atomic_write_json(ctx.out / BITSTREAM_FILE, doc)
        update_report(ctx.out, {"bitstream": {k: doc[k] for k in ("board", "built", "vivado", "missing")}})
        return ctx
    manifest = read_manifest(ctx.out, FOLD_MANIFEST)
    build = write_build_folder(design, board, h.clock_ns(), manifest["segments"], ctx.out, folder)
    for stale in (build.bitstream, build.hardware_handoff):
        stale.unlink(missing_ok=True)
    vivado = vivado_on_path()
    doc = {"board": board.name, "part": board.part, "build_script": str(build.build_script.relative_to(ctx.out)),
           "sources": len(build.sources), "vivado": None, "built": False}
    if vivado:
        version = vivado_version(vivado)
        ctx.log(f"  Vivado {version[0]}.{version[1]}: building {build.bitstream.name} (this takes a while)")
        run_vivado(build, vivado)
        doc.update(vivado=f"{version[0]}.{version[1]}", built=True,
                   bitstream=str(build.bitstream.relative_to(ctx.out)), bitstream_sha256=sha256_of(build.bitstream),
                   hardware_handoff=str(build.hardware_handoff.relative_to(ctx.out)))
    else:
        doc["missing"] = missing_vivado_message(folder, board.name)
        ctx.log(f"  {doc['missing']}")
    atomic_write_json(ctx.out / BITSTREAM_FILE, doc)
    update_report(ctx.out, {"bitstream": {k: doc[k] for k in ("board", "built", "vivado", "build_script")}})
    return ctx


def step_package(ctx: Context) -> Context:
    """The deploy folder: everything the board runtime needs (boards/package.py names the
    files), each file's SHA-256 in manifest.json."""
    from boards.package import (BITSTREAM, DRIVER, GOLDEN_FOLDER, HARDWARE_HANDOFF, RTL_FOLDER, TEST_VECTORS,
                                THRESHOLDS, package_files)
    from btsee.steps.common import load_splits
    from btsee.steps.rtl_design import golden_design_result

    h = ctx.config.hardware
    board = load_board(h.board)
    built = read_json(ctx.out, BITSTREAM_FILE)
    design = whole_design(ctx)
    folder = ctx.out / PACKAGE_FOLDER
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    files = {THRESHOLDS: ctx.out / THRESHOLDS_FILE, "board.json": board_file(board.name)}
    if built["built"]:
        files[BITSTREAM] = ctx.out / built["bitstream"]
        files[HARDWARE_HANDOFF] = ctx.out / built["hardware_handoff"]
    for name, src in files.items():
        shutil.copyfile(src, folder / name)
    _copy_golden_graphs(ctx, folder / GOLDEN_FOLDER)
    if design is not None:
        shutil.copytree(design.out_dir / "src", folder / RTL_FOLDER / "src")
        shutil.copyfile(design.out_dir / "multi_exit.json", folder / RTL_FOLDER / "multi_exit.json")
    test = load_splits(ctx).test
    images = test.images[:PACKAGE_IMAGES]  # (n, C, H, W) uint8
    n = len(images)
    expected, _, _ = golden_design_result(ctx, n)
    np.savez(folder / TEST_VECTORS, images=images, labels=np.asarray(test.labels[:n], np.int64),
             classes=expected.classes.astype(np.int64), exit_index=expected.exit_index.astype(np.int64))
    serial = sum(int(s["estimate"]["cycles_per_frame"]) for s in read_manifest(ctx.out, FOLD_MANIFEST)["segments"])
    atomic_write_json(folder / DRIVER, driver_inputs(board, design, h.clock_ns(), built["built"], images.shape[1:],
                                                     serial))
    manifest_path = ctx.out / PACKAGE_MANIFEST
    manifest = {"files": {name: sha256_of(folder / name) for name in package_files(folder)},
                "images": n, "bitstream_built": built["built"], "board": board.name}
    atomic_write_json(manifest_path, manifest)
    ctx.log(f"  {folder}: {len(manifest['files'])} files ({'with' if built['built'] else 'without'} a bitstream), "
            f"{n} test images with the golden class and exit index")
    update_report(ctx.out, {"package": {"folder": PACKAGE_FOLDER, "files": len(manifest["files"]),
                                        "images": n, "bitstream_built": built["built"]}})
    return ctx


def _copy_golden_graphs(ctx: Context, folder: Path) -> None:
    """The dataflow step's integer graph of every segment into `folder`, with a manifest in
    the dataflow manifest's form (paths relative to the package): the virtual device's model."""
    folder.mkdir()
    segments = []
    for seg in read_manifest(ctx.out, DATAFLOW_MANIFEST)["segments"]:
        name = f"{seg['name']}.onnx"
        shutil.copyfile(ctx.out / seg["hw_file"], folder / name)
        segments.append({"name": seg["name"], "kind": seg["kind"], "source": seg["source"],
                         "input_type": seg.get("input_type"), "hw_file": f"{folder.name}/{name}"})
    atomic_write_json(folder / "manifest.json", {"segments": segments})


INPUT_ORDER = "NHWC"
"""Pixel order of the input stream (FINN's layout after the input Transpose); the RTL
device's agreement with the golden outputs in the board tests checks it."""


def driver_inputs(board, design, clock_ns: float, built: bool, image_shape: tuple[int, ...],
                  serial_cycles: int) -> dict:
    """What the board driver needs to stream images through `design` (a MultiExitRtl, or None
    when the rtl step built no whole design): word formats, the decision layout, the DMA."""
    from hw.vivado.project import DMA_LENGTH_BITS, dma_width

    if design is None:
        return {"board": board.name, "ps": board.ps, "design": None, "why": NO_DESIGN}
    return {"board": board.name, "ps": board.ps, "clock_mhz": 1000.0 / clock_ns, "design": design.top,
            "input": {"image_shape": [int(d) for d in image_shape], "order": INPUT_ORDER,
                      "elems": design.input.elems, "bits": design.input.bits, "signed": design.input.signed,
                      "width": design.input.width, "words_per_image": design.input.words_per_frame,
                      "dma_bytes": dma_width(design.input.width) // 8},
            "output": {"width": design.output_width, "class_bits": design.class_bits, "exits": design.exits,
                       "classes": design.classes, "dma_bytes": dma_width(design.output_width) // 8,
                       "layout": "bits [class_bits-1:0] the class, the bits above it the exit index"},
            "dma": {"ip": "dma", "batch_gpio": "batch", "length_bits": DMA_LENGTH_BITS,
                    "tlast_every": "batch decision words"},
            "serial_cycles_per_image": serial_cycles,
            "bitstream_built": built}
