"""Expert training (docs/method.md §5) with per-epoch checkpoints, metrics and exact resume.

An expert is trained on the full training set with hard labels. Datasets cached as tensors (every one
but ImageNet) follow section 5.1: DSA on every batch and plain SGD (momentum 0, weight decay 0,
constant learning rate), as MTT's `buffer.py` and the paper do. ImageNet is read from its image
files and follows torchvision's reference recipe (section 5.2), data-parallel under torchrun
(labelworth/experts_distributed.py). Each epoch's weights are kept because soft labels come from
early-stopped experts. Both trainers resume through `resume.run_epochs` (work folder, identity
check, NaN stops before a save).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from labelworth import io
from labelworth.data import load_split
from labelworth.errors import LabelworthError
from labelworth.models import build_model
from labelworth.resume import ExpertFiles, GeneratorState, run_epochs
from labelworth.settings import ExpertSettings
from labelworth.specs import DatasetSpec, checkpoint_name, dataset_spec, format_expert_run
from labelworth.training import (accuracy, expert_optimizer, mean_entropy, predict_logits, resolve_device,
                                 test_pass, train_epoch, train_metric_indices)

__all__ = ["expert_run_of", "load_expert", "train_expert"]


def load_expert(checkpoint_path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the network a checkpoint was saved from (its meta names arch and dataset)."""
    content = io.load_tensors(checkpoint_path, required=("state_dict",))
    meta = content["meta"]
    model = build_model(meta["arch"], dataset_spec(meta["dataset"]))
    model.load_state_dict(content["state_dict"])
    return model.to(device).eval()


def expert_run_of(checkpoint_path: str | os.PathLike) -> str:
    """The run a checkpoint belongs to, `{arch}-lr{lr}` (or a brought one's `{arch}-file{digest}`), from its meta."""
    meta = io.load_tensors(checkpoint_path, required=("state_dict",))["meta"]
    return meta.get("run") or format_expert_run(meta["arch"], meta["lr"])  # run: a brought checkpoint's


def prepared_dataset(data_dir: str | os.PathLike) -> DatasetSpec:
    """The dataset a prepare-data folder holds, read from its (small) test split."""
    return dataset_spec(io.load_tensors(Path(data_dir) / "test.pt", required=("labels",))["meta"]["dataset"])


def measured_train(train, count: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) of the training images the per-epoch train metrics use: a fixed sample of
    `count` (training.train_metric_indices), or all of them for None."""
    sample = train_metric_indices(len(train.labels), count)
    return (train.images, train.labels) if sample is None else (train.images[sample], train.labels[sample])


def measure_epoch(model, measured: tuple[torch.Tensor, torch.Tensor], test, epoch: int, train_loss: float) -> dict:
    """An epoch's metric row: clean accuracy on the measured training images and the test set, and
    the mean softmax entropy on those training images."""
    train_images, train_labels = measured
    with test_pass():  # the clean passes over the measured training images and the test set
        train_logits = predict_logits(model, train_images)
        return {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": accuracy(train_logits, train_labels),
            "test_accuracy": accuracy(predict_logits(model, test.images), test.labels),
            "train_label_entropy": mean_entropy(train_logits.softmax(1)),
        }


def train_expert(data_dir: str | os.PathLike, settings: ExpertSettings, files: ExpertFiles,
                 device: str = "auto") -> list[dict]:
    """Train (or resume) the expert of `settings.seeds[0]` for `settings.epochs` epochs; returns the
    per-epoch metric rows.

    The metrics of epoch k are measured on the weights after k epochs: loss of the training pass,
    clean accuracy on the test set and on `settings.train_metric_images` training images
    (training.train_metric_indices), and the mean entropy of the softmax on those images. ImageNet
    goes to `experts_distributed.train_expert_from_files`, in one process or in each of torchrun's.
    """
    seed = settings.seed
    if not prepared_dataset(data_dir).cached_as_tensors:
        from labelworth.experts_distributed import train_expert_from_files

        return train_expert_from_files(data_dir, settings, files, device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise LabelworthError(
            "data-parallel expert training is for datasets read from image files (imagenet); "
            "a dataset cached as tensors trains in one process"
        )
    device = resolve_device(device)
    train = load_split(data_dir, "train", device)
    test = load_split(data_dir, "test", device)
    spec = train.spec
    measured = measured_train(train, settings.train_metric_images)
    Path(files.work_dir).mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)  # the initialisation is part of the run's identity
    model = build_model(settings.arch, spec).to(device)
    optimizer = expert_optimizer(model.parameters(), settings, momentum=0.0, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)

    def train_one_epoch(epoch: int) -> float:
        # looked up in this module at call time, so a test can wrap it
        return train_epoch(model, optimizer, train.images, train.labels, settings.batch_size, spec.dsa_strategy,
                           generator)[0]

    return run_epochs(model, settings.run_identity(spec.name), settings.epochs, files,
                      train_one_epoch, lambda epoch, loss: measure_epoch(model, measured, test, epoch, loss),
                      {"optimizer": optimizer, "generator": GeneratorState(generator)})
