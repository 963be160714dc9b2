"""Real images chosen by how hard an expert finds them (docs/method.md §9 E14, the paper's appendix).

An early expert scores every training image by its cross-entropy against the true class; within each
class the images are sorted from easiest to hardest and split into ten equal quantile bins, and
method `lossbin{b}` takes the `images_per_class` easiest images of bin b (running on into the next
bins when a bin is smaller than that).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from labelworth import io
from labelworth.data import load_split
from labelworth.image_sets import displayed_pixels, save_image_set
from labelworth.distill.random import load_real_images
from labelworth.errors import LabelworthError
from labelworth.experts import load_expert
from labelworth.specs import LOSS_BIN, ImageSetSpec
from labelworth.training import predict_logits, resolve_device

BINS = 10


def expert_losses(logits: torch.Tensor, classes: torch.Tensor, double_softmax: bool = False) -> torch.Tensor:
    """Per-image cross-entropy against the true class.

    `double_softmax` reproduces the reference, which applies the cross-entropy to the expert's
    probabilities instead of its logits (docs/method.md §12.8); both orderings put confident correct
    images first, but the quirk compresses the losses into a narrow range."""
    scores = logits.softmax(1) if double_softmax else logits
    return F.cross_entropy(scores, classes, reduction="none")


def select_loss_bin(losses: torch.Tensor, classes: torch.Tensor, num_classes: int, images_per_class: int,
                    loss_bin: int) -> torch.Tensor:
    """Class-major indices: for each class, positions floor(b*n/10) .. +IPC of its loss ranking.

    Every chosen image of class c has a loss at least that of any image of c in an earlier bin."""
    chosen = []
    for label in range(num_classes):
        members = (classes == label).nonzero().squeeze(1)
        ranked = members[losses[members].argsort(stable=True)]
        start = loss_bin * len(ranked) // BINS
        if start + images_per_class > len(ranked):
            raise LabelworthError(
                f"loss bin {loss_bin} of class {label} starts at rank {start} of {len(ranked)} images, too "
                f"few for images_per_class={images_per_class}"
            )
        chosen.append(ranked[start : start + images_per_class])
    return torch.cat(chosen)


def distill_by_loss(
    data_dir: str | os.PathLike,
    loss_bin: int,
    images_per_class: int,
    expert_checkpoint: str | os.PathLike,
    double_softmax: bool,
    out_path: str | os.PathLike,
    grid_path: str | os.PathLike,
    device: str = "auto",
) -> None:
    device = resolve_device(device)
    train = load_split(data_dir, "train", device)
    logits = predict_logits(load_expert(expert_checkpoint, device), train.images)
    losses = expert_losses(logits, train.labels, double_softmax).cpu()
    indices = select_loss_bin(losses, train.labels.cpu(), train.num_classes, images_per_class, loss_bin)
    raw = io.load_tensors(os.path.join(data_dir, "train.pt"), required=("labels",))
    images = load_real_images(raw, indices, seed=0)
    save_image_set(out_path, grid_path, images, raw["labels"][indices],
                   ImageSetSpec(LOSS_BIN, images_per_class, loss_bin=loss_bin), train.spec, train.class_names,
                   source_indices=indices, pixels=displayed_pixels(images, train.zca),
                   expert_checkpoint=str(expert_checkpoint),
                   double_softmax=double_softmax, mean_loss=float(losses[indices].mean()))
