"""Reading the project's torch files (backbone, heads, training checkpoints) defensively.

`torch.load` of a damaged file raises half a dozen exception types, `load_state_dict`
reports shape mismatches as one long RuntimeError, and neither notices NaN weights. These
functions turn each of those into an `ArtifactError` that names the file and the key or
tensor at fault, before a step computes anything with the model.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from calib.errors import ArtifactError


def load_torch_file(path: Path | str, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """The dict saved at `path` (weights_only load, on the CPU) holding `keys`; a missing,
    truncated or foreign file, or a missing key, is an ArtifactError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file")
    _check_zip_records(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip, pickle and unpickler errors of every kind
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ArtifactError(f"{path}: not a readable torch file (damaged or another format?): "
                            f"{type(e).__name__}: {first}") from e
    if not isinstance(state, dict):
        raise ArtifactError(f"{path}: expected a dict of saved fields, got {type(state).__name__}")
    for key in keys:
        if key not in state:
            raise ArtifactError(f"{path}: field {key!r} missing")
    return state


def _check_zip_records(path: Path) -> None:
    """torch.save writes a zip archive with a CRC-32 per record, which torch.load does not
    verify: a flipped byte inside a tensor would load as a silently different weight. The
    records are checked here; a file that is not a zip archive is left to torch.load."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return  # not a zip (or unreadable): torch.load says so with its own error
    except Exception as e:  # zlib errors on damaged compressed records
        raise ArtifactError(f"{path}: damaged torch file ({type(e).__name__}: {e})") from e
    if bad is not None:
        raise ArtifactError(f"{path}: damaged torch file: record {bad!r} fails its CRC-32 check")


def field_of(state: dict, key: str, kind: type | tuple[type, ...], path: Path | str) -> Any:
    """state[key] when it is of `kind`; otherwise an ArtifactError naming the field."""
    if key not in state:
        raise ArtifactError(f"{path}: field {key!r} missing")
    if not isinstance(state[key], kind):
        raise ArtifactError(f"{path}: field {key!r} is a {type(state[key]).__name__}")
    return state[key]


def load_weights(module: nn.Module, state_dict: Any, path: Path | str, what: str = "state_dict") -> nn.Module:
    """`module` with `state_dict` loaded strictly, after checking that every tensor the
    module expects is there, has the module's shape and holds finite values (extra keys
    are refused too). Errors name the file and the tensor."""
    if not isinstance(state_dict, dict):
        raise ArtifactError(f"{path}: {what} is a {type(state_dict).__name__}, expected tensors by name")
    expected = module.state_dict()
    for name, want in expected.items():
        if name not in state_dict:
            raise ArtifactError(f"{path}: tensor {what}[{name!r}] missing")
        got = state_dict[name]
        if not isinstance(got, torch.Tensor):
            raise ArtifactError(f"{path}: {what}[{name!r}] is a {type(got).__name__}, expected a tensor")
        if tuple(got.shape) != tuple(want.shape):
            raise ArtifactError(f"{path}: tensor {what}[{name!r}] has shape {tuple(got.shape)}, the configured "
                                f"model needs {tuple(want.shape)}")
        if got.is_floating_point() and not torch.isfinite(got).all():
            bad = int((~torch.isfinite(got)).sum())
            raise ArtifactError(f"{path}: tensor {what}[{name!r}] holds {bad} non-finite value(s) (NaN or Inf)")
    extra = sorted(set(state_dict) - set(expected))
    if extra:
        raise ArtifactError(f"{path}: {what} has tensor(s) {extra[:3]} the configured model does not have")
    module.load_state_dict(state_dict)
    return module


def build_from_spec(spec_cls: type, fields: Any, path: Path | str, what: str = "spec"):
    """`spec_cls(**fields)` (lists made tuples); unknown or missing fields, or values the
    class refuses, are an ArtifactError naming the file."""
    if not isinstance(fields, dict):
        raise ArtifactError(f"{path}: {what} is a {type(fields).__name__}, expected fields by name")
    try:
        return spec_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    except (TypeError, ValueError) as e:
        raise ArtifactError(f"{path}: {what}: {e}") from e
