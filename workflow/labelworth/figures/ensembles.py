"""E12: do several experts teach better than one? Soft labels from the logit average of N experts
(N = 1 is the single expert) against the number of experts, per images per class."""

from __future__ import annotations

from labelworth.figures.results import HEADLINE_NOTE, accuracy_grid, expert_epochs_note, student_results
from labelworth.figures.style import (
    ACCURACY_LABEL, new_figure, outside_legend, plot_groups, plural, save_figure, save_table,
)
from labelworth.figures import FigureFiles


def experts_title(size: int) -> str:
    return plural(size, "expert")


def draw(files: FigureFiles, settings) -> None:
    """Inputs per IPC: student JSONs of `expert-e{E}` and `ensemble{N}-e{E}` labels for several N, on
    random images."""
    results = student_results(files.inputs).sort_values(["images_per_class", "ensemble_size"])

    figure, axes = new_figure(width=4.2, height=2.6)
    plot_groups(axes, results, "ensemble_size", "images_per_class", lambda ipc: f"IPC {ipc}")
    axes.set_xticks(sorted(results["ensemble_size"].unique()))
    axes.set_xlabel("number of experts averaged (logits)")
    axes.set_ylabel(ACCURACY_LABEL)
    axes.set_title("Ensemble soft labels")
    outside_legend(axes, title="soft labels")
    save_figure(figure, files.png, files.pdf)

    save_table(accuracy_grid(results, "images_per_class", "ensemble_size", "IPC", experts_title),
               files.table_csv, files.table_md,
               title="Ensemble soft labels: student accuracy (%) by the number of experts whose logits are averaged; "
                     f"{expert_epochs_note(results)}; {HEADLINE_NOTE}.")
