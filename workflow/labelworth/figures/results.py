"""Student results as one tidy table: one row per result file, its identity parsed into columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelworth.io import read_json
from labelworth.specs import dataset_spec, format_transform, parse_expert_run, parse_image_set, parse_label_spec
from labelworth.storage import image_bytes, label_bytes


def student_results(paths: list[str]) -> pd.DataFrame:
    """One row per student-result JSON.

    Identity columns: dataset, image_set, method, images_per_class, without_class (NaN if none),
    label_spec, source (hard/noise/expert/ensemble), expert_epoch, ensemble_size, temperature,
    transforms (the transform tokens joined by '-', '' if none), true_class_mass, student (the
    protocol's name), expert_run (the trained run `{arch}-lr{lr}` a label spec names, '' for the
    default run and for labels without an expert), expert_arch (the architecture of the expert the
    labels came from, '' without one), student_arch, image_bytes and label_bytes (as stored,
    labelworth/storage.py; online labels: their teachers' weights), online (the protocol made the
    labels batch by batch, labels: online);
    transform (the transform kinds joined by '-', e.g. 'swap', '' if none), transform_value (the
    value of a spec's only transform: swap rank, top k, zeroclass class, boost fraction; NaN unless
    there is exactly one), loss_bin (b of a `lossbin{b}` image set, NaN otherwise), external_name (an external set's
    config name, '' otherwise).
    Accuracy columns, in percent: final_mean, final_std, best_mean, best_std; students (count);
    per_class_final and per_class_final_std (lists, percent, mean and population std over
    students, as the students' own summaries use); class_names (list).
    """
    rows = []
    for path in paths:
        result = read_json(path)
        meta = result["meta"]
        images = parse_image_set(meta["image_set"])
        labels = parse_label_spec(meta["label_spec"])
        per_class = 100 * np.array([s["per_class_final_accuracy"] for s in result["students"]])
        rows.append({
            "dataset": meta["dataset"],
            "image_set": meta["image_set"],
            "method": images.method,
            "images_per_class": images.images_per_class,
            "without_class": images.without_class,
            "label_spec": meta["label_spec"],
            "source": labels.source,
            "expert_epoch": labels.expert_epoch,
            "ensemble_size": labels.ensemble_size,
            "temperature": labels.temperature,
            "transforms": "-".join(format_transform(t) for t in labels.transforms),
            "true_class_mass": labels.true_class_mass,
            "student": meta["student"],
            "expert_run": labels.expert_run or "",
            "expert_arch": parse_expert_run(meta["expert_run"])[0] if meta.get("expert_run") else "",
            "student_arch": meta.get("settings", {}).get("arch", meta["student"]),
            "online": meta.get("settings", {}).get("labels") == "online",
            "image_bytes": image_bytes(images, dataset_spec(meta["dataset"])),
            "label_bytes": meta.get("teacher_bytes") or label_bytes(labels, images, dataset_spec(meta["dataset"])),
            "transform": "-".join(t.kind for t in labels.transforms),
            "transform_value": labels.transforms[0].value if len(labels.transforms) == 1 else None,
            "loss_bin": images.loss_bin,
            "external_name": images.external_name or "",
            "final_mean": 100 * result["final_accuracy"]["mean"],
            "final_std": 100 * result["final_accuracy"]["std"],
            "best_mean": 100 * result["best_accuracy"]["mean"],
            "best_std": 100 * result["best_accuracy"]["std"],
            "students": len(result["students"]),
            "per_class_final": per_class.mean(0).tolist(),
            "per_class_final_std": per_class.std(0).tolist(),
            "class_names": meta["class_names"],
        })
    return pd.DataFrame(rows).sort_values(["image_set", "label_spec"], ignore_index=True)


def mean_std(mean: float, std: float) -> str:
    return f"{mean:.1f} ± {std:.1f}"


def best_rows(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per value of `by`, the row with the highest mean best accuracy; a tie goes to the earliest
    expert epoch (the cheaper expert). Sorted by `by`."""
    ranked = frame.sort_values(["best_mean", "expert_epoch"], ascending=[False, True], kind="stable")
    return ranked.groupby(by).head(1).sort_values(by, ignore_index=True)


def accuracy_grid(frame: pd.DataFrame, row: str, column: str, row_title: str, column_title=str) -> pd.DataFrame:
    """A table of 'mean ± std' best accuracies: one row per value of `row`, one column per value of
    `column` (named by `column_title(value)`), both in the order they first appear in `frame`; ''
    where no population was run. A repeated (row, column) pair is an error, not silently dropped."""
    cells = frame.assign(cell=[mean_std(m, s) for m, s in zip(frame["best_mean"], frame["best_std"])])
    grid = cells.pivot(index=row, columns=column, values="cell")
    grid = grid.reindex(index=cells[row].unique(), columns=cells[column].unique()).fillna("")
    grid.columns = [column_title(value) for value in grid.columns]
    return grid.rename_axis(row_title).reset_index()


def expert_epochs_note(frame: pd.DataFrame) -> str:
    """Which expert epoch the soft labels of each IPC come from, for a table title (`auto` epochs
    differ per IPC), e.g. 'expert epoch 2 at IPC 1, 4 at IPC 10', or 'expert epoch 4' if one."""
    experts = frame.dropna(subset=["expert_epoch"]).drop_duplicates(["images_per_class", "expert_epoch"])
    experts = experts.sort_values(["images_per_class", "expert_epoch"])
    if experts["expert_epoch"].nunique() == 1:
        return f"expert epoch {int(experts['expert_epoch'].iloc[0])}"
    pairs = [f"{int(e)} at IPC {i}" for i, e in zip(experts["images_per_class"], experts["expert_epoch"])]
    return "expert epoch " + ", ".join(pairs)


def hard_cells(frame: pd.DataFrame, ipcs) -> list[str]:
    """'mean ± std' of the hard-label population at each IPC in `ipcs` ('' where none was run)."""
    hard = frame[frame["source"] == "hard"].set_index("images_per_class")
    return [mean_std(hard.at[ipc, "best_mean"], hard.at[ipc, "best_std"]) if ipc in hard.index else ""
            for ipc in ipcs]
