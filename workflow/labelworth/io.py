"""The one way results reach the disk: atomic writes, and loads that name the file when it is bad.

Every write goes to a temporary file in the destination folder, is flushed and fsynced, and is then
renamed over the destination, so a killed job leaves either the old file or the new one, never half
of one. Tensor files are dicts of plain tensors plus a `meta` dict saying what made them.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Iterator

import torch

from labelworth import __version__
from labelworth.errors import LabelworthError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it is fsynced and renamed to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def provenance(stage: str, **details) -> dict:
    """The `meta` dict stored with every tensor file: which stage made it, with what."""
    return {
        "stage": stage,
        "labelworth": __version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        **details,
    }


def save_tensors(path: str | os.PathLike, tensors: dict, meta: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({**tensors, "meta": meta}, tmp)


def load_tensors(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict:
    """Load a file written by `save_tensors`; a missing, truncated or foreign file is a LabelworthError."""
    path = Path(path)
    if not path.is_file():
        raise LabelworthError(f"{path}: file not found")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged zip/pickle
        raise LabelworthError(
            f"{path}: cannot be read ({type(error).__name__}); the file is corrupted or truncated, "
            "delete it and rerun the stage that makes it"
        ) from None
    missing = [key for key in ("meta", *required) if not isinstance(content, dict) or key not in content]
    if missing:
        raise LabelworthError(f"{path}: not a labelworth file of this kind (missing {', '.join(missing)})")
    return content


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, payload: dict) -> None:
    write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LabelworthError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise LabelworthError(f"{path}: not valid JSON ({error})") from None
