"""The paper's central result on the configured dataset: the same random real images trained on with
hard labels and with an early-stopped expert's soft labels, across images per class."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelworth.figures.results import mean_std, student_results
from labelworth.figures.style import PALETTE, new_figure, save_figure, save_table


def draw(inputs, png, pdf, table_csv, table_md, expert_metrics, marked_epochs, extra) -> None:
    """Inputs: the benchmark's student JSONs (random images; hard and expert labels per IPC)."""
    results = student_results(inputs)
    results["labels"] = np.where(results["label_spec"] == "hard", "hard", "soft")
    dataset = results["dataset"].iloc[0]

    figure, axes = new_figure()
    for (kind, color, marker) in (("hard", PALETTE[1], "s"), ("soft", PALETTE[0], "o")):
        rows = results[results["labels"] == kind]
        axes.errorbar(rows["images_per_class"], rows["best_mean"], yerr=rows["best_std"], color=color,
                      marker=marker, markersize=4, capsize=2, label=f"{kind} labels")
    axes.set_xscale("log")
    axes.set_xticks(sorted(results["images_per_class"].unique()))
    axes.get_xaxis().set_major_formatter("{x:g}")
    axes.set_xlabel("images per class")
    axes.set_ylabel("student test accuracy (%)")
    axes.set_title(f"Random real images, {dataset}")
    axes.legend()
    save_figure(figure, png, pdf)

    table = []
    for ipc, rows in results.groupby("images_per_class"):
        hard = rows[rows["labels"] == "hard"].iloc[0]
        for _, soft in rows[rows["labels"] == "soft"].iterrows():
            table.append({
                "IPC": ipc,
                "soft labels": soft["label_spec"],
                "hard (best)": mean_std(hard["best_mean"], hard["best_std"]),
                "soft (best)": mean_std(soft["best_mean"], soft["best_std"]),
                "gain (best)": f"{soft['best_mean'] - hard['best_mean']:+.1f}",
                "hard (final)": mean_std(hard["final_mean"], hard["final_std"]),
                "soft (final)": mean_std(soft["final_mean"], soft["final_std"]),
                "students": int(soft["students"]),
            })
    save_table(pd.DataFrame(table), table_csv, table_md,
               title=f"Student test accuracy (%) on {dataset}, mean ± std over students; "
                     "'best' = best of the periodic tests, 'final' = after the last epoch.")
