"""The one base error of the toolkit.

Every error meant for a user (a bad config, a damaged or foreign artifact, a graph the
flow cannot map, an unknown board) is a `BtseeError` whose message names the file, field
or node at fault. The `btsee` command catches this type once and prints the message in
one line; anything else is a bug and keeps its traceback. Numpy-free, so every package,
the board driver included, can raise it.
"""
from __future__ import annotations


class BtseeError(Exception):
    """A problem with the user's input or artifacts; the message says what and where."""


class ArtifactError(BtseeError):
    """A file the flow reads that is missing, unreadable, damaged or inconsistent with the
    run; the message names the file and the field or tensor at fault."""
