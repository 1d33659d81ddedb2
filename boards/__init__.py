"""Boards as data (one file per board) and the board-side driver (numpy + pynq only).

A board is `boards/<name>.json`: its FINN board name, FPGA part, default clock and the
resources the part has. Adding a board is adding such a file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from calib.errors import BtseeError

BOARDS_DIR = Path(__file__).resolve().parent


class BoardError(BtseeError):
    """An unknown board or a board file with a missing field; names the file or board."""


@dataclass(frozen=True)
class Board:
    name: str
    finn_board: str
    part: str
    clock_period_ns: float
    resources: dict[str, int]


def available() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json"))


def board_file(name: str) -> Path:
    """The data file of board `name` (case-insensitive); an unknown board is a BoardError."""
    path = BOARDS_DIR / f"{name.lower()}.json"
    if not path.is_file():
        raise BoardError(f"unknown board {name!r}; boards are {available()} (files in {BOARDS_DIR})")
    return path


def load_board(name: str) -> Board:
    """The board `name` (case-insensitive) from its data file."""
    path = board_file(name)
    try:
        doc = json.loads(path.read_text())
        return Board(doc["name"], doc["finn_board"], doc["part"], float(doc["clock_period_ns"]),
                     {k: int(v) for k, v in doc["resources"].items()})
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise BoardError(f"{path}: not a valid board file ({type(e).__name__}: {e})") from e
