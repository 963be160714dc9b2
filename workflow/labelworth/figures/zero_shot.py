"""E9: can a student recognise a class it never saw an image of? The "treat image" arm removes the
subject class's images but keeps its mass in the other images' soft labels; the "treat label" arm
keeps the images but removes the class from the labels of every other image. The metric is the
subject class's own accuracy after the last epoch, as the paper reports it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelworth.figures.results import expert_epochs_note, mean_std, student_results
from labelworth.figures.style import PALETTE, REFERENCE_GREY, new_figure, save_figure, save_table

ARMS = ("control", "treat image", "treat label")


def subject_accuracies(results: pd.DataFrame, subjects: list[int]) -> pd.DataFrame:
    """One row per (subject class, arm): the subject class's final per-class accuracy, mean and std
    over students (percent)."""
    control = results[results["without_class"].isna() & (results["transforms"] == "")].iloc[0]
    rows = []
    for subject in subjects:
        arms = {
            "control": control,
            "treat image": results[results["without_class"] == subject].iloc[0],
            "treat label": results[(results["transform"] == "zeroclass")
                                   & (results["transform_value"] == subject)].iloc[0],
        }
        rows += [{"subject": subject, "arm": arm, "mean": row["per_class_final"][subject],
                  "std": row["per_class_final_std"][subject]} for arm, row in arms.items()]
    return pd.DataFrame(rows)


def subject_classes(results: pd.DataFrame) -> list[int]:
    """The classes some arm treats: removed from the images or zeroed in the labels."""
    treated = pd.concat([results["without_class"], results.loc[results["transform"] == "zeroclass", "transform_value"]])
    return sorted(int(c) for c in treated.dropna().unique())


def draw(inputs, png, pdf, table_csv, table_md, expert_metrics, marked_epochs, extra) -> None:
    """Inputs: the control `random-ipcN` + `expert-eE`, and per subject class c the treat-image
    `random-ipcN-without{c}` + `expert-eE` and treat-label `random-ipcN` + `expert-eE-zeroclass{c}`."""
    results = student_results(inputs)
    class_names = results["class_names"].iloc[0]
    subjects = subject_classes(results)
    scores = subject_accuracies(results, subjects)

    figure, axes = new_figure(width=3.4, height=2.6)
    width = 0.8 / len(ARMS)
    for offset, (arm, color) in enumerate(zip(ARMS, PALETTE)):
        rows = scores[scores["arm"] == arm]
        positions = np.arange(len(subjects)) + (offset - (len(ARMS) - 1) / 2) * width
        axes.bar(positions, rows["mean"], width, yerr=rows["std"], color=color, capsize=2, label=arm)
    axes.axhline(100 / len(class_names), color=REFERENCE_GREY, linestyle="--", linewidth=1, label="chance")
    axes.set_xticks(range(len(subjects)), [class_names[c] for c in subjects])
    axes.grid(axis="x", visible=False)
    axes.set_xlabel("subject class")
    axes.set_ylabel("subject-class test accuracy (%)")
    axes.set_title(f"Zero-shot test, IPC {results['images_per_class'].iloc[0]} (final epoch)")
    axes.legend(ncols=2)
    save_figure(figure, png, pdf)

    table = scores.assign(cell=[mean_std(m, s) for m, s in zip(scores["mean"], scores["std"])])
    table = table.pivot(index="subject", columns="arm", values="cell").reindex(columns=list(ARMS)).reset_index()
    table["subject"] = [class_names[c] for c in table["subject"]]
    save_table(table, table_csv, table_md,
               title="Zero-shot: the subject class's own test accuracy (%) after the last student epoch, "
                     f"mean ± std over students; {expert_epochs_note(results)}.")
