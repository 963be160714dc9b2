"""Reading student results into one tidy table (one row per result file)."""

from __future__ import annotations

import pandas as pd

from labelworth.io import read_json


def student_results(paths: list[str]) -> pd.DataFrame:
    """Columns: dataset, method, images_per_class, label_spec, student, and the mean/std of the final
    and best test accuracy in percent, plus the number of students."""
    rows = []
    for path in paths:
        result = read_json(path)
        meta = result["meta"]
        rows.append({
            "dataset": meta["dataset"],
            "method": meta["method"],
            "images_per_class": meta["images_per_class"],
            "label_spec": meta["label_spec"],
            "student": meta["student"],
            "final_mean": 100 * result["final_accuracy"]["mean"],
            "final_std": 100 * result["final_accuracy"]["std"],
            "best_mean": 100 * result["best_accuracy"]["mean"],
            "best_std": 100 * result["best_accuracy"]["std"],
            "students": len(result["students"]),
        })
    return pd.DataFrame(rows).sort_values(["method", "images_per_class", "label_spec"], ignore_index=True)


def mean_std(mean: float, std: float) -> str:
    return f"{mean:.1f} ± {std:.1f}"
