"""E10: a label is worth how many images? Student accuracy against images per class for hard labels,
the full soft label and soft labels cut to their top-k entries, each fitted by a power law
acc = a * IPC^b. The exchange rate says how many times more images a label kind needs to match the
full soft label at the smallest IPC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from labelworth.figures.results import expert_epochs_note, student_results
from labelworth.figures.style import (
    ACCURACY_LABEL, IPC_LABEL, REFERENCE_GREY, REGIME_MARKERS, log_axis, method_color, new_figure, outside_legend,
    plot_mean_std, save_figure, save_table, sequence_colors,
)
from labelworth.figures import FigureFiles

FULL_SOFT = "full soft"


@dataclass(frozen=True)
class PowerLaw:
    """acc = a * IPC^b, with the ordinary-least-squares standard errors of ln(a) and b."""

    a: float
    b: float
    se_log_a: float
    se_b: float

    def __call__(self, ipc):
        return self.a * np.asarray(ipc, dtype=float) ** self.b

    def images_for(self, accuracy: float) -> float:
        """The IPC at which the fit reaches `accuracy`; NaN when it never does (b <= 0: accuracy does
        not grow with images)."""
        return (accuracy / self.a) ** (1 / self.b) if self.b > 0 else float("nan")


def fit_power_law(ipc, accuracy) -> PowerLaw:
    """Least squares of ln(acc) = ln(a) + b ln(IPC). Standard errors come from the residual variance
    with n - 2 degrees of freedom, so they are NaN with exactly two points; with fewer than two
    distinct IPCs nothing is identified and everything is NaN."""
    x, y = np.log(np.asarray(ipc, dtype=float)), np.log(np.asarray(accuracy, dtype=float))
    if len(np.unique(x)) < 2:
        return PowerLaw(*[float("nan")] * 4)
    design = np.column_stack([np.ones_like(x), x])
    (log_a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    if len(x) > 2:
        residual = y - design @ np.array([log_a, b])
        covariance = residual @ residual / (len(x) - 2) * np.linalg.inv(design.T @ design)
        se_log_a, se_b = np.sqrt(np.diag(covariance))
    else:
        se_log_a = se_b = float("nan")
    return PowerLaw(float(np.exp(log_a)), float(b), float(se_log_a), float(se_b))


def exchange_rate(fit: PowerLaw, reference: PowerLaw, ipc: float) -> float:
    """How many times more images `fit` needs than `ipc` to reach the accuracy `reference` predicts
    at `ipc` (1 for the reference itself; NaN when unreachable)."""
    return fit.images_for(float(reference(ipc))) / ipc


def label_kind(row) -> str:
    """'hard', 'full soft', or the kept-entries transform ('top2')."""
    if row["source"] == "hard":
        return "hard"
    return row["transforms"] or FULL_SOFT


def kind_title(kind: str) -> str:
    """A label kind in the legend: 'top2' -> 'top-2 soft'; hard and full soft as they are."""
    return f"top-{kind[len('top'):]} soft" if kind.startswith("top") else kind


def kind_order(results: pd.DataFrame) -> list[str]:
    """The label kinds of `results` (its `labels` column), least to most label information: hard,
    top-k by increasing k, the full soft label."""
    kinds = set(results["labels"])
    tops = results[results["transform"] == "top"].sort_values("transform_value")["labels"]
    return [k for k in ("hard",) if k in kinds] + list(dict.fromkeys(tops)) + [k for k in (FULL_SOFT,) if k in kinds]


def fit_table(results: pd.DataFrame, kinds: list[str]) -> tuple[dict[str, PowerLaw], pd.DataFrame]:
    """The power law of each label kind and the table of its parameters and exchange rate."""
    fits = {}
    for kind in kinds:
        rows = results[results["labels"] == kind]
        fits[kind] = fit_power_law(rows["images_per_class"], rows["final_mean"])
    smallest = results["images_per_class"].min()
    reference = fits.get(FULL_SOFT)
    table = pd.DataFrame([{
        "labels": kind,
        "a": round(fit.a, 3),
        "SE(ln a)": round(fit.se_log_a, 4),
        "b": round(fit.b, 4),
        "SE(b)": round(fit.se_b, 4),
        "image exchange rate": (round(exchange_rate(fit, reference, smallest), 2)
                                if reference is not None else float("nan")),
    } for kind, fit in fits.items()])
    return fits, table


def worth_table(external: pd.DataFrame, fits: dict[str, PowerLaw]) -> pd.DataFrame:
    """One row per external set and label kind: its accuracy, and how many random images per class
    the same labels need (by their fit) to match it, its worth in random images."""
    return pd.DataFrame([{
        "labels": f"{row.labels}, {row.external_name} (external) at IPC {row.images_per_class}",
        "accuracy": round(row.final_mean, 2),
        "worth in random images per class": round(fits[row.labels].images_for(row.final_mean), 2)
        if row.labels in fits else float("nan"),
    } for row in external.itertuples()])


def draw(files: FigureFiles, settings) -> None:
    """Inputs per IPC: student JSONs of `hard`, `expert-e{E}` and `expert-e{E}-top{k}` labels for
    several k, on random images."""
    everything = student_results(files.inputs)
    everything["labels"] = everything.apply(label_kind, axis=1)
    results = everything[everything["method"] == "random"]  # the fits; external sets are points beside them
    external = everything[everything["method"] != "random"]
    kinds = kind_order(results)
    fits, table = fit_table(results, kinds)
    if len(external):
        table = pd.concat([table, worth_table(external, fits)], ignore_index=True)

    figure, axes = new_figure(width=4.8, height=2.8)
    # Top-k labels are an order (k), drawn in shades; hard labels on random images are random's colour
    # and the hard-label marker, as in every figure.
    colors = sequence_colors([kind for kind in kinds if kind != "hard"]) | {"hard": method_color("random")}
    markers = {kind: REGIME_MARKERS["hard" if kind == "hard" else "expert"] for kind in kinds}
    for kind in kinds:
        rows = results[results["labels"] == kind]
        plot_mean_std(axes, rows["images_per_class"], rows["final_mean"], rows["final_ci"], colors[kind],
                      label=f"{kind_title(kind)} (b = {fits[kind].b:.2f})", marker=markers[kind], linestyle="none")
    span = np.geomspace(results["images_per_class"].min(), results["images_per_class"].max(), 50)
    for kind, fit in fits.items():
        axes.plot(span, fit(span), color=colors[kind], linewidth=1, alpha=0.8)
    for kind in kinds:  # each external set: hollow markers of its label kind
        rows = external[external["labels"] == kind]
        axes.scatter(rows["images_per_class"], rows["final_mean"], facecolors="none", edgecolors=colors[kind], s=30,
                     marker=markers[kind])
    log_axis(axes, everything["images_per_class"])
    log_axis(axes, axis="y")
    axes.set_xlabel(IPC_LABEL)
    axes.set_ylabel(ACCURACY_LABEL)
    axes.set_title("Top-k soft labels against images per class")
    handles, labels = axes.get_legend_handles_labels()
    handles.append(Line2D([], [], color=REFERENCE_GREY, linewidth=1))
    labels.append("power-law fit acc = a·IPC^b")
    for kind in [kind for kind in kinds if (external["labels"] == kind).any()]:
        handles.append(Line2D([], [], color=colors[kind], marker=markers[kind], markerfacecolor="none",
                              linestyle="none"))
        labels.append(f"{kind_title(kind)}, external set")
    outside_legend(axes, handles, labels, title="labels on random images")
    save_figure(figure, files.png, files.pdf)

    save_table(table, files.table_csv, files.table_md,
               title="Power-law fits acc = a·IPC^b (acc in %, least squares on ln acc vs ln IPC; SE(ln a) is the "
                     "standard error of the natural log of a; NaN with two IPCs). Image exchange rate: how many "
                     f"times the smallest IPC ({results['images_per_class'].min()}) the label kind needs to reach "
                     f"the full soft label's fitted accuracy there (NaN: never). {expert_epochs_note(results)}."
                     + (" External sets: their accuracy and the random images per class the same labels "
                        "need, by the fit, to match it." if len(external) else ""))
