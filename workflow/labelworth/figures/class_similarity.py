"""E8: which classes an expert finds alike. Row c is the mean soft label of class c's training images;
the diagonal (the true class's own mass) is masked so the off-diagonal structure, the knowledge soft
labels carry beyond the class, fills the colour range."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelworth.figures.style import heatmap, new_figure, save_figure
from labelworth.figures import FigureFiles

MAX_NAMED_CLASSES = 20  # beyond this, per-class tick labels overlap at paper size


def off_diagonal(matrix: pd.DataFrame) -> np.ndarray:
    """The matrix with its diagonal set to NaN (masked in the heat map)."""
    values = matrix.to_numpy(dtype=float, copy=True)
    np.fill_diagonal(values, np.nan)
    return values


def draw(files: FigureFiles, settings) -> None:
    """Inputs: [the csv of labels.expert_class_similarity: header `class,"name",...`, one row per true
    class]. No table."""
    matrix = pd.read_csv(files.inputs[0], index_col=0)
    names = [str(name) for name in matrix.columns]
    if len(names) > MAX_NAMED_CLASSES:
        names = [str(index) if index % 10 == 0 else "" for index in range(len(names))]
    figure, axes = new_figure(width=3.4, height=3.2)
    heatmap(figure, axes, off_diagonal(matrix), names, names, cmap="magma_r",
            colorbar_label="mean soft-label probability\n(diagonal masked)", x_rotation=90)
    axes.set_xlabel("soft-label class")
    axes.set_ylabel("true class")
    axes.set_title("Expert class similarity" + (f", expert epoch {settings.expert_epoch}"
                                                if settings.expert_epoch is not None else ""))
    save_figure(figure, files.png, files.pdf)
