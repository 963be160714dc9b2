"""Labels for the selected or distilled images (docs/method.md §6).

A label file holds one float row per image. Hard labels are one-hot rows, so every student trains
with the same probability-target cross-entropy. The label grammar (`LabelSpec`) lives in
`labelworth.specs` so Snakemake can parse it without importing torch.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from labelworth import io
from labelworth.data import load_split
from labelworth.errors import LabelworthError
from labelworth.experts import expert_run_of, load_expert
from labelworth.specs import LabelTransform, format_label_spec, format_transform, parse_label_spec
from labelworth.training import predict_logits, resolve_device


def hard_labels(classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """One-hot float rows: cross-entropy against them equals cross-entropy against `classes`."""
    return F.one_hot(classes, num_classes).float()


def soft_labels(expert_logits: list[torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
    """softmax(mean of the experts' logits / temperature).

    One expert gives the paper's soft label; several give its ensemble label (logits are averaged
    before the softmax, as the reference's `--ensemble` does). Rows sum to 1, and a larger
    temperature never lowers a row's entropy.
    """
    mean_logits = torch.stack(expert_logits).mean(0)
    return torch.softmax(mean_logits / temperature, dim=1)


def entropy_per_row(labels: torch.Tensor) -> torch.Tensor:
    """-sum p log p per row, in nats (0 log 0 = 0)."""
    return -(labels * torch.log(labels.clamp_min(1e-30))).sum(1)


def swap_kth_largest_with_smallest(labels: torch.Tensor, k: int) -> torch.Tensor:
    """The label-swap test (docs/method.md §9 E6): in each row exchange the k-th largest entry (k = 1 is the
    top class) with the smallest. Each row keeps its multiset of values, hence its entropy."""
    order = labels.argsort(dim=1, descending=True)
    kth, smallest = order[:, k - 1 : k], order[:, -1:]
    swapped = labels.clone()
    swapped.scatter_(1, kth, labels.gather(1, smallest))
    swapped.scatter_(1, smallest, labels.gather(1, kth))
    return swapped


def keep_top_k(labels: torch.Tensor, k: int, renormalise: bool = False) -> torch.Tensor:
    """The scaling-law labels (docs/method.md §9 E10): keep the k largest entries in place, zero the rest.

    The reference does not renormalise (rows then sum to less than 1); `renormalise` rescales each
    row to sum to 1. Kept entries keep their positions, so top-1 is the expert's argmax, which is
    not always the true class."""
    kept = torch.zeros_like(labels).scatter_(1, labels.topk(k, dim=1).indices, 1.0)
    out = labels * kept
    return out / out.sum(1, keepdim=True) if renormalise else out


def stored_as_fp16(labels: torch.Tensor) -> torch.Tensor:
    """What a reader gets back from labels stored as float16: each value rounded to half precision.

    Property (tests): every value within a relative 2^-11 of its own, or 2^-25 for values below fp16's
    normal range (zeros stay zero), and storing twice changes nothing."""
    return labels.half().float()


INT8_LEVELS = 127  # codes -127..127, symmetric, so a row's largest magnitude is exact


def quantise_int8(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 codes, float32 scale per row): codes = round(labels / scale), scale = the row's largest
    magnitude / 127 (1 for an all-zero row)."""
    scale = labels.abs().amax(1, keepdim=True) / INT8_LEVELS
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.round(labels / scale).clamp(-INT8_LEVELS, INT8_LEVELS).to(torch.int8), scale


def stored_as_int8(labels: torch.Tensor) -> torch.Tensor:
    """What a reader gets back from labels stored as int8 codes and a per-row scale.

    Property (tests): each value within half a scale step of its own, zeros (top-k's dropped entries)
    stay zero, each row's largest value is exact, and storing twice changes nothing."""
    codes, scale = quantise_int8(labels)
    return codes.float() * scale


def shuffle_all_but_top(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Keep each row's top entry (index and value) and permute the other values at random: the same
    entropy and the same top class, but no class-similarity structure (reproduction report R4)."""
    rows, classes = labels.shape
    top = labels.argmax(1, keepdim=True)
    # Random keys, with the top position forced first, give a per-row permutation of the others.
    keys = torch.rand(rows, classes, generator=generator).scatter_(1, top, -1.0)
    positions = keys.argsort(dim=1)  # positions[:, 0] is the top class
    values_by_rank = labels.gather(1, labels.argsort(dim=1, descending=True))
    shuffled = torch.empty_like(labels)
    shuffled.scatter_(1, positions, values_by_rank)
    return shuffled


def remove_class_knowledge(labels: torch.Tensor, classes: torch.Tensor, removed_class: int) -> torch.Tensor:
    """The zero-shot "treat label" arm (docs/method.md §9 E9): zero column `removed_class` in every row whose
    image is not of that class; rows of that class are untouched. No renormalisation (as the
    reference), so the other classes' rows sum to less than 1."""
    out = labels.clone()
    out[classes != removed_class, removed_class] = 0.0
    return out


def smoothed_to_entropy(labels: torch.Tensor, classes: torch.Tensor, iterations: int = 60) -> torch.Tensor:
    """Label smoothing of the true class with, per row, the entropy of the given row: a control
    with the expert's entropy but no class-similarity structure.

    Row i becomes (1 - e_i) on the true class and e_i / (C - 1) elsewhere, with e_i found by bisection
    (entropy grows monotonically with e on [0, (C - 1) / C], from 0 to log C)."""
    rows, num_classes = labels.shape
    target = entropy_per_row(labels.double())
    low = torch.zeros(rows, dtype=torch.float64)
    high = torch.full((rows,), (num_classes - 1) / num_classes, dtype=torch.float64)

    def smoothed(epsilon: torch.Tensor) -> torch.Tensor:
        out = (epsilon / (num_classes - 1)).unsqueeze(1).expand(rows, num_classes).clone()
        out[torch.arange(rows), classes] = 1 - epsilon
        return out

    for _ in range(iterations):
        middle = (low + high) / 2
        too_low = entropy_per_row(smoothed(middle)) < target
        low = torch.where(too_low, middle, low)
        high = torch.where(too_low, high, middle)
    return smoothed((low + high) / 2).to(labels.dtype)


def noisy_true_labels(classes: torch.Tensor, num_classes: int, true_class_mass: float,
                      generator: torch.Generator) -> torch.Tensor:
    """"Generated labels" (reproduction report R5): the true class gets `true_class_mass`, the other
    classes share the rest in proportion to uniform random weights. Rows sum to 1."""
    weights = torch.rand(len(classes), num_classes, generator=generator)
    weights[torch.arange(len(classes)), classes] = 0.0
    rest = weights / weights.sum(1, keepdim=True) * (1 - true_class_mass)
    rest[torch.arange(len(classes)), classes] = true_class_mass
    return rest


def boost_low_entropy(labels: torch.Tensor, fraction: float, alpha: float,
                      generator: torch.Generator) -> torch.Tensor:
    """The low-entropy boost (reproduction report R7): the `fraction` of rows with the lowest entropy
    become (1 - alpha) p + alpha u / sum(u), u ~ U(0, 1)^C; every other row is unchanged, and rows
    that summed to 1 still do."""
    count = int(round(fraction * len(labels)))
    chosen = entropy_per_row(labels).argsort()[:count]
    noise = torch.rand(count, labels.shape[1], generator=generator)
    out = labels.clone()
    out[chosen] = (1 - alpha) * labels[chosen] + alpha * noise / noise.sum(1, keepdim=True)
    return out


def apply_transform(labels: torch.Tensor, transform: LabelTransform, classes: torch.Tensor,
                    generator: torch.Generator) -> torch.Tensor:
    if transform.kind == "swap":
        return swap_kth_largest_with_smallest(labels, int(transform.value))
    if transform.kind == "top":
        return keep_top_k(labels, int(transform.value), transform.renormalise)
    if transform.kind == "shuffle":
        return shuffle_all_but_top(labels, generator)
    if transform.kind == "zeroclass":
        return remove_class_knowledge(labels, classes, int(transform.value))
    if transform.kind == "smooth":
        return smoothed_to_entropy(labels, classes)
    if transform.kind == "fp16":
        return stored_as_fp16(labels)
    if transform.kind == "int8":
        return stored_as_int8(labels)
    return boost_low_entropy(labels, transform.value, transform.alpha, generator)


def check_transform(transform: LabelTransform, num_classes: int) -> None:
    """Transform arguments must fit the number of classes (swap1..C-1, top1..C, a class index)."""
    limits = {"swap": num_classes - 1, "top": num_classes, "zeroclass": num_classes - 1}
    if transform.kind in limits and not (transform.kind == "zeroclass" or transform.value >= 1):
        raise LabelworthError(f"{format_transform(transform)}: k must be at least 1")
    if transform.kind in limits and transform.value > limits[transform.kind]:
        raise LabelworthError(
            f"{format_transform(transform)}: at most {limits[transform.kind]} with {num_classes} classes"
        )
    if transform.kind == "boost" and not (0 < transform.value <= 1 and 0 < transform.alpha <= 1):
        raise LabelworthError(f"{format_transform(transform)}: q and alpha must be in (0, 1]")


def make_labels(
    images_path: str | os.PathLike,
    label_spec: str,
    expert_checkpoints: list[str],
    out_path: str | os.PathLike,
    seed: int = 0,
    device: str = "auto",
) -> torch.Tensor:
    """Write the labels `label_spec` names for the images in `images_path`.

    `expert_checkpoints` lists the checkpoint of each expert the spec uses: none for `hard` and
    `noise{p}`, one for `expert-e{E}`, N for `ensemble{N}-e{E}`, each saved after E epochs. `seed`
    drives the random transforms (noise, shuffle, boost), so a label file is repeatable. `learned`
    takes the labels the image set's method saved with its images (bptt, sre2l), used as they are:
    the reference trains on BPTT's learned labels raw (docs/method.md §9 E13).
    """
    spec = parse_label_spec(label_spec)
    content = io.load_tensors(images_path, required=("images", "labels"))
    classes, num_classes = content["labels"], content["meta"]["num_classes"]
    for transform in spec.transforms:
        check_transform(transform, num_classes)
    expected = spec.ensemble_size if spec.uses_experts else 0
    if len(expert_checkpoints) != expected:
        raise LabelworthError(
            f"label spec {label_spec!r} needs {expected} expert checkpoint(s), got {len(expert_checkpoints)}"
        )
    generator = torch.Generator().manual_seed(seed)
    if spec.source == "learned":
        if "learned_labels" not in content:
            raise LabelworthError(
                f"label spec 'learned': {images_path} ({content['meta']['image_set']}) holds no labels of "
                "its own; only bptt and sre2l image sets do"
            )
        labels = content["learned_labels"].float()
    elif spec.uses_experts:
        device = resolve_device(device)
        images = content["images"].to(device)
        logits = [predict_logits(load_expert(path, device), images).cpu() for path in expert_checkpoints]
        labels = soft_labels(logits, spec.temperature)
    elif spec.source == "noise":
        labels = noisy_true_labels(classes, num_classes, spec.true_class_mass, generator)
    else:
        labels = hard_labels(classes, num_classes)
    for transform in spec.transforms:  # only expert and learned specs have any (specs.py)
        labels = apply_transform(labels, transform, classes, generator)
    meta = io.provenance(
        "make_labels",
        label_spec=format_label_spec(spec),
        images=str(images_path),
        expert_checkpoints=[str(path) for path in expert_checkpoints],
        expert_run=expert_run_of(expert_checkpoints[0]) if expert_checkpoints else "",
        seed=seed,
        mean_entropy=float(entropy_per_row(labels).mean()),
    )
    io.save_tensors(out_path, {"labels": labels}, meta)
    return labels


def class_similarity(probabilities: torch.Tensor, classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Row c = the mean soft label of class c's images (docs/method.md §9 E8); rows sum to 1. Off-diagonal mass
    says which classes the expert finds alike."""
    sums = torch.zeros(num_classes, probabilities.shape[1]).index_add_(0, classes, probabilities)
    return sums / torch.bincount(classes, minlength=num_classes).clamp_min(1).unsqueeze(1)


def expert_class_similarity(data_dir: str | os.PathLike, expert_checkpoint: str | os.PathLike,
                            out_csv: str | os.PathLike, device: str = "auto") -> torch.Tensor:
    """The class-similarity matrix of an expert on the whole training set, as a CSV with class names."""
    device = resolve_device(device)
    train = load_split(data_dir, "train", device)
    probabilities = predict_logits(load_expert(expert_checkpoint, device), train.images).softmax(1).cpu()
    # The classes the split holds (all of the dataset's, or a test tree's few), rows and columns alike.
    matrix = class_similarity(probabilities[:, : train.num_classes], train.labels.cpu(), train.num_classes)
    header = "class," + ",".join(f'"{name}"' for name in train.class_names)
    rows = [f'"{name}",' + ",".join(f"{value:.6g}" for value in row)
            for name, row in zip(train.class_names, matrix.tolist())]
    io.write_text(out_csv, "\n".join([header, *rows]) + "\n")
    return matrix
