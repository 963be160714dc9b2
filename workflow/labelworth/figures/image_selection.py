"""E14: which real images to keep? Images drawn from one decile of the expert's per-image loss
(0 = easiest) against random images, with hard and with expert soft labels."""

from __future__ import annotations

import numpy as np

from labelworth.figures.results import HEADLINE_NOTE, accuracy_grid, expert_epochs_note, student_results
from labelworth.figures.soft_vs_hard import method_title
from labelworth.figures.style import (
    ACCURACY_LABEL, REFERENCE_LINESTYLES, REGIME_LINESTYLES, REGIME_MARKERS, method_color, new_figure,
    outside_legend, plot_mean_std, reference_line, save_figure, save_table,
)
from labelworth.specs import LOSS_BIN
from labelworth.figures import FigureFiles


def images_title(method: str) -> str:
    return "random" if method == "random" else method_title(method)


def draw(files: FigureFiles, settings) -> None:
    """Inputs: student JSONs of image sets `random-ipcN` and `lossbin{b}-ipcN` for several b, each
    with `hard` and `expert-e{E}` labels."""
    results = student_results(files.inputs)
    results["labels"] = np.where(results["source"] == "hard", "hard", "soft")
    # Random images first, then the bins from easiest to hardest.
    results = results.sort_values(["loss_bin", "labels"], na_position="first")
    binned = results[results["loss_bin"].notna()]

    figure, axes = new_figure(width=5.0, height=2.6)
    # Colour = images (the loss-bin method, random real images as reference lines), marker = labels.
    for kind, regime in (("hard", "hard"), ("soft", "expert")):
        rows = binned[binned["labels"] == kind]
        plot_mean_std(axes, rows["loss_bin"], rows["final_mean"], rows["final_ci"], method_color(LOSS_BIN),
                      label=f"loss-binned images, {kind} labels", marker=REGIME_MARKERS[regime],
                      linestyle=REGIME_LINESTYLES[regime])
        for _, row in results[(results["method"] == "random") & (results["labels"] == kind)].iterrows():
            reference_line(axes, row, method_color("random"), REFERENCE_LINESTYLES[regime],
                           label=f"random images, {kind} labels")
    axes.set_xticks(sorted(binned["loss_bin"].unique().astype(int)))
    axes.set_xlabel("expert-loss decile of the images (0 = easiest)")
    axes.set_ylabel(ACCURACY_LABEL)
    axes.set_title(f"Image selection by expert loss, IPC {results['images_per_class'].iloc[0]}")
    outside_legend(axes)
    save_figure(figure, files.png, files.pdf)

    table = accuracy_grid(results, "method", "labels", "images", column_title=lambda kind: f"{kind} labels")
    table["images"] = table["images"].map(images_title)
    save_table(table, files.table_csv, files.table_md,
               title=f"Image selection: student accuracy (%, {HEADLINE_NOTE}) on images from one "
                     f"decile of the expert's per-image loss (0 = easiest) or random; {expert_epochs_note(results)}.")
