"""The benchmark's images side by side (the paper's Figure 1, left): one row per method, one column
per class, the first image of each class."""

from __future__ import annotations

from labelworth.image_sets import shown_images
from labelworth.figures.soft_vs_hard import method_rank, method_title
from labelworth.figures.style import new_figure, plural, save_figure
from labelworth.io import load_tensors
from labelworth.specs import dataset_spec
from labelworth.figures import FigureFiles

MAX_CLASSES = 10  # columns; datasets with more classes show their first ten


def first_image_per_class(images, classes, num_columns: int) -> list:
    """The first image of each of the first `num_columns` classes, in class order (None for a class
    the set lacks, e.g. a `-without{c}` subset)."""
    return [images[classes == label][0] if (classes == label).any() else None for label in range(num_columns)]


def draw(files: FigureFiles, settings) -> None:
    """Inputs: one images.pt per method, all at the same images per class."""
    sets = [load_tensors(path, required=("images", "labels")) for path in files.inputs]
    sets.sort(key=lambda content: method_rank(content["meta"]["method"]))
    meta = sets[0]["meta"]
    spec = dataset_spec(meta["dataset"])
    num_columns = min(len(meta["class_names"]), MAX_CLASSES)  # the classes the split holds
    figure, axes = new_figure(width=0.62 * num_columns + 0.6, height=0.62 * len(sets) + 0.4,
                              nrows=len(sets), ncols=num_columns, squeeze=False)
    for row, content in enumerate(sets):
        shown = shown_images(content["images"], spec, content.get("pixels"))
        tiles = first_image_per_class(shown, content["labels"], num_columns)
        for column, tile in enumerate(tiles):
            panel = axes[row][column]
            panel.set_xticks([])
            panel.set_yticks([])
            panel.grid(False)
            panel.spines[:].set_visible(False)
            if tile is not None:
                pixels = tile.clamp(0, 1).permute(1, 2, 0)
                panel.imshow(pixels.squeeze(-1).numpy(), cmap="gray" if spec.channels == 1 else None, vmin=0, vmax=1)
            if row == 0:
                panel.set_title(meta["class_names"][column], fontsize=6)
        axes[row][0].set_ylabel(method_title(content["meta"]["method"]), fontsize=7)
    figure.suptitle(f"{plural(meta['images_per_class'], 'image')} per class, the first of each class", fontsize=8)
    save_figure(figure, files.png, files.pdf)
