"""Names that appear in paths and configs: datasets, architectures, label specs.

Everything here is plain Python (no torch) because Snakemake imports it at parse time to validate the
config and to build paths; a cluster re-parses the Snakefile for every job, so importing torch there
would cost seconds per job.

Each grammar has one `parse_*` and one `format_*`; `format(parse(s)) == s` for every canonical string
and `parse(format(x)) == x` for every value, which the tests check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labelworth.errors import LabelworthError


def format_number(value: float) -> str:
    """Shortest readable form of a number for a path: 0.01 -> '0.01', 2.0 -> '2', 1e-05 -> '1e-05'."""
    return f"{float(value):g}"


# --------------------------------------------------------------------------------------------------
# Datasets (METHOD.md section 2.1)

FULL_DSA = "color_crop_cutout_flip_scale_rotate"
NO_FLIP_DSA = "color_crop_cutout_scale_rotate"  # digits must not be mirrored


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    channels: int
    image_size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dsa_strategy: str
    min_train_per_class: int  # the largest images_per_class a random subset can draw
    class_names: tuple[str, ...] | None = None  # None: read from the raw files
    cached_as_tensors: bool = True  # False: too big, read from the ImageFolder tree on demand


_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_CIFAR_MEAN, _CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "fashion_mnist", 1, 28, 10, (0.2861,), (0.3530,), FULL_DSA, 6000,
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        ),
        DatasetSpec(
            "mnist", 1, 28, 10, (0.1307,), (0.3081,), NO_FLIP_DSA, 5421,
            tuple(str(digit) for digit in range(10)),
        ),
        DatasetSpec(
            "cifar10", 3, 32, 10, _CIFAR_MEAN, _CIFAR_STD, FULL_DSA, 5000,
            ("airplane", "automobile", "bird", "cat", "deer",
             "dog", "frog", "horse", "ship", "truck"),
        ),
        # The paper (and MTT) normalise CIFAR-100 with CIFAR-10's statistics (METHOD.md 12.6).
        DatasetSpec("cifar100", 3, 32, 100, _CIFAR_MEAN, _CIFAR_STD, FULL_DSA, 500),
        DatasetSpec("tinyimagenet", 3, 64, 200, _IMAGENET_MEAN, _IMAGENET_STD, FULL_DSA, 500),
        DatasetSpec(
            "imagenet", 3, 224, 1000, _IMAGENET_MEAN, _IMAGENET_STD, FULL_DSA, 732,
            cached_as_tensors=False,
        ),
    )
}


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise LabelworthError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}"
        ) from None


# --------------------------------------------------------------------------------------------------
# Architectures (METHOD.md section 3)

CONVNET_NORMS = ("instancenorm", "batchnorm", "layernorm", "groupnorm", "nonorm")
CONVNET_POOLS = ("avgpool", "maxpool")


@dataclass(frozen=True)
class ArchSpec:
    """`convnet-d{depth}[-w{width}][-{norm}][-maxpool]` or `resnet{18,50}[-small]`.

    Defaults are left out of the string: `convnet-d3` is the paper's ConvNet (width 128, instance
    norm, average pooling); `resnet18-small` is the 3x3-stem, no-maxpool variant for small images.
    """

    family: str
    depth: int
    width: int = 128
    norm: str = "instancenorm"
    pool: str = "avgpool"
    small_stem: bool = False

    @property
    def uses_batchnorm(self) -> bool:
        return self.family == "resnet" or self.norm == "batchnorm"


_CONVNET = re.compile(
    r"convnet-d(?P<depth>[1-9])(-w(?P<width>[1-9]\d*))?"
    rf"(-(?P<norm>{'|'.join(CONVNET_NORMS)}))?(-(?P<pool>maxpool))?"
)
_RESNET = re.compile(r"resnet(?P<depth>18|50)(?P<small>-small)?")


def parse_arch(text: str) -> ArchSpec:
    if match := _CONVNET.fullmatch(text):
        arch = ArchSpec(
            "convnet",
            int(match["depth"]),
            int(match["width"] or 128),
            match["norm"] or "instancenorm",
            match["pool"] or "avgpool",
        )
    elif match := _RESNET.fullmatch(text):
        arch = ArchSpec("resnet", int(match["depth"]), small_stem=bool(match["small"]))
    else:
        raise LabelworthError(
            f"unknown architecture {text!r}; expected convnet-d<depth>[-w<width>]"
            f"[-{'|-'.join(CONVNET_NORMS)}][-maxpool] or resnet18|resnet50[-small]"
        )
    if format_arch(arch) != text:
        raise LabelworthError(f"architecture {text!r} is not canonical; write {format_arch(arch)!r}")
    return arch


def format_arch(arch: ArchSpec) -> str:
    if arch.family == "resnet":
        return f"resnet{arch.depth}" + ("-small" if arch.small_stem else "")
    text = f"convnet-d{arch.depth}"
    if arch.width != 128:
        text += f"-w{arch.width}"
    if arch.norm != "instancenorm":
        text += f"-{arch.norm}"
    if arch.pool != "avgpool":
        text += f"-{arch.pool}"
    return text


# --------------------------------------------------------------------------------------------------
# Label specs (DESIGN.md section 3)


@dataclass(frozen=True)
class LabelSpec:
    """What labels a student is trained on, as one path component.

    Grammar::

        hard                          one-hot true labels
        expert-e{E}[-t{T}]            softmax(logits / T) of the first expert after E epochs
        ensemble{N}-e{E}[-t{T}]       softmax(mean of N experts' logits / T), experts = first N seeds

    `T` is a true temperature (T > 1 flattens). The reference code multiplies the logits by its
    `temp` argument instead, i.e. its `temp` is 1/T (METHOD.md section 12.2); `-t2` here equals its
    `--temp 0.5`. Epoch 0 is the untrained initialisation.
    """

    source: str  # "hard" | "expert" | "ensemble"
    expert_epoch: int | None = None
    ensemble_size: int = 1
    temperature: float = 1.0

    @property
    def is_soft(self) -> bool:
        return self.source != "hard"


_SOFT_SOURCE = re.compile(
    r"(?:expert|ensemble(?P<size>[1-9]\d*))-e(?P<epoch>\d+)(?:-t(?P<temp>\d+(?:\.\d+)?(?:e[+-]?\d+)?))?"
)


def parse_label_spec(text: str) -> LabelSpec:
    if text == "hard":
        return LabelSpec("hard")
    match = _SOFT_SOURCE.fullmatch(text)
    if not match:
        raise LabelworthError(
            f"label spec {text!r} does not parse; expected 'hard', 'expert-e<epoch>[-t<T>]' "
            "or 'ensemble<N>-e<epoch>[-t<T>]'"
        )
    temperature = float(match["temp"]) if match["temp"] else 1.0
    if temperature <= 0:
        raise LabelworthError(f"label spec {text!r}: temperature must be positive")
    size = int(match["size"]) if match["size"] else 1
    spec = LabelSpec(
        "ensemble" if match["size"] else "expert", int(match["epoch"]), size, temperature
    )
    if format_label_spec(spec) != text:
        raise LabelworthError(
            f"label spec {text!r} is not canonical; write {format_label_spec(spec)!r}"
        )
    return spec


def format_label_spec(spec: LabelSpec) -> str:
    if spec.source == "hard":
        return "hard"
    head = "expert" if spec.source == "expert" else f"ensemble{spec.ensemble_size}"
    text = f"{head}-e{spec.expert_epoch}"
    if spec.temperature != 1.0:
        text += f"-t{format_number(spec.temperature)}"
    return text
