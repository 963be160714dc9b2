"""Every stage's settings and the config's blocks: frozen dataclasses whose fields are the config keys,
each default and each check written once, here or in the class that owns it.

Plain Python (no torch): Snakemake builds these at parse time, so a bad value stops the workflow
before any job runs, with the same message the CLI gives for the same value. A settings object
travels whole: the config model builds it (labelworth/config.py), a rule writes it as
`--options key=value ...` (`to_options`), the CLI reads it back (`from_options`) and hands it to the
stage, and the stage records `dataclasses.asdict(settings)` as its provenance. So a new
hyperparameter is a field here (default and check), its use, its config comment and its test: the
JSON schema and the config reference are generated from these classes (labelworth/schema.py).

A field's annotation is its type: `int`, `float`, `bool`, `str`, `tuple[X, ...]` (a YAML list),
`dict[str, X]` (a mapping of names), `X | Y`, `Literal[...]`, another settings class (a nested block)
or `ByIpc[X]` (a block with its `by_images_per_class` overrides). What a type cannot say, a class
declares as data (`positive`, `at_least_one`, `non_negative`, `at_most`, `below`, `choices`,
`patterns`, `required`), and `check()` holds what lies between fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Generic, Literal, TypeVar

from labelworth.errors import LabelworthError
from labelworth.specs import parse_arch

PER_IPC = "by_images_per_class"  # a list of {images_per_class: n, <key>: value, ...} overrides
AUTO = "auto"  # an expert epoch chosen by the expert-epoch sweep for that IPC
Auto = Literal["auto"]


def close_match(word, choices) -> str:
    """' (did you mean `x`?)' for a misspelt name, '' when nothing is close."""
    matches = difflib.get_close_matches(str(word), [str(choice) for choice in choices], n=1)
    return f" (did you mean `{matches[0]}`?)" if matches else ""


# --------------------------------------------------------------------------------------------------
# Types: what a field's annotation allows, and values read as it says


@functools.cache
def field_types(settings_class) -> dict[str, object]:
    """Field name -> resolved annotation (the module's names, `Literal`, unions and generics)."""
    hints = typing.get_type_hints(settings_class)
    return {field.name: hints[field.name] for field in dataclasses.fields(settings_class)}


def settings_keys(settings_class) -> list[str]:
    return [field.name for field in dataclasses.fields(settings_class)]


def is_union(hint) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def is_block(hint) -> bool:
    """Whether values of `hint` are built from a YAML mapping (a settings class or ByIpc)."""
    return dataclasses.is_dataclass(hint) or typing.get_origin(hint) is ByIpc


def is_structured(hint) -> bool:
    """Blocks, mappings of them and lists of them: built by `typed` with their whole key path."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if is_union(hint):
        return any(is_structured(arg) for arg in args)
    if origin is dict:
        return True
    if origin is tuple:
        return is_block(args[0])
    return is_block(hint)


def describe(hint) -> str:
    """A type in words, for messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if is_union(hint):
        return " or ".join(describe(arg) for arg in args if arg is not type(None))
    if origin is Literal:
        return " or ".join(str(arg) for arg in args)
    if origin is tuple:
        plurals = {int: "whole numbers", float: "numbers", str: "texts", bool: "trues or falses"}
        if args[0] in plurals:
            return f"a list of {plurals[args[0]]}"
        return f"a list, each {describe(args[0])}" if not is_block(args[0]) else "a list of mappings"
    if origin is dict:
        return "a mapping of names"
    if is_block(hint):
        return "a mapping of keys"
    return {int: "a whole number", float: "a number", bool: "true or false", str: "text"}[hint]


def _index_path(where: str, index: int) -> str:
    return f"{where}.{index}"


def typed(value, hint, where: str):
    """`value` read as `hint`: a whole number for a float field becomes a float (so equal settings
    print alike), a list a tuple, a mapping of a block that block (built by `from_raw`); a value the
    type does not allow is one LabelworthError starting with `where`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if value is None and not (is_union(hint) and type(None) in args):
        raise LabelworthError(f"{where}: no value given; expected {describe(hint)}")
    if is_union(hint):
        if value is None:
            return None
        alternatives = [arg for arg in args if arg is not type(None)]
        # The one alternative of a mapping's or a list's shape says what is wrong inside it; of two
        # blocks, the one the mapping's keys fit best (an expert run you train or one you bring).
        shaped = [arg for arg in alternatives if _shape(arg) == _shape(value)]
        if isinstance(value, dict) and len(shaped) > 1 and all(dataclasses.is_dataclass(arg) for arg in shaped):
            shaped = [min(shaped, key=lambda arg: len(set(value) - set(settings_keys(arg))))]
        if len(shaped) == 1 and _shape(value) != "scalar":
            return typed(value, shaped[0], where)
        for alternative in shaped or alternatives:
            try:
                return typed(value, alternative, where)
            except LabelworthError:
                continue
        raise LabelworthError(f"{where}: {value!r} is not {describe(hint)}")
    if origin is Literal:
        if value not in args:
            raise LabelworthError(f"{where}: {value!r} is not {describe(hint)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise LabelworthError(f"{where}: {value!r} is not {describe(hint)}")
        return tuple(typed(item, args[0], _index_path(where, index)) for index, item in enumerate(value))
    if origin is dict:
        if value is None:
            value = {}  # `external_image_sets:` with nothing under it
        if not isinstance(value, dict):
            raise LabelworthError(f"{where}: {value!r} is not a mapping of names")
        for key in value:
            if not isinstance(key, str):
                raise LabelworthError(f"{where}: the name {key!r} is not text (quote it)")
        return {key: typed(item, args[1], key_path(where, key)) for key, item in value.items()}
    if origin is ByIpc:
        return value if isinstance(value, ByIpc) else ByIpc.from_raw(args[0], value, where)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_raw(hint, value, where)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LabelworthError(f"{where}: {value!r} is not a number")
        return float(value)
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            raise LabelworthError(f"{where}: {value!r} is not a whole number (write it without a decimal point)")
        if isinstance(value, bool) or not isinstance(value, int):
            raise LabelworthError(f"{where}: {value!r} is not a whole number")
        return value
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            # Snakemake's --config reads only True and False as booleans; `zca=false` arrives as text.
            raise LabelworthError(f"{where}: {value!r} is text, not true or false (with --config, write "
                                  f"{where}={value.capitalize()})")
        if not isinstance(value, bool):
            raise LabelworthError(f"{where}: {value!r} is not true or false")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise LabelworthError(f"{where}: {value!r} is not text")
        return value
    raise TypeError(f"{where}: annotation {hint!r} is not one the settings read")  # a programming error


def _shape(hint_or_value) -> str:
    """mapping, list or scalar: the YAML shape of a type or of a value."""
    thing = hint_or_value
    if isinstance(thing, dict) or typing.get_origin(thing) is dict or is_block(thing):
        return "mapping"
    if isinstance(thing, (list, tuple)) or typing.get_origin(thing) is tuple:
        return "list"
    return "scalar"


def numbers_in(value) -> list:
    """The numbers a field holds: itself, or the items of a list (`auto` and text left out)."""
    items = value if isinstance(value, tuple) else (value,)
    return [item for item in items if isinstance(item, (int, float)) and not isinstance(item, bool)]


# --------------------------------------------------------------------------------------------------
# What every settings class shares


def _check_arch(settings, name: str = "arch") -> None:
    try:
        parse_arch(getattr(settings, name))
    except LabelworthError as error:  # it names the architecture and the grammar
        raise LabelworthError(f"{name}: {error}") from None


class Checked:
    """The checks every settings class runs when it is built: each field's type, an `arch` that
    parses, lists without repeats, and the ranges, choices and patterns the class declares below as
    data; then `check()`, for what lies between fields. Every failure is one LabelworthError naming
    the key. A list or mapping field may not be empty unless its default is."""

    positive: ClassVar[tuple[str, ...]] = ()  # fields (or their items) that must be above 0
    at_least_one: ClassVar[tuple[str, ...]] = ()
    non_negative: ClassVar[tuple[str, ...]] = ()
    at_most: ClassVar[dict[str, float]] = {}
    below: ClassVar[dict[str, float]] = {}  # an exclusive maximum
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}  # the field's value, or each item of it
    patterns: ClassVar[dict[str, str]] = {}  # a text field's value, or each name of a mapping field
    required: ClassVar[tuple[str, ...]] = ()  # keys a config must give although the CLI has a default
    yaml_booleans: ClassVar[tuple[str, ...]] = ()  # text fields whose "true"/"false" YAML may write bare
    flattened: ClassVar[str | None] = None  # a block field whose keys stand beside this class's own
    may_repeat: ClassVar[tuple[str, ...]] = ()  # list fields whose entries may repeat (one per IPC)

    def __post_init__(self):
        for name, hint in field_types(type(self)).items():
            value = getattr(self, name)
            if name in self.yaml_booleans and isinstance(value, bool):
                value = str(value).lower()
            if not is_structured(hint):
                object.__setattr__(self, name, typed(value, hint, name))
        for name in settings_keys(type(self)):
            self._check_field(name, getattr(self, name))
        self.check()

    def _check_field(self, name: str, value) -> None:
        if name == "arch" and isinstance(value, str):
            _check_arch(self, name)
        if isinstance(value, (tuple, dict)):
            if not value and not may_be_empty(type(self), name):
                raise LabelworthError(f"{name}: give at least one entry")
            if isinstance(value, tuple) and name not in self.may_repeat and len(set(value)) != len(value):
                raise LabelworthError(f"{name}: {list(value)} must be distinct (an entry is repeated)")
        for number in numbers_in(value):
            if name in self.positive and not number > 0:
                raise LabelworthError(f"{name}: {number!r} must be above 0")
            if name in self.at_least_one and number < 1:
                raise LabelworthError(f"{name}: {number!r} must be at least 1")
            if name in self.non_negative and number < 0:
                raise LabelworthError(f"{name}: {number!r} must be at least 0")
            if name in self.at_most and number > self.at_most[name]:
                raise LabelworthError(f"{name}: {number!r} must be at most {self.at_most[name]}")
            if name in self.below and not number < self.below[name]:
                raise LabelworthError(f"{name}: {number!r} must be below {self.below[name]}")
        if name in self.choices:
            for item in value if isinstance(value, tuple) else (value,):
                if item not in self.choices[name]:
                    raise LabelworthError(f"{name}: {item!r} is not one of {', '.join(self.choices[name])}")
        if name in self.patterns:
            for text in value if isinstance(value, dict) else (value,):
                if not isinstance(text, str) or not re.fullmatch(self.patterns[name], text):
                    raise LabelworthError(f"{name}: {text!r} does not match {self.patterns[name]}")

    def check(self) -> None:
        """Checks between fields (none by default)."""


def may_be_empty(settings_class, name: str) -> bool:
    """Whether a list or mapping field may be empty: only where its default is (an empty list means
    none, never "the default")."""
    field = next(field for field in dataclasses.fields(settings_class) if field.name == name)
    return field.default == () or field.default_factory in (dict, tuple)


def required_keys(settings_class) -> list[str]:
    """The keys a config block of this class must give: fields without a default, and `required`."""
    return [field.name for field in dataclasses.fields(settings_class)
            if field.name in settings_class.required
            or (field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING)]


def from_raw(settings_class, raw, where: str, beside: tuple[str, ...] = ()):
    """A settings class built from a config mapping at key path `where`: unknown keys (with a close
    match), missing keys, and every value read as its field's type; each problem one line that starts
    with its key path, all of a block's problems together. `beside`: keys the block holds beside the
    class's own (by_images_per_class), named among the allowed ones."""
    if not isinstance(raw, dict):
        raise LabelworthError(f"{where or '(top level)'}: {raw!r} is not a mapping of keys "
                              f"({', '.join(settings_keys(settings_class))})")
    raw_keys = list(raw)
    own = settings_keys(settings_class)
    allowed = own + list(beside)
    flattened = settings_class.flattened
    if flattened:  # the keys that are not this class's own belong to the flattened block
        own = [key for key in own if key != flattened]
        allowed = own + settings_keys(typing.get_args(field_types(settings_class)[flattened])[0]) + [PER_IPC]
        raw = {**{key: value for key, value in raw.items() if key in own},
               flattened: {key: value for key, value in raw.items() if key in allowed and key not in own}}
        unknown = [key for key in raw_keys if key not in allowed]
    else:
        unknown = [key for key in raw if key not in allowed]
    problems = [f"{where or '(top level)'}: unknown key `{key}`{close_match(key, allowed)}; allowed: {', '.join(allowed)}"
                for key in unknown]
    # a key missing beside a close misspelling of it is said once, by the unknown key's line
    missing = [key for key in required_keys(settings_class)
               if key not in raw and not any(close_match(key, [other]) for other in unknown)]
    problems += [f"{where or '(top level)'}: missing `{key}`" for key in missing]
    values = {}
    hints = field_types(settings_class)
    for key, value in raw.items():
        if key in hints and is_structured(hints[key]):
            try:
                # a flattened block's keys stand in this one's, so its problems are named here
                values[key] = typed(value, hints[key], where if key == flattened else key_path(where, key))
            except LabelworthError as error:
                problems += str(error).splitlines()
        elif key in hints:
            values[key] = value
    if problems:
        raise LabelworthError("\n".join(dict.fromkeys(problems)))
    try:
        return settings_class(**values)
    except LabelworthError as error:
        raise LabelworthError(key_path(where, str(error))) from None


def key_path(where: str, key: str) -> str:
    """`where.key`, or `key` at the top level."""
    return f"{where}.{key}" if where else key


S = TypeVar("S")


@dataclass(frozen=True)
class ByIpc(Generic[S]):
    """A settings block and its `by_images_per_class` overrides, each resolved to whole settings: the
    paper tunes the student lr and MTT per IPC (docs/method.md §7, §8.1, §10.3)."""

    base: S
    overrides: tuple[tuple[int, S], ...] = ()

    def at(self, images_per_class: int | None) -> S:
        """The settings for `images_per_class`: its override, or the block's own."""
        return dict(self.overrides).get(images_per_class, self.base)

    def every(self) -> list[S]:
        """The block's own settings and every override's."""
        return [self.base] + [settings for _, settings in self.overrides]

    @staticmethod
    def from_raw(settings_class, raw, where: str) -> "ByIpc":
        if not isinstance(raw, dict):
            raise LabelworthError(f"{where}: {raw!r} is not a mapping of keys ({', '.join(settings_keys(settings_class))})")
        own = {key: value for key, value in raw.items() if key != PER_IPC}
        base = from_raw(settings_class, own, where, beside=(PER_IPC,))
        entries = raw.get(PER_IPC) or []
        if not isinstance(entries, list):
            raise LabelworthError(f"{where}.{PER_IPC}: {entries!r} is not a list of mappings")
        overrides = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or "images_per_class" not in entry:
                raise LabelworthError(f"{where}.{PER_IPC}.{index}: give images_per_class and the keys it overrides")
            ipc = typed(entry["images_per_class"], int, f"{where}.{PER_IPC}.{index}.images_per_class")
            if ipc < 1 or ipc in overrides:
                raise LabelworthError(f"{where}.{PER_IPC}.{index}.images_per_class: {ipc} must be at least 1 and "
                                      "appear once")
            values = {**own, **{key: value for key, value in entry.items() if key != "images_per_class"}}
            overrides[ipc] = from_raw(settings_class, values, f"{where} ({PER_IPC} {ipc})")
        return ByIpc(base, tuple(overrides.items()))


# --------------------------------------------------------------------------------------------------
# Experts and students


@dataclass(frozen=True)
class ExpertSettings(Checked):
    """One expert run (docs/method.md §5): `seeds` experts trained from scratch on the full training set
    with hard labels, checkpointed every epoch. The first seed trains `epochs` epochs, the others
    as far as the labels and replay buffers that use them need. `processes` > 1 trains one expert
    data-parallel over that many GPUs (datasets read from image files: imagenet)."""

    arch: str = "convnet-d3"
    lr: float = 0.01
    epochs: int = 50
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 256
    processes: int = 1
    weight_decay: float | None = None  # SGD's; none: the trainer's (ConvNet experts 0, ImageNet's torchvision 1e-4)
    # The per-epoch train accuracy and label entropy are measured on this many training images (a
    # fixed sample; none: all). A clean pass over all 60,000 each epoch was about a fifth of the
    # default experts' CPU (benchmarks/results/cost_table_after.md); on 10,000 the standard error
    # of an accuracy is at most 0.5 points. The weights, and so every label, are the same.
    train_metric_images: int | None = 10000

    positive = ("lr",)
    non_negative = ("seeds", "weight_decay")
    at_least_one = ("epochs", "batch_size", "processes", "train_metric_images")
    required = ("arch", "lr", "epochs", "seeds")

    def check(self) -> None:
        if self.batch_size % self.processes:
            raise LabelworthError(f"batch_size: {self.batch_size} does not split over {self.processes} processes")

    @property
    def seed(self) -> int:
        """The one seed an expert job trains (a job's settings list exactly one)."""
        if len(self.seeds) != 1:
            raise LabelworthError(f"seeds: an expert job trains one seed, not {list(self.seeds)}")
        return self.seeds[0]

    def computation(self) -> dict:
        """The settings that decide what an expert computes, epoch by epoch: all but how long it
        trains (`epochs`), which seeds a run lists, and how many processes share the work; a setting
        left to the trainer's recipe (None) is the trainer's, so it is left out too."""
        return {key: value for key, value in dataclasses.asdict(self).items()
                if key not in ("epochs", "seeds", "processes") and value is not None}

    def job_shape(self) -> dict:
        """What every name of one trained run must agree on: `computation` and `processes`."""
        return {**self.computation(), "processes": self.processes}

    def run_identity(self, dataset: str) -> dict:
        """What makes two expert jobs' epochs interchangeable: the dataset, the seed and `computation`."""
        return {"dataset": dataset, **self.computation(), "seed": self.seed}


@dataclass(frozen=True)
class BroughtExpertSettings(Checked):
    """An expert you bring instead of training one: a trained network's weights in a file, read into
    the workflow's `arch` for the dataset (labelworth/brought_experts.py). It is one expert at one
    epoch, `epochs`, which label specs and `expert_epoch` name it by; it labels like a trained expert
    at that epoch, fixed or online. A state_dict (alone or under `state_dict`/`model`) or a
    TorchScript file loads without running code; a whole pickled module runs code as it is
    unpickled, so it loads only with `trusted: true`."""

    arch: str
    checkpoint: str  # the file: a state_dict (or a dict holding one) or TorchScript; a pickled module needs trusted
    epochs: int  # the epoch it stands for: how long it was trained, the epoch label specs name it by
    trusted: bool = False  # load a whole pickled module (runs the file's code): only a file you trust

    non_negative = ("epochs",)

    def check(self) -> None:
        if not Path(self.checkpoint).is_file():
            raise LabelworthError(f"checkpoint: {self.checkpoint} not found (paths are relative to the folder "
                                  "snakemake runs in)")

    @property
    def seeds(self) -> tuple[int, ...]:
        """One expert: the run's seed folder is seed0."""
        return (0,)


STUDENT_OPTIMIZERS = ("sgd", "adamw")
STUDENT_ENGINES = ("sequential", "vectorised")
STUDENT_LABELS = ("fixed", "online")
STUDENT_LOSSES = ("soft_ce", "kl")
STUDENT_AUGMENTATIONS = ("dsa", "cutmix", "none")


@dataclass(frozen=True)
class StudentSettings(Checked):
    """One student protocol (docs/method.md §7): a population of `arch` students, one per seed, trained on
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
    nesterov: bool = False  # SGD's Nesterov momentum (needs a momentum above 0)
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
    non_negative = ("momentum", "seeds")
    below = {"momentum": 1.0}
    at_least_one = ("epochs", "batch_size", "eval_every")
    required = ("arch", "lr", "epochs", "seeds", "eval_every")
    choices = {"optimizer": STUDENT_OPTIMIZERS, "engine": STUDENT_ENGINES, "labels": STUDENT_LABELS,
               "loss": STUDENT_LOSSES, "augmentation": STUDENT_AUGMENTATIONS}

    def check(self) -> None:
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise LabelworthError(f"nesterov: Nesterov momentum is SGD's and needs a momentum above 0, not "
                                  f"optimizer {self.optimizer} with momentum {self.momentum}")
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
    """DM (docs/method.md §8.3): `arch` is the randomly initialised embedding network."""

    arch: str = "convnet-d3"
    iterations: int = 200
    lr_img: float = 1.0
    batch_real: int = 256
    save_every: int = 100

    positive = ("lr_img",)
    at_least_one = ("iterations", "batch_real", "save_every")


@dataclass(frozen=True)
class MttSettings(Checked):
    """MTT (docs/method.md §8.1); `tesla` computes the same meta-gradient with TESLA's memory (§8.2)."""

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
    """Truncated backpropagation through training with learned labels (docs/method.md §8.5, RaT-BPTT).

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
    """SRe2L's recover and relabel (docs/method.md §8.6) from a batch-norm teacher.

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
    labels_best.pt), whether its values are normalised (`auto`: decided from the values), which
    experiment's set a DC/DSA/DM `res_*.pt` file gives (they save one set per experiment), and
    whether the integrity gates run (labelworth/external.py)."""

    path: str = ""
    format: str = "pt"
    labels: str = ""  # empty: none, or inside the pt file
    normalised: str = "auto"  # true | false | auto (the config may write true/false as YAML booleans)
    experiment: int = 0  # DC/DSA/DM res_*.pt: the index in its 'data' list
    integrity_checks: bool = True  # refuse a set whose values or class order do not look like the dataset's

    choices = {"format": ("pt", "imagefolder", "labelworth"), "normalised": ("auto", "true", "false")}
    required = ("path", "format")
    yaml_booleans = ("normalised",)
    non_negative = ("experiment",)

    def check(self) -> None:
        if not self.path:
            raise LabelworthError("path: give the set's file (pt, labelworth) or folder (imagefolder)")
        if self.labels and self.format != "pt":
            raise LabelworthError(f"labels: a separate labels file is read for format pt only, not {self.format}")
        if self.normalised != "auto" and self.format != "pt":
            raise LabelworthError(f"normalised: {self.format} sets are read as they are "
                                  "(imagefolder: pixels; labelworth: normalised); set it for pt only")
        if self.experiment and self.format != "pt":
            raise LabelworthError(f"experiment: picks one set of a DC/DSA/DM res_*.pt file (format pt), not of a "
                                  f"{self.format} set")


@dataclass(frozen=True)
class LossRankingSettings(Checked):
    """How `lossbin{b}` sets rank real images by their expert's per-image loss: cross-entropy of the
    logits, or with `double_softmax` of the probabilities, as the reference computes it (docs/method.md §12.8)."""

    double_softmax: bool = False


# --------------------------------------------------------------------------------------------------
# Figures: what a figure draws beyond its input files


@dataclass(frozen=True)
class ExpertTrainingFigure(Checked):
    marked_epochs: tuple[int, ...] = ()  # the soft-label epochs marked on the experts' curves

    non_negative = ("marked_epochs",)


@dataclass(frozen=True)
class SoftLabelBarsFigure(Checked):
    image: int = 0  # the image's index in the IPC-1 random set (class-major: image c is of class c)

    non_negative = ("image",)


@dataclass(frozen=True)
class ClassSimilarityFigure(Checked):
    expert_epoch: int | None = None  # the expert's epoch, named in the title

    non_negative = ("expert_epoch",)


@dataclass(frozen=True)
class LabelRobustnessFigure(Checked):
    full_data_accuracy: float | None = None  # percent; None: the expert run's test accuracy at its last epoch

    positive = ("full_data_accuracy",)
    at_most = {"full_data_accuracy": 100.0}


FIGURE_SETTINGS = {"expert_training": ExpertTrainingFigure, "soft_label_bars": SoftLabelBarsFigure,
                   "class_similarity": ClassSimilarityFigure, "label_robustness": LabelRobustnessFigure}
# The settings of each image-set method that has any (`specs.ImageSetSpec.kind`).
SETTINGS_BY_METHOD = {"dm": DmSettings, "mtt": MttSettings, "bptt": BpttSettings, "sre2l": Sre2lSettings,
                      "lossbin": LossRankingSettings}


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
# Settings to and from `--options key=value ...`


def _option_text(value) -> str:
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return repr(value) if isinstance(value, float) else str(value)


def explicit_fields(settings) -> dict:
    """The keys a config must give, and the others where they differ from their defaults: what a
    settings object says, so that a setting added later, at its default, changes nothing written."""
    defaults = {field.name: field.default for field in dataclasses.fields(settings)}
    shown = set(required_keys(type(settings)))
    return {key: value for key, value in dataclasses.asdict(settings).items() if key in shown or value != defaults[key]}


def to_options(settings) -> list[str]:
    """`key=value` strings that `from_options` reads back to an equal object (floats exactly): its
    `explicit_fields`, so that a setting added later changes no job's options and reruns nothing."""
    return [f"{key}={_option_text(value)}" for key, value in explicit_fields(settings).items()]


def _option_value(hint, text: str):
    """The text of one option as the value its field's type reads (a failure raises ValueError)."""
    if is_union(hint):  # `X | None`, written as `None`
        return None if text == "None" else _option_value(typing.get_args(hint)[0], text)
    if typing.get_origin(hint) is tuple:
        return tuple(_option_value(typing.get_args(hint)[0], item) for item in text.split(",") if item)
    if hint is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(text)
        return text.lower() == "true"
    return {int: int, float: float, str: str}[hint](text)


def from_options(settings_class, options: list[str]):
    """A settings object from `key=value` strings (keys = the config keys), each value converted to
    its field's type; unknown keys and bad values are one-line LabelworthErrors naming the option."""
    hints = field_types(settings_class)
    values = {}
    for option in options:
        key, separator, text = option.partition("=")
        if not separator or key not in hints:
            raise LabelworthError(f"option {option!r}: expected key=value with key one of {', '.join(hints)}")
        try:
            values[key] = _option_value(hints[key], text)
        except (ValueError, KeyError):
            raise LabelworthError(f"option {option!r}: {text!r} is not {describe(hints[key])}") from None
    try:
        return settings_class(**values)
    except LabelworthError as error:
        raise LabelworthError(f"--options {error}") from None
