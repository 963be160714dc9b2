"""Shared fixtures: small datasets written in their real on-disk formats, and the way tests call
snakemake."""

from __future__ import annotations

import copy
import gzip
import hashlib
import os
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "config.tiny.yaml"

IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """IDX: big-endian magic, big-endian uint32 dims, raw uint8 values; gzipped when path ends in .gz."""
    content = magic.to_bytes(4, "big") + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    content += array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(content)
    else:
        path.write_bytes(content)


def make_idx_arrays(num_train=30, num_test=20, image_size=28, num_classes=10, seed=0) -> dict:
    """Random pixels, every class present: {split: (images N x H x W, labels N)}."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in (("train", num_train), ("test", num_test)):
        labels = rng.permutation(np.arange(count) % num_classes).astype(np.uint8)
        images = rng.integers(0, 256, size=(count, image_size, image_size), dtype=np.uint8)
        arrays[split] = (images, labels)
    return arrays


def write_idx_dataset(folder: Path, arrays: dict, compressed: bool = True) -> Path:
    """The four MNIST-style files, as the Debian package dataset-fashion-mnist ships them."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compressed else ""
    for split, (image_name, label_name) in IDX_NAMES.items():
        images, labels = arrays[split]
        write_idx(folder / f"{image_name}{suffix}", images, 2051)
        write_idx(folder / f"{label_name}{suffix}", labels, 2049)
    return folder


def learnable_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """28x28 images whose class is a bright horizontal band at row 2 + 2.4*class, plus noise, so a
    tiny network can learn them in a few epochs (tests assert learning, not just running)."""
    images = rng.integers(0, 60, size=(len(labels), 28, 28))
    for index, label in enumerate(labels):
        row = 2 + int(2.4 * label)
        images[index, row : row + 3, 4:24] = 230
    return images


def write_fashion_mnist(root: Path, train_per_class: int = 20, test_per_class: int = 10, seed: int = 0) -> Path:
    """A small, learnable Fashion-MNIST in the Debian package's layout."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class))
        arrays[split] = (learnable_images(labels, rng), labels)
    return write_idx_dataset(root, arrays)


@pytest.fixture
def fashion_mnist_raw(tmp_path) -> Path:
    return write_fashion_mnist(tmp_path / "raw" / "fashion_mnist")


@pytest.fixture
def fashion_mnist_data(tmp_path, fashion_mnist_raw) -> Path:
    """Prepared tensors (train.pt, test.pt) of the small Fashion-MNIST."""
    from labelworth.data import prepare_data

    out_dir = tmp_path / "data"
    prepare_data("fashion_mnist", fashion_mnist_raw, out_dir)
    return out_dir


def snakemake_command(workdir: Path, *args: str, config: Path = TINY) -> tuple[list[str], dict]:
    """The command line and environment of a snakemake run of this repository's workflow in `workdir`
    with `config` only, on 2 cores; the environment finds this Python's `labelworth` first."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
               "--configfile", str(config), "--replace-workflow-config", "--cores", "2", *args]
    return command, env


def snakemake(workdir: Path, *args: str, config: Path = TINY, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake to the end; with `check`, a failure raises with the tail of its output."""
    command, env = snakemake_command(workdir, *args, config=config)
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from the last 'Job stats' table a snakemake run printed (a dry run prints
    the plan; `--quiet rules host` leaves only the table)."""
    table = (result.stdout + result.stderr).split("Job stats:")[-1]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M)
            if rule not in ("total", "all")}


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path. Hidden `.NAME.*.tmp` files are left
    out: a write killed before its rename leaves one, and nothing ever reads it; so are Snakemake's
    empty `.snakemake_timestamp` markers in directory outputs (the experts' checkpoints/)."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != ".snakemake_timestamp"
            and not (path.name.startswith(".") and path.name.endswith(".tmp"))}


def flip_tensor_byte(path: Path) -> None:
    """Flip one bit in the middle of the largest tensor record of a torch zip file: the zip and the
    pickle stay valid and torch.load does not notice, so only the checksum can."""
    with zipfile.ZipFile(path) as archive:
        record = max((info for info in archive.infolist() if "/data/" in info.filename),
                     key=lambda info: info.file_size)
    raw = bytearray(path.read_bytes())
    # A zip local header is 30 fixed bytes, then the name and the extra field; torch stores the
    # record's bytes uncompressed right after them.
    name_length, extra_length = struct.unpack_from("<HH", raw, record.header_offset + 26)
    raw[record.header_offset + 30 + name_length + extra_length + record.file_size // 2] ^= 0x01
    path.write_bytes(raw)


MICRO_KEYS = ("dataset", "run", "data_root", "device", "image_seed", "experts", "students", "benchmark")


def micro_config(overrides: dict) -> dict:
    """config.tiny.yaml's required blocks only (its default expert run and protocol, no optional
    experiment; the benchmark on random images only), updated by `overrides`: its "expert" entry
    updates the expert run, "student" the student protocol, any other the block of that name. With
    one expert seed, one IPC and one student seed that is 10 jobs: data, expert, images, two label
    files, two student populations, three figures."""
    overrides = copy.deepcopy(overrides)  # callers edit the result; the overrides stay as written
    tiny = yaml.safe_load(TINY.read_text())
    tiny["benchmark"]["methods"] = ["random"]
    tiny["benchmark"].pop("synthesis_images_per_class", None)
    tiny["benchmark"].pop("online_students", None)
    tiny["experts"] = {"convnet": tiny["experts"]["convnet"]}
    tiny["students"] = {"convnet-d2-w8": tiny["students"]["convnet-d2-w8"]}
    config = {key: tiny[key] for key in MICRO_KEYS}
    config["experts"]["convnet"].update(overrides.get("expert", {}))
    next(iter(config["students"].values())).update(overrides.get("student", {}))
    for key, value in overrides.items():
        if key not in ("expert", "student"):
            config[key] = {**config.get(key, {}), **value}
    return config


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A folder where tests/config.tiny.yaml has run to the end (every rule and figure), shared by
    every test that only reads a finished run (tests/test_workflow.py, tests/test_report.py)."""
    workdir = tmp_path_factory.mktemp("tiny")
    write_fashion_mnist(workdir / "raw" / "fashion_mnist", train_per_class=20, test_per_class=10)
    snakemake(workdir)
    return workdir
