"""Boards as data (one file per board) and the board-side driver (numpy + pynq only)."""
