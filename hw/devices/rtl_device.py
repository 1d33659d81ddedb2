"""The RTL device: Verilator simulation of the package's whole multi-exit design (host only).

The package's rtl/ folder holds the design's sources and memory images as the `rtl` step
verified them. The input DMA buffer is read as AXI DMA puts it on the stream (byte 0 on
TDATA[7:0]), the decision words come back as the DMA would write them, and the simulated
clock cycles from the first pixel to the last decision are reported. Meant for small
batches: a thousand images of the default design take minutes.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from boards.device import Device
from boards.package import RTL_FOLDER, DeployPackage, PackageError
from boards.streams import decision_words_to_buffer, words_from_buffer

SIM_SEED = 1


class RtlDevice(Device):
    name = "rtl"

    def __init__(self, package: DeployPackage, batch: int, build: Path | None = None):
        """`build`: the folder for the compiled simulation, reused when it holds a build of the
        same sources (hw.rtl.tools.verilate_cached); a temporary folder by default."""
        super().__init__(package, batch)
        from hw.rtl.multi_exit import MultiExitRtl
        from hw.rtl.stream import TESTBENCH_TOP
        from hw.rtl.dsp_path import compile_for_simulation

        self.design = MultiExitRtl.load(package.path(RTL_FOLDER))
        if self.design.input.elems != self.layout.elems or self.design.input.bits != self.layout.bits:
            raise PackageError(f"{package.path(RTL_FOLDER)}: the design's input ({self.design.input.elems} x "
                               f"{self.design.input.bits} bits) is not the driver's ({self.layout.elems} x "
                               f"{self.layout.bits} bits)")
        self._scratch = Path(tempfile.mkdtemp(prefix="btsee-rtl-device-"))
        self.binary, self.compiled = compile_for_simulation(
            TESTBENCH_TOP, self.design.testbench(), self.design.paths(),
            Path(build).resolve() if build else self._scratch / "build")
        self._cycles = self._images = 0
        self.hang_cycles_per_image = 2 * int(package.driver["serial_cycles_per_image"])

    def transfer(self, in_buffer: np.ndarray, images: int) -> np.ndarray:
        from hw.rtl.stream import simulate_streams

        sim = self._scratch / "sim"
        if sim.exists():
            shutil.rmtree(sim)
        sim.mkdir()
        for f in self.design.data_files:
            shutil.copyfile(self.design.out_dir / "src" / f, sim / f)
        words = words_from_buffer(in_buffer, self.layout)  # (images * words, elems), as TDATA carries them
        run = simulate_streams(self.binary, sim, {self.design.input_port(): words}, {self.design.output_port(): images},
                               seed=SIM_SEED, max_cycles=images * self.hang_cycles_per_image + 1_000_000,
                               subject=self.design.out_dir / "src" / f"{self.design.top}.sv")
        self._cycles += int(run.cycles["out0_V"][-1] - run.start_cycle)
        self._images += images
        return decision_words_to_buffer(run.outputs["out0_V"][:, 0], self.layout)

    def extra(self) -> dict:
        """Simulated clock cycles (first pixel in to last decision out, summed over batches) and
        the images per second they mean at the design's clock."""
        cycles, images, self._cycles, self._images = self._cycles, self._images, 0, 0
        mhz = float(self.package.driver["clock_mhz"])
        return {"simulated_cycles": cycles, "clock_mhz": mhz, "compiled_now": self.compiled,
                "simulated_images_per_second": round(images * mhz * 1e6 / cycles, 1) if cycles else None}

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)
