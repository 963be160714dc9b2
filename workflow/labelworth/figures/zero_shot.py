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

from labelworth.figures.results import expert_epochs_note, mean_std, student_results
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
        handles.append(axes.bar(positions, rows["mean"], width, yerr=rows["std"], color=colors[arm], capsize=2,
                                label=arm))
    handles.append(axes.axhline(chance, color=REFERENCE_GREY, linestyle="--", linewidth=1, label="chance"))
    axes.set_xticks(range(len(subjects)), [class_names[c] for c in subjects], rotation=45 if len(subjects) > 4 else 0,
                    ha="right" if len(subjects) > 4 else "center")
    axes.grid(axis="x", visible=False)
    axes.set_xlabel("subject class")
    axes.set_ylabel("subject-class test accuracy (%)")
    axes.set_title(f"Zero-shot test, IPC {results['images_per_class'].iloc[0]} (final epoch)")
    treated = scores[scores["arm"] == "treat image"]
    masses = [mass[subject] for subject in treated["subject"]]
    handles.append(mass_axes.errorbar(masses, treated["mean"], yerr=treated["std"], fmt="o",
                                      color=colors["treat image"], capsize=2,
                                      label="treat image against label mass (right)"))
    mass_axes.axhline(chance, color=REFERENCE_GREY, linestyle="--", linewidth=1)
    mass_axes.set_xlabel("label mass on the class from other images (%)")
    mass_axes.set_ylabel("treat-image accuracy (%)")
    mass_axes.set_title("Learned from label mass alone?")
    figure.legend(handles=handles, loc="outside lower center", ncols=3)
    label_points(mass_axes, masses, treated["mean"], [class_names[subject] for subject in treated["subject"]])
    save_figure(figure, files.png, files.pdf)

    table = scores.assign(cell=[mean_std(m, s) for m, s in zip(scores["mean"], scores["std"])])
    table = table.pivot(index="subject", columns="arm", values="cell").reindex(columns=list(ARMS)).reset_index()
    table["label mass (%)"] = [round(mass[subject], 2) for subject in table["subject"]]
    table["treat image above chance"] = [
        bool(row["mean"] - row["std"] > chance) for _, row in treated.set_index("subject").loc[table["subject"]].iterrows()]
    table["subject"] = [class_names[c] for c in table["subject"]]
    save_table(table, files.table_csv, files.table_md,
               title="Zero-shot: the subject class's own test accuracy (%) after the last student epoch, "
                     f"mean ± std over students; {expert_epochs_note(results)}. Label mass: the mean probability "
                     "the other classes' images put on the subject class in the control's soft labels. 'Above "
                     f"chance': the treat-image mean minus its std exceeds chance ({chance:.0f}%).")
