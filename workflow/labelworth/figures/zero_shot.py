"""E9: can a student recognise a class it never saw an image of? The "treat image" arm removes the
subject class's images but keeps its mass in the other images' soft labels; the "treat label" arm
keeps the images but removes the class from the labels of every other image. The metric is the
subject class's own accuracy after the last epoch, as the paper reports it.

The diagnostic beside it is the label mass: the mean probability the remaining images' soft labels
(the control's label file) put on the subject class. A class with no images can be learned only
through that mass, so the figure plots the treat-image accuracy against it, with chance for
reference (docs/method.md §14.3)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelworth.figures.results import as_number, expert_epochs_note, interval_cell, paired_text, student_results
from labelworth.intervals import half_width, mean_interval
from labelworth.figures.style import (
    REFERENCE_GREY, label_points, new_figure, save_figure, save_table, sequence_colors,
)
from labelworth.errors import LabelworthError
from labelworth.figures import FigureFiles

ARMS = ("control", "treat image", "treat label")


def label_mass(labels: np.ndarray, classes: np.ndarray, subject: int) -> float:
    """The mean probability that images of other classes put on `subject` (percent). Property (tests):
    hard labels give 0, uniform labels over C classes give 100 / C."""
    return float(100 * labels[classes != subject, subject].mean())


def subject_accuracies(results: pd.DataFrame, subjects: list[int]) -> pd.DataFrame:
    """One row per (subject class, arm): the subject class's final per-class accuracy over students
    (percent): `mean`, `ci` (the 95% interval's half-width, 0 for one student), `low` and `high`
    (NaN for one student), `cell` (`interval_cell`), `by_seed` (student seed -> accuracy, for the
    paired differences between arms)."""
    control = results[results["without_class"].isna() & (results["transforms"] == "")].iloc[0]
    rows = []
    for subject in subjects:
        arms = {
            "control": control,
            "treat image": results[results["without_class"] == subject].iloc[0],
            "treat label": results[(results["transform"] == "zeroclass")
                                   & (results["transform_value"] == subject)].iloc[0],
        }
        for arm, row in arms.items():
            by_seed = {seed: values[subject] for seed, values in row["per_class_final_by_seed"].items()}
            interval = mean_interval(list(by_seed.values()))
            rows.append({"subject": subject, "arm": arm, "mean": interval["mean"], "low": as_number(interval["low"]),
                         "high": as_number(interval["high"]),
                         "ci": half_width(interval), "cell": interval_cell(interval), "by_seed": by_seed})
    return pd.DataFrame(rows)


def against_chance(score, chance: float) -> str:
    """Where an arm's subject-class accuracy stands against chance: 'above' or 'below' where its 95%
    interval excludes chance, 'not resolved' where it holds it; '(1 student)' marks a bare mean."""
    if pd.isna(score["low"]):
        return ("above" if score["mean"] > chance else "below") + " (1 student)"
    return "above" if score["low"] > chance else "below" if score["high"] < chance else "not resolved"


def subject_classes(results: pd.DataFrame) -> list[int]:
    """The classes some arm treats: removed from the images or zeroed in the labels."""
    treated = pd.concat([results["without_class"], results.loc[results["transform"] == "zeroclass", "transform_value"]])
    return sorted(int(c) for c in treated.dropna().unique())


def draw(files: FigureFiles, settings) -> None:
    """Inputs: the control `random-ipcN` + `expert-eE`, and per subject class c the treat-image
    `random-ipcN-without{c}` + `expert-eE` and treat-label `random-ipcN` + `expert-eE-zeroclass{c}`."""
    from labelworth import io

    results = student_results(files.inputs)
    class_names = results["class_names"].iloc[0]
    subjects = subject_classes(results)
    if not subjects:
        raise ValueError("no subject class is removed from the images or zeroed in the labels")
    if files.mass_labels is None or files.mass_images is None:
        raise LabelworthError("figure zero_shot: give the control's label and image files (--mass-labels, "
                              "--mass-images), whose label mass on each subject class it reports")
    scores = subject_accuracies(results, subjects)
    labels = io.load_tensors(files.mass_labels, required=("labels",))["labels"].numpy()
    classes = io.load_tensors(files.mass_images, required=("labels",))["labels"].numpy()
    mass = {subject: label_mass(labels, classes, subject) for subject in subjects}
    chance = 100 / len(class_names)

    figure, (axes, mass_axes) = new_figure(width=6.8, height=2.8, ncols=2, width_ratios=[1.6, 1])
    colors = sequence_colors(ARMS)  # the arms are conditions, not image-set methods
    width = 0.8 / len(ARMS)
    handles = []
    for offset, arm in enumerate(ARMS):
        rows = scores[scores["arm"] == arm]
        positions = np.arange(len(subjects)) + (offset - (len(ARMS) - 1) / 2) * width
        handles.append(axes.bar(positions, rows["mean"], width, yerr=rows["ci"], color=colors[arm], capsize=2,
                                label=arm))
    handles.append(axes.axhline(chance, color=REFERENCE_GREY, linestyle="--", linewidth=1, label="chance"))
    axes.set_xticks(range(len(subjects)), [class_names[c] for c in subjects], rotation=45 if len(subjects) > 4 else 0,
                    ha="right" if len(subjects) > 4 else "center")
    axes.grid(axis="x", visible=False)
    axes.set_xlabel("subject class")
    axes.set_ylabel("subject-class test accuracy (%)")
    axes.set_title(f"Zero-shot test, IPC {results['images_per_class'].iloc[0]} (final epoch, 95% intervals)")
    treated = scores[scores["arm"] == "treat image"]
    masses = [mass[subject] for subject in treated["subject"]]
    handles.append(mass_axes.errorbar(masses, treated["mean"], yerr=treated["ci"], fmt="o",
                                      color=colors["treat image"], capsize=2,
                                      label="treat image against label mass (right)"))
    mass_axes.axhline(chance, color=REFERENCE_GREY, linestyle="--", linewidth=1)
    mass_axes.set_xlabel("label mass on the class from other images (%)")
    mass_axes.set_ylabel("treat-image accuracy (%)")
    mass_axes.set_title("Learned from label mass alone?")
    figure.legend(handles=handles, loc="outside lower center", ncols=3)
    label_points(mass_axes, masses, treated["mean"], [class_names[subject] for subject in treated["subject"]])
    save_figure(figure, files.png, files.pdf)

    cells = scores.set_index(["subject", "arm"])
    table = pd.DataFrame({"subject": [class_names[subject] for subject in subjects]})
    for arm in ARMS:
        table[arm] = [cells.loc[(subject, arm), "cell"] for subject in subjects]
    for arm in ARMS[1:]:
        table[f"{arm} - control"] = [paired_text(cells.loc[(subject, arm), "by_seed"],
                                                 cells.loc[(subject, "control"), "by_seed"]) for subject in subjects]
    table["label mass (%)"] = [round(mass[subject], 2) for subject in subjects]
    table["treat image against chance"] = [against_chance(cells.loc[(subject, "treat image")], chance)
                                           for subject in subjects]
    save_table(table, files.table_csv, files.table_md,
               title="Zero-shot: the subject class's own test accuracy (%) after the last student epoch, "
                     f"mean ± sample std over students [95% t-interval of the mean]; {expert_epochs_note(results)}. "
                     "Each treatment minus the control in points, paired over the same student seeds [95% "
                     "interval], * where it excludes zero. Label mass: the mean probability the other classes' "
                     "images put on the subject class in the control's soft labels. Against chance "
                     f"({chance:.0f}%): where the treat-image interval lies.")
