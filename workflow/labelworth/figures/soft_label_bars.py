"""E5: what a soft label looks like. One real image and its label distribution from experts stopped
at several epochs: near-uniform at initialisation, informative early, nearly one-hot late."""

from __future__ import annotations

import matplotlib.patches
import torch

from labelworth.image_sets import shown_images
from labelworth.figures.style import new_figure, save_figure, sequence_colors
from labelworth.io import load_tensors
from labelworth.labels import entropy_per_row
from labelworth.specs import dataset_spec, parse_label_spec
from labelworth.figures import FigureFiles


def labels_by_epoch(label_paths: list[str], index: int) -> list[tuple[int, torch.Tensor]]:
    """(expert epoch, the image's label row) per label file, in increasing epoch."""
    rows = []
    for path in label_paths:
        content = load_tensors(path, required=("labels",))
        rows.append((parse_label_spec(content["meta"]["label_spec"]).expert_epoch, content["labels"][index]))
    return sorted(rows, key=lambda pair: pair[0])


def draw(files: FigureFiles, settings) -> None:
    """Inputs: [images.pt of the IPC-1 random set, then one label .pt (`expert-e{E}`) per expert epoch].
    `settings.image`: the image's index in the set. No table."""
    index = settings.image
    image_set = load_tensors(files.inputs[0], required=("images", "labels"))
    class_names = image_set["meta"]["class_names"]
    true_class = int(image_set["labels"][index])
    pixels = shown_images(image_set["images"], dataset_spec(image_set["meta"]["dataset"]),
                          image_set.get("pixels"))[index]
    epochs = labels_by_epoch(files.inputs[1:], index)

    colors = sequence_colors(("true class", "other classes"))  # classes, not image-set methods
    figure, axes = new_figure(width=6.8, height=2.6, ncols=1 + len(epochs),
                              gridspec_kw={"width_ratios": [0.8] + [1] * len(epochs)})
    image_axes, bar_axes = axes[0], axes[1:]
    image_axes.imshow(pixels.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
    image_axes.set_axis_off()
    image_axes.set_title(f"image {index}: {class_names[true_class]}")
    for axes, (epoch, label) in zip(bar_axes, epochs):
        shades = [colors["true class" if c == true_class else "other classes"] for c in range(len(class_names))]
        axes.bar(range(len(class_names)), label.numpy()[: len(class_names)], color=shades)  # the split's classes
        axes.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
        axes.set_ylim(0, 1)
        axes.grid(axis="x", visible=False)
        entropy = float(entropy_per_row(label.unsqueeze(0))[0])
        axes.set_title(f"expert epoch {epoch}\n(entropy {entropy:.2f} nats)", fontsize=8)
    bar_axes[0].set_ylabel("soft-label probability")
    figure.legend(handles=[matplotlib.patches.Patch(color=color, label=name) for name, color in colors.items()],
                  loc="outside lower center", ncols=len(colors))
    for axes in bar_axes[1:]:
        axes.tick_params(labelleft=False)
    save_figure(figure, files.png, files.pdf)
