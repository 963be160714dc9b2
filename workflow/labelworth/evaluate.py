"""`labelworth evaluate --images my_set.pt`: one distilled set through the workflow's benchmark,
without editing the config.

It reads and checks the set first (so bad files stop before anything runs), then writes a copy of the
dataset's config with the set added to `external_image_sets` (config.with_external_set), and runs
Snakemake on that copy for the benchmark's tables only. Every other experiment keeps its place in the
config but is not asked for, so what is already in results/ is reused and nothing else trains. At the
end it prints and writes one summary (`results/{dataset}/evaluations/{name}.md|csv|png`): per label
regime, the set's and its random twin's accuracy with 95% intervals over students and their paired
difference, the set's label-robustness scores, and its image and label bytes.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

from labelworth.errors import LabelworthError
from labelworth.intervals import mean_interval, paired_difference
from labelworth.io import read_json
from labelworth.settings import ExternalImageSetSettings
from labelworth.specs import external_method, external_set, random_set

REPOSITORY = Path(__file__).resolve().parents[2]  # workflow/labelworth/evaluate.py -> the repository
TABLES = ("soft_vs_hard", "label_robustness", "accuracy_vs_storage")


def default_config(dataset: str) -> Path:
    """The repository's config for `dataset`: config.yaml for Fashion-MNIST, else configs/{dataset}.yaml."""
    path = REPOSITORY / ("config.yaml" if dataset == "fashion_mnist" else f"configs/{dataset}.yaml")
    if not path.exists():
        known = ["fashion_mnist"] + sorted(p.stem for p in (REPOSITORY / "configs").glob("*.yaml"))
        raise LabelworthError(f"--dataset {dataset}: no config for it in this repository (known: {', '.join(known)}); "
                              "give one with --configfile")
    return path


def set_name(path: str) -> str:
    """An `external_image_sets` key from a file or folder name: lower case, runs of other characters as '_'."""
    return re.sub(r"[^a-z0-9_]+", "_", Path(path).stem.lower()).strip("_") or "external"


def guess_format(path: str) -> str:
    """imagefolder for a folder, labelworth for a file this workflow wrote (it has a meta), else pt."""
    if Path(path).is_dir():
        return "imagefolder"
    import torch

    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # unreadable here: the pt reader says why, in one line
        return "pt"
    return "labelworth" if isinstance(content, dict) and "meta" in content else "pt"


def robustness_rows(table: str, name: str) -> list[dict]:
    with open(table, newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["method"] == external_method(name)]


def final_accuracies(path: str | Path) -> dict[int, float]:
    """Student seed -> final test accuracy (%) of one population's result file."""
    return {int(student["seed"]): 100 * float(student["final_accuracy"]) for student in read_json(path)["students"]}


def _interval_text(interval: dict | None) -> str:
    if interval is None:
        return ""
    if interval["low"] is None:
        return f"{interval['mean']:.1f} (1 student)"
    return f"{interval['mean']:.1f} ± {interval['std']:.1f} [{interval['low']:.1f}, {interval['high']:.1f}]"


def summary_rows(layout, name: str, images_per_class: int) -> list[dict]:
    """One row per label regime the benchmark evaluated the set under (soft_vs_hard's rows of the set
    at its IPC): the set's and its random twin's final accuracies over students (mean, std, 95%
    interval), their paired difference over the students' common seeds, and the bytes; the twin is
    random real images at the same IPC, same labels and protocol (none for the set's own labels)."""
    with open(layout.table("soft_vs_hard", "csv"), newline="") as handle:
        table = [row for row in csv.DictReader(handle)
                 if row["method"] == external_method(name) and int(row["images_per_class"]) == images_per_class]
    ours_set, twin_set = external_set(name, images_per_class), random_set(images_per_class)
    rows = []
    for row in table:
        ours = final_accuracies(layout.student(ours_set, row["label_spec"], row["student"]))
        twin_path = Path(layout.student(twin_set, row["label_spec"], row["student"]))
        twin = final_accuracies(twin_path) if twin_path.exists() else None
        rows.append({
            "regime": f"{row['labels']} ({row['label_spec']}, {row['student']})", "labels": row["labels"],
            "label_spec": row["label_spec"], "student": row["student"],
            "set": mean_interval(list(ours.values())),
            "twin": None if twin is None else mean_interval(list(twin.values())),
            "difference": None if twin is None else paired_difference(ours, twin),
            "image_bytes": int(row["image_bytes"]), "label_bytes": int(row["label_bytes"]),
        })
    return rows


def summary_table(rows: list[dict], robustness: list[dict]):
    """The summary as (csv frame of plain numbers, markdown frame of 'mean ± std [low, high]' cells)."""
    import pandas as pd

    plain, shown = [], []
    for row in rows:
        numbers = {"regime": row["regime"], "image_bytes": row["image_bytes"], "label_bytes": row["label_bytes"]}
        for part in ("set", "twin", "difference"):
            interval = row[part] or {}
            numbers.update({f"{part}_{key}": interval.get(key) for key in ("mean", "std", "low", "high", "n")})
        difference = row["difference"]
        numbers["difference_excludes_zero"] = None if difference is None else difference["excludes_zero"]
        plain.append(numbers)
        mark = "" if difference is None or difference["excludes_zero"] is None else (
            " *" if difference["excludes_zero"] else " (not resolved)")
        shown.append({"regime": row["regime"], "the set": _interval_text(row["set"]),
                      "random twin": _interval_text(row["twin"]),
                      "set - twin (paired)": _interval_text(difference) + mark,
                      "image / label bytes": f"{row['image_bytes']:,} / {row['label_bytes']:,}"})
    for score in robustness:
        shown.append({"regime": f"label robustness ({score['its_labels']})",
                      "the set": ", ".join(f"{key} {float(score[key]):.3f}" for key in ("HLR", "IOR", "LRS")),
                      "random twin": "", "set - twin (paired)": "", "image / label bytes": ""})
    return pd.DataFrame(plain), pd.DataFrame(shown)


def draw_summary(rows: list[dict], name: str, png: Path, pdf: Path) -> None:
    """The set's and its twin's accuracy per regime, with their 95% intervals."""
    from labelworth.figures.style import PALETTE, new_figure, save_figure

    figure, axes = new_figure(width=5.0, height=0.5 * len(rows) + 1.2)
    for offset, (part, label, color) in enumerate((("set", external_method(name), PALETTE[0]),
                                                   ("twin", "random real images", PALETTE[1]))):
        for position, row in enumerate(rows):
            interval = row[part]
            if interval is None:
                continue
            error = None if interval["low"] is None else [[interval["mean"] - interval["low"]],
                                                          [interval["high"] - interval["mean"]]]
            axes.barh(position + 0.2 - 0.4 * offset, interval["mean"], height=0.38, xerr=error, color=color,
                      label=label if position == 0 else None, capsize=2)
    axes.set_yticks(range(len(rows)), [row["regime"] for row in rows])
    axes.invert_yaxis()
    axes.set_xlabel("student test accuracy (%), final, 95% interval")
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
    save_figure(figure, png, pdf)


def write_summary(layout, name: str, images_per_class: int) -> str:
    """Write evaluations/{name}.md|csv|png|pdf under the results folder; returns the markdown."""
    from labelworth.figures.style import markdown_table, save_table

    rows = summary_rows(layout, name, images_per_class)
    if not rows:
        raise LabelworthError(f"{layout.table('soft_vs_hard', 'csv')}: no rows for {external_set(name, images_per_class)}; "
                              "the benchmark did not evaluate the set")
    robustness = [row for row in robustness_rows(layout.table("label_robustness", "csv"), name)
                  if int(row["images_per_class"]) == images_per_class]
    plain, shown = summary_table(rows, robustness)
    folder = Path(layout.root) / "evaluations"
    folder.mkdir(parents=True, exist_ok=True)
    title = (f"{external_set(name, images_per_class)} against random real images at the same IPC (its twin): final "
             "accuracy over students, mean ± std [95% interval]; the difference is paired over the students' "
             "seeds, * where its interval excludes zero")
    save_table(plain, folder / f"{name}.csv", folder / f"{name}.md", title=title, md_frame=shown)
    draw_summary(rows, name, folder / f"{name}.png", folder / f"{name}.pdf")
    return f"{title}\n\n{markdown_table(shown)}"


def run_evaluate(settings: ExternalImageSetSettings, name: str, config_path: Path, cores: int,
                 dry_run: bool = False) -> int:
    """Check the set, run the benchmark with it, print its robustness rows; returns Snakemake's status."""
    import yaml

    from labelworth.config import load_config, read_config_file, with_external_set
    from labelworth.data import input_space
    from labelworth.external import read_external_set
    from labelworth.layout import Layout
    from labelworth.plan import figure_rule

    base = read_config_file(config_path)
    layout = Layout.of(load_config(base).dataset)
    snakemake = [sys.executable, "-m", "snakemake", "-s", str(REPOSITORY / "Snakefile"), "--cores", str(cores),
                 "--rerun-incomplete", "--show-failed-logs"]
    # Targets before --configfile, which takes every argument after it as a config file.
    data = subprocess.run(snakemake + [layout.data("train"), "--configfile", str(config_path)])
    if data.returncode:
        return data.returncode
    external = read_external_set(settings, input_space(Path(layout.data("train")).parent))  # bad files stop here
    print(f"{external_method(name)}: {external.images_per_class} images per class, read as "
          f"{external.read_as}" + (", with its own labels" if external.learned_labels is not None else ""))
    config = with_external_set(base, name, settings, external.images_per_class)
    derived = Path("work") / "evaluate" / f"{name}.yaml"
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_text(yaml.safe_dump(config, sort_keys=False))
    targets = [layout.table(table, "csv") for table in TABLES]
    # The set's summary first (a checkpoint), then the tables, their figure jobs forced: in a finished
    # run Snakemake does not look behind a new checkpoint of tables that exist.
    plan = ["--dry-run"] if dry_run else []
    status = subprocess.run(snakemake + [layout.external_summary(name)] + plan
                            + ["--configfile", str(derived)]).returncode
    if not status:
        status = subprocess.run(snakemake + targets + plan + ["--forcerun"] + [figure_rule(table) for table in TABLES]
                                + ["--configfile", str(derived)]).returncode
    if status or dry_run:
        return status
    rows = robustness_rows(layout.table("label_robustness", "csv"), name)
    print(f"label robustness of {external_set(name, external.images_per_class)} "
          f"({layout.table('label_robustness', 'md')}; config {derived}):")
    for row in rows:
        print("  " + ", ".join(f"{key} {value}" for key, value in row.items()))
    print(write_summary(layout, name, external.images_per_class))
    print(f"written: {Path(layout.root) / 'evaluations' / name}.md, .csv, .png, .pdf")
    return 0
