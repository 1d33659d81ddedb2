"""Thresholds in block RAM (`hardware.threshold_bram_depth`, FINN's `depth_trigger_bram`,
and `hw.rtl.patches.thresholding_block_rom_for_yosys`): finn-rtllib's thresholding core with
a depth trigger synthesizes its deep stage memories to RAMB18E1 and fewer LUTs only with
the patch (the copy without it has our other thresholding patch, without which Yosys cannot
read the file); without a trigger the patch changes nothing. (That the RTL with thresholds in
block RAM computes the same: the tiny run sets a trigger, and its netlists are simulated
against golden in tests/test_rtl_flow.py.)"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import finn_rtllib

from hw.rtl import patches

K, N, C = 12, 15, 64
"""Input bits, thresholds and channels of head_1's first Thresholding_rtl in the default run
(PE = 1): four stage memories of 64, 128, 256 and 512 words."""
STAGES = 4


def _sources(folder: Path, patched: bool, trigger: int) -> tuple[list[Path], list[Path]]:
    """(sources, data files): thresholding.sv (patched, or with the scope patch only), a top instantiating it
    with thresholds from files and no configuration interface, and one file per stage."""
    folder.mkdir(parents=True, exist_ok=True)
    text = finn_rtllib("thresholding", "hdl", "thresholding.sv").read_text()
    (folder / "thresholding.sv").write_text(patches.patch_library_file("thresholding.sv", text) if patched
                                            else patches.thresholding_scope_by_generate(text))
    rng = np.random.default_rng(3)
    thresholds = np.sort(rng.integers(-(1 << (K - 1)), 1 << (K - 1), (C, N)), axis=1)  # (C, N) ascending
    data = []
    for stage in range(STAGES):  # stage s holds, per channel, the 2**s thresholds its search level compares
        picks = [(2 * j + 1) * (1 << (STAGES - 1 - stage)) - 1 for j in range(1 << stage)]
        words = thresholds[:, picks].reshape(-1) & ((1 << K) - 1)  # (C * 2**stage,)
        path = folder / f"threshs_0_{stage}.dat"
        path.write_text("".join(f"{int(w):03x}\n" for w in words))
        data.append(path)
    (folder / "thr_dut.sv").write_text(f"""module thr_dut(input logic clk, rst, input logic ivld,
  input logic [{K - 1}:0] idat, output logic irdy, input logic ordy, output logic ovld, output logic [3:0] odat);
  thresholding #(.K({K}), .N({N}), .C({C}), .PE(1), .SIGNED(1), .THRESHOLDS_PATH("./"), .USE_CONFIG(0),
                 .DEPTH_TRIGGER_BRAM({trigger})) core (
    .clk(clk), .rst(rst), .cfg_en(1'b0), .cfg_we(1'b0), .cfg_a('0), .cfg_d('0), .cfg_rack(), .cfg_q(),
    .irdy(irdy), .ivld(ivld), .iset('0), .idat(idat), .ordy(ordy), .ovld(ovld), .odat(odat));
endmodule
""")
    return [folder / "thresholding.sv", folder / "thr_dut.sv"], data


def _resources(folder: Path, patched: bool, trigger: int) -> dict:
    from hw.rtl.synth import synthesize_files

    sources, data = _sources(folder / "src", patched, trigger)
    return synthesize_files("thr_dut", sources, folder / "synth", data_files=data)["resources"]


@pytest.mark.parametrize("trigger, block_rams", [(64, 4), (128, 3)])
def test_the_trigger_puts_deep_stages_in_block_ram_only_with_the_patch(tmp_path, trigger, block_rams):
    plain = _resources(tmp_path / "scope_only", False, trigger)
    patched = _resources(tmp_path / "patched", True, trigger)
    assert plain["BRAM18"] == 0, plain  # Yosys ignores Vivado's RAM_STYLE: the reason for the patch
    assert patched["BRAM18"] == block_rams, patched  # one per stage of at least `trigger` words
    assert patched["LUT"] < plain["LUT"] / 2, (plain, patched)


def test_without_a_trigger_the_patch_changes_nothing(tmp_path):
    assert _resources(tmp_path / "scope_only", False, 0) == _resources(tmp_path / "patched", True, 0)
