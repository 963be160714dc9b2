"""Image sources for the students. Every method writes its set through `save_image_set`, so each
`images.pt` has the same layout: normalised images (class-major), their classes, the training-set
indices they came from (real images only), the method's own labels (`learned_labels`, bptt and
sre2l only; the label spec `learned`), and a meta naming the image set."""

from __future__ import annotations

import os

import torch
import torchvision

from labelworth import io
from labelworth.data import denormalize
from labelworth.io import atomic_path
from labelworth.specs import DatasetSpec, ImageSetSpec, format_image_set


def save_image_grid(images: torch.Tensor, classes: torch.Tensor, spec: DatasetSpec,
                    png_path: str | os.PathLike, max_per_class: int = 10) -> None:
    """One row per class present (at most `max_per_class` images each, blank-padded), pixels in [0, 1]."""
    present = classes.unique().tolist()
    per_row = min(max_per_class, max(int((classes == c).sum()) for c in present))
    tiles = torch.ones(len(present), per_row, *images.shape[1:])
    for row, label in enumerate(present):
        members = images[classes == label][:per_row]
        tiles[row, : len(members)] = denormalize(members, spec).clamp(0, 1)
    grid = torchvision.utils.make_grid(tiles.flatten(0, 1), nrow=per_row, padding=2, pad_value=1.0)
    with atomic_path(png_path) as tmp:
        torchvision.utils.save_image(grid, tmp, format="png")


def save_image_set(
    out_path: str | os.PathLike,
    grid_path: str | os.PathLike,
    images: torch.Tensor,
    classes: torch.Tensor,
    image_set: ImageSetSpec,
    dataset: DatasetSpec,
    class_names: list[str],
    source_indices: torch.Tensor | None = None,
    learned_labels: torch.Tensor | None = None,
    **details,
) -> None:
    tensors = {"images": images, "labels": classes}
    if source_indices is not None:
        tensors["source_indices"] = source_indices
    if learned_labels is not None:
        tensors["learned_labels"] = learned_labels
    meta = io.provenance(
        "distill_images", image_set=format_image_set(image_set), method=image_set.method,
        images_per_class=image_set.images_per_class, dataset=dataset.name,
        num_classes=dataset.num_classes, class_names=class_names, **details,
    )
    io.save_tensors(out_path, tensors, meta)
    save_image_grid(images, classes, dataset, grid_path)
