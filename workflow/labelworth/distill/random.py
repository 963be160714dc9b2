"""Random real images per class: the images of the paper's soft-label baseline (docs/method.md §1.2).

The selection is the reference's: one `numpy.random.RandomState(seed)` draws a permutation of each
class's training indices in class order and keeps the first `images_per_class`, so seed 42 picks
the same images as `nodistill.py`. Images are stored class-major: rows [c*IPC, (c+1)*IPC) are class c.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from labelworth import io
from labelworth.data import load_image_files, normalize, stored_zca
from labelworth.image_sets import displayed_pixels, save_image_set
from labelworth.errors import LabelworthError
from labelworth.specs import ImageSetSpec, dataset_spec


def select_random(classes: torch.Tensor, images_per_class: int, num_classes: int, seed: int) -> torch.Tensor:
    """Indices of `images_per_class` distinct images of each class, class-major.

    Raises LabelworthError when a class has fewer images than asked for.
    """
    rng = np.random.RandomState(seed)
    classes = classes.numpy()
    chosen = []
    for label in range(num_classes):
        members = np.flatnonzero(classes == label)
        if len(members) < images_per_class:
            raise LabelworthError(
                f"images_per_class={images_per_class} but class {label} has only {len(members)} "
                "training images"
            )
        chosen.append(members[rng.permutation(len(members))[:images_per_class]])
    return torch.from_numpy(np.concatenate(chosen)).long()


def load_real_images(train: dict, indices: torch.Tensor, seed: int) -> torch.Tensor:
    """The training images at `indices` from a prepared `train.pt`, as the students see them:
    normalised, or as stored when the split was whitened (docs/method.md §2.2).

    ImageNet is not cached as tensors: only the chosen files are read, and the train preset's random
    crop is applied once here (docs/method.md §12.12), reproducibly from `seed`."""
    spec = dataset_spec(train["meta"]["dataset"])
    if train["meta"].get("zca"):
        return train["images"][indices]
    if spec.cached_as_tensors:
        return normalize(train["images"][indices], spec)
    paths = [train["meta"]["paths"][i] for i in indices.tolist()]
    pixels = load_image_files(paths, spec.image_size, train_crop=True,
                              generator=torch.Generator().manual_seed(seed))
    return normalize(pixels, spec)


def distill_random(
    data_dir: str | os.PathLike,
    images_per_class: int,
    seed: int,
    out_path: str | os.PathLike,
    grid_path: str | os.PathLike,
) -> None:
    train_path = os.path.join(data_dir, "train.pt")
    train = io.load_tensors(train_path, required=("labels",))
    spec = dataset_spec(train["meta"]["dataset"])
    # The classes the split holds: all of the dataset's, or fewer in the small trees tests write.
    indices = select_random(train["labels"], images_per_class, len(train["meta"]["class_names"]), seed)
    images = load_real_images(train, indices, seed)
    save_image_set(out_path, grid_path, images, train["labels"][indices],
                   ImageSetSpec("random", images_per_class), spec, train["meta"]["class_names"],
                   source_indices=indices, pixels=displayed_pixels(images, stored_zca(train, train_path)),
                   seed=seed)
