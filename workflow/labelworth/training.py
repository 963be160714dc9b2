"""Training-loop pieces shared by experts and students: one epoch of augmented SGD, predictions,
accuracy and label entropy.

Data lives on the device as one normalised tensor and minibatches are index slices of it, so there is
no DataLoader and no per-batch collation. All randomness (minibatch order and DSA draws) comes from
one explicit `torch.Generator`, whose state a checkpoint can store, which makes resumed runs
bitwise-identical to uninterrupted ones on a CPU.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from labelworth.augment import dsa_augment
from labelworth.costs import TEST_PASSES, phase
from labelworth.errors import LabelworthError

# Images per forward chunk of a clean pass. On a CPU small chunks keep each layer's activations in
# cache, with bitwise the same logits (benchmarks/results/test_passes.md); an accelerator wants bigger
# chunks, to amortise its kernel launches.
PREDICT_BATCH_CPU = 50
PREDICT_BATCH_ACCELERATOR = 500


def predict_batch(device: torch.device) -> int:
    """Images per chunk of a clean pass on `device`."""
    return PREDICT_BATCH_CPU if device.type == "cpu" else PREDICT_BATCH_ACCELERATOR


# Fixed, so that every run, epoch and process measures the same training images.
TRAIN_METRIC_SEED = 0


def train_metric_indices(train_size: int, train_metric_images: int | None) -> torch.Tensor | None:
    """The training images an expert's per-epoch train accuracy and label entropy are measured on:
    `train_metric_images` of them drawn without replacement by TRAIN_METRIC_SEED, in increasing
    order; None (every image) when the setting is None or not below `train_size`.
    Property (tests): the same indices on every call, distinct and within range."""
    if train_metric_images is None or train_metric_images >= train_size:
        return None
    generator = torch.Generator().manual_seed(TRAIN_METRIC_SEED)
    return torch.randperm(train_size, generator=generator)[:train_metric_images].sort().values


def expert_optimizer(parameters, settings, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """The experts' SGD at the run's lr (`settings`: ExpertSettings), both trainers' one recipe: the
    momentum and weight decay are the trainer's (the paper's ConvNet experts: none; torchvision's
    ImageNet recipe: 0.9 and 1e-4), the weight decay the run's own where it sets one."""
    weight_decay = weight_decay if settings.weight_decay is None else settings.weight_decay
    return torch.optim.SGD(parameters, lr=settings.lr, momentum=momentum, weight_decay=weight_decay)


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present, else CPU; a CUDA device this machine does not have is a
    LabelworthError (the submit host of a cluster may have no GPU, so the config cannot check it)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise LabelworthError(f"device {device!r}: not a device; expected auto, cpu, cuda or cuda:<n>") from None
    if chosen.type == "cuda":
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (chosen.index or 0) >= visible:
            raise LabelworthError(f"device {device!r}: this machine has {visible} visible CUDA device(s) "
                                  f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
                                  "use device: auto or cpu, or run the job where a GPU is")
    return chosen


def epoch_minibatches(
    num_images: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """One epoch's minibatches: consecutive slices of one `randperm` drawn from `generator`.

    Every training loop draws its order here, so the one-by-one and the vectorised student engines
    see the same batches for the same seed.
    """
    return torch.randperm(num_images, generator=generator).to(device).split(batch_size)


# A batch's step: (model, images, targets, generator) -> (loss, logits, the targets trained on).
BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator], tuple]


def dsa_cross_entropy(dsa_strategy: str) -> BatchLoss:
    """The paper's batch: DSA, then cross-entropy with the stored targets."""

    def batch_loss(model, images, targets, generator):
        logits = model(dsa_augment(images, dsa_strategy, generator))
        return F.cross_entropy(logits, targets), logits, targets

    return batch_loss


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
    dsa_strategy: str,
    generator: torch.Generator,
    batch_loss: BatchLoss | None = None,
) -> tuple[float, float]:
    """One pass over (images, targets) in a random order, DSA on every batch (or `batch_loss`'s step).

    `targets` are class indices (int64) or probability rows (float, used as given even when they do
    not sum to 1, as the reference does). Returns (mean loss, accuracy against the targets' argmax).
    """
    batch_loss = batch_loss or dsa_cross_entropy(dsa_strategy)
    model.train()
    batches = epoch_minibatches(len(images), batch_size, generator, images.device)
    loss_sum = correct = 0.0
    for batch_number, batch in enumerate(batches, 1):
        loss, logits, batch_targets = batch_loss(model, images[batch], targets[batch], generator)
        loss_value = loss.item()
        if not math.isfinite(loss_value):  # stop before the step spoils the weights
            raise FloatingPointError(f"batch {batch_number} of {len(batches)}: training loss became {loss_value}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        hard = batch_targets if batch_targets.dim() == 1 else batch_targets.argmax(1)
        loss_sum += loss_value * len(batch)
        correct += (logits.argmax(1) == hard).sum().item()
    return loss_sum / len(images), correct / len(images)


@contextmanager
def test_pass() -> Iterator[None]:
    """A clean pass that measures a network: metered as a test pass, and in inference mode, which
    records nothing for autograd (cheaper than no_grad). What it returns is only read: inference
    tensors cannot enter a later backward pass, so label files and online labels use no_grad."""
    with phase(TEST_PASSES), torch.inference_mode():
        yield


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Logits in eval mode (batch-norm uses running statistics); the model's mode is restored.
    Property (tests): chunks of PREDICT_BATCH_CPU images or more give the bits of one batch."""
    batch_size = batch_size or predict_batch(images.device)
    was_training = model.training
    model.eval()
    logits = torch.cat([model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
    model.train(was_training)
    return logits


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(1) == labels).float().mean().item()


def per_class_accuracy(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float]:
    """Accuracy restricted to each true class (NaN for a class with no test images)."""
    hits = (logits.argmax(1) == labels).float()
    totals = torch.bincount(labels, minlength=num_classes).float()
    correct = torch.bincount(labels, weights=hits, minlength=num_classes)
    return (correct / totals).tolist()


def mean_entropy(probabilities: torch.Tensor) -> float:
    """Mean over rows of -sum p log(p + 1e-10), in nats (the reference's label-entropy measure)."""
    return (-(probabilities * torch.log(probabilities + 1e-10)).sum(1)).mean().item()
