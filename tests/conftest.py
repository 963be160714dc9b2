"""Shared fixtures: small datasets written in their real on-disk formats."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

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
