"""Small, named fixes to copies of finn-rtllib 1.6.1 sources: constructs the open tools
refuse (Verilator 5.48, yosys-slang), where the logic is unchanged; one functional bug
(`mvu_output_queue_two_deeper`); and resource fixes that keep every stream and cycle the
same (`dwc_vector_of_least_common_multiple`, `memstream_output_shift_register_per_bit`).
The installed package is never edited: `patch_library_file` is applied when the segment
generator copies a file. Each patch checks that the text it replaces is there, so a
finn-plus update that changes the file fails loudly instead of silently skipping the fix."""
from __future__ import annotations

from typing import Callable

from calib.errors import BtseeError

PATCHES: dict[str, list[Callable[[str], str]]] = {}
"""file name -> the patches applied to it, in order."""


def patch_library_file(name: str, text: str) -> str:
    """`text` of the library file `name` with its patches applied (unchanged if it has none);
    a PatchError names the file when one no longer applies."""
    for patch in PATCHES.get(name, []):
        try:
            text = patch(text)
        except PatchError as e:
            raise PatchError(f"finn-rtllib {name}: {e}") from e
    return text


class PatchError(BtseeError):
    """A library file no longer holds the text a patch replaces (another finn-plus version)."""


def _replace_once(text: str, old: str, new: str, patch: str) -> str:
    if text.count(old) != 1:
        raise PatchError(f"{patch}: the text it fixes occurs {text.count(old)} times (expected once); "
                         "finn-rtllib changed, check the patch")
    return text.replace(old, new)


def add_multi_function_to_module_scope(text: str) -> str:
    """add_multi.sv declares its constant function `init_leaf_loads` (and its typedef) inside
    a generate block, which IEEE 1800 §13.4.3 does not allow; Verilator cannot evaluate it
    as a constant ("can't determine constant for FUNCREF") and yosys-slang refuses it.
    Moves both, unchanged, to module scope."""
    start = text.find("\t\t// Compute the count of decendents")
    end_marker = "endfunction : init_leaf_loads\n"
    end = text.find(end_marker, max(start, 0))
    if start < 0 or end < 0:
        raise PatchError("add_multi_function_to_module_scope: init_leaf_loads not found where expected")
    block = text[start:end + len(end_marker)]
    text = text[:start] + text[end + len(end_marker):]
    module_scope = "\n".join(line[1:] if line.startswith("\t") else line for line in block.splitlines()) + "\n"
    anchor = "\tuwire [SUM_WIDTH-1:0]  sum0;\n"
    return _replace_once(text, anchor, module_scope + "\n" + anchor, "add_multi_function_to_module_scope")


PATCHES["add_multi.sv"] = [add_multi_function_to_module_scope]


def mvu_output_queue_two_deeper(text: str) -> str:
    """mvu_vvu_axi.sv sizes its output queue for CORE_PIPELINE_DEPTH = 3 + clog2(SIMD+1)
    results in flight, but the core (mvu.sv) pipelines its results 3 + clog2(SIMD) + 1 deep,
    one more whenever SIMD is not a power of two (SIMD = 9: 8, not 7); and the lock that stops
    new input on backpressure is registered, so one more result enters in the cycle it is
    set. When an MVU emits a result every cycle (MW == SIMD, as in our first convolution) and
    its consumer lowers TREADY for several cycles, the queue overflows: the simulation stops
    at the library's own assertion ("Overflowing output queue"), and with assertions off
    results are lost (measured on backbone_0 under 30 % output stalls: 287,600 of 288,000
    words). A functional fix, not a tool quirk: the queue must hold the one result queued
    before the lock, the one taken while it is registered and the core's 3 + clog2(SIMD) + 1
    in flight, which MAX_IN_FLIGHT = CORE_PIPELINE_DEPTH + 2 covers for every SIMD (one more
    entry was measured to overflow still). Cost: two SRL stages more per output bit."""
    return _replace_once(text, "localparam int unsigned  MAX_IN_FLIGHT = CORE_PIPELINE_DEPTH;",
                         "localparam int unsigned  MAX_IN_FLIGHT = CORE_PIPELINE_DEPTH + 2;  "
                         "// btsee patch: see hw/rtl/patches.py",
                         "mvu_output_queue_two_deeper")


PATCHES["mvu_vvu_axi.sv"] = [mvu_output_queue_two_deeper]


def vpc_default_nettype_outside_module(text: str) -> str:
    """vpc.sv (the width converter's core) sets `default_nettype none` inside its module and
    `default_nettype wire` before its end; yosys-slang refuses compiler directives inside a
    design element ("directive is not allowed inside a design element"). Drops both: the
    pair only makes the file stricter to compile, the logic is the same."""
    text = _replace_once(text, ");\n`default_nettype none\n", ");\n", "vpc_default_nettype_outside_module")
    return _replace_once(text, "`default_nettype wire\nendmodule : vpc", "endmodule : vpc",
                         "vpc_default_nettype_outside_module")


PATCHES["vpc.sv"] = [vpc_default_nettype_outside_module]


def dwc_vector_of_least_common_multiple(text: str) -> str:
    """dwc_axi.sv (FINN's RTL width converter) hands its core, vpc.sv, vectors of IBITS x
    OBITS one-bit elements. vpc moves each vector on its own, padding its last beats, and
    sizes its counters and its output selection for the vector: a vector of lcm(IBITS,
    OBITS) bits is the smallest that both widths divide, so it needs no padding either, and
    the stream in and out is the same bit for bit and cycle for cycle (one vector of IBITS x
    OBITS bits is gcd(IBITS, OBITS) of them in a row). Yosys for xc7, vpc alone: 208 -> 13
    bits 1,530 -> 229 LUT, 240 -> 15 bits 1,723 -> 263, 112 -> 14 bits 628 -> 134
    (`tests/test_dwc_patch.py` checks streams, pace and the cost)."""
    function = ("\t// btsee patch: see hw/rtl/patches.py (dwc_vector_of_least_common_multiple)\n"
                "\tfunction automatic int unsigned lcm_bits(input int unsigned  a, input int unsigned  b);\n"
                "\t\tautomatic int unsigned  x = a;\n"
                "\t\tautomatic int unsigned  y = b;\n"
                "\t\tautomatic int unsigned  r;\n"
                "\t\twhile(y != 0) begin\n"
                "\t\t\tr = x % y;\n"
                "\t\t\tx = y;\n"
                "\t\t\ty = r;\n"
                "\t\tend\n"
                "\t\treturn  a / x * b;\n"
                "\tendfunction : lcm_bits\n\n")
    return _replace_once(text, "\tvpc #(.W(1), .N(IBITS * OBITS), .PI(IBITS), .PO(OBITS)) core (",
                         function + "\tvpc #(.W(1), .N(lcm_bits(IBITS, OBITS)), .PI(IBITS), .PO(OBITS)) core (",
                         "dwc_vector_of_least_common_multiple")


PATCHES["dwc_axi.sv"] = [dwc_vector_of_least_common_multiple]


def memstream_output_shift_register_per_bit(text: str) -> str:
    """memstream.sv (each MVU's weight stream) keeps the words in flight in a shift register
    of FULL_CREDIT - 1 words, read at a moving address: `data_t OSrl[FULL_CREDIT-1]` with
    `ODat <= OSrl[OPtr]`, meant for SRL primitives (its SHREG_EXTRACT attribute). Yosys
    finds no shift register in an unpacked array of words, so every word became flip-flops
    and a 7:1 multiplexer per bit (head_0's 192-bit weight stream: 1,757 FF and 783 LUT).
    Writes the same register as one shift register per bit (`Srl`, newest at bit 0, as
    OSrl[0] is the newest word) read at the same address; with `bmux_to_shiftx.v` in the
    synthesis script each bit is one SRL16E (192 LUTRAM, 413 FF, 15 LUT). The words out
    and their cycles are the same (`tests/test_memstream_patch.py`)."""
    text = _replace_once(text, "\t\t(* SHREG_EXTRACT = \"yes\" *)\n\t\tdata_t  OSrl[FULL_CREDIT-1];\n"
                         "\t\tlogic [$clog2(FULL_CREDIT):0]  OPtr = -1;\n"
                         "\t\talways_ff @(posedge clk) begin\n"
                         "\t\t\tif(Rs3)  OSrl <= { Dat3, OSrl[0:FULL_CREDIT-3] };\n"
                         "\t\tend\n",
                         "\t\t// btsee patch: see hw/rtl/patches.py (memstream_output_shift_register_per_bit)\n"
                         "\t\tlogic [$clog2(FULL_CREDIT):0]  OPtr = -1;\n"
                         "\t\tdata_t  OSrlOut;\n"
                         "\t\tfor(genvar  i = 0; i < WIDTH; i++) begin : genSrl\n"
                         "\t\t\t(* SHREG_EXTRACT = \"yes\" *)\n"
                         "\t\t\tlogic [FULL_CREDIT-2:0]  Srl;\n"
                         "\t\t\talways_ff @(posedge clk) begin\n"
                         "\t\t\t\tif(Rs3)  Srl <= { Srl[FULL_CREDIT-3:0], Dat3[i] };\n"
                         "\t\t\tend\n"
                         "\t\t\tassign\tOSrlOut[i] = Srl[OPtr[$left(OPtr)-1:0]];\n"
                         "\t\tend : genSrl\n",
                         "memstream_output_shift_register_per_bit")
    return _replace_once(text, "\t\t\t\tODat <= OSrl[OPtr];\n", "\t\t\t\tODat <= OSrlOut;\n",
                         "memstream_output_shift_register_per_bit")


PATCHES["memstream.sv"] = [memstream_output_shift_register_per_bit]


def mvu_watchdog_for_simulation_only(text: str) -> str:
    """mvu.sv's start-up watchdog waits `#100ns` in an initial block inside the design, a
    simulation-only check that synthesis refuses ("unsynthesizable timing control"). Fences
    it with `ifndef SYNTHESIS` (Yosys runs with SYNTHESIS defined; Verilator keeps it)."""
    text = _replace_once(text, "\tif(1) begin : blkRecoveryWatch", "`ifndef SYNTHESIS  // btsee patch\n"
                         "\tif(1) begin : blkRecoveryWatch", "mvu_watchdog_for_simulation_only")
    return _replace_once(text, "\tend : blkRecoveryWatch\n", "\tend : blkRecoveryWatch\n`endif\n",
                         "mvu_watchdog_for_simulation_only")


def mvu_dsp_path_in_verilator(text: str) -> str:
    """mvu.sv keeps its DSP datapath away from Verilator with three guards: `ifdef VERILATOR`
    forces BEHAVIORAL (a plain `*` per product), and `ifndef VERILATOR` fences both the
    LUT6_2 that builds the packed products' corrections and the DSP48E1/E2/DSP58 generate
    block. So a Verilator run never simulated the datapath that synthesis builds (several
    products packed into one DSP48E1 and corrected). Lifts all three: with simulation models
    of DSP48E1 and LUT6_2 (`hw.rtl.primitives`) Verilator runs the built datapath. The logic
    that synthesis sees is unchanged (neither guard applies to it)."""
    text = _replace_once(text, "`ifdef VERILATOR\n\t\t1 ||\n`endif\n", "", "mvu_dsp_path_in_verilator")
    text = _replace_once(text, "`ifndef VERILATOR\n\t\t\t\t\t\telse begin\n\t\t\t\t\t\t\tLUT6_2",
                         "\t\t\t\t\t\telse begin\n\t\t\t\t\t\t\tLUT6_2", "mvu_dsp_path_in_verilator")
    text = _replace_once(text, "\t\t\t\t\t\tend\n`endif\n\t\t\t\t\tend\n",
                         "\t\t\t\t\t\tend\n\t\t\t\t\tend\n", "mvu_dsp_path_in_verilator")
    text = _replace_once(text, "`ifndef VERILATOR\n\t\t\telse begin : genDSP", "\t\t\telse begin : genDSP",
                         "mvu_dsp_path_in_verilator")
    return _replace_once(text, "\t\t\tend : genDSP\n`endif\n", "\t\t\tend : genDSP\n",
                         "mvu_dsp_path_in_verilator")


PATCHES["mvu.sv"] = [mvu_watchdog_for_simulation_only, mvu_dsp_path_in_verilator]


def thresholding_scope_by_generate(text: str) -> str:
    """thresholding.sv computes `Scope` with `(SCOPE_REDUCE == 0)? 1 : p.ptr[M-1:SN+1] < ...`:
    at stage 0 the branch not taken holds a reversed part-select (ptr[M-1:M]), which
    yosys-slang rejects as an unsynthesizable feature. Makes the same choice with a
    generate-if, so that only the branch taken is elaborated."""
    old = "Scope <= (SCOPE_REDUCE == 0)? 1 : p.ptr[M-1:SN+1] < 2**stage - SCOPE_REDUCE;"
    text = _replace_once(text, old, "Scope <= scope_in;", "thresholding_scope_by_generate")
    anchor = "\t\t\tlogic  Scope = 'x;\t// Comparison in scope of specified threshold count\n"
    scope = ("\t\t\tuwire  scope_in;  // btsee patch: see hw/rtl/patches.py\n"
             "\t\t\tif(SCOPE_REDUCE == 0) begin : genScopeAll\n\t\t\t\tassign  scope_in = 1;\n"
             "\t\t\tend : genScopeAll\n\t\t\telse begin : genScopeCmp\n"
             "\t\t\t\tassign  scope_in = p.ptr[M-1:SN+1] < 2**stage - SCOPE_REDUCE;\n"
             "\t\t\tend : genScopeCmp\n")
    return _replace_once(text, anchor, anchor + scope, "thresholding_scope_by_generate")


def thresholding_block_rom_for_yosys(text: str) -> str:
    """thresholding.sv asks for block RAM (DEPTH_TRIGGER_BRAM, FINN's `depth_trigger_bram`)
    with Vivado's attribute `RAM_STYLE = "block"` on each stage's threshold memory. Yosys
    reads only lower-case `ram_style`/`rom_style`, and the memory is a ROM (no writes without
    the configuration interface), so Yosys kept every threshold in LUT logic whatever the
    trigger said (head_1's first Thresholding_rtl at a trigger of 64: 310 LUTs either way).
    Adds `rom_style = "block"` where the library chose block RAM and Yosys's own choice
    ("auto") elsewhere: with the patch the same layer is 74 LUTs and 4 RAMB18E1, and
    without a trigger it is unchanged. Vivado's attribute stays as it was."""
    old = '(* DONT_TOUCH = USE_CONFIG? "TRUE" : "FALSE", RAM_STYLE = RAM_STYLE *)'
    new = ('(* DONT_TOUCH = USE_CONFIG? "TRUE" : "FALSE", RAM_STYLE = RAM_STYLE, '
           'rom_style = RAM_STYLE == "block"? "block" : "auto" *)  // btsee patch: see hw/rtl/patches.py')
    return _replace_once(text, old, new, "thresholding_block_rom_for_yosys")


PATCHES["thresholding.sv"] = [thresholding_scope_by_generate, thresholding_block_rom_for_yosys]
