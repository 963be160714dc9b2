"""How much the paper's convention inflates the benchmark: each population's best of its periodic test
passes minus its final accuracy (after the last epoch), paired over the same students.

The official evaluation tests the student every 200 of its 1,000-3,000 epochs and reports the best of
those passes: it looks at the test set up to 15 times and keeps the luckiest look. The final accuracy
looks once. This figure measures the gap on this run's own passes (`eval_every` of each protocol);
with one pass, best and final are the same students' same number and the gap is zero by
construction, which the table says rather than hides. `benchmarks/pass_inflation.py` measures it at
the official 15 passes on a sample of populations.
"""

from __future__ import annotations

import pandas as pd

from labelworth.figures.results import student_results
from labelworth.figures.soft_vs_hard import in_method_order, label_kinds, method_title, ordered_methods
from labelworth.figures.style import (
    REFERENCE_GREY, REGIME_MARKERS, dataset_title, method_colors, method_regime_legend, new_figure, plural,
    save_figure, save_table,
)
from labelworth.figures import FigureFiles
from labelworth.intervals import paired_difference


def inflation_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per population: its passes, final and best-of-passes means, and the best - final gap
    paired over its students (mean, 95% interval; NaN interval for one student).

    Property (tests): the gap is never negative (the last pass is one of the passes), and is zero
    for a population tested once."""
    rows = []
    for _, row in results.iterrows():
        gap = paired_difference(row["best_by_seed"], row["final_by_seed"])
        rows.append({"student": row["student"], "method": row["method"], "images_per_class": int(row["images_per_class"]),
                     "labels": row["labels"], "label_spec": row["label_spec"], "passes": int(row["passes"]),
                     "final_mean": row["final_mean"], "best_mean": row["best_mean"], "inflation": gap["mean"],
                     "inflation_low": gap["low"], "inflation_high": gap["high"], "students": gap["n"]})
    return in_method_order(pd.DataFrame(rows), ["images_per_class", "label_spec"])


def summary_line(table: pd.DataFrame) -> str:
    """The benchmark's inflation in one sentence, by pass count."""
    parts = []
    for passes, group in table.groupby("passes"):
        parts.append(f"{plural(passes, 'pass', 'passes')}: {plural(len(group), 'population')}, mean inflation "
                     f"{group['inflation'].mean():+.2f} points (largest {group['inflation'].max():+.2f})"
                     + (" (best of one pass is the final accuracy)" if passes == 1 else ""))
    return "; ".join(parts)


def draw(files: FigureFiles, settings) -> None:
    """Inputs: the benchmark's student JSONs (as soft_vs_hard)."""
    results = student_results(files.inputs)
    results = results.assign(labels=label_kinds(results))
    table = inflation_table(results)
    methods = ordered_methods(table["method"])
    colors = method_colors(methods)
    figure, axes = new_figure(width=6.0, height=2.6)
    for (method, kind), rows in table.groupby(["method", "labels"], sort=False):
        error = (rows["inflation_high"] - rows["inflation"]).fillna(0).clip(lower=0)
        axes.errorbar(rows["final_mean"], rows["inflation"], yerr=error, color=colors[method],
                      marker=REGIME_MARKERS[kind], markersize=4, linestyle="none", capsize=2)
    axes.axhline(0, color=REFERENCE_GREY, linewidth=0.8)
    axes.set(xlabel="final accuracy (%)", ylabel="best of passes − final (points)",
             title=f"Best-of-passes inflation ({dataset_title(results['dataset'].iloc[0])})")
    method_regime_legend(axes, {method_title(method): colors[method] for method in methods}, table["labels"],
                         linestyles=False)
    save_figure(figure, files.png, files.pdf)
    display = table.assign(method=table["method"].map(method_title), final_mean=table["final_mean"].round(1),
                           best_mean=table["best_mean"].round(1),
                           inflation=[f"{mean:+.2f}" + ("" if pd.isna(low) else f" [{low:+.2f}, {high:+.2f}]")
                                      for mean, low, high in zip(table["inflation"], table["inflation_low"],
                                                                 table["inflation_high"])])
    display = display.drop(columns=["inflation_low", "inflation_high"])
    save_table(table, files.table_csv, files.table_md, md_frame=display,
               title="Best of the periodic test passes (the paper's convention) minus the final accuracy, per "
                     "benchmark population, paired over its students (mean [95% interval], points). "
                     f"{summary_line(table)}.")
