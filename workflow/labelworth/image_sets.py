"""Image sets on disk. Every method writes its set through `save_image_set`, so each
`images.pt` has the same layout: normalised images (class-major), their classes, the training-set
indices they came from (real images only), the method's own labels (`learned_labels`, bptt and
sre2l only; the label spec `learned`), and a meta naming the image set.

On ZCA-whitened data (docs/method.md §2.2) the images are whitened, and undoing that needs the 3072 x 3072
inverse kept in the prepared splits, not in images.pt; so such a set also stores `pixels`, the images
as uint8 pixels (`displayed_pixels`), and grids and figures show those (`shown_images`)."""

from __future__ import annotations

import os

import torch

from labelworth import io
from labelworth.data import denormalize
from labelworth.io import atomic_path
from labelworth.specs import DatasetSpec, ImageSetSpec, format_image_set
from labelworth.zca import Zca, unwhiten


def displayed_pixels(images: torch.Tensor, zca: Zca | None) -> torch.Tensor | None:
    """Whitened `images` as uint8 pixels: unwhitened, clamped to [0, 1] (distilled images may leave
    it), rounded to 1/255. None when `zca` is None: normalised images need no stored pixels, as
    `denormalize` recovers them from the images alone."""
    if zca is None:
        return None
    return unwhiten(images.detach().cpu(), zca).clamp(0, 1).mul(255).round().to(torch.uint8)


def shown_images(images: torch.Tensor, spec: DatasetSpec, pixels: torch.Tensor | None = None) -> torch.Tensor:
    """An image set as float pixels in [0, 1], for grids and figures: its stored uint8 `pixels` when it
    has them (whitened data), else its normalised images mapped back by `denormalize`."""
    if pixels is not None:
        return pixels.float() / 255
    return denormalize(images, spec)


def save_image_grid(images: torch.Tensor, classes: torch.Tensor, spec: DatasetSpec,
                    png_path: str | os.PathLike, max_per_class: int = 10,
                    pixels: torch.Tensor | None = None) -> None:
    """One row per class present (at most `max_per_class` images each, blank-padded), showing
    `shown_images(images, spec, pixels)`."""
    shown = shown_images(images, spec, pixels)
    present = classes.unique().tolist()
    per_row = min(max_per_class, max(int((classes == c).sum()) for c in present))
    tiles = torch.ones(len(present), per_row, *images.shape[1:])
    for row, label in enumerate(present):
        members = shown[classes == label][:per_row]
        tiles[row, : len(members)] = members
    import torchvision  # here only: a job that never draws a grid starts twice as fast without it

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
    pixels: torch.Tensor | None = None,
    **details,
) -> None:
    """`pixels`: on whitened data, the images as uint8 pixels (`displayed_pixels`); the grid shows them."""
    tensors = {"images": images, "labels": classes}
    if source_indices is not None:
        tensors["source_indices"] = source_indices
    if learned_labels is not None:
        tensors["learned_labels"] = learned_labels
    if pixels is not None:
        tensors["pixels"] = pixels
    meta = io.provenance(
        "distill_images", image_set=format_image_set(image_set), method=image_set.method,
        images_per_class=image_set.images_per_class, dataset=dataset.name,
        num_classes=dataset.num_classes, class_names=class_names, **details,
    )
    io.save_tensors(out_path, tensors, meta)
    save_image_grid(images, classes, dataset, grid_path, pixels=pixels)
