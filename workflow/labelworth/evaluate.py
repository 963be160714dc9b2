"""`labelworth evaluate --images my_set.pt`: one distilled set through the workflow's benchmark,
without editing the config.

It reads and checks the set first (so bad files stop before anything runs), then writes a copy of the
dataset's config with the set added to `external_image_sets` (config.with_external_set), and runs
Snakemake on that copy for the benchmark's tables only. Every other experiment keeps its place in the
config but is not asked for, so what is already in results/ is reused and nothing else trains. The
set's rows of the label-robustness table are printed at the end.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

from labelworth.errors import LabelworthError
from labelworth.settings import ExternalImageSetSettings
from labelworth.specs import external_method, external_set

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
    return 0
