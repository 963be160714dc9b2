"""SRe2L: recover images from a batch-norm teacher, then relabel them with it (docs/method.md §8.6,
VILA-Lab/SRe2L's `recover_cifar.py` / `recover_tiny.py`). Squeeze, training the teacher, is the
ordinary expert training (experts.py) of a batch-norm architecture.

Recover. The images start as N(0, 1) noise in normalised space. The teacher is frozen in eval mode,
so its running statistics are the targets and each image's logits do not depend on its batch. Every
iteration jitters the images (a cyclic roll by up to `jitter` pixels either way along each axis and,
where the dataset's DSA strategy flips, i.e. not for digits, a left-right flip with probability 1/2,
as the reference's Tiny ImageNet script does; its CIFAR script rolls by 0..jitter and never flips)
and minimises
    CE(teacher(x), y) + r_bn * sum_l w_l (||mu_l - running_mean_l||_2 + ||var_l - running_var_l||_2)
over the teacher's BatchNorm2d layers l, where mu_l and var_l are the batch mean and biased variance
of the layer's input and w_l is first_bn_multiplier for the first layer, 1 for the others. Adam
(betas (0.5, 0.9), eps 1e-8) with cosine decay from `lr` to 0 and no warm-up moves the pixels, which
are clamped after every step to the normalised values of pixels in [0, 1].

Batches. The reference recovers one image per class at a time: a batch of all classes for each ipc
index, each batch with its own noise, optimiser and jitter. Batch-norm statistics are per batch, so
the grouping matters. We forward all images at once, but the images are kept ipc-major (group k =
the k-th image of every class) and the jitter, the CE mean and every batch statistic are taken per
group; the step follows the sum of the groups' losses. With the teacher in eval mode and Adam acting
elementwise, each group then moves exactly as its own reference batch would (tested: the loss of two
groups is each group's loss alone), while the network runs once per iteration instead of ipc times.
The cost is memory for the whole set's activations: small for 10-class 28-32 px sets; an ImageNet-
size set would need the groups in chunks. The set is saved class-major like every other image set.

Relabel. The reference's FKD relabel stores, for each of 300-400 student epochs, random-resized-crop
boxes, CutMix parameters and the teacher's soft label of every crop. We store one soft label per
image, softmax(teacher(x) / relabel_temperature) on the whole recovered image, as the set's
`learned_labels` (label spec `learned`); students train on it like on any other soft label.

Resume. The learning rate is a function of the iteration number, so the images, Adam's state and the
generator are the whole state (resume.run_iterations). The schedule depends on `iterations`, so
unlike DM or MTT runs of different lengths are not interchangeable: `iterations` is part of the
run's identity.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import nn

from labelworth.data import input_space, normalize
from labelworth.distill.synthesis import SynthesisFiles, write_synthetic_set
from labelworth.resume import run_iterations
from labelworth.errors import LabelworthError
from labelworth.experts import load_expert
from labelworth.labels import soft_labels
from labelworth.settings import Sre2lSettings, run_settings
from labelworth.specs import ImageSetSpec
from labelworth.training import predict_logits, resolve_device


def valid_pixel_range(spec) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised values of pixel value 0 and 255 per channel, each shaped C x 1 x 1: an image
    clamped to [low, high] is one that `denormalize` maps into [0, 1] without clipping."""
    black = torch.zeros(len(spec.mean), 1, 1, dtype=torch.uint8)
    return normalize(black, spec), normalize(black + 255, spec)


def cosine_lr(base_lr: float, iteration: int, iterations: int) -> float:
    """base_lr * (1 + cos(pi * iteration / iterations)) / 2: base_lr at iteration 0, falling to 0 at
    `iterations` (the reference's `lr_cosine_policy` without warm-up)."""
    return 0.5 * (1 + math.cos(math.pi * iteration / iterations)) * base_lr


def draw_jitter(generator: torch.Generator, groups: int, jitter: int, flip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per group, a roll (rows, columns), each uniform in -jitter..jitter, and whether to flip
    (probability 1/2 when `flip`, never otherwise)."""
    offsets = torch.randint(-jitter, jitter + 1, (groups, 2), generator=generator)
    flips = (torch.rand(groups, generator=generator) < 0.5) if flip else torch.zeros(groups, dtype=torch.bool)
    return offsets, flips


def jitter_groups(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Group g of the images (len(offsets) groups of consecutive images, equal in size) mirrored
    left-right where flips[g], then rolled cyclically by offsets[g] = (rows, columns) pixels.

    Each image's pixels are permuted, never changed or lost: rolling the result by -offsets and
    mirroring again gives the images back exactly (tests)."""
    grouped = images.view(len(offsets), -1, *images.shape[1:])
    moved = [(group.flip(-1) if flipped else group).roll(shifts=(int(rows), int(columns)), dims=(-2, -1))
             for group, (rows, columns), flipped in zip(grouped, offsets.tolist(), flips.tolist())]
    return torch.stack(moved).flatten(0, 1)


def group_statistics(features: torch.Tensor, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The channel mean and biased variance of N x C x H x W features, per group of consecutive
    images (each groups x C): what a batch-norm layer in training mode computes on that group alone."""
    grouped = features.view(groups, -1, *features.shape[1:]).transpose(1, 2).flatten(2)  # groups x C x n*H*W
    return grouped.mean(2), grouped.var(2, unbiased=False)


def batch_norm_statistics_loss(recorded: list[tuple[nn.BatchNorm2d, torch.Tensor]], groups: int,
                               first_bn_multiplier: float) -> torch.Tensor:
    """Per group (a tensor of `groups` values), sum over the (layer, layer input) pairs, in forward
    order, of w (||mean - running_mean||_2 + ||variance - running_var||_2), w = first_bn_multiplier
    for the first layer and 1 for the rest.

    Zero for a group whose statistics equal the layers' running ones, positive otherwise; a group's
    value does not depend on the other groups (tests)."""
    weights = [first_bn_multiplier] + [1.0] * (len(recorded) - 1)
    distances = []
    for layer, features in recorded:
        mean, variance = group_statistics(features, groups)
        distances.append((mean - layer.running_mean).norm(dim=1) + (variance - layer.running_var).norm(dim=1))
    return sum(weight * distance for weight, distance in zip(weights, distances))


@contextlib.contextmanager
def recorded_batch_norm_inputs(model: nn.Module):
    """Within the block, every forward appends (layer, its input) for each BatchNorm2d, in forward order."""
    recorded: list[tuple[nn.BatchNorm2d, torch.Tensor]] = []
    handles = [module.register_forward_hook(lambda layer, inputs, output: recorded.append((layer, inputs[0])))
               for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


def recover_loss(teacher: nn.Module, images: torch.Tensor, classes: torch.Tensor, groups: int, r_bn: float,
                 first_bn_multiplier: float) -> torch.Tensor:
    """Per group of consecutive images, mean CE of the teacher's logits plus r_bn times the
    batch-norm statistics loss: the reference's loss for a batch holding that group alone."""
    with recorded_batch_norm_inputs(teacher) as recorded:
        logits = teacher(images)
    cross_entropy = F.cross_entropy(logits, classes, reduction="none").view(groups, -1).mean(1)
    return cross_entropy + r_bn * batch_norm_statistics_loss(recorded, groups, first_bn_multiplier)


def load_batch_norm_teacher(checkpoint, device) -> nn.Module:
    """The teacher, frozen in eval mode; a network without BatchNorm2d is refused."""
    teacher = load_expert(checkpoint, device).requires_grad_(False)
    if not any(isinstance(module, nn.BatchNorm2d) for module in teacher.modules()):
        raise LabelworthError(f"SRe2L matches batch-norm statistics, but the teacher {checkpoint} has no batch "
                              "norm; train a -batchnorm convnet or a resnet")
    return teacher


def distill_sre2l(data_dir, teacher_checkpoint, images_per_class: int, seed: int, settings: Sre2lSettings,
                  files: SynthesisFiles, device: str = "auto") -> list[float]:
    """Recover `sre2l-ipc{images_per_class}` from the teacher and relabel it into `files`; returns
    the loss per iteration (the mean over ipc groups of each group's loss)."""
    device = resolve_device(device)
    teacher = load_batch_norm_teacher(teacher_checkpoint, device)
    train = input_space(data_dir)  # SRe2L reads no real image; ImageNet's split holds none
    if train.zca is not None:
        raise LabelworthError("SRe2L keeps its images in the range of real pixels, which ZCA-whitened data "
                              "(config zca: true) does not have; run it on data prepared without zca")
    spec = train.spec
    generator = torch.Generator().manual_seed(seed)
    # ipc-major: group k holds the k-th image of every class (see the module doc)
    images = torch.randn(images_per_class * train.num_classes, spec.channels, spec.image_size, spec.image_size,
                         generator=generator).to(device).requires_grad_(True)
    classes = torch.arange(train.num_classes, device=device).repeat(images_per_class)
    low, high = (bound.to(device) for bound in valid_pixel_range(spec))
    optimizer = torch.optim.Adam([images], lr=settings.lr, betas=(0.5, 0.9), eps=1e-8)
    flip = "flip" in spec.dsa_strategy

    def clamp_images() -> None:
        with torch.no_grad():
            images.copy_(torch.maximum(torch.minimum(images, high), low))

    def compute_gradients(iteration: int) -> float:
        if iteration > 0:  # the clamp after the previous step (run_iterations steps after this returns)
            clamp_images()
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(settings.lr, iteration, settings.iterations)
        offsets, flips = draw_jitter(generator, images_per_class, settings.jitter, flip)
        losses = recover_loss(teacher, jitter_groups(images, offsets, flips), classes, images_per_class,
                              settings.r_bn, settings.first_bn_multiplier)
        losses.sum().backward()  # each group gets the gradient of its own loss, as a reference batch
        return losses.mean().item()

    # The relabel temperature does not touch the recovery, so a finished recovery (its last state is
    # saved when save_every divides iterations) is relabelled at another temperature without rerunning.
    recovery_settings = {key: value for key, value in run_settings(settings).items() if key != "relabel_temperature"}
    identity = {"method": "sre2l", "dataset": spec.name, "images_per_class": images_per_class, "seed": seed,
                "teacher": str(teacher_checkpoint), "iterations": settings.iterations, **recovery_settings}
    losses = run_iterations(compute_gradients, {"images": images}, [optimizer], generator, settings.iterations,
                            settings.save_every, files.work_dir, identity, f"SRe2L ipc{images_per_class}")
    clamp_images()
    # back to class-major, the layout of every image set
    images = images.detach().view(images_per_class, train.num_classes, *images.shape[1:]).transpose(0, 1).flatten(0, 1)
    classes = torch.arange(train.num_classes).repeat_interleave(images_per_class)
    learned_labels = soft_labels([predict_logits(teacher, images)], settings.relabel_temperature)
    write_synthetic_set(files, images, classes, ImageSetSpec("sre2l", images_per_class), train, losses,
                        learned_labels=learned_labels, seed=seed, teacher_checkpoint=str(teacher_checkpoint),
                        **asdict(settings))
    return losses
