"""Names that appear in paths and configs: datasets, architectures, label specs.

Everything here is plain Python (no torch) because Snakemake imports it at parse time to validate the
config and to build paths; a cluster re-parses the Snakefile for every job, so importing torch there
would cost seconds per job.

Each grammar has one `parse_*` and one `format_*`; `format(parse(s)) == s` for every canonical string
and `parse(format(x)) == x` for every value, which the tests check.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from labelworth.errors import LabelworthError


def format_number(value: float) -> str:
    """Shortest readable form of a number for a path: 0.01 -> '0.01', 2.0 -> '2', 1e-05 -> '1e-05'."""
    return f"{float(value):g}"


# --------------------------------------------------------------------------------------------------
# Datasets (docs/method.md §2.1)

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
        # The paper (and MTT) normalise CIFAR-100 with CIFAR-10's statistics (docs/method.md §12.6).
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
# Architectures (docs/method.md §3)

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
# Every architecture name, without groups: the `{arch}` of paths and the run token of label specs.
ARCH_PATTERN = (rf"convnet-d[1-9](?:-w[1-9]\d*)?(?:-(?:{'|'.join(CONVNET_NORMS)}))?(?:-maxpool)?"
                r"|resnet(?:18|50)(?:-small)?")


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
# Expert runs: a trained run is named by what it is, `{arch}-lr{lr}`, in paths and label specs, so two
# config names for the same settings share one trained expert.

_NUMBER = r"\d+(?:\.\d+)?(?:e[+-]?\d+)?"
FILE_DIGEST_LENGTH = 10  # hex digits of a brought checkpoint's sha256 in its run's name
EXPERT_RUN_PATTERN = rf"(?:{ARCH_PATTERN})-(?:lr{_NUMBER}|file[0-9a-f]{{{FILE_DIGEST_LENGTH}}})"


def format_expert_run(arch: str, lr: float) -> str:
    """`{arch}-lr{lr}`: the folder of a trained run under experts/ and its token in label specs."""
    return f"{arch}-lr{format_number(lr)}"


def format_brought_run(arch: str, sha256: str) -> str:
    """`{arch}-file{digest}`: the run of a checkpoint you bring, named by its content (the first
    FILE_DIGEST_LENGTH hex digits of its sha256), so that a moved file keeps its labels and a
    changed one gets new ones."""
    return f"{arch}-file{sha256[:FILE_DIGEST_LENGTH]}"


_EXPERT_RUN = re.compile(rf"(?P<arch>{ARCH_PATTERN})-(?:lr(?P<lr>{_NUMBER})|file(?P<digest>[0-9a-f]{{{FILE_DIGEST_LENGTH}}}))")


def parse_expert_run(text: str) -> tuple[str, float | None]:
    """(arch, lr) of a trained run's name; (arch, None) for a brought checkpoint's."""
    match = _EXPERT_RUN.fullmatch(text)
    if match and match["digest"]:
        return match["arch"], None
    if not match or format_expert_run(match["arch"], float(match["lr"])) != text:
        raise LabelworthError(f"expert run {text!r} does not parse; expected '<arch>-lr<lr>' or '<arch>-file<digest>'")
    return match["arch"], float(match["lr"])


# --------------------------------------------------------------------------------------------------
# Label specs (docs/design.md, "Results tree"; docs/method.md §6)


@dataclass(frozen=True)
class LabelTransform:
    """One step applied to soft labels after the softmax, written as one token of a label spec.

    kind       token          value          what it does (labels.py has the maths)
    swap       swap{k}        k              exchange each row's k-th largest and smallest entries
    top        top{k}[r]      k              keep the k largest entries (r: renormalise the row)
    shuffle    shuffle        -              keep the top entry, permute the others at random
    zeroclass  zeroclass{c}   c              zero class c's column outside class c's own images
    smooth     smooth         -              one-hot true label smoothed to the row's entropy
    boost      boost{q}a{a}   q, alpha       mix noise into the fraction q of lowest-entropy rows
    fp16       fp16           -              store the values as float16 (2 bytes each)
    int8       int8           -              store each row as int8 codes and one float32 scale
                                             (the row's largest magnitude / 127)

    fp16 and int8 say how the labels are stored, so they come last, and once (a spec reads what a
    reader of the stored labels gets back).
    """

    kind: str
    value: float | None = None
    alpha: float | None = None
    renormalise: bool = False


PRECISIONS = ("fp16", "int8")  # label transforms that store the values smaller (labels.py, storage.py)
_TRANSFORM = re.compile(
    rf"(?P<kind>swap|top|zeroclass)(?P<int>\d+)(?P<r>r)?|(?P<plain>shuffle|smooth|{'|'.join(PRECISIONS)})"
    rf"|boost(?P<q>{_NUMBER})a(?P<alpha>{_NUMBER})"
)


def _parse_transform(token: str) -> LabelTransform | None:
    match = _TRANSFORM.fullmatch(token)
    if not match:
        return None
    if match["plain"]:
        return LabelTransform(match["plain"])
    if match["q"]:
        return LabelTransform("boost", float(match["q"]), float(match["alpha"]))
    if match["r"] and match["kind"] != "top":
        return None
    return LabelTransform(match["kind"], int(match["int"]), renormalise=bool(match["r"]))


def format_transform(transform: LabelTransform) -> str:
    if transform.kind in ("shuffle", "smooth") + PRECISIONS:
        return transform.kind
    if transform.kind == "boost":
        return f"boost{format_number(transform.value)}a{format_number(transform.alpha)}"
    return f"{transform.kind}{int(transform.value)}" + ("r" if transform.renormalise else "")


@dataclass(frozen=True)
class LabelSpec:
    """What labels a student is trained on, as one path component.

    Grammar: a source, then for expert sources an optional temperature and any chain of transforms
    (see `LabelTransform`), applied after the softmax in the order written::

        hard                          one-hot true labels
        noise{p}                      true class gets p, the rest 1-p spread by random weights
                                      (the reproduction report's "generated labels")
        expert[-{run}]-e{E}[-t{T}][-{transform}...]
                                      softmax(logits / T) of the run's first expert after E epochs
        ensemble{N}[-{run}]-e{E}[-t{T}][-{transform}...]
                                      softmax(mean of N experts' logits / T), the run's first N seeds
        learned[-{transform}...]      the labels the image set's method made with its images
                                      (bptt: learned by distillation; sre2l: its teacher's relabel)

    e.g. `expert-e4-swap1`, `expert-e4-top2r`, `ensemble3-e4-t2`, `expert-resnet50-lr0.1-e31`.
    `{run}` is a trained expert run, `{arch}-lr{lr}` (`format_expert_run`), or a brought checkpoint's,
    `{arch}-file{digest}` (`format_brought_run`); without one the spec means the config's default run.
    `T` is a true temperature (T > 1 flattens). The reference code multiplies the logits by its
    `temp` argument instead, i.e. its `temp` is 1/T (docs/method.md §12.2); `-t2` here equals its
    `--temp 0.5`. Epoch 0 is the untrained initialisation.
    """

    source: str  # "hard" | "noise" | "expert" | "ensemble" | "learned"
    expert_epoch: int | None = None
    ensemble_size: int = 1
    temperature: float = 1.0
    transforms: tuple[LabelTransform, ...] = ()
    true_class_mass: float | None = None  # noise{p}
    expert_run: str | None = None  # `{arch}-lr{lr}` or `{arch}-file{digest}`; None: the config's default run

    @property
    def uses_experts(self) -> bool:
        return self.source in ("expert", "ensemble")

    @property
    def is_soft(self) -> bool:
        return self.source != "hard"


_EXPERT_SOURCE = re.compile(
    rf"(?:expert|ensemble(?P<size>[1-9]\d*))(?:-(?P<run>{EXPERT_RUN_PATTERN}))?-e(?P<epoch>\d+)"
    rf"(?:-t(?P<temp>{_NUMBER}))?(?P<rest>(?:-[a-z0-9.+]+)*)"
)
_LEARNED_SOURCE = re.compile(r"learned(?P<rest>(?:-[a-z0-9.+]+)*)")
_NOISE_SOURCE = re.compile(rf"noise(?P<p>{_NUMBER})")
_GRAMMAR_HINT = (
    "expected 'hard', 'noise<p>', 'learned', or 'expert[-<run>]-e<epoch>' / 'ensemble<N>[-<run>]-e<epoch>' "
    "(<run>: '<arch>-lr<lr>' or '<arch>-file<digest>') followed by an optional '-t<T>'; expert and learned labels take transforms '-swap<k>', '-top<k>[r]', '-shuffle', "
    "'-zeroclass<c>', '-smooth', '-boost<q>a<alpha>', and last '-fp16' or '-int8'"
)


def _parse_transforms(text: str, rest: str) -> tuple[LabelTransform, ...]:
    tokens = [token for token in rest.split("-") if token]
    transforms = tuple(_parse_transform(token) for token in tokens)
    if None in transforms:
        bad = tokens[transforms.index(None)]
        raise LabelworthError(f"label spec {text!r}: unknown transform {bad!r}; {_GRAMMAR_HINT}")
    stored = [position for position, transform in enumerate(transforms) if transform.kind in PRECISIONS]
    if stored and stored != [len(transforms) - 1]:
        raise LabelworthError(f"label spec {text!r}: {' and '.join(PRECISIONS)} say how the labels are stored, so one "
                              "of them comes last (e.g. 'expert-e4-top2-int8')")
    return transforms


def parse_transform_chain(text: str) -> tuple[LabelTransform, ...]:
    """The transforms of a chain written as in a label spec after its source, e.g. 'top2-int8'."""
    return _parse_transforms(text, text)


def parse_label_spec(text: str) -> LabelSpec:
    """Parse a label spec; anything outside the grammar or not canonical is a LabelworthError."""
    if text == "hard":
        return LabelSpec("hard")
    if match := _NOISE_SOURCE.fullmatch(text):
        spec = LabelSpec("noise", true_class_mass=float(match["p"]))
        if not 0 < spec.true_class_mass <= 1:
            raise LabelworthError(f"label spec {text!r}: the true-class mass p must be in (0, 1]")
    elif match := _LEARNED_SOURCE.fullmatch(text):
        spec = LabelSpec("learned", transforms=_parse_transforms(text, match["rest"]))
    elif match := _EXPERT_SOURCE.fullmatch(text):
        spec = LabelSpec(
            "ensemble" if match["size"] else "expert",
            int(match["epoch"]),
            int(match["size"]) if match["size"] else 1,
            float(match["temp"]) if match["temp"] else 1.0,
            _parse_transforms(text, match["rest"]),
            expert_run=match["run"],
        )
        if spec.temperature <= 0:
            raise LabelworthError(f"label spec {text!r}: temperature must be positive")
    else:
        raise LabelworthError(f"label spec {text!r} does not parse; {_GRAMMAR_HINT}")
    if format_label_spec(spec) != text:
        raise LabelworthError(f"label spec {text!r} is not canonical; write {format_label_spec(spec)!r}")
    return spec


def format_label_spec(spec: LabelSpec) -> str:
    if spec.source == "hard":
        return "hard"
    if spec.source == "noise":
        return f"noise{format_number(spec.true_class_mass)}"
    if spec.source == "learned":
        return "-".join(["learned"] + [format_transform(transform) for transform in spec.transforms])
    head = "expert" if spec.source == "expert" else f"ensemble{spec.ensemble_size}"
    parts = [head] + ([spec.expert_run] if spec.expert_run else []) + [f"e{spec.expert_epoch}"]
    if spec.temperature != 1.0:
        parts.append(f"t{format_number(spec.temperature)}")
    parts += [format_transform(transform) for transform in spec.transforms]
    return "-".join(parts)


# --------------------------------------------------------------------------------------------------
# Image sets


SYNTHESIS_METHODS = ("dm", "mtt", "bptt", "sre2l")  # methods that optimise pixels rather than pick real images
LABELLING_METHODS = ("bptt", "sre2l")  # methods whose images.pt also holds their own labels (`learned`)
LOSS_BIN = "lossbin"
IMAGE_SELECTION_BINS = 10  # loss bins: deciles of each class's expert loss, lossbin0 (easiest) .. lossbin9
EXTERNAL = "external"
# `labelworth evaluate --regimes`: the label regimes besides hard labels (always evaluated) and an
# external set's own labels (whenever it ships some): fixed soft labels, and online teacher labels.
EVALUATION_REGIMES = ("soft", "online")
EXTERNAL_PREFIX = f"{EXTERNAL}-"
EXTERNAL_NAME_PATTERN = r"[a-z0-9_]+"  # an external_image_sets key: no '-', so `-ipc` ends it unambiguously


@dataclass(frozen=True)
class ImageSetSpec:
    """Which images students see, as one path component: `{method}-ipc{ipc}[-without{c}]`.

    `kind` is `random` (random real images), `lossbin` (real images from loss bin `loss_bin` of ten
    expert-loss quantile bins of each class, 0 = easiest, written `lossbin{b}`), a synthesis method
    (`dm` distribution matching, `mtt` trajectory matching, `bptt` truncated backpropagation through
    training with learned labels, `sre2l` recovered from a batch-norm teacher and relabelled by it),
    or `external` (the set `external_image_sets.<external_name>`, written `external-{name}`).
    `-without{c}` drops class c's images from the set (the zero-shot experiment's "treat image" arm).
    """

    kind: str
    images_per_class: int
    without_class: int | None = None
    loss_bin: int | None = None  # lossbin only
    external_name: str | None = None  # external only

    @property
    def method(self) -> str:
        """The set's method as its name writes it: `random`, `lossbin3`, `mtt`, `external-mine`."""
        if self.kind == LOSS_BIN:
            return f"{LOSS_BIN}{self.loss_bin}"
        if self.kind == EXTERNAL:
            return f"{EXTERNAL_PREFIX}{self.external_name}"
        return self.kind

    @property
    def is_real(self) -> bool:
        """Whether the set holds real training images (picked, not synthesised or brought)."""
        return self.kind in ("random", LOSS_BIN)

    @property
    def base(self) -> "ImageSetSpec":
        """The full set a `-without{c}` subset is cut from."""
        return dataclasses.replace(self, without_class=None)


IMAGE_METHOD_PATTERN = rf"random|{LOSS_BIN}\d|{'|'.join(SYNTHESIS_METHODS)}|{EXTERNAL_PREFIX}{EXTERNAL_NAME_PATTERN}"
_IMAGE_SET = re.compile(
    rf"(?:(?P<kind>random|{'|'.join(SYNTHESIS_METHODS)})|{LOSS_BIN}(?P<bin>\d)|{EXTERNAL_PREFIX}(?P<name>{EXTERNAL_NAME_PATTERN}))"
    rf"-ipc(?P<ipc>[1-9]\d*)(?:-without(?P<without>\d+))?"
)


def parse_image_set(text: str) -> ImageSetSpec:
    match = _IMAGE_SET.fullmatch(text)
    if not match:
        raise LabelworthError(
            f"image set {text!r} does not parse; expected "
            f"'<random|lossbin<b>|{'|'.join(SYNTHESIS_METHODS)}|external-<name>>-ipc<n>[-without<class>]'"
        )
    kind = match["kind"] or (LOSS_BIN if match["bin"] is not None else EXTERNAL)
    spec = ImageSetSpec(kind, int(match["ipc"]), int(match["without"]) if match["without"] is not None else None,
                        int(match["bin"]) if match["bin"] is not None else None, match["name"])
    if format_image_set(spec) != text:
        raise LabelworthError(f"image set {text!r} is not canonical; write {format_image_set(spec)!r}")
    return spec


def format_image_set(spec: ImageSetSpec) -> str:
    text = f"{spec.method}-ipc{spec.images_per_class}"
    return text if spec.without_class is None else f"{text}-without{spec.without_class}"


def parse_image_method(method: str) -> ImageSetSpec:
    """The kind, loss bin and external name of an image set's method token (`lossbin3`,
    `external-mine`), as an IPC-1 set of it."""
    return parse_image_set(f"{method}-ipc1")


def random_set(images_per_class: int, without_class: int | None = None) -> str:
    return format_image_set(ImageSetSpec("random", images_per_class, without_class))


def loss_bin_set(loss_bin: int, images_per_class: int) -> str:
    return format_image_set(ImageSetSpec(LOSS_BIN, images_per_class, loss_bin=loss_bin))


def external_set(name: str, images_per_class: int) -> str:
    return format_image_set(ImageSetSpec(EXTERNAL, images_per_class, external_name=name))


def external_method(name: str) -> str:
    """The method token of an external set, `external-{name}` (the `method` column of tables)."""
    return ImageSetSpec(EXTERNAL, 1, external_name=name).method


def method_set(method: str, images_per_class: int) -> str:
    """A benchmark method's set: random images or a synthesis method's."""
    return format_image_set(ImageSetSpec(method, images_per_class))


# --------------------------------------------------------------------------------------------------
# Results folders and files named by what they hold: an expert's seed folder and epoch checkpoints


def format_seed_folder(seed: int) -> str:
    return f"seed{seed}"


def format_expert(run: str, seed: int) -> str:
    """The `{expert}` wildcard: `{run}/seed{seed}`, one trained expert."""
    return f"{run}/{format_seed_folder(seed)}"


_SEED_FOLDER = re.compile(r"seed(?P<seed>\d+)")
_EXPERT = re.compile(r"(?P<run>.+)/seed(?P<seed>\d+)")


def is_seed_folder(name: str) -> bool:
    """Whether a folder name is an expert's seed folder, seed{n}."""
    return _SEED_FOLDER.fullmatch(name) is not None


def parse_expert(text: str) -> tuple[str, int]:
    """(run, seed) of an `{expert}` wildcard."""
    match = _EXPERT.fullmatch(text)
    if not match:
        raise LabelworthError(f"expert {text!r} does not parse; expected '<arch>-lr<lr>/seed<n>'")
    return match["run"], int(match["seed"])


def checkpoint_name(epoch: int) -> str:
    """An expert's weights after `epoch` epochs (0: its initialisation): epoch_XXX.pt."""
    return f"epoch_{epoch:03d}.pt"


# --------------------------------------------------------------------------------------------------
# Wildcard patterns: the grammars above as the regular expressions the Snakemake rules constrain
# their wildcards with (loose where the parser is strict: a wildcard only has to pick the rule).

IMAGE_SET_PATTERN = rf"(?:{IMAGE_METHOD_PATTERN})-ipc\d+(?:-without\d+)?"
SYNTHETIC_SET_PATTERN = rf"(?:{'|'.join(SYNTHESIS_METHODS)})-ipc\d+"
REAL_SET_PATTERN = rf"(?:random|{LOSS_BIN}\d)-ipc\d+"
EXTERNAL_SET_PATTERN = rf"{EXTERNAL_PREFIX}{EXTERNAL_NAME_PATTERN}-ipc\d+"
LABEL_SPEC_PATTERN = (rf"hard|noise[0-9.e+-]+|(?:learned|(?:expert|ensemble\d+)(?:-{EXPERT_RUN_PATTERN})?-e\d+)"
                      r"(?:-[a-z0-9.+]+)*")
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"  # a student protocol or expert run name of the config


# --------------------------------------------------------------------------------------------------
# Results folders: results/{run}, one per config


RESULTS_RUN_PATTERN = r"[a-z0-9][a-z0-9_.-]*"  # a config's `run:`, the folder of its results, logs and work
DERIVED_RUN_PREFIX = "config-"  # the runs of configs that name none; no `run:` may take it


def derived_run_name(raw: dict) -> str:
    """The results folder of a config that names no `run:`: `config-` and a digest of the config as read,
    so two configs that differ in any value never share a folder, and one config always finds its own."""
    import hashlib
    import json

    def canonical(value):  # mappings in key order, keys as text (YAML keys may be numbers)
        if isinstance(value, dict):
            return sorted((str(key), canonical(item)) for key, item in value.items())
        return [canonical(item) for item in value] if isinstance(value, (list, tuple)) else value

    text = json.dumps(canonical(raw), default=str)
    return DERIVED_RUN_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:10]
