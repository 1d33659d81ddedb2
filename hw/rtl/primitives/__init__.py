"""Xilinx 7-series primitive models for simulating Yosys netlists in Verilator: Yosys's
cells_sim.v with behavioural block RAMs (bram.sv) in place of its empty RAMB18E1/RAMB36E1
and single-select LUTs (luts.sv) in place of its mux trees."""
from hw.rtl.primitives.models import (BRAM_MODEL, LUT_MODEL, LUT_REPLACED, PRIMITIVE_SOURCES, cells_sim,
                                      extract_modules, netlist_library, strip_modules)

__all__ = ["BRAM_MODEL", "LUT_MODEL", "LUT_REPLACED", "PRIMITIVE_SOURCES", "cells_sim", "extract_modules",
           "netlist_library", "strip_modules"]
