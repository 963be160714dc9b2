"""The one way results reach the disk: atomic writes, checksums, and loads that name the file when it
is bad.

Every write goes to a temporary file with a unique name in the destination folder, is flushed and
fsynced, and is then renamed over the destination, so a killed job leaves either the old file or the
new one, never half of one, and two writers of one path leave one of their files whole. A write killed
before its rename can leave a hidden `.NAME.*.tmp` file behind; nothing reads those, and they are
safe to delete.

Checksums: a tensor file is a dict of tensors plus a `meta` dict saying what made it, and
`meta["sha256"]` is the checksum of everything else in the file (see `content_checksum`). A JSON file
carries a top-level `"sha256"` key: the checksum of its canonical JSON text (sorted keys, no spaces),
so reformatting the file keeps it valid but any changed value does not. Loads verify the checksum and
raise LabelworthError naming the file, so a silently flipped byte cannot reach a figure. The checksum
is of the content, not of the file bytes, because it is stored inside the file.

Files are bitwise repeatable: torch.save names the zip archive after the file it writes to, which
here would be the random temporary name, so tensors are saved through a file handle (archive name
"archive"); and `meta` holds nothing that changes between runs of one config (no time, no host).

torch is imported by the functions that handle tensors, so a stage that only reads and writes JSON
(population-member, one local job per label set) starts in a tenth of a second.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Iterator

from labelworth import __version__
from labelworth.costs import DATA, phase
from labelworth.errors import LabelworthError

CHECKSUM_KEY = "sha256"
# A deleted file is rebuilt only when a target needs it, so the remedy is verify's (labelworth/verify.py).
REMEDY = "run `labelworth verify --repair` and then the snakemake command it prints, which rebuild it"


def _file_mode() -> int:
    """The mode a plain `open(path, "w")` would give a new file: 0o666 less the umask. mkstemp makes
    its file 0600, and the rename would keep that, leaving results unreadable to a report served
    from the same folder or to the rest of a cluster group."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`, unique to this write; on success it is fsynced, given
    the umask's mode, and renamed to `path`, and the folder is fsynced so the rename survives a
    power loss."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    finally:
        tmp.unlink(missing_ok=True)


@functools.cache
def _file_sha256(path: str, size: int, modified_ns: int) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes (hex), read once per process while its size and time stay."""
    status = os.stat(path)
    return _file_sha256(str(Path(path).resolve()), status.st_size, status.st_mtime_ns)


def provenance(stage: str, **details) -> dict:
    """The `meta` dict stored with every tensor file: which stage made it, with what."""
    import torch

    return {
        "stage": stage,
        "labelworth": __version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        **details,
    }


def _feed(hasher, value) -> None:
    """Feed `value` to `hasher` canonically: dict items in sorted key order, tensors as dtype, shape
    and raw bytes, scalars as type and repr (exact for floats), each part length-prefixed."""
    import torch

    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        hasher.update(f"tensor:{flat.dtype}:{tuple(value.shape)}:".encode())
        hasher.update(flat.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        hasher.update(f"dict:{len(value)}:".encode())
        for key in sorted(value, key=repr):
            _feed(hasher, key)
            _feed(hasher, value[key])
    elif isinstance(value, (list, tuple)):
        hasher.update(f"{type(value).__name__}:{len(value)}:".encode())
        for item in value:
            _feed(hasher, item)
    elif value is None or isinstance(value, (bool, int, float, str)):
        text = repr(value).encode()
        hasher.update(f"{type(value).__name__}:{len(text)}:".encode() + text)
    else:
        raise TypeError(f"cannot checksum a {type(value).__name__}; store tensors, dicts, lists and scalars")


def content_checksum(tensors: dict, meta: dict) -> str:
    """sha256 of a tensor file's content: every tensor entry and every meta entry but the checksum.
    Equal content gives an equal checksum whatever the dict order or the tensors' memory layout."""
    hasher = hashlib.sha256()
    _feed(hasher, {**tensors, "meta": {key: value for key, value in meta.items() if key != CHECKSUM_KEY}})
    return hasher.hexdigest()


def save_tensors(path: str | os.PathLike, tensors: dict, meta: dict) -> None:
    """Write `tensors` and `meta` (plus its checksum) atomically; equal content gives equal bytes."""
    import torch

    meta = {**meta, CHECKSUM_KEY: content_checksum(tensors, meta)}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save({**tensors, "meta": meta}, handle)


def load_tensors(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict:
    """Load a file written by `save_tensors`; a missing, truncated, foreign or corrupted file (one
    whose content no longer matches its checksum) is a LabelworthError naming the file."""
    with phase(DATA):
        return _load_tensors(Path(path), required)


def _load_tensors(path: Path, required: tuple[str, ...]) -> dict:
    import torch

    if not path.is_file():
        raise LabelworthError(f"{path}: file not found")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:  # the file is there but this process may not read it: not a damaged file
        raise LabelworthError(f"{path}: cannot be read ({error.strerror or error})") from None
    except Exception as error:  # torch raises many types for a damaged zip/pickle
        raise LabelworthError(
            f"{path}: cannot be read ({type(error).__name__}); the file is corrupted or truncated, {REMEDY}"
        ) from None
    missing = [key for key in ("meta", *required) if not isinstance(content, dict) or key not in content]
    if missing:
        raise LabelworthError(f"{path}: not a labelworth file of this kind (missing {', '.join(missing)})")
    meta = content["meta"]
    if CHECKSUM_KEY not in meta:
        raise LabelworthError(f"{path}: has no checksum (not written by this labelworth); {REMEDY}")
    tensors = {key: value for key, value in content.items() if key != "meta"}
    if content_checksum(tensors, meta) != meta[CHECKSUM_KEY]:
        raise LabelworthError(
            f"{path}: the content does not match its checksum; the file is corrupted, {REMEDY}"
        )
    return content


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _json_checksum(payload: dict) -> str:
    """sha256 of the canonical JSON text: sorted keys, no spaces, floats as Python writes them
    (exact), so a payload and its read-back give the same checksum."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_json(path: str | os.PathLike, payload: dict) -> None:
    """Write `payload` with its checksum under the top-level key "sha256" (read_json removes it)."""
    stamped = {**payload, CHECKSUM_KEY: _json_checksum(payload)}
    write_text(path, json.dumps(stamped, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    """The payload given to `write_json`; a missing, unparsable or changed file is a LabelworthError."""
    try:
        payload = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LabelworthError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LabelworthError(f"{path}: not valid JSON ({error}); {REMEDY}") from None
    stored = payload.pop(CHECKSUM_KEY, None) if isinstance(payload, dict) else None
    if stored is None:
        raise LabelworthError(f"{path}: has no checksum (not written by this labelworth); {REMEDY}")
    if _json_checksum(payload) != stored:
        raise LabelworthError(
            f"{path}: the content does not match its checksum; the file is corrupted, {REMEDY}"
        )
    return payload
