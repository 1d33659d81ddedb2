"""Boards as data (one file per board) and the board-side driver (numpy + pynq only).

A board is `boards/<name>.json`: its FINN board name, FPGA part and family, the Vivado IP
of its processing system, the default clock, the width of the DMA port and the resources
the part has (FIELDS). Adding a board is adding such a file; `load_board` checks every
field and names the one at fault.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from calib.errors import BtseeError

BOARDS_DIR = Path(__file__).resolve().parent


class BoardError(BtseeError):
    """An unknown board or a board file with a missing field; names the file or board."""


FAMILIES = {"zynq-7000": ("ps7", "xc7"), "zynq-ultrascale+": ("zynq_ultra_ps_e", "xcup")}
"""Device family -> (the Vivado IP of its processing system, Yosys's synth_xilinx family)."""
REQUIRED_RESOURCES = ("LUT", "FF", "BRAM18", "DSP")
FIELDS = {"name": str, "finn_board": str, "part": str, "family": str, "ps": str, "clock_period_ns": (int, float),
          "dma_port_width": int, "resources": dict}
"""Every field of a board file and its JSON type."""


@dataclass(frozen=True)
class Board:
    name: str
    finn_board: str
    """FINN's name for it (a key of finn.util.basic.pynq_part_map)."""
    part: str
    family: str
    """zynq-7000 or zynq-ultrascale+ (FAMILIES)."""
    ps: str
    """The processing system's Vivado IP: ps7 or zynq_ultra_ps_e."""
    clock_period_ns: float
    dma_port_width: int
    """Bits of the PS's high-performance port the DMAs use."""
    resources: dict[str, int]

    @property
    def yosys_family(self) -> str:
        return FAMILIES[self.family][1]


def available() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json"))


def board_file(name: str) -> Path:
    """The data file of board `name` (case-insensitive); an unknown board is a BoardError."""
    path = BOARDS_DIR / f"{name.lower()}.json"
    if not path.is_file():
        raise BoardError(f"unknown board {name!r}; boards are {available()} (files in {BOARDS_DIR})")
    return path


def parse_board(doc: object, where: str) -> Board:
    """A Board from a board file's JSON document; a missing, extra or wrong field is a
    BoardError naming `where` and the field."""
    if not isinstance(doc, dict):
        raise BoardError(f"{where}: a board file holds one JSON object, got {type(doc).__name__}")
    for key, kind in FIELDS.items():
        if key not in doc:
            raise BoardError(f"{where}: field {key!r} is missing (a board needs {', '.join(FIELDS)})")
        if not isinstance(doc[key], kind) or isinstance(doc[key], bool):
            raise BoardError(f"{where}: field {key!r} is {doc[key]!r}, not a {getattr(kind, '__name__', 'number')}")
    if extra := sorted(set(doc) - set(FIELDS)):
        raise BoardError(f"{where}: unknown field(s) {extra} (a board has {', '.join(FIELDS)})")
    if doc["family"] not in FAMILIES:
        raise BoardError(f"{where}: field 'family' is {doc['family']!r}; families are {sorted(FAMILIES)}")
    if doc["ps"] != FAMILIES[doc["family"]][0]:
        raise BoardError(f"{where}: field 'ps' is {doc['ps']!r}; a {doc['family']} board's is "
                         f"{FAMILIES[doc['family']][0]!r}")
    expected_prefix = "xc7z" if doc["family"] == "zynq-7000" else ("xczu", "xck")
    if not doc["part"].startswith(expected_prefix):
        raise BoardError(f"{where}: field 'part' {doc['part']!r} is not a {doc['family']} part")
    if doc["clock_period_ns"] <= 0:
        raise BoardError(f"{where}: field 'clock_period_ns' must be positive, got {doc['clock_period_ns']}")
    if doc["dma_port_width"] not in (32, 64, 128):
        raise BoardError(f"{where}: field 'dma_port_width' must be 32, 64 or 128 bits, got {doc['dma_port_width']}")
    res = doc["resources"]
    for key in REQUIRED_RESOURCES:
        if key not in res:
            raise BoardError(f"{where}: field 'resources.{key}' is missing (needs {', '.join(REQUIRED_RESOURCES)})")
    for key, value in res.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise BoardError(f"{where}: field 'resources.{key}' must be a positive integer, got {value!r}")
    return Board(doc["name"], doc["finn_board"], doc["part"], doc["family"], doc["ps"], float(doc["clock_period_ns"]),
                 doc["dma_port_width"], dict(res))


def load_board(name: str) -> Board:
    """The board `name` (case-insensitive) from its data file, every field checked."""
    path = board_file(name)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BoardError(f"{path}: not valid JSON ({e})") from e
    board = parse_board(doc, str(path))
    if board.name != path.stem:
        raise BoardError(f"{path}: field 'name' is {board.name!r}, the file is named {path.stem!r}")
    return board
