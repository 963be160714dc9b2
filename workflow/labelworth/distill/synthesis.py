"""What every image-synthesis method shares: real-image initialisation, the loss curve, and the
files a run writes. The resumable iteration loop is `resume.run_iterations`: all randomness comes
from one `torch.Generator` stored in its state, so on a CPU a run stopped and resumed ends with the
same bytes as an uninterrupted one.
"""

from __future__ import annotations

import csv
import dataclasses
import io as text_io
import os

import torch

from labelworth import io
from labelworth.distill.random import select_random
from labelworth.image_sets import displayed_pixels, save_image_set
from labelworth.specs import ImageSetSpec, format_image_set


def draw_seed(generator: torch.Generator) -> int:
    """A seed for a one-off generator or network, drawn from the run's generator."""
    return int(torch.randint(2**31 - 1, (1,), generator=generator).item())


def real_image_init(train, images_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random real images and their classes, class-major: the set `random-ipc{n}` with the same seed
    holds exactly these images (docs/method.md §8.1/§8.3 `pix_init=real`)."""
    indices = select_random(train.labels.cpu(), images_per_class, train.num_classes, seed)
    indices = indices.to(train.images.device)
    return train.images[indices].clone(), train.labels[indices].clone()


def loss_curve_csv(losses: list[float]) -> str:
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["iteration", "loss"])
    writer.writerows([iteration, repr(loss)] for iteration, loss in enumerate(losses))
    return buffer.getvalue()


def save_loss_curve(losses: list[float], csv_path: str | os.PathLike, png_path: str | os.PathLike,
                    title: str) -> None:
    """The loss per iteration as csv (exact floats) and as a png line plot."""
    from labelworth.figures.style import new_figure, save_figure  # matplotlib only when drawing

    io.write_text(csv_path, loss_curve_csv(losses))
    figure, axes = new_figure()
    axes.plot(range(len(losses)), losses, linewidth=1)
    axes.set(xlabel="iteration", ylabel="distillation loss", title=title)
    save_figure(figure, png_path)


@dataclasses.dataclass(frozen=True)
class SynthesisFiles:
    """Where a synthesis run writes: the declared outputs and its undeclared resume folder."""

    images: str | os.PathLike
    grid: str | os.PathLike
    loss_csv: str | os.PathLike
    loss_png: str | os.PathLike
    work_dir: str | os.PathLike


def write_synthetic_set(files: SynthesisFiles, images: torch.Tensor, classes: torch.Tensor,
                        image_set: ImageSetSpec, train, losses: list[float],
                        learned_labels: torch.Tensor | None = None, **details) -> None:
    """images.pt (with the method's own labels, if it made any) and its grid through
    `save_image_set`, then the loss curve next to them. On whitened data (`train.zca`) the set also
    stores its images as pixels (`displayed_pixels`)."""
    images = images.detach().cpu()
    save_image_set(files.images, files.grid, images, classes.cpu(), image_set, train.spec, train.class_names,
                   learned_labels=None if learned_labels is None else learned_labels.detach().cpu(),
                   pixels=displayed_pixels(images, train.zca), **details)
    save_loss_curve(losses, files.loss_csv, files.loss_png, format_image_set(image_set))

