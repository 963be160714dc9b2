"""E16, from the reproduction report: are expert labels needed at all? Left, "generated" labels that
give the true class p and spread 1 - p at random, against hard and expert labels. Right, expert labels
whose lowest-entropy fraction q of rows is mixed with noise ("boost"; q = 0 is the plain expert label)."""

from __future__ import annotations

import pandas as pd
from matplotlib.lines import Line2D

from labelworth.figures.results import HEADLINE_NOTE, accuracy_grid, expert_epochs_note, student_results
from labelworth.figures.style import (
    ACCURACY_LABEL, REFERENCE_LINESTYLES, new_figure, outside_legend, plot_groups, reference_line, save_figure,
    save_table,
)
from labelworth.specs import format_number, parse_label_spec
from labelworth.figures import FigureFiles


def label_column(row) -> tuple[int, float, str]:
    """(sort rank, sort value, table column) of a population: hard, noise p by p, the expert label,
    then boosts by q."""
    if row["source"] == "hard":
        return 0, 0.0, "hard"
    if row["source"] == "noise":
        return 1, row["true_class_mass"], f"noise p={format_number(row['true_class_mass'])}"
    if row["transform"] == "boost":
        return 3, row["transform_value"], f"boost q={format_number(row['transform_value'])} α={boost_alpha(row)}"
    return 2, 0.0, "expert"


def boost_alpha(row) -> str:
    """The noise weight alpha of a boosted label spec, as written in the spec."""
    return format_number(parse_label_spec(row["label_spec"]).transforms[0].alpha)


def boost_fraction(results: pd.DataFrame) -> pd.Series:
    """q of each expert population; the unboosted expert label is q = 0."""
    return results["transform_value"].where(results["transform"] == "boost", 0.0)


def draw(files: FigureFiles, settings) -> None:
    """Inputs per IPC: student JSONs of `hard`, `noise{p}` for several p, `expert-e{E}` and
    `expert-e{E}-boost{q}a{alpha}` for several q, on random images."""
    results = student_results(files.inputs)
    results[["rank", "value", "labels"]] = results.apply(label_column, axis=1, result_type="expand")
    results = results.sort_values(["images_per_class", "rank", "value"])
    noise = results[results["source"] == "noise"]
    expert = results[results["source"] == "expert"].assign(q=boost_fraction)

    figure, (noise_axes, boost_axes) = new_figure(width=6.8, height=2.7, ncols=2, sharey=True)
    colors = plot_groups(noise_axes, noise, "true_class_mass", "images_per_class", lambda ipc: f"IPC {ipc}")
    for _, row in results[results["labels"].isin(list(REFERENCE_LINESTYLES))].iterrows():
        reference_line(noise_axes, row, colors.get(row["images_per_class"]), REFERENCE_LINESTYLES[row["labels"]])
    plot_groups(boost_axes, expert, "q", "images_per_class", lambda ipc: f"IPC {ipc}", colors=colors)
    noise_axes.set_xlabel("true-class mass p")
    noise_axes.set_ylabel(ACCURACY_LABEL)
    noise_axes.set_title("generated labels")
    boost_axes.set_xlabel("boosted fraction q (lowest entropy first)")
    alphas = sorted({boost_alpha(row) for _, row in expert[expert["transform"] == "boost"].iterrows()})
    boost_axes.set_title(f"expert labels boosted with noise (α = {', '.join(alphas)})")
    handles, labels = noise_axes.get_legend_handles_labels()
    drawn = [kind for kind in REFERENCE_LINESTYLES if (results["labels"] == kind).any()]
    handles += [Line2D([], [], color="black", linestyle=REFERENCE_LINESTYLES[kind], linewidth=1) for kind in drawn]
    labels += [f"{kind} labels (same colour)" for kind in drawn]
    outside_legend(boost_axes, handles, labels)
    save_figure(figure, files.png, files.pdf)

    save_table(accuracy_grid(results, "images_per_class", "labels", "IPC"), files.table_csv, files.table_md,
               title=f"Generated and boosted labels: student accuracy (%), {HEADLINE_NOTE}; noise p: "
                     "true class p, the rest random; boost q: the fraction q of lowest-entropy expert labels mixed "
                     f"with noise; {expert_epochs_note(results)}.")
