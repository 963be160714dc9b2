"""Every stage's settings: one frozen dataclass per stage, its defaults and its checks in one place.

Plain Python (no torch): Snakemake builds these at parse time, so a bad value stops the workflow
before any job runs, with the same message the CLI gives for the same value. A settings object
travels whole: the config builds it (`build_settings`), a rule writes it as `--options key=value ...`
(`to_options`), the CLI reads it back (`from_options`) and hands it to the stage, and the stage
records `dataclasses.asdict(settings)` as its provenance. So a new hyperparameter is a field here
(default and check), a schema entry, a config comment and its use: nothing in between.

Field names are the config keys. Each class checks its own values in `__post_init__`; the checks
every field shares (a whole number is an int, not 4.0; a flag is a bool) come from the annotation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from labelworth.errors import LabelworthError
from labelworth.specs import parse_arch

PER_IPC = "by_images_per_class"  # a list of {images_per_class: n, <key>: value, ...} overrides


# --------------------------------------------------------------------------------------------------
# What every settings class shares


def _type_name(annotation) -> str:
    return annotation if isinstance(annotation, str) else annotation.__name__


def _check_field_types(settings) -> None:
    """Raise a LabelworthError naming the field whose value has the wrong type for its annotation.
    A whole number given for a float field is stored as a float, so equal settings print alike."""
    for field in dataclasses.fields(settings):
        value, kind = getattr(settings, field.name), _type_name(field.type)
        if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(settings, field.name, float(value))
            continue
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise LabelworthError(f"{field.name}: {value!r} is not a whole number (write {field.name}: 4, not 4.0)")
        if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise LabelworthError(f"{field.name}: {value!r} is not a number")
        if kind == "bool" and not isinstance(value, bool):
            raise LabelworthError(f"{field.name}: {value!r} is not true or false")
        if kind == "str" and not isinstance(value, str):
            raise LabelworthError(f"{field.name}: {value!r} is not text")
        if kind.startswith("tuple") and not (isinstance(value, tuple) and all(
                isinstance(item, int) and not isinstance(item, bool) for item in value)):
            raise LabelworthError(f"{field.name}: {value!r} is not a list of whole numbers")


def _at_least(settings, minimum, *names: str) -> None:
    for name in names:
        if getattr(settings, name) < minimum:
            raise LabelworthError(f"{name}: {getattr(settings, name)!r} must be at least {minimum}")


def _positive(settings, *names: str) -> None:
    for name in names:
        if not getattr(settings, name) > 0:
            raise LabelworthError(f"{name}: {getattr(settings, name)!r} must be above 0")


def _one_of(settings, name: str, allowed: tuple[str, ...]) -> None:
    if getattr(settings, name) not in allowed:
        raise LabelworthError(f"{name}: {getattr(settings, name)!r} is not one of {', '.join(allowed)}")


def _check_arch(settings, name: str = "arch") -> None:
    try:
        parse_arch(getattr(settings, name))
    except LabelworthError as error:  # it names the architecture and the grammar
        raise LabelworthError(f"{name}: {error}") from None


def _check_seeds(seeds: tuple[int, ...]) -> None:
    if not seeds:
        raise LabelworthError("seeds: give at least one seed")
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise LabelworthError(f"seeds: {list(seeds)} must be distinct whole numbers of at least 0 "
                              "(two equal seeds train the same student twice)")


class Checked:
    """The checks every settings class runs when it is built: each field's type, an `arch` that
    parses, `seeds` that are distinct, and the ranges and choices the class declares below as data;
    then `check()`, for what lies between fields. Every failure is one LabelworthError naming the key."""

    positive: ClassVar[tuple[str, ...]] = ()  # fields that must be above 0
    at_least_one: ClassVar[tuple[str, ...]] = ()
    non_negative: ClassVar[tuple[str, ...]] = ()
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __post_init__(self):
        _check_field_types(self)
        names = settings_keys(type(self))
        if "arch" in names:
            _check_arch(self)
        if "seeds" in names:
            _check_seeds(self.seeds)
        for name, allowed in self.choices.items():
            _one_of(self, name, allowed)
        _positive(self, *self.positive)
        _at_least(self, 1, *self.at_least_one)
        _at_least(self, 0, *self.non_negative)
        self.check()

    def check(self) -> None:
        """Checks between fields (none by default)."""


# --------------------------------------------------------------------------------------------------
# Experts and students


@dataclass(frozen=True)
class ExpertSettings(Checked):
    """One expert run (METHOD.md 5): `seeds` experts trained from scratch on the full training set
    with hard labels, checkpointed every epoch. The first seed trains `epochs` epochs, the others
    as far as the labels and replay buffers that use them need. `processes` > 1 trains one expert
    data-parallel over that many GPUs (datasets read from image files: imagenet)."""

    arch: str = "convnet-d3"
    lr: float = 0.01
    epochs: int = 50
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 256
    processes: int = 1

    positive = ("lr",)
    at_least_one = ("epochs", "batch_size", "processes")

    def check(self) -> None:
        if self.batch_size % self.processes:
            raise LabelworthError(f"batch_size: {self.batch_size} does not split over {self.processes} processes")

    @property
    def seed(self) -> int:
        """The one seed an expert job trains (a job's settings list exactly one)."""
        if len(self.seeds) != 1:
            raise LabelworthError(f"seeds: an expert job trains one seed, not {list(self.seeds)}")
        return self.seeds[0]

    def run_identity(self, dataset: str) -> dict:
        """What makes two expert jobs' epochs interchangeable: the dataset, the seed and the training
        settings, but not how long they train or how many processes share the work."""
        kept = {key: value for key, value in dataclasses.asdict(self).items()
                if key not in ("epochs", "seeds", "processes")}
        return {"dataset": dataset, **kept, "seed": self.seed}


STUDENT_OPTIMIZERS = ("sgd", "adamw")
STUDENT_ENGINES = ("sequential", "vectorised")
STUDENT_LABELS = ("fixed", "online")
STUDENT_LOSSES = ("soft_ce", "kl")
STUDENT_AUGMENTATIONS = ("dsa", "cutmix", "none")


@dataclass(frozen=True)
class StudentSettings(Checked):
    """One student protocol (METHOD.md 7): a population of `arch` students, one per seed, trained on
    an image set's images and labels and tested every `eval_every` epochs and after the last.

    `engine`: sequential trains the seeds one after another; vectorised trains them in one torch.func
    pass (faster on GPUs; batch-norm networks always train sequentially). `compile` runs each student
    of the sequential engine through torch.compile. `channels_last` and `bf16` are GPU layouts and
    precision (the bf16 forward pass), off by default, which leaves CPU results unchanged.

    `labels`: fixed trains on each image's stored label; online has the expert a label spec names
    relabel every augmented batch in the same pass (DD-Ranking's "M", SRe2L's FKD relabel; other specs
    stay fixed). `loss`: soft_ce is cross-entropy with the targets; kl is T^2 KL(targets || softmax(
    student / T)), T the label spec's temperature, as knowledge distillation scales it. `augmentation`:
    dsa (the paper's), cutmix (random resized crop, flip, CutMix; labelworth/cutmix.py) or none."""

    arch: str = "convnet-d3"
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9  # SGD's; AdamW has none
    epochs: int = 300
    seeds: tuple[int, ...] = (0, 1, 2)
    batch_size: int = 256
    eval_every: int = 100
    engine: str = "sequential"
    compile: bool = False
    channels_last: bool = False
    bf16: bool = False
    labels: str = "fixed"
    loss: str = "soft_ce"
    augmentation: str = "dsa"

    positive = ("lr",)
    non_negative = ("momentum",)
    at_least_one = ("epochs", "batch_size", "eval_every")
    choices = {"optimizer": STUDENT_OPTIMIZERS, "engine": STUDENT_ENGINES, "labels": STUDENT_LABELS,
               "loss": STUDENT_LOSSES, "augmentation": STUDENT_AUGMENTATIONS}

    def check(self) -> None:
        if self.compile and self.engine == "vectorised":
            raise LabelworthError("compile is an option of the sequential engine; the vectorised engine batches "
                                  "the students with torch.func instead")
        if self.engine == "vectorised" and not self.uses_paper_batches:
            raise LabelworthError(f"labels {self.labels}, loss {self.loss}, augmentation {self.augmentation}: the "
                                  "vectorised engine trains fixed labels, soft_ce and dsa only; use engine: sequential")

    @property
    def uses_paper_batches(self) -> bool:
        """Whether every batch is the paper's: fixed labels, DSA, soft cross-entropy."""
        return (self.labels, self.loss, self.augmentation) == ("fixed", "soft_ce", "dsa")

# --------------------------------------------------------------------------------------------------
# The synthesis methods


@dataclass(frozen=True)
class DmSettings(Checked):
    """DM (METHOD.md 8.3): `arch` is the randomly initialised embedding network."""

    arch: str = "convnet-d3"
    iterations: int = 200
    lr_img: float = 1.0
    batch_real: int = 256
    save_every: int = 100

    positive = ("lr_img",)
    at_least_one = ("iterations", "batch_real", "save_every")

@dataclass(frozen=True)
class MttSettings(Checked):
    """MTT (METHOD.md 8.1); `tesla` computes the same meta-gradient with TESLA's memory (8.2)."""

    iterations: int = 100
    syn_steps: int = 20
    expert_epochs: int = 2
    max_start_epoch: int = 10
    lr_img: float = 1000.0
    lr_lr: float = 1e-5
    lr_teacher: float = 0.01
    batch_syn: int = 0  # 0: all synthetic images in every step
    tesla: bool = False
    save_every: int = 50

    positive = ("lr_img", "lr_teacher")
    non_negative = ("lr_lr", "batch_syn")
    at_least_one = ("iterations", "syn_steps", "expert_epochs", "max_start_epoch", "save_every")

@dataclass(frozen=True)
class BpttSettings(Checked):
    """Truncated backpropagation through training with learned labels (METHOD.md 8.5, RaT-BPTT).

    Each iteration trains a fresh `arch` network for n ~ U{min_window..total_window - window} inner
    Adam steps (lr `inner_lr`, `batch_per_class` synthetic images per class each) without a graph,
    then `window` differentiable steps; the loss is the cross-entropy of the result on `batch_real`
    real images. Adam (`lr`) moves the images and, with `learn_labels`, the labels (at lr /
    label_lr_scale), which are clipped to be non-negative after every step.

    The defaults are a CPU budget, not the reference's GPU runs (window 60, total_window 200, lr 1e-3
    over thousands of iterations from noise): real-image init, short unrolls, a larger lr, and two
    images per class per inner step so IPC 10 and 50 cost what IPC 2 does. On Fashion-MNIST with
    convnet-d3-w32 and one thread: 0.43 s/iteration at IPC 1, about 0.75 at IPC 10 and 50."""

    arch: str = "convnet-d3"
    iterations: int = 150
    window: int = 10
    total_window: int = 30
    min_window: int = 0
    inner_lr: float = 1e-2
    lr: float = 1e-2
    label_lr_scale: float = 1.0
    batch_real: int = 256
    batch_per_class: int = 2  # 0: all of a class's synthetic images in every inner step
    learn_labels: bool = True
    init: str = "real"  # "real" (random real images) or "noise" (N(0, 1), the reference's)
    save_every: int = 50

    positive = ("inner_lr", "lr", "label_lr_scale")
    non_negative = ("min_window", "batch_per_class")
    at_least_one = ("iterations", "window", "total_window", "batch_real", "save_every")
    choices = {"init": ("real", "noise")}

@dataclass(frozen=True)
class Sre2lSettings(Checked):
    """SRe2L's recover and relabel (METHOD.md 8.6) from a batch-norm teacher.

    Images start as N(0, 1) noise; Adam (lr, betas (0.5, 0.9), cosine decay) minimises
    CE(teacher(x), y) + r_bn * sum over BN layers of ||mu - running_mu||_2 + ||var - running_var||_2
    (the first layer's term times first_bn_multiplier), each step on a copy rolled by up to `jitter`
    pixels either way (and flipped where the dataset's augmentation flips). The teacher's
    softmax(logits / relabel_temperature) on the result is the set's `learned` label."""

    iterations: int = 1000
    lr: float = 0.25
    r_bn: float = 0.01
    first_bn_multiplier: float = 10.0
    jitter: int = 4
    relabel_temperature: float = 1.0
    save_every: int = 100

    positive = ("lr", "relabel_temperature")
    non_negative = ("r_bn", "first_bn_multiplier", "jitter")
    at_least_one = ("iterations", "save_every")

@dataclass(frozen=True)
class ExternalImageSetSettings(Checked):
    """An image set distilled elsewhere (config `external_image_sets.<name>`, labelworth/external.py):
    its file or folder, its format, an optional file of labels beside it (`pt` only: MTT's
    labels_best.pt), and whether its values are normalised (`auto`: decided from the values)."""

    path: str = ""
    format: str = "pt"
    labels: str = ""  # empty: none, or inside the pt file
    normalised: str = "auto"  # true | false | auto (the config may write true/false as YAML booleans)

    choices = {"format": ("pt", "imagefolder", "labelworth"), "normalised": ("auto", "true", "false")}

    def check(self) -> None:
        if not self.path:
            raise LabelworthError("path: give the set's file (pt, labelworth) or folder (imagefolder)")
        if self.labels and self.format != "pt":
            raise LabelworthError(f"labels: a separate labels file is read for format pt only, not {self.format}")
        if self.normalised != "auto" and self.format != "pt":
            raise LabelworthError(f"normalised: {self.format} sets are read as they are "
                                  "(imagefolder: pixels; labelworth: normalised); set it for pt only")


SETTINGS_BY_METHOD = {"dm": DmSettings, "mtt": MttSettings, "bptt": BpttSettings, "sre2l": Sre2lSettings}


def settings_record(settings) -> dict:
    """`dataclasses.asdict(settings)` as JSON holds it (lists for tuples): a stage's provenance."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(settings).items()}


def run_settings(settings) -> dict:
    """The settings that make two synthesis runs' iterations interchangeable: all but how long the
    run is and how often it saves, so a longer run resumes a shorter one."""
    return {key: value for key, value in dataclasses.asdict(settings).items()
            if key not in ("iterations", "save_every")}


# --------------------------------------------------------------------------------------------------
# Building settings: from a config block, and to and from `--options key=value ...`


def settings_keys(settings_class) -> list[str]:
    return [field.name for field in dataclasses.fields(settings_class)]


def block_values(block: dict, images_per_class: int | None, ignored: tuple[str, ...] = ()) -> dict:
    """A config block's values for one IPC: the block's keys, overridden by its `by_images_per_class`
    entry for `images_per_class` (None: the block's own), less the `ignored` keys."""
    values = {key: value for key, value in block.items() if key != PER_IPC and key not in ignored}
    for entry in block.get(PER_IPC, []):
        if entry.get("images_per_class") == images_per_class:
            values.update({key: value for key, value in entry.items() if key != "images_per_class"})
    return values


def build_settings(settings_class, values: dict, where: str, separator: str = "."):
    """`settings_class(**values)` with lists read as tuples; an unknown key or a bad value is one
    LabelworthError that starts with `where` (the config key path, or the CLI's option name joined
    by a space)."""
    known = settings_keys(settings_class)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise LabelworthError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
    try:
        return settings_class(**values)
    except LabelworthError as error:
        raise LabelworthError(f"{where}{separator}{error}") from None


def overridden_ipcs(block: dict) -> list[int | None]:
    """None (the block's own settings) and every IPC its `by_images_per_class` overrides."""
    return [None] + [entry["images_per_class"] for entry in block.get(PER_IPC, [])]


def _option_text(value) -> str:
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return repr(value) if isinstance(value, float) else str(value)


def to_options(settings) -> list[str]:
    """`key=value` strings that `from_options` reads back to an equal object (floats exactly)."""
    return [f"{key}={_option_text(value)}" for key, value in dataclasses.asdict(settings).items()]


def _option_value(kind: str, text: str, option: str):
    try:
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if kind.startswith("tuple"):
            return tuple(int(item) for item in text.split(",") if item)
        return {"int": int, "float": float, "str": str}[kind](text)
    except ValueError:
        raise LabelworthError(f"option {option!r}: {text!r} is not a {kind}") from None


def from_options(settings_class, options: list[str]):
    """A settings object from `key=value` strings (keys = the config keys), each value converted to
    its field's type; unknown keys and bad values are one-line LabelworthErrors naming the option."""
    kinds = {field.name: _type_name(field.type) for field in dataclasses.fields(settings_class)}
    values = {}
    for option in options:
        key, separator, text = option.partition("=")
        if not separator or key not in kinds:
            raise LabelworthError(f"option {option!r}: expected key=value with key one of {', '.join(kinds)}")
        values[key] = _option_value(kinds[key], text, option)
    return build_settings(settings_class, values, "--options", separator=" ")
