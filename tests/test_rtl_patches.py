"""The named fixes to copies of finn-rtllib sources: each applies to the installed
finn-plus file, changes what it says and nothing else, and fails loudly on a file that
no longer holds the text it fixes. The installed files stay untouched."""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from conftest import finn_rtllib

from hw.rtl import patches

LIBRARY_FILES = {"add_multi.sv": "mvu", "dwc_axi.sv": "dwc/hdl", "memstream.sv": "memstream/hdl",
                 "mvu_vvu_axi.sv": "mvu", "mvu.sv": "mvu", "vpc.sv": "dwc/hdl", "thresholding.sv": "thresholding/hdl"}


def _library(name: str) -> Path:
    return finn_rtllib(LIBRARY_FILES[name], name)


def _changed_lines(before: str, after: str) -> list[str]:
    return [d for d in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if d[:1] in "+-" and not d.startswith(("+++", "---"))]


def test_every_patched_file_is_known():
    assert set(patches.PATCHES) == set(LIBRARY_FILES)


@pytest.mark.parametrize("name", sorted(LIBRARY_FILES))
def test_patch_applies_to_the_installed_file(name):
    path = _library(name)
    before = path.read_text()
    after = patches.patch_library_file(name, before)
    assert after != before
    assert path.read_text() == before  # the installed package is never edited
    assert 0 < len(_changed_lines(before, after)) <= 30


def test_add_multi_function_leaves_the_generate_block():
    after = patches.patch_library_file("add_multi.sv", _library("add_multi.sv").read_text())
    function_at = after.index("function leaf_load_t init_leaf_loads()")
    assert function_at < after.index("if(L < 1) begin : genTrivial")  # at module scope, before the generate
    assert after.count("function leaf_load_t init_leaf_loads()") == 1


def test_mvu_queue_is_two_entries_deeper():
    after = patches.patch_library_file("mvu_vvu_axi.sv", _library("mvu_vvu_axi.sv").read_text())
    assert "MAX_IN_FLIGHT = CORE_PIPELINE_DEPTH + 2;" in after


def test_watchdog_is_fenced_for_synthesis():
    after = patches.patch_library_file("mvu.sv", _library("mvu.sv").read_text())
    fenced = after[after.index("`ifndef SYNTHESIS"):after.index("`endif", after.index("`ifndef SYNTHESIS"))]
    assert "#100ns" in fenced


def test_mvu_dsp_path_is_no_longer_fenced_from_verilator():
    """The three Verilator guards are gone, the DSP generate block and the LUT6_2 correction
    are intact, and BEHAVIORAL follows FORCE_BEHAVIORAL alone."""
    before = _library("mvu.sv").read_text()
    after = patches.patch_library_file("mvu.sv", before)
    assert before.count("VERILATOR") == 3 and "VERILATOR" not in after
    assert "else begin : genDSP" in after and "LUT6_2 #(.INIT(64'h0000_6AC0_0000_8888)) lut_x" in after
    assert "localparam bit  BEHAVIORAL =\n\t\tFORCE_BEHAVIORAL;" in after
    assert after.count("`ifdef") + after.count("`ifndef") == after.count("`endif")


def test_vpc_and_thresholding_fixes():
    vpc = patches.patch_library_file("vpc.sv", _library("vpc.sv").read_text())
    assert "`default_nettype" not in vpc
    th = patches.patch_library_file("thresholding.sv", _library("thresholding.sv").read_text())
    assert "genScopeCmp" in th and "Scope <= (SCOPE_REDUCE == 0)?" not in th


@pytest.mark.parametrize("name", sorted(LIBRARY_FILES))
def test_a_changed_library_file_is_refused(name):
    with pytest.raises(patches.PatchError, match=r"\w+"):
        patches.patch_library_file(name, "module changed; endmodule\n")


def test_files_without_patches_pass_unchanged():
    assert patches.patch_library_file("swg_pkg.sv", "text") == "text"
