"""E7: can a late expert's labels, flattened by a temperature, stand in for an early expert's?
A heat map of student accuracy over expert epoch x softmax temperature, one panel per IPC."""

from __future__ import annotations

import pandas as pd

from labelworth.figures.results import HEADLINE_NOTE, accuracy_grid, student_results
from labelworth.figures.style import ACCURACY_LABEL, heatmap, new_figure, save_figure, save_table
from labelworth.specs import format_number
from labelworth.figures import FigureFiles


def temperature_title(temperature: float) -> str:
    return f"T={format_number(temperature)}"


def draw(files: FigureFiles, settings) -> None:
    """Inputs: student JSONs of `expert-e{E}[-t{T}]` labels on random images, a full grid of epochs E
    x temperatures T (usually at one IPC; several IPCs give one panel each)."""
    results = student_results(files.inputs).sort_values(["images_per_class", "expert_epoch", "temperature"])
    results["expert_epoch"] = results["expert_epoch"].astype(int)
    panels = sorted(results["images_per_class"].unique())
    figure, axes_row = new_figure(width=3.4 * len(panels), height=2.8, ncols=len(panels), squeeze=False)
    tables = []
    for axes, ipc in zip(axes_row[0], panels):
        rows = results[results["images_per_class"] == ipc]
        means = rows.pivot(index="expert_epoch", columns="temperature", values="final_mean")
        stds = rows.pivot(index="expert_epoch", columns="temperature", values="final_std")
        text = [[f"{m:.1f}\n±{s:.1f}" if pd.notna(m) else "" for m, s in zip(*pair)]
                for pair in zip(means.to_numpy(), stds.to_numpy())]
        heatmap(figure, axes, means.to_numpy(), [format_number(t) for t in means.columns],
                [str(e) for e in means.index], cell_text=text, colorbar_label=ACCURACY_LABEL)
        axes.set_xlabel("softmax temperature T")
        axes.set_ylabel("expert epoch")
        axes.set_title(f"IPC {ipc}")
        grid = accuracy_grid(rows, "expert_epoch", "temperature", "expert epoch", temperature_title)
        grid.insert(0, "IPC", ipc)
        tables.append(grid)
    save_figure(figure, files.png, files.pdf)
    save_table(pd.concat(tables, ignore_index=True), files.table_csv, files.table_md,
               title="Student accuracy (%) by expert epoch (rows) and temperature T (columns; T > 1 flattens "
                     f"the labels): {HEADLINE_NOTE}.")
