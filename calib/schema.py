"""Checks for the files the flow reads: JSON read with a schema, arrays that must be finite
or integer, files pinned by their SHA-256. Numpy-only, so the board driver checks its
deploy package the same way. Every failure is an `ArtifactError` naming the file and the
field, key or tensor at fault.

A schema is plain Python data:

    int, float, str, bool     a JSON value of that kind (float: any finite number)
    [S]                       a list whose items match S
    {"key": S, ...}           an object holding at least these keys (more are allowed)
    {str: S}                  an object of any keys whose values match S
    Optional(S)               S or null
    OneOf(a, b, ...)          one of these values
    Any                       anything
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from calib.errors import ArtifactError


@dataclass(frozen=True)
class Optional:
    """A schema that also accepts null."""

    inner: Any


@dataclass(frozen=True)
class OneOf:
    """A schema that accepts exactly these values."""

    values: tuple

    def __init__(self, *values):
        object.__setattr__(self, "values", values)


_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _kind_of(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def check(value: Any, schema: Any, path: Path | str, where: str = "") -> Any:
    """`value` when it matches `schema`; otherwise an ArtifactError naming `path` and the
    field (`where` is the field's path inside the document, e.g. `segments[2].file`)."""
    field = where or "the document"
    if schema is Any:
        return value
    if isinstance(schema, Optional):
        return value if value is None else check(value, schema.inner, path, where)
    if isinstance(schema, OneOf):
        if value not in schema.values:
            raise ArtifactError(f"{path}: field {field!r} is {value!r}, expected one of {list(schema.values)}")
        return value
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise ArtifactError(f"{path}: {field} is {_kind_of(value)}, expected an object")
        if list(schema) == [str]:
            for key, item in value.items():
                check(item, schema[str], path, f"{where}.{key}" if where else key)
            return value
        for key, sub in schema.items():
            name = f"{where}.{key}" if where else key
            if key not in value:
                raise ArtifactError(f"{path}: field {name!r} missing")
            check(value[key], sub, path, name)
        return value
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise ArtifactError(f"{path}: {field} is {_kind_of(value)}, expected a list")
        for i, item in enumerate(value):
            check(item, schema[0], path, f"{where}[{i}]")
        return value
    ok = {int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool),
          str: isinstance(value, str), bool: isinstance(value, bool)}[schema]
    if not ok:
        raise ArtifactError(f"{path}: field {field!r} is {_kind_of(value)}, expected {_KINDS[schema]}")
    if schema is float and not math.isfinite(value):
        raise ArtifactError(f"{path}: field {field!r} is {value}, expected a finite number")
    return value


def read_json_file(path: Path | str, schema: Any = Any) -> Any:
    """The JSON document at `path`, checked against `schema`; a missing, unreadable or
    non-JSON file, or one that does not match, is an ArtifactError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{path}: not a readable JSON file ({type(e).__name__}: {e})") from e
    return check(doc, schema, path)


def finite(array: np.ndarray, path: Path | str, name: str) -> np.ndarray:
    """`array` when every value is finite; otherwise an ArtifactError naming the tensor."""
    a = np.asarray(array)
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        raise ArtifactError(f"{path}: {name} holds {bad} non-finite value(s) (NaN or Inf)")
    return array


def integers(array: np.ndarray, path: Path | str, name: str) -> np.ndarray:
    """`array` when it holds finite whole numbers only; otherwise an ArtifactError."""
    a = finite(array, path, name)
    if np.asarray(a).dtype.kind == "f" and not np.array_equal(a, np.round(a)):
        raise ArtifactError(f"{path}: {name} holds non-integer values where integers are expected")
    if np.asarray(a).dtype.kind not in "fiu":
        raise ArtifactError(f"{path}: {name} has dtype {np.asarray(a).dtype}, expected numbers")
    return array


def sha256_of(path: Path | str) -> str:
    """The SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pinned_file(path: Path | str, sha256: str, listed_in: Path | str) -> Path:
    """`path` when it exists and its bytes hash to `sha256` (as recorded in the manifest
    `listed_in`); otherwise an ArtifactError naming both files."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file (listed in {listed_in})")
    if sha256_of(path) != sha256:
        raise ArtifactError(f"{path}: contents changed since {listed_in} was written (SHA-256 differs); "
                            "rerun the step that wrote it")
    return path


def load_npz(path: Path | str) -> dict[str, np.ndarray]:
    """Every array of an .npz file (no pickles); a missing, truncated or damaged file
    (zip CRC errors included) is an ArtifactError naming it."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from e


def array_field(arrays: dict[str, np.ndarray], key: str, path: Path | str, ndim: int | None = None
                ) -> np.ndarray:
    """arrays[key], present and of `ndim` dimensions (when given); else an ArtifactError."""
    if key not in arrays:
        raise ArtifactError(f"{path}: array {key!r} missing")
    a = arrays[key]
    if ndim is not None and a.ndim != ndim:
        raise ArtifactError(f"{path}: array {key!r} has shape {a.shape}, expected {ndim} dimensions")
    return a
