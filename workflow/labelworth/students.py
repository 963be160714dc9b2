"""Student evaluation (METHOD.md section 7): train fresh networks on (images, labels), test them.

`evaluate_students` trains a *population* (one student per seed) on the same images and labels and
summarises it; callers never loop over seeds themselves, so a vectorised engine can replace the loop
in `_train_one` without changing them.

Protocol: cross-entropy with probability targets, DSA on every batch, minibatches of 256.
ConvNets use SGD (momentum 0.9, weight decay 5e-4) with the learning rate times 0.3 every quarter of
the epochs; ResNets use AdamW (weight decay 0.01) with a per-epoch cosine schedule. Test accuracy is
measured every `eval_every` epochs and after the last; both the final and the best of these are
reported, since published numbers use both conventions (the paper reports the best).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from tqdm import tqdm

from labelworth import io
from labelworth.data import Split, load_split
from labelworth.errors import LabelworthError
from labelworth.models import build_model
from labelworth.training import accuracy, per_class_accuracy, predict_logits, resolve_device, train_epoch

OPTIMIZERS = ("sgd", "adamw")


def make_optimizer(model, optimizer: str, lr: float, epochs: int):
    """(optimizer, per-epoch scheduler) of the paper's student protocol."""
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=max(epochs // 4, 1), gamma=0.3)
    elif optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda epoch: 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        )
    else:
        raise LabelworthError(f"unknown student optimizer {optimizer!r}; expected one of {OPTIMIZERS}")
    return opt, schedule


def _train_one(images, targets, test: Split, arch, seed, epochs, lr, optimizer, batch_size, eval_every,
               progress) -> dict:
    torch.manual_seed(seed)
    model = build_model(arch, test.spec).to(images.device)
    opt, schedule = make_optimizer(model, optimizer, lr, epochs)
    generator = torch.Generator().manual_seed(seed)
    curve = []
    for epoch in range(1, epochs + 1):
        train_epoch(model, opt, images, targets, batch_size, test.spec.dsa_strategy, generator)
        schedule.step()
        progress.update()
        if epoch % eval_every == 0 or epoch == epochs:
            logits = predict_logits(model, test.images)
            curve.append([epoch, accuracy(logits, test.labels)])
            progress.set_postfix(seed=seed, test=f"{curve[-1][1]:.3f}")
    best_epoch, best_accuracy = max(curve, key=lambda point: point[1])
    return {
        "seed": seed,
        "final_accuracy": curve[-1][1],
        "best_accuracy": best_accuracy,
        "best_epoch": best_epoch,
        "per_class_final_accuracy": per_class_accuracy(logits, test.labels, test.spec.num_classes),
        "curve": curve,
    }


def _summary(values: list[float]) -> dict:
    """Mean and population standard deviation (np.std, as the reference reports)."""
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def evaluate_students(
    images: torch.Tensor,
    targets: torch.Tensor,
    test: Split,
    arch: str,
    seeds: list[int],
    epochs: int,
    lr: float,
    optimizer: str,
    batch_size: int,
    eval_every: int,
) -> dict:
    """Train one student per seed on (images, targets) and test each on `test`.

    A seed fixes the student's initialisation, minibatch order and augmentation draws, so a seed's
    result is repeatable on a CPU.
    """
    with tqdm(total=epochs * len(seeds), desc=f"students {arch}", unit="epoch", mininterval=2.0) as progress:
        students = [
            _train_one(images, targets, test, arch, seed, epochs, lr, optimizer, batch_size, eval_every,
                       progress)
            for seed in seeds
        ]
    return {
        "students": students,
        "final_accuracy": _summary([student["final_accuracy"] for student in students]),
        "best_accuracy": _summary([student["best_accuracy"] for student in students]),
    }


def run_evaluate_students(
    images_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    data_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    arch: str,
    seeds: list[int],
    epochs: int,
    lr: float,
    optimizer: str,
    batch_size: int,
    eval_every: int,
    device: str = "auto",
) -> dict:
    """The `evaluate_students` stage: read the files, evaluate, write the JSON with its identity."""
    device = resolve_device(device)
    image_file = io.load_tensors(images_path, required=("images",))
    label_file = io.load_tensors(labels_path, required=("labels",))
    images, targets = image_file["images"].to(device), label_file["labels"].to(device)
    if len(images) != len(targets):
        raise LabelworthError(f"{labels_path} has {len(targets)} labels for {len(images)} images in {images_path}")
    test = load_split(data_dir, "test", device)
    result = evaluate_students(images, targets, test, arch, seeds, epochs, lr, optimizer, batch_size,
                               eval_every)
    image_meta = image_file["meta"]
    result["meta"] = io.provenance(
        "evaluate_students",
        dataset=test.spec.name,
        method=image_meta["method"],
        images_per_class=image_meta["images_per_class"],
        label_spec=label_file["meta"]["label_spec"],
        student=arch,
        hyperparameters={"epochs": epochs, "lr": lr, "optimizer": optimizer, "batch_size": batch_size,
                         "eval_every": eval_every},
        class_names=test.class_names,
    )
    io.write_json(out_path, result)
    return result
