"""Shared fixtures: small datasets written in their real on-disk formats."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX as MNIST ships it: magic (0, 0, type 0x08 = ubyte, ndim), big-endian dims, raw bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def learnable_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """28x28 images whose class is a bright horizontal band at row 2 + 2.4*class, plus noise, so a
    tiny network can learn them in a few epochs (tests assert learning, not just running)."""
    images = rng.integers(0, 60, size=(len(labels), 28, 28))
    for index, label in enumerate(labels):
        row = 2 + int(2.4 * label)
        images[index, row : row + 3, 4:24] = 230
    return images


def write_fashion_mnist(root: Path, train_per_class: int = 20, test_per_class: int = 10, seed: int = 0) -> Path:
    """A small Fashion-MNIST in the Debian package's layout (four gzipped IDX files)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class))
        image_file, label_file = IDX_FILES[split]
        write_idx(root / image_file, learnable_images(labels, rng))
        write_idx(root / label_file, labels)
    return root


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
