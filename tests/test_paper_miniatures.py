"""Every paper config (configs/*.yaml) end to end in miniature: derived by program (tests/miniature.py),
run through snakemake on small files in the dataset's real on-disk format (the Debian IDX files,
CIFAR pickles, the tiny-imagenet-200 tree, an ImageFolder tree of 256-pixel JPEGs for ImageNet).

This exercises ZCA (cifar10), ResNets and batch-norm teachers (imagenet), per-IPC settings, named runs,
data-parallel experts, grouped and vectorised students and online labels as the paper configs use
them. Marked `paper`: `make test` leaves it out, `.ci/run` runs it."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import ROOT, snakemake, write_fashion_mnist
from miniature import miniature
from test_data import write_cifar10, write_cifar100, write_tiny

PAPER_CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def write_imagenet_tree(root: Path, classes=("n01000000", "n02000000", "n03000000"), per_class=3) -> Path:
    """train/ and val/ class folders of JPEGs at ImageNet's usual size (256 pixels, random content)."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", 2)):
        for wnid in classes:
            for k in range(count):
                path = root / split / wnid / f"{wnid}_{k}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(path, format="JPEG")
    return root


def write_dataset(dataset: str, root: Path) -> Path:
    """The small dataset `dataset` in its real layout under `root`; returns its data_root."""
    if dataset == "fashion_mnist":
        return write_fashion_mnist(root, train_per_class=3, test_per_class=2)
    if dataset == "cifar10":
        write_cifar10(root)
    elif dataset == "cifar100":
        write_cifar100(root)
    elif dataset == "tinyimagenet":
        write_tiny(root)
    else:
        write_imagenet_tree(root)
    return root


def test_every_paper_config_is_covered_by_a_miniature():
    assert {path.stem for path in PAPER_CONFIGS} == {"cifar10", "cifar100", "fashion_mnist_full", "imagenet",
                                                     "tinyimagenet"}


def test_a_miniature_keeps_the_configs_structure_and_cuts_its_lengths():
    config = yaml.safe_load((ROOT / "configs" / "imagenet.yaml").read_text())
    small = miniature(config, "raw")
    assert small.keys() == config.keys() and small["experts"].keys() == config["experts"].keys()
    assert small["students"].keys() == config["students"].keys()
    assert small["benchmark"]["images_per_class"] == [1, 2]
    sources = small["benchmark"]["soft_labels"]
    assert [source["expert_run"] for source in sources] == [run[:2] for run in
                                                           (s["expert_run"] for s in config["benchmark"]["soft_labels"])]
    assert all(epoch <= 2 for source in sources for epoch in source["expert_epoch"])
    assert all(run["epochs"] <= 2 for run in small["experts"].values())
    assert all(protocol["epochs"] == 2 for protocol in small["students"].values())


@pytest.mark.paper
@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda path: path.stem)
def test_a_paper_config_runs_end_to_end_in_miniature(path, tmp_path):
    config = yaml.safe_load(path.read_text())
    data_root = write_dataset(config["dataset"], tmp_path / "raw" / config["dataset"])
    small = tmp_path / "miniature.yaml"
    small.write_text(yaml.safe_dump(miniature(config, str(data_root.relative_to(tmp_path)))))
    snakemake(tmp_path, config=small)
    results = tmp_path / "results" / config["run"]
    table = list(csv.DictReader(open(results / "tables" / "soft_vs_hard.csv")))
    assert table and {"published_mean", "best_minus_published"} <= set(table[0])
    assert {row["method"] for row in table} == set(config["benchmark"]["methods"])
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(snakemake(tmp_path, "--dry-run", config=small))
