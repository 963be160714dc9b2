"""E11: the best expert epoch depends on the data budget. Student accuracy against images per class
for soft labels from several expert epochs; their upper envelope is the Pareto frontier, and the epoch
that attains it moves later as IPC grows."""

from __future__ import annotations

import pandas as pd

from labelworth.figures.results import HEADLINE_NOTE, best_rows, final_cell, hard_cells, student_results
from labelworth.figures.style import (
    ACCURACY_LABEL, IPC_LABEL, REGIME_LINESTYLES, REGIME_MARKERS, log_axis, method_color, new_figure, outside_legend,
    plot_groups, plot_mean_std, save_figure, save_table,
)
from labelworth.figures import FigureFiles


def frontier_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per IPC: the expert epoch with the highest mean final accuracy (a tie goes to the earlier epoch),
    that accuracy, and hard labels' accuracy (`final_cell`)."""
    best = best_rows(results[results["source"] == "expert"], "images_per_class")
    return pd.DataFrame({
        "IPC": best["images_per_class"],
        "best expert epoch": best["expert_epoch"].astype(int),
        "best soft labels": [final_cell(row) for _, row in best.iterrows()],
        "hard labels": hard_cells(results, best["images_per_class"]),
    })


def draw(files: FigureFiles, settings) -> None:
    """Inputs: student JSONs of random images with `hard` and `expert-e{E}` labels for several E, over
    an IPC sweep."""
    results = student_results(files.inputs)
    soft = results[results["source"] == "expert"]
    hard = results[results["source"] == "hard"]
    best = best_rows(soft, "images_per_class")

    figure, axes = new_figure(width=4.6, height=2.8)
    # Behind the curves: the envelope, so the epoch lines stay readable where they attain it.
    axes.plot(best["images_per_class"], best["final_mean"], color="0.2", linewidth=7, alpha=0.2,
              solid_capstyle="round", label="best over epochs (eN: its epoch)")
    plot_groups(axes, soft, "images_per_class", "expert_epoch", lambda epoch: f"expert epoch {int(epoch)}")
    plot_mean_std(axes, hard["images_per_class"], hard["final_mean"], hard["final_ci"], method_color("random"),
                  label="hard labels", marker=REGIME_MARKERS["hard"], linestyle=REGIME_LINESTYLES["hard"])
    for _, row in best.iterrows():
        axes.annotate(f"e{int(row['expert_epoch'])}", (row["images_per_class"], row["final_mean"]),
                      textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    log_axis(axes, results["images_per_class"])
    axes.set_xlabel(IPC_LABEL)
    axes.set_ylabel(ACCURACY_LABEL)
    axes.set_title("Pareto frontier over expert epochs")
    outside_legend(axes)
    save_figure(figure, files.png, files.pdf)

    save_table(frontier_table(results), files.table_csv, files.table_md,
               title="Pareto frontier: per images per class, the expert epoch whose soft labels give the highest "
                     f"student accuracy (%; a tie goes to the earlier epoch), and hard labels: {HEADLINE_NOTE}.")
