"""The workflow config, read once into one frozen model: `load_config(raw)` -> `Config`.

Plain Python (no torch): Snakemake builds the model at parse time, so a bad config stops the
workflow before any job runs. The model is a tree of settings classes (labelworth/settings.py) whose
fields are the config keys; each default and each check is written once, in the class that owns the
key, and the JSON schema is generated from the same classes (labelworth/schema.py). Every config
error is one line that starts with its key path.

Building the model also resolves what the config leaves implicit: a block without `expert_run` or
`student` gets the default run and protocol (`defaults:`, or the only one listed), per-IPC lists get
one entry per IPC, a method block gets the default run's architecture, and named expert runs are
merged into the trained runs they are (experts/{run}/seed{seed}). Nothing else reads the raw config.

* `experts: {name: ExpertSettings}` names expert runs. A trained run is named by what it is
  (`specs.format_expert_run`), so two names with the same settings share one trained expert: their
  seeds join (in order) and the longer epochs win; two names that differ in a setting that changes
  the result get different folders.
* `students: {name: StudentSettings}` names student protocols; the name is the file name of a
  population's result (`students/{image set}/{labels}/{name}.json`), so two protocols never collide.
* `external_image_sets: {name: ExternalImageSetSettings}` names sets distilled elsewhere; each is the
  image set `external-{name}-ipc{n}`, n counted from its files (labelworth/external.py).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from labelworth.errors import LabelworthError
from labelworth.io import file_sha256
from labelworth.settings import (
    AUTO, Auto, ByIpc, BpttSettings, BroughtExpertSettings, Checked, DmSettings, ExpertSettings, ExternalImageSetSettings, MttSettings,
    Sre2lSettings, StudentSettings, close_match, explicit_fields, from_raw,
)
from labelworth.specs import (
    DATASETS, DERIVED_RUN_PREFIX, EXTERNAL_NAME_PATTERN, IMAGE_SELECTION_BINS, NAME_PATTERN, RESULTS_RUN_PATTERN,
    SYNTHESIS_METHODS, LabelSpec, dataset_spec, derived_run_name, format_brought_run, format_expert_run, parse_arch,
    parse_transform_chain,
)

BENCHMARK_METHODS = ("random",) + SYNTHESIS_METHODS
EXTERNAL = "external"  # an online_students method: every external set
EpochOrAuto = int | Auto


# --------------------------------------------------------------------------------------------------
# Experiment blocks


@dataclass(frozen=True, kw_only=True)
class ExpertBlock(Checked):
    """What every experiment block shares: whether it runs, and the expert run whose labels it uses
    (a name of `experts:`; the model fills in the default run)."""

    enabled: bool = True
    expert_run: str | None = None

    non_negative = ("expert_epoch", "expert_epochs", "similarity_epoch", "image")

    @property
    def ipcs(self) -> tuple[int, ...]:
        """The block's images_per_class as a list (a block may give one)."""
        value = getattr(self, "images_per_class", ())
        return value if isinstance(value, tuple) else (value,)


@dataclass(frozen=True, kw_only=True)
class StudentBlock(ExpertBlock):
    """A block whose figure compares student populations of one protocol (the model fills in the
    default protocol)."""

    student: str | None = None

    @property
    def protocols(self) -> tuple[str, ...]:
        return (self.student,)


@dataclass(frozen=True, kw_only=True)
class SoftLabelSource(Checked):
    """One soft-label population per image set and IPC of the benchmark: the expert run's labels
    (one run, or one per IPC) at an epoch per IPC, at a temperature."""

    expert_epoch: tuple[EpochOrAuto, ...]
    expert_run: str | tuple[str, ...] | None = None
    temperature: float = 1.0

    positive = ("temperature",)
    non_negative = ("expert_epoch",)
    may_repeat = ("expert_epoch", "expert_run")


@dataclass(frozen=True, kw_only=True)
class OnlineStudents(Checked):
    """Online-label rows (the paper's Table 1 "CutMix SL"): protocol `student` (labels: online) on
    its methods' images (`external`: every external set) at its IPCs (default: all of the
    benchmark's), taught by every soft-label source's expert, or by its own (expert_run, one or one
    per IPC; expert_epoch, one or one per IPC; temperature)."""

    student: str
    methods: tuple[str, ...]
    expert_run: str | tuple[str, ...] | None = None
    expert_epoch: int | tuple[int, ...] | None = None
    temperature: float = 1.0
    images_per_class: tuple[int, ...] | None = None

    positive = ("temperature",)
    non_negative = ("expert_epoch",)
    at_least_one = ("images_per_class",)
    choices = {"methods": BENCHMARK_METHODS + (EXTERNAL,)}
    may_repeat = ("expert_epoch", "expert_run")

    def check(self) -> None:
        if self.expert_run is not None and self.expert_epoch is None:
            raise LabelworthError("expert_run names the teacher's run, so give its expert_epoch too (without both, "
                                  "each soft-label source's expert teaches)")


@dataclass(frozen=True, kw_only=True)
class Benchmark(ExpertBlock):
    """E1-E3 (paper Tables 1 and 2, Figure 1): each method's images at each IPC with hard labels,
    with the method's own labels (bptt, sre2l) and with each soft-label source's labels, evaluated
    by every protocol in `students` (default: the default protocol)."""

    methods: tuple[str, ...]
    images_per_class: tuple[int, ...]
    synthesis_images_per_class: tuple[int, ...] | None = None  # default: images_per_class
    students: tuple[str, ...] | None = None
    soft_labels: tuple[SoftLabelSource, ...] = ()
    online_students: tuple[OnlineStudents, ...] = ()
    full_data_accuracy: float | None = None  # percent; default: the expert run's last test accuracy

    at_least_one = ("images_per_class", "synthesis_images_per_class")
    positive = ("full_data_accuracy",)
    at_most = {"full_data_accuracy": 100.0}
    choices = {"methods": BENCHMARK_METHODS}

    @property
    def protocols(self) -> tuple[str, ...]:
        return self.students


@dataclass(frozen=True, kw_only=True)
class ExpertEpochSweep(StudentBlock):
    """E4: student accuracy against expert epoch, per IPC; its table gives `auto` its meaning."""

    images_per_class: tuple[int, ...]
    expert_epochs: tuple[int, ...]

    at_least_one = ("images_per_class",)


@dataclass(frozen=True, kw_only=True)
class TemperatureGrid(StudentBlock):
    """E7: can a smoothed (high-temperature) late expert replace an early one?"""

    images_per_class: int
    expert_epochs: tuple[int, ...]
    temperatures: tuple[float, ...]

    at_least_one = ("images_per_class",)
    positive = ("temperatures",)


@dataclass(frozen=True, kw_only=True)
class SoftLabelPictures(ExpertBlock):
    """E5 and E8: one image's soft label at several expert epochs (`image`: its index in the IPC-1
    random set); the expert's class-similarity matrix at `similarity_epoch`."""

    expert_epochs: tuple[int, ...]
    image: int
    similarity_epoch: int


@dataclass(frozen=True, kw_only=True)
class LabelSwap(StudentBlock):
    """E6: swap each soft label's k-th largest entry with its smallest, with shuffle and smoothing
    controls; `external_sets`: the external sets too, beside random images of their IPC."""

    images_per_class: tuple[int, ...]
    expert_epoch: EpochOrAuto
    ranks: tuple[int, ...]
    external_sets: bool = False

    at_least_one = ("images_per_class", "ranks")


@dataclass(frozen=True, kw_only=True)
class ZeroShot(StudentBlock):
    """E9: a class learned from other images' labels alone, for each subject class (`all`: every
    class of the dataset), at the block's epoch and temperature."""

    images_per_class: int
    expert_epoch: EpochOrAuto
    subject_classes: tuple[int, ...] | Literal["all"]
    temperature: float = 1.0

    at_least_one = ("images_per_class",)
    positive = ("temperature",)
    non_negative = ("expert_epoch", "subject_classes")


@dataclass(frozen=True, kw_only=True)
class ScalingLaw(StudentBlock):
    """E10: accuracy against IPC with only the top-k label entries kept; `external_sets`: each
    external set's worth in random images, by the fits."""

    images_per_class: tuple[int, ...]
    top_k: tuple[int, ...]
    expert_epoch: EpochOrAuto
    external_sets: bool = False

    at_least_one = ("images_per_class", "top_k")


@dataclass(frozen=True, kw_only=True)
class Pareto(StudentBlock):
    """E11: the IPC sweep for several expert epochs; the upper envelope is the Pareto frontier."""

    images_per_class: tuple[int, ...]
    expert_epochs: tuple[int, ...]

    at_least_one = ("images_per_class",)


@dataclass(frozen=True, kw_only=True)
class Ensembles(StudentBlock):
    """E12: one expert's labels vs the logit-averaged labels of `sizes` experts."""

    images_per_class: tuple[int, ...]
    sizes: tuple[int, ...]
    expert_epoch: EpochOrAuto

    at_least_one = ("images_per_class", "sizes")


@dataclass(frozen=True, kw_only=True)
class ImageSelection(StudentBlock):
    """E14: real images from loss bins of the expert's per-image loss (0 = easiest) vs random;
    `double_softmax` ranks by the reference's loss on probabilities (docs/method.md §12.8)."""

    images_per_class: int
    expert_epoch: int
    bins: tuple[int, ...]
    double_softmax: bool = False

    at_least_one = ("images_per_class",)
    non_negative = ("expert_epoch", "bins")
    at_most = {"bins": IMAGE_SELECTION_BINS - 1}


@dataclass(frozen=True, kw_only=True)
class GeneratedLabels(StudentBlock):
    """E16: the reproduction report's generated labels (true class p, the rest random) and the
    low-entropy boost (a fraction q of rows mixed with noise of weight alpha)."""

    images_per_class: tuple[int, ...]
    expert_epoch: EpochOrAuto
    true_class_mass: tuple[float, ...]
    boost_alpha: float
    boost_fraction: tuple[float, ...] = ()

    at_least_one = ("images_per_class",)
    positive = ("true_class_mass", "boost_fraction", "boost_alpha")
    at_most = {"true_class_mass": 1.0, "boost_fraction": 1.0, "boost_alpha": 1.0}


@dataclass(frozen=True, kw_only=True)
class LabelBudget(StudentBlock):
    """Label budgets: random images at each IPC with the expert's full soft labels and those labels
    stored smaller (`stored`: transform chains as in a label spec, such as fp16, int8 or top2-int8),
    and hard labels at `hard_images_per_class` (default: the same IPCs). The figure plots accuracy
    against label bytes; the table sets each soft population against hard labels on as many total
    bytes, interpolated between the hard-label IPCs."""

    images_per_class: tuple[int, ...]
    expert_epoch: EpochOrAuto
    stored: tuple[str, ...]
    hard_images_per_class: tuple[int, ...] = ()

    at_least_one = ("images_per_class", "hard_images_per_class")

    def check(self) -> None:
        for text in self.stored:
            try:
                parse_transform_chain(text)
            except LabelworthError as error:
                raise LabelworthError(f"stored: {text!r} is not a transform chain ({error})") from None

    @property
    def ipcs(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.images_per_class) | set(self.hard_images_per_class)))


# --------------------------------------------------------------------------------------------------
# The synthesis methods: each block's settings per IPC, beside the keys that choose its inputs (which
# experts), which are not settings of the synthesis itself: they change its input files instead.


@dataclass(frozen=True, kw_only=True)
class DmMethod(Checked):
    settings: ByIpc[DmSettings]

    flattened = "settings"


@dataclass(frozen=True, kw_only=True)
class MttMethod(Checked):
    """`expert_run`: the run whose experts the buffer replays (default: the default run);
    `num_experts`: its first seeds in the buffer (default: all)."""

    settings: ByIpc[MttSettings]
    expert_run: str | None = None
    num_experts: int | None = None

    at_least_one = ("num_experts",)
    flattened = "settings"


@dataclass(frozen=True, kw_only=True)
class BpttMethod(Checked):
    settings: ByIpc[BpttSettings]

    flattened = "settings"


@dataclass(frozen=True, kw_only=True)
class Sre2lMethod(Checked):
    """`teacher_run`: a run of a batch-norm architecture (default: the default run) at `teacher_epoch`
    (default: its epochs); `relabel_student`: a protocol (labels: online) that evaluates SRe2L's
    images under its own relabel, a benchmark row beside `learned`."""

    settings: ByIpc[Sre2lSettings]
    teacher_run: str | None = None
    teacher_epoch: int | None = None
    relabel_student: str | None = None

    at_least_one = ("teacher_epoch",)
    flattened = "settings"


@dataclass(frozen=True, kw_only=True)
class Methods(Checked):
    """The synthesis methods' settings (docs/method.md §8.1-8.6); a key left out takes the code's default."""

    dm: DmMethod | None = None
    mtt: MttMethod | None = None
    bptt: BpttMethod | None = None
    sre2l: Sre2lMethod | None = None


# --------------------------------------------------------------------------------------------------
# The whole config


@dataclass(frozen=True, kw_only=True)
class Defaults(Checked):
    """The expert run and student protocol of every block that names none; needed where `experts:` or
    `students:` lists more than one (a mapping's order does not survive every tool that rewrites YAML)."""

    expert_run: str | None = None
    student: str | None = None


# Experiments whose figures compare student populations, in the order `rule all` lists them, and the
# config block of each (the benchmark block draws the soft_vs_hard figure).
STUDENT_EXPERIMENTS = ("soft_vs_hard", "expert_epoch_sweep", "temperature_grid", "label_swap", "zero_shot",
                       "scaling_law", "pareto", "ensembles", "image_selection", "generated_labels", "label_budget")
EXPERIMENT_BLOCK = {name: name for name in STUDENT_EXPERIMENTS} | {"soft_vs_hard": "benchmark"}
SWEEP = "expert_epoch_sweep"  # the experiment whose table gives `auto` its meaning


@dataclass(frozen=True, kw_only=True)
class Config(Checked):
    """A labelworth workflow config. Build it with `load_config`."""

    dataset: str
    # A config that names no run gets `config-` and a digest of its contents (load_config), so two
    # configs never overwrite each other's files.
    run: str = ""  # the folder of this config's results, logs and work: results/{run}, logs/{run}, work/{run}
    data_root: str  # the raw files; auto = the dataset's default place
    device: str  # auto = CUDA when present, else CPU
    image_seed: int  # the seed of the random real-image choice (the reference's: 42)
    zca: bool = False  # ZCA-whiten the images (docs/method.md §2.2), as the paper does for CIFAR-10
    # test: `auto` picks the expert epoch by test accuracy, as the paper does; validation: by a seeded
    # per-class slice held out of the training set (and so out of everything that trains or draws images)
    selection: str = "test"
    validation_images_per_class: int = 500  # the held-out slice per class, with selection: validation
    experts: dict[str, ExpertSettings | BroughtExpertSettings]  # runs you train, or checkpoints you bring
    students: dict[str, ByIpc[StudentSettings]]
    defaults: Defaults = field(default_factory=Defaults)
    student_populations: str = "per_label_set"  # per_image_set: one job per image set of an experiment
    external_image_sets: dict[str, ExternalImageSetSettings] = field(default_factory=dict)
    methods: Methods = field(default_factory=Methods)
    benchmark: Benchmark
    expert_epoch_sweep: ExpertEpochSweep | None = None
    temperature_grid: TemperatureGrid | None = None
    soft_label_pictures: SoftLabelPictures | None = None
    label_swap: LabelSwap | None = None
    zero_shot: ZeroShot | None = None
    scaling_law: ScalingLaw | None = None
    pareto: Pareto | None = None
    ensembles: Ensembles | None = None
    image_selection: ImageSelection | None = None
    generated_labels: GeneratedLabels | None = None
    label_budget: LabelBudget | None = None

    non_negative = ("image_seed",)
    at_least_one = ("validation_images_per_class",)
    choices = {"dataset": tuple(DATASETS), "student_populations": ("per_label_set", "per_image_set"),
               "selection": ("test", "validation")}
    patterns = {"run": RESULTS_RUN_PATTERN, "device": r"auto|cpu|cuda(:[0-9]+)?", "experts": NAME_PATTERN,
                "students": NAME_PATTERN,
                "external_image_sets": EXTERNAL_NAME_PATTERN}

    def check(self) -> None:
        resolve = functools.partial(object.__setattr__, self)
        resolve("defaults", Defaults(expert_run=self._default("experts", "expert_run"),
                                     student=self._default("students", "student")))
        for name in ("benchmark",) + tuple(EXPERIMENT_BLOCK[experiment] for experiment in STUDENT_EXPERIMENTS[1:]) \
                + ("soft_label_pictures",):
            block = getattr(self, name)
            if block is not None:
                resolve(name, self._resolved_block(name, block))
        resolve("methods", self._resolved_methods())
        self.runs  # raises for two names of one run that disagree
        _check_config(self)

    # ---- resolution ----

    def _default(self, key: str, default_key: str) -> str:
        """The only name of `experts:` or `students:`, or the one `defaults.<key>` names: never the
        first listed, since a YAML mapping's order does not survive every tool that rewrites it."""
        names = list(getattr(self, key))
        chosen = getattr(self.defaults, default_key)
        if chosen is None and len(names) == 1:
            return names[0]
        if chosen is None:
            raise LabelworthError(f"defaults.{default_key}: {key} lists {len(names)} ({', '.join(names)}); name the "
                                  f"one that blocks without their own `{default_key}` use")
        if chosen not in names:
            raise LabelworthError(f"defaults.{default_key}: {chosen!r} is not in {key}:{close_match(chosen, names)}; "
                                  f"known: {', '.join(names)}")
        return chosen

    def _run_name(self, name: str | None, where: str) -> str:
        """A name of `experts:` (None: the default run)."""
        if name is None:
            return self.defaults.expert_run
        if name not in self.experts:
            raise LabelworthError(f"{where}: expert run {name!r} is not in experts:{close_match(name, self.experts)}; "
                                  f"known runs: {', '.join(self.experts)}")
        return name

    def _protocol_name(self, name: str | None, where: str) -> str:
        """A name of `students:` (None: the default protocol)."""
        if name is None:
            return self.defaults.student
        if name not in self.students:
            raise LabelworthError(f"{where}: student protocol {name!r} is not in students:"
                                  f"{close_match(name, self.students)}; known protocols: {', '.join(self.students)}")
        return name

    def _per_ipc(self, value, count: int, where: str, remedy: str) -> tuple:
        """A value given once or once per benchmark IPC, as one per IPC."""
        if not isinstance(value, tuple):
            return (value,) * count
        if len(value) != count:
            raise LabelworthError(f"{where} has {len(value)} entries but benchmark.images_per_class has {count}; "
                                  f"{remedy}")
        return value

    def _resolved_block(self, name: str, block):
        values = {"expert_run": self._run_name(block.expert_run, f"{name}.expert_run")}
        if isinstance(block, StudentBlock):
            values["student"] = self._protocol_name(block.student, f"{name}.student")
        if isinstance(block, Benchmark):
            values |= self._resolved_benchmark(block, values["expert_run"])
        return dataclasses.replace(block, **values)

    def _resolved_benchmark(self, block: Benchmark, run: str) -> dict:
        count = len(block.images_per_class)
        sources = []
        for index, source in enumerate(block.soft_labels):
            where = f"benchmark.soft_labels.{index}."
            epochs = self._per_ipc(source.expert_epoch, count, f"{where}expert_epoch", "give one per IPC")
            runs = self._per_ipc(source.expert_run if source.expert_run is not None else run, count,
                                 f"{where}expert_run", "give one per IPC")
            sources.append(dataclasses.replace(source, expert_epoch=epochs, expert_run=tuple(
                self._run_name(name, f"{where}expert_run") for name in runs)))
        online = []
        for index, entry in enumerate(block.online_students):
            where = f"benchmark.online_students.{index}."
            values = {"student": self._protocol_name(entry.student, f"{where}student"),
                      "images_per_class": entry.images_per_class or block.images_per_class}
            if entry.expert_epoch is not None:
                remedy = "give one, or one per IPC"
                values["expert_epoch"] = self._per_ipc(entry.expert_epoch, count, f"{where}expert_epoch", remedy)
                runs = self._per_ipc(entry.expert_run if entry.expert_run is not None else run, count,
                                     f"{where}expert_run", remedy)
                values["expert_run"] = tuple(self._run_name(name, f"{where}expert_run") for name in runs)
            online.append(dataclasses.replace(entry, **values))
        students = tuple(self._protocol_name(name, "benchmark.students")
                         for name in (block.students or (self.defaults.student,)))
        return {"soft_labels": tuple(sources), "online_students": tuple(online), "students": students,
                "synthesis_images_per_class": block.synthesis_images_per_class or block.images_per_class}

    def _resolved_methods(self) -> Methods:
        mtt, sre2l = self.methods.mtt, self.methods.sre2l
        mtt = dataclasses.replace(mtt, expert_run=self._run_name(mtt.expert_run, "methods.mtt.expert_run"))
        teacher = self._run_name(sre2l.teacher_run, "methods.sre2l.teacher_run")
        relabel = sre2l.relabel_student and self._protocol_name(sre2l.relabel_student, "methods.sre2l.relabel_student")
        sre2l = dataclasses.replace(sre2l, teacher_run=teacher, relabel_student=relabel,
                                    teacher_epoch=sre2l.teacher_epoch or self.experts[teacher].epochs)
        return dataclasses.replace(self.methods, mtt=mtt, sre2l=sre2l)

    # ---- what the rest of the workflow asks ----

    @property
    def dataset_spec(self):
        return dataset_spec(self.dataset)

    def block(self, experiment: str):
        """The config block of a student experiment, or None when the config has none."""
        return getattr(self, EXPERIMENT_BLOCK[experiment])

    def enabled(self, experiment: str) -> bool:
        block = self.block(experiment)
        return block is not None and block.enabled

    def enabled_experiments(self) -> list[str]:
        return [experiment for experiment in STUDENT_EXPERIMENTS if self.enabled(experiment)]

    @property
    def pictures_enabled(self) -> bool:
        return self.soft_label_pictures is not None and self.soft_label_pictures.enabled

    def uses_method(self, method: str) -> bool:
        return self.enabled("soft_vs_hard") and method in self.benchmark.methods

    def run_folder(self, name: str) -> str:
        """The trained run (its folder under experts/ and its token in label specs) a named run is."""
        settings = self.experts[name]
        if isinstance(settings, BroughtExpertSettings):
            return format_brought_run(settings.arch, file_sha256(settings.checkpoint))
        return format_expert_run(settings.arch, settings.lr)

    @functools.cached_property
    def trained_runs(self) -> dict[str, ExpertSettings]:
        """Trained run -> the settings every named run of it shares: the seeds of all of them in
        increasing order (the first trains the run's epochs, an ensemble of N reads the first N) and
        the longest epochs. Two names of one folder that differ in anything else (what an expert
        computes, or how many processes share it) would overwrite each other's experts, so that is a
        config error."""
        trained: dict[str, ExpertSettings] = {}
        first_name: dict[str, str] = {}
        for name, settings in self.experts.items():
            if isinstance(settings, BroughtExpertSettings):
                continue
            folder = self.run_folder(name)
            known = trained.get(folder)
            if known is None:
                trained[folder], first_name[folder] = dataclasses.replace(settings, seeds=tuple(sorted(settings.seeds))), name
                continue
            ours, theirs = settings.job_shape(), known.job_shape()
            for key in dict.fromkeys([*ours, *theirs]):
                if ours.get(key) != theirs.get(key):
                    raise LabelworthError(
                        f"experts.{name}.{key}: {ours.get(key)!r}, but experts.{first_name[folder]} trains the same "
                        f"run {folder} with {theirs.get(key)!r}; one folder holds one run, so give them the same "
                        "value or another lr")
            seeds = tuple(sorted(set(known.seeds) | set(settings.seeds)))
            trained[folder] = dataclasses.replace(known, seeds=seeds, epochs=max(known.epochs, settings.epochs))
        return trained

    @functools.cached_property
    def brought_runs(self) -> dict[str, BroughtExpertSettings]:
        """Brought run (its folder, `{arch}-file{digest}`) -> its settings: two names of one file read
        as one architecture are one run, so they must say the same epoch."""
        brought: dict[str, BroughtExpertSettings] = {}
        for name, settings in self.experts.items():
            if isinstance(settings, BroughtExpertSettings):
                folder = self.run_folder(name)
                known = brought.setdefault(folder, settings)
                if known.epochs != settings.epochs:
                    raise LabelworthError(f"experts.{name}.epochs: {settings.epochs}, but another run brings the same "
                                          f"file as {settings.arch} at epoch {known.epochs}; one file is one epoch")
        return brought

    @property
    def runs(self) -> dict[str, ExpertSettings | BroughtExpertSettings]:
        """Every run's folder -> its settings: the trained runs and the brought ones."""
        return {**self.trained_runs, **self.brought_runs}

    @property
    def validation(self) -> bool:
        """Whether a validation split is held out of the training set (selection: validation)."""
        return self.selection == "validation"

    @property
    def train_images_per_class(self) -> int:
        """The most images per class a random subset can draw: the smallest class's training images,
        less the validation slice."""
        return self.dataset_spec.min_train_per_class - (self.validation_images_per_class if self.validation else 0)

    @property
    def default_run_folder(self) -> str:
        return self.run_folder(self.defaults.expert_run)

    def label_run(self, name: str) -> str | None:
        """The run token a label spec of run `name` carries: None for the default run's folder."""
        folder = self.run_folder(name)
        return None if folder == self.default_run_folder else folder

    def labels_folder(self, spec: LabelSpec) -> str:
        """The trained run whose experts an expert label spec reads."""
        return spec.expert_run or self.default_run_folder

    def student(self, name: str, images_per_class: int | None = None) -> StudentSettings:
        """Protocol `students.<name>` for students of `images_per_class` images per class."""
        return self.students[name].at(images_per_class)

    def method(self, method: str, images_per_class: int | None = None):
        """A synthesis method's settings for this IPC."""
        return getattr(self.methods, method).settings.at(images_per_class)

    @property
    def mtt_buffer(self) -> tuple[str, tuple[int, ...]]:
        """(trained run, seeds) of MTT's replay buffer: methods.mtt.expert_run's first num_experts seeds."""
        folder = self.run_folder(self.methods.mtt.expert_run)
        seeds = self.runs[folder].seeds
        return folder, seeds[: self.methods.mtt.num_experts or len(seeds)]

    @property
    def sre2l_teacher(self) -> tuple[str, int]:
        """(trained run, epoch) of the batch-norm expert SRe2L inverts (docs/method.md §8.6)."""
        return self.run_folder(self.methods.sre2l.teacher_run), self.methods.sre2l.teacher_epoch

    def epoch_settings(self, experiment: str) -> list[tuple[str, tuple, tuple[int, ...], tuple[str, ...]]]:
        """(key path, expert epoch, IPC, expert run name), one per IPC, of every expert epoch an
        experiment's block sets."""
        block = self.block(experiment)
        if experiment == "soft_vs_hard":
            return [(f"benchmark.soft_labels.{index}.expert_epoch", epoch, ipc, run)
                    for index, source in enumerate(block.soft_labels)
                    for epoch, ipc, run in zip(source.expert_epoch, block.images_per_class, source.expert_run)]
        if not hasattr(block, "expert_epoch"):
            return []
        return [(f"{EXPERIMENT_BLOCK[experiment]}.expert_epoch", block.expert_epoch, ipc, block.expert_run)
                for ipc in block.ipcs]

    def uses_auto_epochs(self) -> bool:
        """Whether any enabled experiment asks for `expert_epoch: auto` (so the sweep must run first)."""
        return any(epoch == AUTO for experiment in self.enabled_experiments()
                   for _, epoch, _, _ in self.epoch_settings(experiment))


# --------------------------------------------------------------------------------------------------
# Checks between blocks


def check_arch_fits(arch: str, dataset: str, where: str) -> None:
    """A ConvNet halves the image at each of its `depth` blocks (28-pixel images are padded to 32),
    so the image must keep at least one pixel: depth <= log2 of the size. A deeper one fails inside
    its first job (`Output size is too small`)."""
    spec, size = parse_arch(arch), dataset_spec(dataset).image_size
    padded = 32 if size == 28 else size
    if spec.family == "convnet" and padded >> spec.depth < 1:
        deepest = padded.bit_length() - 1
        raise LabelworthError(f"{where}: {arch} halves the {size}-pixel {dataset} images {spec.depth} times, "
                              f"below one pixel; use a depth of at most {deepest}")


def _check_config(config: Config) -> None:
    """What no single block can check: runs, protocols and methods against the dataset and each other."""
    dataset = config.dataset_spec
    for name, settings in config.experts.items():
        if isinstance(settings, ExpertSettings) and settings.processes > 1 and dataset.cached_as_tensors:
            raise LabelworthError(f"experts.{name}.processes is {settings.processes}, but data-parallel experts are for "
                                  f"datasets read from image files (imagenet); {dataset.name} trains in one process")
        check_arch_fits(settings.arch, dataset.name, f"experts.{name}.arch")
    for name, protocol in config.students.items():
        for settings in protocol.every():
            check_arch_fits(settings.arch, dataset.name, f"students.{name}.arch")
    for method in SYNTHESIS_METHODS:
        for settings in getattr(config.methods, method).settings.every():
            if hasattr(settings, "arch"):
                check_arch_fits(settings.arch, dataset.name, f"methods.{method}.arch")
    _check_brought_runs(config)
    if config.validation and not dataset.cached_as_tensors:
        raise LabelworthError(f"selection: validation holds a slice of the training set out, which is offered for "
                              f"datasets cached as tensors; {dataset.name} is read from image files")
    if config.validation and config.validation_images_per_class >= dataset.min_train_per_class:
        raise LabelworthError(f"validation_images_per_class: {config.validation_images_per_class} leaves no training "
                              f"image in {dataset.name}'s smallest class ({dataset.min_train_per_class})")
    if config.uses_method("sre2l"):
        _check_sre2l_teacher(config)
    _check_benchmark(config)
    _check_external_sets(config)
    if config.enabled("zero_shot") and config.zero_shot.subject_classes != "all":
        for subject in config.zero_shot.subject_classes:
            if subject >= dataset.num_classes:
                raise LabelworthError(f"zero_shot.subject_classes: {subject} is not a class of {dataset.name} "
                                      f"(0..{dataset.num_classes - 1})")
    for experiment in config.enabled_experiments():
        where = EXPERIMENT_BLOCK[experiment]
        for ipc in config.block(experiment).ipcs:
            if ipc > config.train_images_per_class:
                raise LabelworthError(f"{where}.images_per_class: {ipc} is more than the smallest {dataset.name} "
                                      f"class has ({config.train_images_per_class} training images)")
        _check_auto(config, experiment)


def _check_brought_runs(config: Config) -> None:
    """A brought checkpoint is one network at one epoch: nothing may train it further, replay its
    trajectory or sweep its epochs."""
    uses = [("methods.mtt.expert_run", config.methods.mtt.expert_run, config.uses_method("mtt"),
             "MTT replays the trajectories of experts it trains")]
    for name in ("expert_epoch_sweep", "soft_label_pictures", "ensembles"):
        block = getattr(config, name)
        uses.append((f"{name}.expert_run", block and block.expert_run, block is not None and block.enabled,
                     "it compares epochs or seeds of one run"))
    for where, name, used, why in uses:
        if used and isinstance(config.experts[name], BroughtExpertSettings):
            raise LabelworthError(f"{where}: {name} is a checkpoint you bring, one network at one epoch; {why}, "
                                  "so name a run the workflow trains")


def _check_sre2l_teacher(config: Config) -> None:
    name = config.methods.sre2l.teacher_run
    settings = config.experts[name]
    if not parse_arch(settings.arch).uses_batchnorm:
        raise LabelworthError(
            f"methods.sre2l.teacher_run: run {name!r} ({settings.arch}) has no batch norm, whose statistics "
            "SRe2L matches; name a run of a convnet with -batchnorm or of a resnet")
    epoch = config.methods.sre2l.teacher_epoch
    if isinstance(settings, BroughtExpertSettings) and epoch != settings.epochs:
        raise LabelworthError(f"methods.sre2l.teacher_epoch: {epoch}, but experts.{name} is a checkpoint you bring "
                              f"at epoch {settings.epochs} only")
    if epoch > settings.epochs:
        raise LabelworthError(f"methods.sre2l.teacher_epoch: {epoch} is past experts.{name}.epochs "
                              f"({settings.epochs}), the teacher's training length")


def _check_online_protocol(config: Config, name: str, where: str) -> None:
    """A protocol the benchmark's online rows name relabels online."""
    settings = config.student(name)
    if settings.labels != "online":
        raise LabelworthError(f"{where}: protocol {name} has labels: {settings.labels}; online rows need "
                              f"students.{name}.labels: online")


def _check_benchmark(config: Config) -> None:
    block = config.benchmark
    for index, entry in enumerate(block.online_students):
        where = f"benchmark.online_students.{index}."
        _check_online_protocol(config, entry.student, f"{where}student")
        outside = sorted(set(entry.images_per_class) - set(block.images_per_class))
        if outside:
            raise LabelworthError(f"{where}images_per_class: {outside} not in benchmark.images_per_class "
                                  f"{list(block.images_per_class)}")
        extra = sorted(set(entry.methods) - set(block.methods) - {EXTERNAL})
        if extra:
            raise LabelworthError(f"{where}methods: {', '.join(extra)} not in benchmark.methods, whose images the "
                                  "online rows relabel")
    if config.methods.sre2l.relabel_student:
        _check_online_protocol(config, config.methods.sre2l.relabel_student, "methods.sre2l.relabel_student")
    missing = set(block.synthesis_images_per_class) - set(block.images_per_class)
    if missing:
        raise LabelworthError(f"benchmark.synthesis_images_per_class: {sorted(missing)} not in "
                              "benchmark.images_per_class, whose entries give each IPC its expert epoch")


def _check_external_sets(config: Config) -> None:
    """Each external set's files must exist unless the workflow writes them (a path under results/,
    such as an exported set); what is in them is checked by the set's own job."""
    for name, settings in config.external_image_sets.items():
        if not config.enabled("soft_vs_hard"):
            raise LabelworthError(f"external_image_sets.{name}: external sets are evaluated by the benchmark, "
                                  "which is disabled; enable it or remove the set")
        for key in ("path", "labels"):
            path = getattr(settings, key)
            if path and Path(path).parts[:1] != ("results",) and not Path(path).exists():
                raise LabelworthError(f"external_image_sets.{name}.{key}: {path} not found (paths are relative to "
                                      "the folder snakemake runs in)")


def _check_auto(config: Config, experiment: str) -> None:
    """`auto` needs the sweep, an IPC it swept, and the sweep's expert run (its best epochs are that
    run's); ensembles cannot wait for it (their experts' length is planned before the sweep runs)."""
    sweep_run = config.run_folder(config.expert_epoch_sweep.expert_run) if config.enabled(SWEEP) else None
    for where, epoch, ipc, name in config.epoch_settings(experiment):
        if epoch != AUTO:
            continue
        if experiment == "ensembles":
            raise LabelworthError(f"{where}: auto is not available for ensembles, whose extra experts are "
                                  "trained before the sweep has run; give an epoch")
        if sweep_run is None:
            raise LabelworthError(f"{where} is auto, which needs the expert_epoch_sweep block enabled")
        if ipc not in config.expert_epoch_sweep.images_per_class:
            raise LabelworthError(f"{where} is auto, but expert_epoch_sweep.images_per_class does not include {ipc}")
        if config.run_folder(name) != sweep_run:
            raise LabelworthError(f"{where} is auto for run {name!r}, but the sweep finds the best epochs of "
                                  f"{sweep_run}; give an epoch")


# --------------------------------------------------------------------------------------------------
# Reading a config


# What PyYAML (YAML 1.1) leaves as a string although a person meant a number: 1e-3, 5E4, 1.0e3, .5e-2
_NUMBER_LOOKING_STRING = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def find_number_strings(node, path: str = "") -> list[str]:
    """Config keys whose value is a string that reads as a number in scientific notation."""
    if isinstance(node, dict):
        return [hit for key, value in node.items() for hit in find_number_strings(value, f"{path}{key}.")]
    if isinstance(node, list):
        return [hit for index, value in enumerate(node) for hit in find_number_strings(value, f"{path}{index}.")]
    if isinstance(node, str) and _NUMBER_LOOKING_STRING.fullmatch(node.strip()):
        return [f"{path.rstrip('.')}: {node!r}"]
    return []


def _parses(arch) -> bool:
    """Whether `arch` is an architecture (a bad one is said once, where it is written)."""
    try:
        parse_arch(arch)
    except (LabelworthError, TypeError):
        return False
    return True


def _with_method_defaults(raw: dict) -> dict:
    """`raw` with every method block present, DM's embedding and BPTT's inner network defaulting to
    the default expert run's architecture (the reference's: the network the experts train)."""
    experts = raw.get("experts")
    defaults = raw.get("defaults") or {}
    if not isinstance(experts, dict) or not experts or not isinstance(raw.get("methods", {}), dict):
        return raw
    default_run = defaults.get("expert_run") if isinstance(defaults, dict) else None
    if isinstance(default_run, str):
        run = experts.get(default_run)
    else:  # none named (or a bad name, which the model says): the only run, if there is one
        run = next(iter(experts.values())) if len(experts) == 1 else None
    methods = dict(raw.get("methods") or {})
    for method in SYNTHESIS_METHODS:
        block = {} if methods.get(method) is None else methods[method]
        if isinstance(block, dict) and method in ("dm", "bptt") and isinstance(run, dict) and _parses(run.get("arch")):
            block = {"arch": run["arch"], **block}
        methods[method] = block
    return {**raw, "methods": methods}


def load_config(raw: dict) -> Config:
    """The config model of a raw config (as YAML reads it). Numbers written as text come first (the
    type check would only say "not a number"); then every key, type and value, each problem one
    line starting with its key path; then what lies between blocks."""
    hits = find_number_strings(raw)
    if hits:
        raise LabelworthError(f"{'; '.join(hits)} read as text, not a number: YAML needs a dot and a signed exponent, "
                              "e.g. write 1.0e-3 instead of 1e-3")
    if isinstance(raw, dict):
        missing = [key for key in ("dataset", "data_root", "device", "image_seed", "experts", "students",
                                   "benchmark") if key not in raw]
        if missing:
            raise LabelworthError(f"(top level): missing {', '.join(missing)}: a --configfile replaces config.yaml "
                                  "whole, so it must hold every required key; to change a few keys, copy "
                                  "config.yaml and edit it, or pass --config key=value")
        if str(raw.get("run", "")).startswith(DERIVED_RUN_PREFIX):
            raise LabelworthError(f"run: {raw['run']!r} starts with {DERIVED_RUN_PREFIX!r}, which names the runs of "
                                  "configs without a `run:`; choose another name")
        raw = _with_method_defaults({"run": derived_run_name(raw)} | raw)
    return from_raw(Config, raw, "")


def read_config_file(path) -> dict:
    """A config file read as Snakemake reads it (YAML), but strictly: a missing file, a syntax error
    (with its line and column) or a key given twice in one mapping (YAML keeps the last one silently)
    is one LabelworthError naming the file."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader, node):
        seen = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                raise LabelworthError(f"{path}:{key_node.start_mark.line + 1}: the key `{key}` appears twice in one "
                                      f"mapping (first on line {seen[key] + 1}); YAML would keep the last one silently")
            seen[key] = key_node.start_mark.line
        return loader.construct_mapping(node)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise LabelworthError(f"{path}: no such config file") from None
    except OSError as error:
        raise LabelworthError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        config = yaml.load(text, Loader=StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise LabelworthError(f"{path}:{mark.line + 1}:{mark.column + 1}: YAML syntax error: {error.problem}") from None
    if not isinstance(config, dict):
        raise LabelworthError(f"{path}: a config is a mapping of keys (dataset: ..., experts: ...), not a "
                              f"{type(config).__name__}")
    return config


def load_config_file(path) -> Config:
    """`labelworth check-config` and `labelworth evaluate`: a file read strictly, then its model."""
    return load_config(read_config_file(path))
