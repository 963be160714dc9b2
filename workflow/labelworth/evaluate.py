"""`labelworth evaluate --images my_set.pt`: one distilled set through the workflow's benchmark,
without editing the config.

It reads and checks the set first (so bad files stop before anything runs), then writes a copy of the
dataset's config with the set added to `external_image_sets`, and runs Snakemake on that copy for
the benchmark's tables only. Every other experiment keeps its place in the config but is not asked
for, so what is already in results/ is reused and nothing else trains. The set's IPC is added to the
benchmark when it is not there (its soft labels at the sweep's best epoch for that IPC when the
sweep runs, else at the epoch of the nearest listed IPC). The set's rows of the label-robustness table
are printed at the end.
"""

from __future__ import annotations

import copy
import csv
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from labelworth.configured import AUTO
from labelworth.errors import LabelworthError
from labelworth.plan import SWEEP, enabled, soft_label_sources
from labelworth.settings import ExternalImageSetSettings

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


def evaluation_config(base: dict, name: str, settings: ExternalImageSetSettings, images_per_class: int) -> dict:
    """`base` with the external set `name` added, and its IPC added to the benchmark when missing.

    Property (tests): the other experiments' blocks are unchanged, so every result the base config
    has made stays valid; the benchmark's existing IPCs keep their soft-label epochs and runs."""
    config = copy.deepcopy(base)
    config["external_image_sets"] = {**(config.get("external_image_sets") or {}),
                                     name: {key: value for key, value in asdict(settings).items() if value != ""}}
    if config["external_image_sets"][name].get("normalised") == "auto":
        del config["external_image_sets"][name]["normalised"]
    block = config["benchmark"]
    if not block.get("enabled", True):
        block["enabled"] = True  # the set is evaluated by the benchmark
    ipcs = block["images_per_class"]
    if images_per_class in ipcs:
        return config
    nearest = min(range(len(ipcs)), key=lambda position: abs(ipcs[position] - images_per_class))
    block.setdefault("synthesis_images_per_class", list(ipcs))  # the methods do not run at the new IPC
    sweep = config.get(SWEEP)
    for source in soft_label_sources(block):
        epoch = source["expert_epoch"][nearest]
        if epoch == AUTO and not (sweep and enabled(config, SWEEP)):
            raise LabelworthError("benchmark.soft_labels: auto needs the expert-epoch sweep, which is disabled; "
                                  "give epochs")
        source["expert_epoch"].append(epoch)
        if isinstance(source.get("expert_run"), list):
            source["expert_run"].append(source["expert_run"][nearest])
    if any(source["expert_epoch"][-1] == AUTO for source in soft_label_sources(block)) \
            and images_per_class not in sweep["images_per_class"]:
        sweep["images_per_class"] = sorted(sweep["images_per_class"] + [images_per_class])
    ipcs.append(images_per_class)
    return config


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


def robustness_rows(table: Path, name: str) -> list[dict]:
    with open(table, newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["method"] == f"external-{name}"]


def run_evaluate(settings: ExternalImageSetSettings, name: str, config_path: Path, cores: int,
                 dry_run: bool = False) -> int:
    """Check the set, run the benchmark with it, print its robustness rows; returns Snakemake's status."""
    import yaml

    from labelworth.checks import load_config_file
    from labelworth.data import input_space
    from labelworth.external import read_external_set

    base = load_config_file(config_path)
    results = Path("results") / base["dataset"]
    snakemake = [sys.executable, "-m", "snakemake", "-s", str(REPOSITORY / "Snakefile"), "--cores", str(cores),
                 "--rerun-incomplete", "--show-failed-logs"]
    # Targets before --configfile, which takes every argument after it as a config file.
    data = subprocess.run(snakemake + [str(results / "data" / "train.pt"), "--configfile", str(config_path)])
    if data.returncode:
        return data.returncode
    external = read_external_set(settings, input_space(results / "data"))  # bad files stop here, in one line
    print(f"external-{name}: {external.images_per_class} images per class, read as {external.read_as}"
          + (", with its own labels" if external.learned_labels is not None else ""))
    config = evaluation_config(base, name, settings, external.images_per_class)
    derived = Path("work") / "evaluate" / f"{name}.yaml"
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_text(yaml.safe_dump(config, sort_keys=False))
    targets = [str(results / "tables" / f"{table}.csv") for table in TABLES]
    # The set's summary first (a checkpoint), then the tables, their figure jobs forced: in a finished
    # run Snakemake does not look behind a new checkpoint of tables that exist.
    plan = ["--dry-run"] if dry_run else []
    status = subprocess.run(snakemake + [str(results / "external" / f"{name}.json")] + plan
                            + ["--configfile", str(derived)]).returncode
    if not status:
        status = subprocess.run(snakemake + targets + plan + ["--forcerun"] + [f"figure_{table}" for table in TABLES]
                                + ["--configfile", str(derived)]).returncode
    if status or dry_run:
        return status
    rows = robustness_rows(results / "tables" / "label_robustness.csv", name)
    print(f"label robustness of external-{name} ({results / 'tables' / 'label_robustness.md'}; config {derived}):")
    for row in rows:
        print("  " + ", ".join(f"{key} {value}" for key, value in row.items()))
    return 0
