"""What labels cost (docs/method.md §14.4): each benchmark population's final accuracy against the bytes of
its images plus its labels as stored (labelworth/storage.py), so a method's accuracy can be read
against what a reader must keep, as the label-compression papers (LPLD, NeurIPS 2024) report it."""

from __future__ import annotations

from labelworth.figures.results import HEADLINE_NOTE, final_cell, student_results
from labelworth.figures.soft_vs_hard import benchmark_protocols, label_kinds, method_title, ordered_methods
from labelworth.figures.style import (
    ACCURACY_LABEL, REGIME_MARKERS, bytes_axis, dataset_title, human_bytes, method_colors, method_regime_legend,
    new_figure, save_figure, save_table,
)
from labelworth.figures import FigureFiles


def draw(files: FigureFiles, settings) -> None:
    """Inputs: the benchmark's student JSONs (as soft_vs_hard)."""
    results = student_results(files.inputs)
    results = results.assign(labels=label_kinds(results),
                             total_bytes=results["image_bytes"] + results["label_bytes"])
    results = benchmark_protocols(results)
    methods = ordered_methods(results["method"])
    colors = method_colors(methods)
    figure, axes = new_figure(width=6.0, height=2.8)
    for (method, kind), rows in results.groupby(["method", "labels"], sort=False):
        axes.errorbar(rows["total_bytes"], rows["final_mean"], yerr=rows["final_ci"], color=colors[method],
                      marker=REGIME_MARKERS[kind], markersize=4, linestyle="none", capsize=2)
    bytes_axis(axes, results["total_bytes"])
    axes.set(xlabel="bytes stored (images + labels)", ylabel=ACCURACY_LABEL,
             title=f"Accuracy against storage ({dataset_title(results['dataset'].iloc[0])})")
    method_regime_legend(axes, {method_title(method): colors[method] for method in methods}, results["labels"],
                         linestyles=False)
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
