"""Label budgets: what soft labels are worth per byte. Random images at each IPC with hard labels, the
expert's full float32 soft labels, and the same labels stored smaller (fp16, int8 with a scale per
row, top-k pairs), their accuracy against the bytes their labels take (labelworth/storage.py counts
each as it would be stored).

The matched-budget table asks the paper's data-versus-knowledge question in bytes: for each soft
population, the total bytes (images and labels) it takes, and the accuracy hard labels reach on as
many bytes, that is, on more images. Hard labels' accuracy at that budget is interpolated, linearly in
log images per class, between the measured hard-label populations; outside them it is not guessed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelworth.figures.results import (
    HEADLINE_NOTE, as_number, difference_text, final_cell, paired_text, student_results,
)
from labelworth.figures.style import (
    ACCURACY_LABEL, REGIME_MARKERS, bytes_axis, dataset_title, human_bytes, label_points, method_color, new_figure,
    outside_legend, plot_mean_std, save_figure, save_table, sequence_colors,
)
from labelworth.figures import FigureFiles
from labelworth.intervals import paired_difference


def stored_as(row) -> str:
    """How a population's labels are stored, in words: hard, float32 (full soft), or its transforms."""
    if row["source"] == "hard":
        return "hard"
    return row["transforms"] or "float32"


def hard_accuracy_at(hard: pd.DataFrame, images_per_class: float) -> float:
    """Hard labels' mean final accuracy at a (fractional) IPC, linear in log IPC between the measured
    hard populations; NaN outside them.

    Property (tests): the measured points come back exactly; halfway in log IPC is the mean."""
    points = hard.sort_values("images_per_class")
    ipcs, accuracies = points["images_per_class"].to_numpy(float), points["final_mean"].to_numpy(float)
    if not len(ipcs) or images_per_class < ipcs[0] or images_per_class > ipcs[-1]:
        return float("nan")
    return float(np.interp(np.log(images_per_class), np.log(ipcs), accuracies))


def hard_by_seed_at(hard: pd.DataFrame, images_per_class: float) -> dict:
    """`hard_accuracy_at` per student seed: each seed's final accuracy interpolated between the two
    measured hard populations around the IPC (or taken from the one measured there), over the seeds
    both have; {} outside them. A soft population paired with it over seeds gives the matched-budget
    difference an interval.

    Property (tests): at a measured IPC that population's seeds come back; between two, each seed both
    have is linear in log IPC (halfway in log IPC: the mean of its two values); outside, {}."""
    points = hard.sort_values("images_per_class")
    ipcs = points["images_per_class"].to_numpy(float)
    if not len(ipcs) or images_per_class < ipcs[0] or images_per_class > ipcs[-1]:
        return {}
    above = min(int(np.searchsorted(ipcs, images_per_class)), len(ipcs) - 1)
    around = points.iloc[[above] if ipcs[above] == images_per_class else [above - 1, above]]
    seeds = set.intersection(*(set(by_seed) for by_seed in around["final_by_seed"]))
    return {seed: float(np.interp(np.log(images_per_class), np.log(around["images_per_class"].to_numpy(float)),
                                  [by_seed[seed] for by_seed in around["final_by_seed"]]))
            for seed in sorted(seeds)}


def budget_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per soft population: IPC, how its labels are stored, label and total bytes, its final
    accuracy (mean, interval), the IPC hard labels can have on the same total bytes, their
    (interpolated) accuracy there and the difference with its 95% interval paired over student seeds
    (`hard_by_seed_at`); NaN where the budget lies beyond the measured hard-label populations.
    Also each population's by-seed finals (`final_by_seed`, for `against_float32`) and the
    difference as the tables print it (`soft_minus_hard_cell`)."""
    hard = results[results["source"] == "hard"]
    per_ipc_hard = (hard["image_bytes"] + hard["label_bytes"]) / hard["images_per_class"]
    bytes_per_ipc = float(per_ipc_hard.iloc[0])  # images and hard labels grow linearly with IPC
    rows = []
    for _, row in results[results["source"] != "hard"].iterrows():
        total = int(row["image_bytes"] + row["label_bytes"])
        equivalent = total / bytes_per_ipc
        hard_by_seed, at_budget = hard_by_seed_at(hard, equivalent), hard_accuracy_at(hard, equivalent)
        paired = set(hard_by_seed) & set(row["final_by_seed"])
        difference = paired_difference(row["final_by_seed"], hard_by_seed) if paired else None
        low, high = (difference["low"], difference["high"]) if difference else (None, None)
        rows.append({"images_per_class": int(row["images_per_class"]), "stored_as": stored_as(row),
                     "label_spec": row["label_spec"], "label_bytes": int(row["label_bytes"]), "total_bytes": total,
                     "final_mean": row["final_mean"], "final_std": row["final_std"], "final_low": row["final_low"],
                     "final_high": row["final_high"], "hard_images_per_class": equivalent,
                     "hard_at_budget": at_budget,
                     # the paired mean where seeds pair (its interval's centre), else the means' difference
                     "soft_minus_hard": difference["mean"] if difference else row["final_mean"] - at_budget,
                     "soft_minus_hard_low": as_number(low), "soft_minus_hard_high": as_number(high),
                     "soft_minus_hard_cell": difference_text(difference) if difference else "",
                     "final_by_seed": row["final_by_seed"]})
    return pd.DataFrame(rows).sort_values(["images_per_class", "label_bytes"], ignore_index=True)


def against_float32(table: pd.DataFrame) -> list[str]:
    """Each stored form minus the float32 labels of its IPC, paired over student seeds (`paired_text`;
    '' for the float32 row itself and where the IPC has none): what the smaller storage costs."""
    float32 = table[table["stored_as"] == "float32"].set_index("images_per_class")
    return ["" if row["stored_as"] == "float32" or row["images_per_class"] not in float32.index
            else paired_text(row["final_by_seed"], float32.loc[row["images_per_class"], "final_by_seed"])
            for _, row in table.iterrows()]


def draw(files: FigureFiles, settings) -> None:
    """Inputs: student JSONs of random images with hard labels, an expert's soft labels and the same
    labels under storage transforms, at several IPCs."""
    results = student_results(files.inputs)
    results = results.assign(stored_as=results.apply(stored_as, axis=1))
    ipcs = sorted(results["images_per_class"].unique())
    colors = sequence_colors(ipcs)
    figure, axes = new_figure(width=5.0, height=3.0)
    for ipc in ipcs:
        rows = results[results["images_per_class"] == ipc].sort_values("label_bytes")
        plot_mean_std(axes, rows["label_bytes"], rows["final_mean"], rows["final_ci"], colors[ipc],
                      label=f"IPC {ipc}, soft labels", linestyle=":")
        hard = rows[rows["source"] == "hard"]
        # random real images with hard labels: random's colour and the hard-label marker, as everywhere
        axes.scatter(hard["label_bytes"], hard["final_mean"], marker=REGIME_MARKERS["hard"],
                     color=method_color("random"), zorder=3, s=20, label="hard labels" if ipc == ipcs[0] else None)
    bytes_axis(axes, results["label_bytes"])
    axes.set(xlabel="label bytes as stored (log scale)", ylabel=ACCURACY_LABEL,
             title=f"Accuracy against label bytes ({dataset_title(results['dataset'].iloc[0])})")
    outside_legend(axes)
    soft = results[results["source"] != "hard"]
    label_points(axes, soft["label_bytes"], soft["final_mean"], soft["stored_as"])
    save_figure(figure, files.png, files.pdf)
    table = budget_table(results)
    display = pd.DataFrame({
        "IPC": table["images_per_class"], "soft labels stored as": table["stored_as"],
        "label bytes": table["label_bytes"].map(human_bytes), "total bytes": table["total_bytes"].map(human_bytes),
        "soft labels": [final_cell(row) for _, row in table.iterrows()],
        "hard labels on the same bytes": [
            f"{accuracy:.1f} (IPC {ipc:.2f}, interpolated)" if not pd.isna(accuracy)
            else f"not measured (IPC {ipc:.2f} lies beyond the hard-label populations)"
            for accuracy, ipc in zip(table["hard_at_budget"], table["hard_images_per_class"])],
        "soft - hard (paired)": table["soft_minus_hard_cell"],
        "- float32 (paired)": against_float32(table),
    })
    save_table(table.drop(columns=["final_by_seed", "soft_minus_hard_cell"]), files.table_csv, files.table_md,
               md_frame=display,
               title=f"Matched label budgets: each soft-label population of random images ({HEADLINE_NOTE}) "
                     "against hard labels on as many total bytes (images as uint8 pixels plus labels as stored), "
                     "that is on more images; hard labels' accuracy there is interpolated linearly in log IPC "
                     "between the measured hard-label populations, per student seed, so that soft - hard is paired "
                     "over the same seeds [95% interval], * where it excludes zero; - float32: the stored form "
                     "minus the full float32 labels at its IPC, paired the same way.")
