"""Data-parallel ImageNet experts (labelworth/experts_distributed.py) on CPUs: two torchrun processes
on the gloo backend, started by `labelworth train-expert --options ... processes=2`, over a small ImageFolder
tree written here. ImageNet's spec is kept (224-pixel crops, 1000 outputs); the files are small and
few, and the network is a narrow ConvNet, so a run takes seconds."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from labelworth import io
from labelworth.data import load_image_files, normalize, prepare_data
from labelworth.resume import ExpertFiles
from labelworth.settings import ExpertSettings
from labelworth.experts import load_expert, train_expert
from labelworth.experts_distributed import training_shard
from labelworth.specs import checkpoint_name, dataset_spec
from labelworth.training import accuracy, mean_entropy, predict_logits

CLASSES = ("n01000000", "n02000000", "n03000000")
TRAIN_PER_CLASS, VAL_PER_CLASS = 4, 2
# 224 -> 14 pixels in four poolings (a 784 x 1000 classifier); batch norm, so the processes' running
# statistics must agree for the metrics to describe the saved checkpoint
ARCH = "convnet-d4-w4-batchnorm"
GLOBAL_BATCH = 4  # 2 per process, 3 steps per epoch


def write_imagenet_tree(root: Path) -> Path:
    """An ImageFolder tree (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG) of small images of several sizes,
    each class a different colour so the network has something to learn."""
    rng = np.random.default_rng(0)
    for split, per_class in (("train", TRAIN_PER_CLASS), ("val", VAL_PER_CLASS)):
        for label, wnid in enumerate(CLASSES):
            for k in range(per_class):
                pixels = rng.integers(0, 80, size=(24 + 8 * k, 32, 3), dtype=np.uint8)
                pixels[..., label] += 150
                path = root / split / wnid / f"{wnid}_{k}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path, format="JPEG")
    return root


@pytest.fixture(scope="module")
def imagenet_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imagenet")
    prepare_data("imagenet", write_imagenet_tree(root / "raw"), root / "data")
    return root / "data"


def train_two_processes(data_dir: Path, out: Path, epochs: int) -> str:
    """`labelworth train-expert` with processes=2 on the CPU; returns everything the processes printed."""
    command = [sys.executable, "-m", "labelworth", "train-expert", "--data-dir", str(data_dir), "--options",
               f"arch={ARCH}", "lr=0.01", f"epochs={epochs}", "seeds=5", f"batch_size={GLOBAL_BATCH}", "processes=2",
               "--checkpoint-dir", str(out / "checkpoints"), "--metrics", str(out / "metrics.csv"),
               "--work-dir", str(out / "work"), "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def trained_epochs(output: str) -> dict[int, list[tuple[int, int]]]:
    """epoch -> [(process, images it trained on)] from the lines each process prints per epoch."""
    epochs: dict[int, list[tuple[int, int]]] = {}
    for process, count, epoch, images in re.findall(
            r"process (\d+) of (\d+), epoch (\d+): (\d+) of \d+ training images", output):
        assert int(count) == 2
        epochs.setdefault(int(epoch), []).append((int(process), int(images)))
    return {epoch: sorted(shards) for epoch, shards in epochs.items()}


def eval_preset_logits(model: torch.nn.Module, data_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits on every image of a prepared split (eval preset), and the labels."""
    content = io.load_tensors(data_dir / f"{split}.pt", required=("labels",))
    spec = dataset_spec("imagenet")
    pixels = load_image_files(content["meta"]["paths"], spec.image_size, train_crop=False)
    return predict_logits(model, normalize(pixels, spec)), content["labels"]


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return io.load_tensors(checkpoint, required=("state_dict",))["state_dict"]


def test_shards_of_an_epoch_are_disjoint_cover_the_set_and_change_with_the_epoch():
    for epoch in (1, 2):
        shards = [training_shard(12, seed=5, epoch=epoch, rank=rank, count=2) for rank in (0, 1)]
        assert len(shards[0]) == len(shards[1]) == 6
        assert set(shards[0]).isdisjoint(shards[1]) and sorted(shards[0] + shards[1]) == list(range(12))
    assert training_shard(12, 5, 1, 0, 2) != training_shard(12, 5, 2, 0, 2)
    # 13 images on 2 processes: equal shards (every process takes the same steps), one image twice
    uneven = [training_shard(13, 5, 1, rank, 2) for rank in (0, 1)]
    assert len(uneven[0]) == len(uneven[1]) == 7 and set(uneven[0] + uneven[1]) == set(range(13))


def test_two_gloo_processes_train_checkpoint_every_epoch_and_resume_to_the_same_weights(imagenet_data, tmp_path):
    straight = tmp_path / "straight"
    output = train_two_processes(imagenet_data, straight, epochs=2)
    images = len(CLASSES) * TRAIN_PER_CLASS
    # each epoch, each of the two processes trained on its own half (the shards: the test above)
    assert trained_epochs(output) == {1: [(0, images // 2), (1, images // 2)], 2: [(0, images // 2), (1, images // 2)]}
    names = sorted(path.name for path in (straight / "checkpoints").iterdir())
    assert names == [checkpoint_name(epoch) for epoch in range(3)]
    rows = list(csv.DictReader(open(straight / "metrics.csv")))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
    assert all(0 <= float(row["test_accuracy"]) <= 1 and float(row["train_label_entropy"]) > 0 for row in rows)

    # a run stopped after epoch 1, started again for 2 epochs, trains epoch 2 only...
    resumed = tmp_path / "resumed"
    train_two_processes(imagenet_data, resumed, epochs=1)
    output = train_two_processes(imagenet_data, resumed, epochs=2)
    assert "resuming after epoch 1" in output
    assert list(trained_epochs(output)) == [2]
    # ...and ends where the uninterrupted run ends: the order of an epoch comes from (seed, epoch) and
    # each process's crops from (seed, epoch, process), so no random state has to survive the stop
    for epoch in range(3):
        first, second = weights(straight / "checkpoints" / checkpoint_name(epoch)), \
            weights(resumed / "checkpoints" / checkpoint_name(epoch))
        assert all(torch.equal(first[key], second[key]) for key in first), epoch
    assert (straight / "metrics.csv").read_text() == (resumed / "metrics.csv").read_text()

    # the checkpoint is an ordinary expert, in the format the rest of the workflow reads, and the
    # metrics the two processes measured on their halves are the checkpoint's, recomputed in one
    model = load_expert(straight / "checkpoints" / checkpoint_name(2))
    for split, column in (("test", "test_accuracy"), ("train", "train_accuracy")):
        logits, labels = eval_preset_logits(model, imagenet_data, split)
        assert accuracy(logits, labels) == pytest.approx(float(rows[2][column]), abs=1e-6)
    assert mean_entropy(logits.softmax(1)) == pytest.approx(float(rows[2]["train_label_entropy"]), rel=1e-5)
    meta = io.load_tensors(straight / "checkpoints" / checkpoint_name(2))["meta"]
    assert (meta["dataset"], meta["arch"], meta["epoch"], meta["batch_size"]) == ("imagenet", ARCH, 2, GLOBAL_BATCH)


def test_one_process_without_torchrun_trains_the_same_kind_of_run(imagenet_data, tmp_path):
    files = ExpertFiles(tmp_path / "checkpoints", tmp_path / "metrics.csv", tmp_path / "work")
    metrics = train_expert(imagenet_data, ExpertSettings(arch=ARCH, lr=0.01, epochs=1, seeds=(5,), batch_size=GLOBAL_BATCH),
                           files, device="cpu")
    assert [row["epoch"] for row in metrics] == [0, 1] and 0 <= metrics[1]["train_accuracy"] <= 1
    assert sorted(path.name for path in files.checkpoint_dir.iterdir()) == [checkpoint_name(0), checkpoint_name(1)]


def test_train_metrics_of_image_files_on_a_fixed_sample(imagenet_data, tmp_path):
    from labelworth.training import train_metric_indices

    files = ExpertFiles(tmp_path / "checkpoints", tmp_path / "metrics.csv", tmp_path / "work")
    settings = ExpertSettings(arch=ARCH, lr=0.01, epochs=1, seeds=(5,), batch_size=GLOBAL_BATCH, train_metric_images=7)
    metrics = train_expert(imagenet_data, settings, files, device="cpu")
    logits, labels = eval_preset_logits(load_expert(files.checkpoint_dir / checkpoint_name(1)), imagenet_data, "train")
    sample = train_metric_indices(len(labels), 7)
    assert metrics[1]["train_accuracy"] == pytest.approx(accuracy(logits[sample], labels[sample]), abs=1e-6)
    assert metrics[1]["train_label_entropy"] == pytest.approx(mean_entropy(logits[sample].softmax(1)), rel=1e-5)
