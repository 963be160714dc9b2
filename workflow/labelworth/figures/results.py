"""Student results as one tidy table: one row per result file, its identity parsed into columns."""

from __future__ import annotations

import pandas as pd

from labelworth.intervals import half_width, mean_interval, paired_difference
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
    Accuracy columns, in percent, over students: final_mean, final_std (after the last epoch: every
    table's headline), final_low and final_high (the 95% t-interval of the mean; NaN for one student),
    final_ci (its half-width, 0 for one student: error bars), final_by_seed (student seed -> final
    accuracy, for paired differences), best_mean, best_std, best_by_seed (the best of the periodic
    test passes, the paper's convention), passes (test passes per student), validation_mean (the
    final accuracy on the held-out validation split, selection: validation; NaN without one); stds are sample stds
    (NaN for one student); students (count);
    per_class_final_by_seed (student seed -> that student's per-class final accuracies, percent:
    intervals and paired differences of one class);
    class_names (list).
    """
    rows = []
    for path in paths:
        result = read_json(path)
        meta = result["meta"]
        images = parse_image_set(meta["image_set"])
        labels = parse_label_spec(meta["label_spec"])
        per_class_by_seed = {int(student["seed"]): [100 * float(value) for value in student["per_class_final_accuracy"]]
                             for student in result["students"]}
        finals = {int(student["seed"]): 100 * float(student["final_accuracy"]) for student in result["students"]}
        final = mean_interval(list(finals.values()))
        bests = {int(student["seed"]): 100 * float(student["best_accuracy"]) for student in result["students"]}
        best = mean_interval(list(bests.values()))
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
            "final_mean": final["mean"],
            "final_std": as_number(final["std"]),
            "final_low": as_number(final["low"]),
            "final_high": as_number(final["high"]),
            "final_ci": half_width(final),
            "final_by_seed": finals,
            "best_mean": best["mean"],
            "best_std": as_number(best["std"]),
            "best_by_seed": bests,
            "passes": len(result["students"][0]["curve"]),
            "validation_mean": (100 * result["final_validation_accuracy"]["mean"]
                                if "final_validation_accuracy" in result else float("nan")),
            "students": len(result["students"]),
            "per_class_final_by_seed": per_class_by_seed,
            "class_names": meta["class_names"],
        })
    return pd.DataFrame(rows).sort_values(["image_set", "label_spec"], ignore_index=True)


def as_number(value) -> float:
    """None (no interval, one student) as NaN, for a numeric column."""
    return float("nan") if value is None else float(value)


def mean_std(mean: float, std: float) -> str:
    return f"{mean:.1f}" if pd.isna(std) else f"{mean:.1f} ± {std:.1f}"


def interval_text(mean: float, std: float, low: float, high: float) -> str:
    """'mean ± std [low, high]' (the 95% interval of the mean); '(1 student)' where there is none."""
    if low is None or pd.isna(low):
        return f"{mean:.1f} (1 student)"
    return f"{mean:.1f} ± {std:.1f} [{low:.1f}, {high:.1f}]"


def final_cell(row) -> str:
    """A population's headline cell: its final accuracy, 'mean ± std [95% interval]'."""
    return interval_text(row["final_mean"], row["final_std"], row["final_low"], row["final_high"])


HEADLINE_NOTE = ("final accuracy (after the last epoch), mean ± sample std over students [95% t-interval of the "
                 "mean]")


def best_rows(frame: pd.DataFrame, by: str, on: str = "final_mean") -> pd.DataFrame:
    """Per value of `by`, the row with the highest `on` (the mean final test accuracy, or the
    validation one); a tie goes to the earliest expert epoch (the cheaper expert). Sorted by `by`."""
    ranked = frame.sort_values([on, "expert_epoch"], ascending=[False, True], kind="stable")
    return ranked.groupby(by).head(1).sort_values(by, ignore_index=True)


def accuracy_grid(frame: pd.DataFrame, row: str, column: str, row_title: str, column_title=str) -> pd.DataFrame:
    """A table of headline cells (`final_cell`): one row per value of `row`, one column per value of
    `column` (named by `column_title(value)`), both in the order they first appear in `frame`; ''
    where no population was run. A repeated (row, column) pair is an error, not silently dropped."""
    cells = frame.assign(cell=[final_cell(row) for _, row in frame.iterrows()])
    grid = cells.pivot(index=row, columns=column, values="cell")
    grid = grid.reindex(index=cells[row].unique(), columns=cells[column].unique()).fillna("")
    grid.columns = [column_title(value) for value in grid.columns]
    return grid.rename_axis(row_title).reset_index()


def expert_epochs_note(frame: pd.DataFrame) -> str:
    """Which expert epoch the soft labels of each IPC come from, for a table title (`auto` epochs
    differ per IPC), e.g. 'expert epoch 2 at IPC 1, 4 at IPC 10', or 'expert epoch 4' if one. Labels
    of a named expert run (a protocol's own teacher) are left out where the default run's are there:
    their tables name them."""
    experts = frame.dropna(subset=["expert_epoch"])
    if (experts["expert_run"] == "").any():
        experts = experts[experts["expert_run"] == ""]
    experts = experts.drop_duplicates(["images_per_class", "expert_epoch"])
    experts = experts.sort_values(["images_per_class", "expert_epoch"])
    if experts["expert_epoch"].nunique() == 1:
        return f"expert epoch {int(experts['expert_epoch'].iloc[0])}"
    pairs = [f"{int(e)} at IPC {i}" for i, e in zip(experts["images_per_class"], experts["expert_epoch"])]
    return "expert epoch " + ", ".join(pairs)


def hard_cells(frame: pd.DataFrame, ipcs) -> list[str]:
    """The headline cell of the hard-label population at each IPC in `ipcs` ('' where none was run)."""
    hard = frame[frame["source"] == "hard"].set_index("images_per_class")
    return [final_cell(hard.loc[ipc]) if ipc in hard.index else "" for ipc in ipcs]


def interval_cell(interval: dict) -> str:
    """`interval_text` of a `mean_interval` (e.g. of one class's final accuracy over students)."""
    return interval_text(interval["mean"], as_number(interval["std"]), interval["low"], interval["high"])


def paired_cell(first, second) -> str:
    """first - second (two result rows), paired over the students' common seeds of their final
    accuracies: `paired_text`."""
    return paired_text(first["final_by_seed"], second["final_by_seed"])


def paired_text(first: dict, second: dict) -> str:
    """first - second (values by student seed), paired over the common seeds: 'mean [95% interval]'
    marked '*' where the interval excludes zero and 'not resolved' where it does not ('' without
    common seeds)."""
    if not set(first) & set(second):
        return ""
    return difference_text(paired_difference(first, second))


def difference_text(difference: dict) -> str:
    """A `paired_difference` as the tables print it: 'mean [95% interval]' with its mark."""
    if difference["low"] is None:
        return f"{difference['mean']:+.1f} (1 student)"
    mark = " *" if difference["excludes_zero"] else " not resolved"
    return f"{difference['mean']:+.1f} [{difference['low']:+.1f}, {difference['high']:+.1f}]{mark}"
