"""E7: can a late expert's labels, flattened by a temperature, stand in for an early expert's?
A heat map of student accuracy over expert epoch x softmax temperature, one panel per IPC; the table
gives each cell with its interval and two paired differences: against the same expert at T = 1 (the
transform against its base) and against the grid's earliest expert at T = 1 (the early expert the
smoothed late one would replace)."""

from __future__ import annotations

import pandas as pd

from labelworth.figures.results import HEADLINE_NOTE, final_cell, paired_cell, student_results
from labelworth.figures.style import ACCURACY_LABEL, heatmap, new_figure, save_figure, save_table
from labelworth.specs import format_number
from labelworth.figures import FigureFiles


def grid_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (IPC, expert epoch, temperature), in that order: its `final_cell`, its paired
    difference from the same expert epoch at T = 1, and from the IPC's earliest expert epoch at T = 1
    ('' for the base itself, or where the grid lacks that base)."""
    rows = []
    for ipc, group in results.groupby("images_per_class"):
        unsmoothed = group[group["temperature"] == 1].set_index("expert_epoch")
        early = unsmoothed.sort_index().iloc[0] if len(unsmoothed) else None
        for _, row in group.sort_values(["expert_epoch", "temperature"]).iterrows():
            same = unsmoothed.loc[row["expert_epoch"]] if row["expert_epoch"] in unsmoothed.index else None
            rows.append({
                "IPC": ipc, "expert epoch": int(row["expert_epoch"]), "T": format_number(row["temperature"]),
                "accuracy": final_cell(row),
                "- same epoch at T=1": "" if same is None or row["temperature"] == 1 else paired_cell(row, same),
                "- earliest epoch at T=1": ("" if early is None or row["label_spec"] == early["label_spec"]
                                            else paired_cell(row, early)),
            })
    return pd.DataFrame(rows)


def draw(files: FigureFiles, settings) -> None:
    """Inputs: student JSONs of `expert-e{E}[-t{T}]` labels on random images, a full grid of epochs E
    x temperatures T (usually at one IPC; several IPCs give one panel each)."""
    results = student_results(files.inputs).sort_values(["images_per_class", "expert_epoch", "temperature"])
    results["expert_epoch"] = results["expert_epoch"].astype(int)
    panels = sorted(results["images_per_class"].unique())
    figure, axes_row = new_figure(width=3.4 * len(panels), height=2.8, ncols=len(panels), squeeze=False)
    for axes, ipc in zip(axes_row[0], panels):
        rows = results[results["images_per_class"] == ipc]
        means = rows.pivot(index="expert_epoch", columns="temperature", values="final_mean")
        lows = rows.pivot(index="expert_epoch", columns="temperature", values="final_low")
        highs = rows.pivot(index="expert_epoch", columns="temperature", values="final_high")
        text = [["" if pd.isna(m) else f"{m:.1f}" if pd.isna(low) else f"{m:.1f}\n[{low:.1f}, {high:.1f}]"
                 for m, low, high in zip(*triple)]
                for triple in zip(means.to_numpy(), lows.to_numpy(), highs.to_numpy())]
        heatmap(figure, axes, means.to_numpy(), [format_number(t) for t in means.columns],
                [str(e) for e in means.index], cell_text=text, colorbar_label=ACCURACY_LABEL)
        axes.set_xlabel("softmax temperature T")
        axes.set_ylabel("expert epoch")
        axes.set_title(f"IPC {ipc} (mean [95% interval])")
    save_figure(figure, files.png, files.pdf)
    save_table(grid_table(results), files.table_csv, files.table_md,
               title=f"Student accuracy (%) by expert epoch and temperature T (T > 1 flattens the labels): "
                     f"{HEADLINE_NOTE}; then each population minus the same expert at T = 1 and minus the earliest "
                     "expert at T = 1, in points, paired over the same student seeds [95% interval], * where the "
                     "interval excludes zero.")
