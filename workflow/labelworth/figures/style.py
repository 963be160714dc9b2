"""The one plotting style: paper-sized figures, colour-blind-safe colours, png + pdf saved atomically."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (clusters have no display)
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from labelworth.data import denormalize  # noqa: E402
from labelworth.io import atomic_path  # noqa: E402
from labelworth.specs import DatasetSpec  # noqa: E402

# Okabe-Ito: distinguishable under the common colour-vision deficiencies and in greyscale print.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

STYLE = {
    "figure.dpi": 150,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "pdf.fonttype": 42,  # embed TrueType so the pdf's text stays editable in journals' pipelines
}


def new_figure(width: float = 3.4, height: float = 2.6, **subplot_kwargs):
    """A figure one column of a two-column paper wide (3.4 in), in the house style."""
    with plt.rc_context(STYLE):
        return plt.subplots(figsize=(width, height), constrained_layout=True, **subplot_kwargs)


def save_figure(figure, png_path: str | os.PathLike, pdf_path: str | os.PathLike | None = None) -> None:
    with plt.rc_context(STYLE):
        for path, fmt in ((png_path, "png"), (pdf_path, "pdf")):
            if path is not None:
                with atomic_path(path) as tmp:
                    figure.savefig(tmp, format=fmt)
    plt.close(figure)


def save_image_grid(images: torch.Tensor, spec: DatasetSpec, images_per_class: int,
                    png_path: str | os.PathLike, max_per_class: int = 10) -> None:
    """One row per class (at most `max_per_class` images each), pixels back in [0, 1]."""
    rows = images.view(spec.num_classes, images_per_class, *images.shape[1:])[:, :max_per_class]
    shown = denormalize(rows.flatten(0, 1), spec).clamp(0, 1)
    grid = torchvision.utils.make_grid(shown, nrow=rows.shape[1], padding=2, pad_value=1.0)
    with atomic_path(png_path) as tmp:
        torchvision.utils.save_image(grid, tmp, format="png")


def markdown_table(frame) -> str:
    """A GitHub-flavoured markdown table of a pandas DataFrame (index dropped)."""
    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def save_table(frame, csv_path: str | os.PathLike, md_path: str | os.PathLike, title: str = "") -> None:
    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False)
    with atomic_path(md_path) as tmp:
        tmp.write_text((f"{title}\n\n" if title else "") + markdown_table(frame))
