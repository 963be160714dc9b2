"""What labels cost (METHOD.md 14.4): each benchmark population's final accuracy against the bytes of
its images plus its labels as stored (labelworth/storage.py), so a method's accuracy can be read
against what a reader must keep, as the label-compression papers (LPLD, NeurIPS 2024) report it."""

from __future__ import annotations

from matplotlib.lines import Line2D

from labelworth.figures.results import HEADLINE_NOTE, final_cell, student_results
from labelworth.figures.soft_vs_hard import LABEL_KINDS, human_bytes, label_kinds, method_title, ordered_methods
from labelworth.figures.style import ACCURACY_LABEL, group_colors, new_figure, save_figure, save_table
from labelworth.figures import FigureFiles


def draw(files: FigureFiles, settings) -> None:
    """Inputs: the benchmark's student JSONs (as soft_vs_hard)."""
    results = student_results(files.inputs)
    results = results.assign(labels=label_kinds(results),
                             total_bytes=results["image_bytes"] + results["label_bytes"])
    results = results[results["student"] == results["student"].iloc[0]]
    methods = ordered_methods(results["method"])
    colors = group_colors(methods)
    figure, axes = new_figure(width=4.4, height=2.8)
    for method in methods:
        for kind, (_, _, marker) in LABEL_KINDS.items():
            rows = results[(results["method"] == method) & (results["labels"] == kind)]
            axes.errorbar(rows["total_bytes"], rows["final_mean"], yerr=rows["final_ci"], color=colors[method],
                          marker=marker, markersize=4, linestyle="none", capsize=2)
    axes.set_xscale("log")
    axes.set(xlabel="bytes stored (images + labels)", ylabel=ACCURACY_LABEL,
             title=f"Accuracy against storage ({results['dataset'].iloc[0]})")
    axes.legend([Line2D([], [], color=colors[method], linewidth=2) for method in methods],
                [method_title(method) for method in methods], loc="upper left", bbox_to_anchor=(1.02, 1.0))
    save_figure(figure, files.png, files.pdf)
    table = results[["method", "images_per_class", "labels", "label_spec", "image_bytes", "label_bytes",
                     "total_bytes", "final_mean", "final_std", "final_low", "final_high"]].sort_values(
        ["total_bytes", "method"], ignore_index=True)
    display = table.assign(method=table["method"].map(method_title),
                           image_bytes=table["image_bytes"].map(human_bytes),
                           label_bytes=table["label_bytes"].map(human_bytes),
                           total_bytes=table["total_bytes"].map(human_bytes),
                           accuracy=[final_cell(row) for _, row in table.iterrows()]).drop(
        columns=["final_mean", "final_std", "final_low", "final_high"])
    save_table(table, files.table_csv, files.table_md, md_frame=display,
               title="Bytes stored per benchmark population (real images as uint8 pixels, synthesised ones as "
                     "float32; hard labels as class indices, soft labels as float32 rows, top-k labels as (index, "
                     "value) pairs) and its student test accuracy (%): " + HEADLINE_NOTE + ".")
