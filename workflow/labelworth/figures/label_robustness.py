"""How much of a distilled set's worth is in its labels: DD-Ranking's label-robustness scores
(docs/method.md §14.2) for every benchmark method at every IPC, from the benchmark's own students, and a
plain-language share.

With accuracies as fractions (the paper's convention; ddranking 0.2.0 computes on percents, a quirk
not followed here):
* HLR, hard-label recovery = Acc(full data) - Acc(method's images, hard labels): lower is better;
* IOR, improvement over random = Acc(method's images, its labels) - Acc(random images, the same kind
  of labels), its labels being the method's own where it makes any (bptt, sre2l), else the expert's
  soft labels, and random images' soft labels the comparison;
* alpha = lambda IOR - (1 - lambda) HLR with lambda = 0.5, LRS = (e^alpha - e^-1) / (e - e^-1), in [0, 1];
* soft share = (Acc(random, soft) - Acc(random, hard)) / (Acc(method, its labels) - Acc(random, hard)):
  the part of the method's gain over random images with hard labels that random images with soft
  labels already achieve; a share only inside [0, 1], and said in words where it is none (no gain,
  or soft labels alone beat the method).
The full-data accuracy is the expert run's test accuracy at its last epoch (its metrics.csv), or
`extra` ["full_data_accuracy=<percent>"] when the config gives one.
"""

from __future__ import annotations

import math

import pandas as pd

from labelworth.errors import LabelworthError
from labelworth.figures.results import student_results
from labelworth.figures.soft_vs_hard import in_method_order, label_kinds, method_title, ordered_methods
from labelworth.figures.style import (
    IPC_LABEL, REGIME_MARKERS, dataset_title, log_axis, method_colors, method_regime_legend, new_figure, save_figure,
    save_table,
)
from labelworth.figures import FigureFiles

LAMBDA = 0.5


def label_robustness_score(hlr: float, ior: float, weight: float = LAMBDA) -> float:
    """LRS from HLR and IOR (fractions): (e^alpha - e^-1) / (e - e^-1), alpha = weight IOR - (1 - weight) HLR.
    Property (tests): 0 at alpha = -1, 1 at alpha = 1, increasing in IOR, decreasing in HLR."""
    alpha = weight * ior - (1 - weight) * hlr
    return (math.exp(alpha) - math.exp(-1)) / (math.e - math.exp(-1))


def full_data_accuracy(expert_metrics: list[str], settings: LabelRobustnessFigure) -> float:
    """The full-data accuracy (a fraction): a configured value, else the expert's last test accuracy."""
    if settings.full_data_accuracy is not None:
        return settings.full_data_accuracy / 100
    if not expert_metrics:
        raise LabelworthError("label_robustness needs the expert's metrics.csv or full_data_accuracy=<percent>")
    return float(pd.read_csv(expert_metrics[0])["test_accuracy"].iloc[-1])


def soft_share(random_hard: float, random_soft: float, theirs: float) -> tuple[float, str]:
    """The share of a method's gain over random images with hard labels that random images with soft
    labels already achieve, and '' ; or NaN and why it is no share: the method gains nothing, or the
    ratio falls outside [0, 1] (soft labels alone beat the method, or do worse than hard ones).

    Property (tests): a share is a number only inside [0, 1]."""
    gain = theirs - random_hard
    if gain <= 0:
        return math.nan, "undefined: the method gains nothing over random images with hard labels"
    ratio = (random_soft - random_hard) / gain
    if ratio > 1:
        return math.nan, f"none: random images with soft labels beat the method (ratio {ratio:.2f})"
    if ratio < 0:
        return math.nan, f"none: soft labels lose to hard ones on random images (ratio {ratio:.2f})"
    return ratio, ""


def robustness_table(results: pd.DataFrame, full: float) -> pd.DataFrame:
    """One row per (protocol, method other than random, IPC) that has hard labels and its labels, with
    the random images' hard and soft populations of the same IPC and protocol."""
    results = results.assign(kind=label_kinds(results), accuracy=results["final_mean"] / 100)
    first_soft = results[results["kind"] == "expert"].groupby(["student", "method", "images_per_class"]).head(1)
    rows = []
    for (student, method, ipc), group in results.groupby(["student", "method", "images_per_class"], sort=False):
        if method == "random":
            continue
        random = results[(results["student"] == student) & (results["method"] == "random")
                         & (results["images_per_class"] == ipc)]
        random_hard = random[random["kind"] == "hard"]["accuracy"]
        random_soft = first_soft[(first_soft["student"] == student) & (first_soft["method"] == "random")
                                 & (first_soft["images_per_class"] == ipc)]["accuracy"]
        hard = group[group["kind"] == "hard"]["accuracy"]
        own = group[group["kind"] == "learned"]
        labelled = own if len(own) else first_soft[(first_soft["student"] == student) & (first_soft["method"] == method)
                                                   & (first_soft["images_per_class"] == ipc)]
        if not (len(random_hard) and len(random_soft) and len(hard) and len(labelled)):
            continue
        theirs = float(labelled["accuracy"].iloc[0])
        hlr, ior = full - float(hard.iloc[0]), theirs - float(random_soft.iloc[0])
        share, share_note = soft_share(float(random_hard.iloc[0]), float(random_soft.iloc[0]), theirs)
        rows.append({
            "student": student, "method": method, "images_per_class": int(ipc),
            "its_labels": "own" if len(own) else "expert soft", "full_data": full, "hard": float(hard.iloc[0]),
            "its": theirs, "random_hard": float(random_hard.iloc[0]), "random_soft": float(random_soft.iloc[0]),
            "HLR": hlr, "IOR": ior, "LRS": label_robustness_score(hlr, ior),
            "soft_share": share, "soft_share_note": share_note,
        })
    if not rows:
        raise LabelworthError("label_robustness: the inputs hold no method with hard labels and its labels beside "
                              "random images with hard and soft labels at the same IPC")
    table = pd.DataFrame(rows)
    return in_method_order(table, ["images_per_class"])


def draw(files: FigureFiles, settings) -> None:
    """Inputs: the benchmark's student JSONs (as soft_vs_hard); `files.expert_metrics`: the expert run's
    metrics.csv (its last test accuracy is the full-data accuracy)."""
    results = student_results(files.inputs)
    full = full_data_accuracy(files.expert_metrics, settings)
    table = robustness_table(results, full)
    methods = ordered_methods(table["method"])
    colors = method_colors(methods)
    shown = table[table["student"] == table["student"].iloc[0]]
    # Each point marked by the labels the score credits the method with: its own, else expert soft ones.
    kinds = shown["its_labels"].map({"own": "learned", "expert soft": "expert"})
    figure, axes = new_figure(width=6.0, height=2.6)
    for method in methods:
        rows = shown[shown["method"] == method]
        axes.plot(rows["images_per_class"], rows["LRS"], color=colors[method], linewidth=1)
        for kind, points in rows.groupby(kinds[rows.index]):
            axes.plot(points["images_per_class"], points["LRS"], color=colors[method], marker=REGIME_MARKERS[kind],
                      markersize=4, linestyle="none")
    log_axis(axes, shown["images_per_class"])
    axes.set(xlabel=IPC_LABEL, ylabel="label-robustness score (LRS)",
             title=f"{dataset_title(results['dataset'].iloc[0])}, full-data accuracy {100 * full:.1f}%")
    method_regime_legend(axes, {method_title(method): colors[method] for method in methods}, kinds,
                         linestyles=False)
    save_figure(figure, files.png, files.pdf)
    display = pd.DataFrame({
        "method": table["method"].map(method_title), "IPC": table["images_per_class"], "labels": table["its_labels"],
        "hard": (100 * table["hard"]).round(1), "its labels": (100 * table["its"]).round(1),
        "random hard": (100 * table["random_hard"]).round(1), "random soft": (100 * table["random_soft"]).round(1),
        "HLR": table["HLR"].round(3), "IOR": table["IOR"].round(3), "LRS": table["LRS"].round(3),
        "share of the gain soft labels alone give": [note or f"{share:.2f}" for share, note
                                                     in zip(table["soft_share"], table["soft_share_note"])],
    })
    if table["student"].nunique() > 1:
        display.insert(0, "student", table["student"])
    save_table(table, files.table_csv, files.table_md, md_frame=display,
               title=f"Label-robustness scores (DD-Ranking, arXiv 2505.13300) on "
                     f"{dataset_title(results['dataset'].iloc[0])}, accuracies as fractions, full data "
                     f"{100 * full:.1f}% "
                     "(accuracies are final, after the last epoch, mean over students). HLR = full - hard; IOR = its labels "
                     "- random with soft labels; LRS = (e^a - e^-1)/(e - e^-1), a = (IOR - HLR)/2. The last "
                     "column: the share of the method's gain over random images with hard labels that random "
                     "images with soft labels already achieve.")
