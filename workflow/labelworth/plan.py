"""The planner: from the config model (labelworth/config.py), which student populations each experiment
compares, how they group into jobs, how far each trained expert trains, what each job reads, and
every figure and table the workflow draws.

Plain Python (no torch), imported by Snakemake at parse time. A population is a `StudentRun`,
(image set, label spec, student protocol); its result is students/{image set}/{labels}/{protocol}.json.

Two things are known only while the workflow runs, and every plan that needs them takes them:
`best` (IPC -> the expert-epoch sweep's best epoch, what `auto` means; None before the sweep has run)
and `external` (name -> the summary of an inspected external set; None before the sets are read).
Populations waiting for either are left out until it is known.
"""

from __future__ import annotations

import dataclasses

from labelworth.config import AUTO, EXPERIMENT_BLOCK, EXTERNAL, STUDENT_EXPERIMENTS, SWEEP, Config, load_config
from labelworth.errors import LabelworthError
from labelworth.layout import Layout
from labelworth.settings import (
    BroughtExpertSettings, ClassSimilarityFigure, ExpertSettings, ExpertTrainingFigure, LabelRobustnessFigure, LossRankingSettings, SoftLabelBarsFigure,
    StudentSettings,
)
from labelworth.specs import (
    LABELLING_METHODS, LOSS_BIN, SYNTHESIS_METHODS, LabelSpec, LabelTransform, external_set, format_expert,
    format_label_spec, loss_bin_set, method_set, parse_expert, parse_image_set, parse_label_spec, parse_transform_chain, random_set,
)

# Experiments whose blocks may add the external sets (`external_sets: true`) beside random images.
EXTERNAL_EXPERIMENTS = ("label_swap", "scaling_law")

StudentRun = tuple[str, str, str]  # (image set, label spec, student protocol): one population
LabelledSet = tuple[str, str]  # (image set, label spec), before the protocols are crossed in
Best = dict[int, int] | None  # IPC -> the sweep's best expert epoch, or None before the sweep
External = dict[str, dict] | None  # name -> an external set's summary, or None before they are read


def expert_label(epoch: int, temperature: float = 1.0, transforms: tuple = (), ensemble_size: int = 1,
                 run: str | None = None) -> str:
    source = "expert" if ensemble_size == 1 else "ensemble"
    return format_label_spec(LabelSpec(source, epoch, ensemble_size, temperature, tuple(transforms), expert_run=run))


def read_best_epochs(table) -> dict[int, int]:
    """IPC -> best expert epoch from the expert-epoch sweep's table (tables/expert_epoch_sweep.csv);
    a table without those columns or with a non-number in them is a LabelworthError naming the file."""
    import csv

    try:
        with open(table, newline="") as handle:
            rows = list(csv.DictReader(handle))
        best = {int(row["images_per_class"]): int(row["best_expert_epoch"]) for row in rows}
    except (OSError, KeyError, TypeError, ValueError) as error:
        raise LabelworthError(f"{table}: not the expert-epoch sweep's table ({type(error).__name__}: {error}); "
                              "`expert_epoch: auto` reads its images_per_class and best_expert_epoch columns; "
                              "delete it and rerun, and the sweep's figure rule writes it again") from None
    if not best:
        raise LabelworthError(f"{table}: the expert-epoch sweep's table has no rows; delete it and rerun")
    return best


def _epoch_for(value, ipc: int, best: Best, where: str) -> int | None:
    """An expert epoch from config: an int, or `auto` = the sweep's best epoch for this IPC.

    Returns None for `auto` while the sweep has not run yet (`best` is None)."""
    if value != AUTO:
        return value
    if best is None:
        return None
    if ipc not in best:
        raise LabelworthError(f"{where} is auto, but expert_epoch_sweep.images_per_class does not include {ipc}")
    return best[ipc]


def _block_label(config: Config, block, epoch: int, **details) -> str:
    """An expert label of the block's expert run."""
    return expert_label(epoch, run=config.label_run(block.expert_run), **details)


# --------------------------------------------------------------------------------------------------
# The benchmark (paper Tables 1 and 2)


def _benchmark_labels(config: Config, best: Best, images: str, position: int, own_labels: bool) -> list[LabelledSet]:
    """One image set's benchmark rows: hard labels, its own labels if it has any, and each soft-label
    source's labels at the run and epoch of the IPC at `position` in images_per_class."""
    block = config.benchmark
    ipc = block.images_per_class[position]
    runs = [(images, "hard")] + ([(images, "learned")] if own_labels else [])
    for index, source in enumerate(block.soft_labels):
        epoch = _epoch_for(source.expert_epoch[position], ipc, best, f"benchmark.soft_labels.{index}.expert_epoch")
        if epoch is not None:
            run = config.label_run(source.expert_run[position])
            runs += [(images, expert_label(epoch, source.temperature, run=run))]
    return runs


def _method_positions(config: Config, method: str, ipcs: tuple[int, ...]) -> list[tuple[int, int]]:
    """(position in benchmark.images_per_class, IPC) of a method's sets among `ipcs`: every one for
    random images, the synthesis IPCs for a synthesis method."""
    block = config.benchmark
    return [(position, ipc) for position, ipc in enumerate(block.images_per_class)
            if ipc in ipcs and (method not in SYNTHESIS_METHODS or ipc in block.synthesis_images_per_class)]


def _benchmark_runs(config: Config, best: Best) -> list[LabelledSet]:
    """Every method's images at every IPC with hard labels, the method's own labels if it makes any,
    and each soft-label source's labels at the IPC's run and epoch (the paper's Tables 1 and 2)."""
    block = config.benchmark
    return [run for method in block.methods
            for position, ipc in _method_positions(config, method, block.images_per_class)
            for run in _benchmark_labels(config, best, method_set(method, ipc), position, method in LABELLING_METHODS)]


def _online_teachers(config: Config, best: Best, entry, images: str, position: int) -> list[str]:
    """The label specs that teach `images` in one `online_students` entry: its own teacher, or every
    soft-label source's expert."""
    if entry.expert_epoch is not None:
        run = config.label_run(entry.expert_run[position])
        return [expert_label(entry.expert_epoch[position], entry.temperature, run=run)]
    return [labels for _, labels in _benchmark_labels(config, best, images, position, False) if labels != "hard"]


def online_runs(config: Config, best: Best, external: External = None) -> list[StudentRun]:
    """The benchmark's online-label rows: each `online_students` entry's protocol on its methods'
    images at its IPCs (`external`: every external set, once read) with every soft-label source's
    expert as the teacher, or the entry's own (the paper's Table 1 "CutMix SL" columns), and SRe2L's
    images under its own relabel protocol (`methods.sre2l.relabel_student`: its batch-norm teacher at
    its relabel temperature)."""
    block = config.benchmark
    runs = []
    for entry in block.online_students:
        for method in entry.methods:
            if method == EXTERNAL:
                sets = [(external_set(name, summary["images_per_class"]),
                         block.images_per_class.index(summary["images_per_class"]))
                        for name, summary in (external or {}).items()
                        if summary["images_per_class"] in entry.images_per_class]
            else:
                sets = [(method_set(method, ipc), position)
                        for position, ipc in _method_positions(config, method, entry.images_per_class)]
            runs += [(images, labels, entry.student) for images, position in sets
                     for labels in _online_teachers(config, best, entry, images, position)]
    sre2l = config.methods.sre2l
    if sre2l.relabel_student and "sre2l" in block.methods:
        run = config.label_run(sre2l.teacher_run)
        runs += [(method_set("sre2l", ipc),
                  expert_label(sre2l.teacher_epoch, config.method("sre2l", ipc).relabel_temperature, run=run),
                  sre2l.relabel_student) for ipc in block.synthesis_images_per_class]
    return runs


def beside_random(labelled: list[LabelledSet], external: dict[str, dict]) -> list[LabelledSet]:
    """Each external set with the label specs its IPC's random images get (label swap, scaling law)."""
    return [(external_set(name, summary["images_per_class"]), labels)
            for name, summary in external.items() for images, labels in labelled
            if images == random_set(summary["images_per_class"])]


def external_runs(config: Config, best: Best, external: dict[str, dict]) -> list[LabelledSet]:
    """The benchmark rows of every external set whose files have been inspected, at the IPC counted
    from its files."""
    ipcs = config.benchmark.images_per_class
    runs = []
    for name, summary in external.items():
        ipc = summary["images_per_class"]
        if ipc not in ipcs:
            raise LabelworthError(
                f"external_image_sets.{name}: its files hold {ipc} images per class, but benchmark.images_per_class "
                f"lists {list(ipcs)}; add {ipc} (each entry gives its IPC the soft labels' epoch)")
        runs += _benchmark_labels(config, best, external_set(name, ipc), ipcs.index(ipc), summary["learned_labels"])
    return runs


# --------------------------------------------------------------------------------------------------
# The other experiments


def _epoch_grid(config: Config, block) -> list[LabelledSet]:
    """Random images at each of the block's IPCs, with hard labels and at each of its expert epochs."""
    return [(random_set(ipc), label) for ipc in block.images_per_class
            for label in ["hard"] + [_block_label(config, block, epoch) for epoch in block.expert_epochs]]


def _sweep_runs(config: Config, best: Best) -> list[LabelledSet]:
    return _epoch_grid(config, config.expert_epoch_sweep)


def _temperature_runs(config: Config, best: Best) -> list[LabelledSet]:
    block = config.temperature_grid
    return [(random_set(block.images_per_class), _block_label(config, block, epoch, temperature=temperature))
            for epoch in block.expert_epochs for temperature in block.temperatures]


def _swap_runs(config: Config, best: Best) -> list[LabelledSet]:
    block = config.label_swap
    runs = []
    for ipc in block.images_per_class:
        epoch = _epoch_for(block.expert_epoch, ipc, best, "label_swap.expert_epoch")
        if epoch is None:
            continue
        controls = [(), (LabelTransform("shuffle"),), (LabelTransform("smooth"),)]
        swaps = [(LabelTransform("swap", rank),) for rank in block.ranks]
        runs += [(random_set(ipc), _block_label(config, block, epoch, transforms=t)) for t in controls + swaps]
    return runs


def subject_classes(config: Config) -> list[int]:
    """The zero-shot block's subject classes: its list, or every class of the dataset for `all`."""
    subjects = config.zero_shot.subject_classes
    return list(range(config.dataset_spec.num_classes)) if subjects == "all" else list(subjects)


def zero_shot_control(config: Config, best: Best) -> LabelledSet | None:
    """The zero-shot control: all images with the block's soft labels (at its epoch and temperature),
    whose labels also give the figure its label-mass diagnostic; None while `auto` is unknown."""
    block = config.zero_shot
    epoch = _epoch_for(block.expert_epoch, block.images_per_class, best, "zero_shot.expert_epoch")
    if epoch is None:
        return None
    return random_set(block.images_per_class), _block_label(config, block, epoch, temperature=block.temperature)


def _zero_shot_runs(config: Config, best: Best) -> list[LabelledSet]:
    control = zero_shot_control(config, best)
    if control is None:
        return []
    images, label = control
    spec = parse_label_spec(label)
    runs = [control]
    for subject in subject_classes(config):
        zeroed = format_label_spec(dataclasses.replace(spec, transforms=(LabelTransform("zeroclass", subject),)))
        runs += [(random_set(config.zero_shot.images_per_class, without_class=subject), label), (images, zeroed)]
    return runs


def _scaling_runs(config: Config, best: Best) -> list[LabelledSet]:
    block = config.scaling_law
    runs = []
    for ipc in block.images_per_class:
        epoch = _epoch_for(block.expert_epoch, ipc, best, "scaling_law.expert_epoch")
        runs += [(random_set(ipc), "hard")]
        if epoch is not None:
            runs += [(random_set(ipc), _block_label(config, block, epoch))]
            runs += [(random_set(ipc), _block_label(config, block, epoch, transforms=(LabelTransform("top", k),)))
                     for k in block.top_k]
    return runs


def _budget_runs(config: Config, best: Best) -> list[LabelledSet]:
    block = config.label_budget
    runs = [(random_set(ipc), "hard") for ipc in block.hard_images_per_class or block.images_per_class]
    for ipc in block.images_per_class:
        epoch = _epoch_for(block.expert_epoch, ipc, best, "label_budget.expert_epoch")
        if epoch is not None:
            runs += [(random_set(ipc), _block_label(config, block, epoch))]
            runs += [(random_set(ipc), _block_label(config, block, epoch, transforms=parse_transform_chain(text)))
                     for text in block.stored]
    return runs


def _pareto_runs(config: Config, best: Best) -> list[LabelledSet]:
    return _epoch_grid(config, config.pareto)


def _ensemble_runs(config: Config, best: Best) -> list[LabelledSet]:
    block = config.ensembles
    return [(random_set(ipc), _block_label(config, block, block.expert_epoch, ensemble_size=size))
            for ipc in block.images_per_class for size in block.sizes]


def _selection_runs(config: Config, best: Best) -> list[LabelledSet]:
    block = config.image_selection
    ipc = block.images_per_class
    image_sets = [random_set(ipc)] + [loss_bin_set(loss_bin, ipc) for loss_bin in block.bins]
    label = _block_label(config, block, block.expert_epoch)
    return [(images, labels) for images in image_sets for labels in ("hard", label)]


def _generated_runs(config: Config, best: Best) -> list[LabelledSet]:
    block = config.generated_labels
    runs = []
    for ipc in block.images_per_class:
        epoch = _epoch_for(block.expert_epoch, ipc, best, "generated_labels.expert_epoch")
        runs += [(random_set(ipc), "hard")]
        runs += [(random_set(ipc), format_label_spec(LabelSpec("noise", true_class_mass=p)))
                 for p in block.true_class_mass]
        if epoch is not None:
            boosts = [(LabelTransform("boost", q, block.boost_alpha),) for q in block.boost_fraction]
            runs += [(random_set(ipc), _block_label(config, block, epoch, transforms=t)) for t in [()] + boosts]
    return runs


_PLANNERS = {
    "soft_vs_hard": _benchmark_runs, "expert_epoch_sweep": _sweep_runs, "temperature_grid": _temperature_runs,
    "label_swap": _swap_runs, "zero_shot": _zero_shot_runs, "scaling_law": _scaling_runs,
    "pareto": _pareto_runs, "ensembles": _ensemble_runs, "image_selection": _selection_runs,
    "generated_labels": _generated_runs, "label_budget": _budget_runs,
}


def uses_external(config: Config, experiment: str) -> bool:
    """Whether an experiment plans from the external sets: the benchmark, and the blocks that ask."""
    return experiment == "soft_vs_hard" or (experiment in EXTERNAL_EXPERIMENTS and config.block(experiment).external_sets)


def student_runs(config: Config, experiment: str, best: Best = None, external: External = None) -> list[StudentRun]:
    """The (image set, label spec, protocol) populations an experiment's figure compares, without
    repeats: every labelled set of the block with each protocol it names.

    With `best` None, runs whose epoch is `auto` are left out (they are known only after the
    expert-epoch sweep has run); with `external` None, so are the external sets' (known once their
    files are inspected)."""
    labelled = _PLANNERS[experiment](config, best)
    if external and uses_external(config, experiment):
        labelled += (external_runs(config, best, external) if experiment == "soft_vs_hard"
                     else beside_random(labelled, external))
    runs = [(images, labels, student) for student in config.block(experiment).protocols for images, labels in labelled]
    if experiment == "soft_vs_hard":
        runs += online_runs(config, best, external)
    return list(dict.fromkeys(runs))


PopulationGroups = dict[str, dict[tuple[str, str], list[str]]]


def population_groups(config: Config, best: Best, external: External = None) -> PopulationGroups:
    """experiment -> (image set, protocol) -> the label specs one grouped job trains together
    (student_populations: per_image_set).

    Every run of the enabled experiments appears exactly once, under the first experiment that
    compares it, the expert-epoch sweep first: the sweep's runs are known before `auto` is, so its
    groups never wait for its own result. With `best` None the other experiments' groups lack their
    `auto` runs; ask for them only once the sweep has run.
    """
    order = [SWEEP] + [name for name in STUDENT_EXPERIMENTS if name != SWEEP]
    groups: PopulationGroups = {}
    grouped: set[StudentRun] = set()
    for experiment in order:
        if not config.enabled(experiment):
            continue
        for run in student_runs(config, experiment, None if experiment == SWEEP else best, external):
            if run not in grouped:
                grouped.add(run)
                image_set, labels, student = run
                groups.setdefault(experiment, {}).setdefault((image_set, student), []).append(labels)
    return groups


def population_of(groups: PopulationGroups, image_set: str, labels: str, student: str) -> str:
    """The experiment whose group of (`image_set`, `student`) trains `labels` (see population_groups)."""
    for experiment, image_sets in groups.items():
        if labels in image_sets.get((image_set, student), []):
            return experiment
    raise LabelworthError(
        f"students {student} of {image_set} on {labels} are in no experiment's population; with "
        "student_populations: per_image_set only the runs an enabled experiment compares are trained"
    )


# --------------------------------------------------------------------------------------------------
# Experts


def trajectory_epochs(config: Config) -> int:
    """The last epoch MTT's replay buffer holds: the largest max_start_epoch + expert_epochs over
    the IPCs it distils (docs/method.md §8.1), one buffer serving them all."""
    return max(settings.max_start_epoch + settings.expert_epochs for settings in config.methods.mtt.settings.every())


def needed_epochs(config: Config) -> dict[tuple[str, int], int]:
    """(trained run, seed) -> the last epoch any label spec or replay buffer of the plan reads from
    that expert. Labels waiting for `auto` are left out (the sweep's grid is in)."""
    trained = config.trained_runs
    epochs: dict[tuple[str, int], int] = {}

    def need(folder: str, seed: int, epoch: int) -> None:
        epochs[(folder, seed)] = max(epochs.get((folder, seed), 0), epoch)

    for experiment in config.enabled_experiments():
        for _, label, _ in student_runs(config, experiment):
            spec = parse_label_spec(label)
            if spec.uses_experts and config.labels_folder(spec) in trained:  # a brought run trains nothing
                folder = config.labels_folder(spec)
                for seed in trained[folder].seeds[: spec.ensemble_size]:
                    need(folder, seed, spec.expert_epoch)
    if config.uses_method("mtt"):
        folder, seeds = config.mtt_buffer
        for seed in seeds:
            need(folder, seed, trajectory_epochs(config))
    return epochs


def trained_epochs(config: Config) -> dict[tuple[str, int], int]:
    """(trained run, seed) -> how many epochs that expert trains.

    The first seed of every run trains the run's epochs (its curve is the expert-training figure);
    each other seed trains only as far as the labels and the replay buffer that use it need
    (`needed_epochs`): an ensemble of N reads the run's first N seeds, MTT's buffer its first
    num_experts. A seed nothing uses is not trained. Labels waiting for `auto` are left out, so
    `auto` cannot pick ensemble epochs (a config error)."""
    epochs = {(folder, settings.seeds[0]): settings.epochs for folder, settings in config.trained_runs.items()}
    for expert, epoch in needed_epochs(config).items():
        epochs[expert] = max(epochs.get(expert, 0), epoch)
    return epochs


# --------------------------------------------------------------------------------------------------
# Checks of what the plan asks for


def check_label_spec(config: Config, text: str, where: str) -> LabelSpec:
    """Parse a label spec and check it against the trained expert runs and the classes."""
    try:
        spec = parse_label_spec(text)
    except LabelworthError as error:
        raise LabelworthError(f"{where}: {error}") from None
    if spec.uses_experts:
        folder = config.labels_folder(spec)
        run = config.runs[folder]
        if isinstance(run, BroughtExpertSettings) and spec.expert_epoch != run.epochs:
            raise LabelworthError(
                f"{where}: label spec {text!r} uses expert epoch {spec.expert_epoch}, but the run {folder} is a "
                f"checkpoint you bring ({run.checkpoint}), at epoch {run.epochs} only")
        if spec.expert_epoch > run.epochs:
            raise LabelworthError(
                f"{where}: label spec {text!r} uses expert epoch {spec.expert_epoch}, but the run {folder} trains "
                f"{run.epochs} epochs; raise its epochs or pick an epoch in 0..{run.epochs}")
        if spec.ensemble_size > len(run.seeds):
            raise LabelworthError(f"{where}: label spec {text!r} needs {spec.ensemble_size} experts, but the run "
                                  f"{folder} lists {len(run.seeds)} seeds")
    num_classes = config.dataset_spec.num_classes
    limits = {"swap": num_classes - 1, "top": num_classes, "zeroclass": num_classes - 1}
    for transform in spec.transforms:
        if transform.kind in limits and transform.value > limits[transform.kind]:
            raise LabelworthError(f"{where}: label spec {text!r}: {transform.kind} takes at most "
                                  f"{limits[transform.kind]} with {num_classes} classes")
    return spec


def check_plan(config: Config) -> None:
    """Every label spec the plan asks for, checked against the runs and classes: `auto` epochs stand
    in as epoch 0, so labels waiting for the sweep are checked too."""
    if config.pictures_enabled:  # its labels are the figures', not a student experiment's
        pictures = config.soft_label_pictures
        run = config.label_run(pictures.expert_run)
        for epoch in pictures.expert_epochs:
            check_label_spec(config, expert_label(epoch, run=run), "soft_label_pictures.expert_epochs")
        check_label_spec(config, expert_label(pictures.similarity_epoch, run=run), "soft_label_pictures.similarity_epoch")
    placeholder = {ipc: 0 for ipc in config.expert_epoch_sweep.images_per_class} if config.enabled(SWEEP) else {}
    for experiment in config.enabled_experiments():
        for image_set, label, _ in student_runs(config, experiment, placeholder):
            check_label_spec(config, label, f"{EXPERIMENT_BLOCK[experiment]} ({image_set})")


def load_checked_config(raw: dict) -> Config:
    """The config model of `raw` with every check, its plan's included: what the workflow, `labelworth
    check-config` and `labelworth evaluate` run before anything else."""
    config = load_config(raw)
    check_plan(config)
    return config


# --------------------------------------------------------------------------------------------------
# The workflow: every job's inputs and settings, and every figure, as files of the results tree


def figure_rule(figure: str) -> str:
    """The name of the rule that draws a figure (workflow/rules/figures.smk)."""
    return f"figure_{figure}"


# drawn from the benchmark's students
BENCHMARK_FIGURES = ("label_robustness", "accuracy_vs_storage", "pass_inflation", "rank_stability")
TABLED_FIGURES = STUDENT_EXPERIMENTS + BENCHMARK_FIGURES  # figures that also write a table


class WorkflowPlan:
    """The config's jobs and targets as files: built once per Snakemake parse, from the config model."""

    def __init__(self, config: Config):
        self.config = config
        self.layout = Layout.of(config.run)
        self.trained_epochs = trained_epochs(config)  # (trained run, seed) -> epochs that expert trains
        self._groups: dict = {}

    # ---- experts ----

    def experts(self) -> list[str]:
        """Every expert the config trains, as the `{expert}` wildcard {run}/seed{seed}."""
        return [format_expert(run, seed) for run, seed in self.trained_epochs]

    def brought_experts(self) -> list[str]:
        """Every checkpoint the config brings, as the `{expert}` wildcard {run}/seed0."""
        return [format_expert(run, settings.seeds[0]) for run, settings in self.config.brought_runs.items()]

    def brought_job(self, expert: str) -> BroughtExpertSettings:
        return self.config.brought_runs[parse_expert(expert)[0]]

    def expert_job(self, expert: str) -> ExpertSettings:
        """The settings of one expert job: its run's, with its one seed and its own epoch count."""
        run, seed = parse_expert(expert)
        return dataclasses.replace(self.config.trained_runs[run], seeds=(seed,), epochs=self.trained_epochs[(run, seed)])

    def main_checkpoint(self, run_name: str, epoch: int) -> str:
        """The checkpoint of a named run's first expert at `epoch`."""
        folder = self.config.run_folder(run_name)
        return self.layout.checkpoint(folder, self.config.runs[folder].seeds[0], epoch)

    def main_metrics(self, run_name: str) -> str:
        folder = self.config.run_folder(run_name)
        return self.layout.metrics(folder, self.config.runs[folder].seeds[0])

    def label_checkpoints(self, labels: str) -> list[str]:
        """The checkpoints a label spec reads: its run's first expert, or the first N for an ensemble."""
        spec = parse_label_spec(labels)
        if not spec.uses_experts:
            return []
        run = self.config.labels_folder(spec)
        return [self.layout.checkpoint(run, seed, spec.expert_epoch)
                for seed in self.config.runs[run].seeds[: spec.ensemble_size]]

    def buffer_checkpoint_dirs(self) -> list[str]:
        """One checkpoints/ folder per expert of MTT's replay buffer."""
        run, seeds = self.config.mtt_buffer
        return [self.layout.checkpoints(run, seed) for seed in seeds]

    # ---- image sets ----

    def method_inputs(self, image_set: str) -> dict[str, str]:
        """The files a set's method reads besides the data, by its `distill-images` option name
        (labelworth/distill/registry.py)."""
        from labelworth.distill.registry import image_method

        config = self.config
        files = {"trajectories": lambda: self.layout.trajectories(config.mtt_buffer[0]),
                 "teacher": lambda: self.main_checkpoint(config.methods.sre2l.teacher_run,
                                                         config.methods.sre2l.teacher_epoch),
                 "ranking_expert": lambda: self.main_checkpoint(config.image_selection.expert_run,
                                                                config.image_selection.expert_epoch)}
        return {name: files[name]() for name in image_method(parse_image_set(image_set).kind).inputs}

    def image_set_settings(self, image_set: str):
        """The settings a set's method runs with (a synthesis method's for the set's IPC, the loss
        ranking's), or None for a method without any."""
        spec = parse_image_set(image_set)
        if spec.kind in SYNTHESIS_METHODS:
            return self.config.method(spec.kind, spec.images_per_class)
        if spec.kind == LOSS_BIN:
            return LossRankingSettings(double_softmax=self.config.image_selection.double_softmax)
        return None

    def student_settings(self, image_set: str, student: str) -> StudentSettings:
        """The protocol's settings for this image set's IPC (its by_images_per_class entry)."""
        return self.config.student(student, parse_image_set(image_set).images_per_class)

    # ---- students ----

    def students(self, experiment: str, best: Best, external: External) -> list[str]:
        """The result files of the populations an experiment's figure compares."""
        return [self.layout.student(*run) for run in student_runs(self.config, experiment, best, external)]

    def groups(self, best: Best, external: External) -> PopulationGroups:
        """population_groups, once per DAG (best epochs) rather than once per job."""
        key = None if best is None else tuple(sorted(best.items()))
        if key not in self._groups:
            self._groups[key] = population_groups(self.config, best, external)
        return self._groups[key]

    # ---- figures ----

    def figures(self) -> list[str]:
        """Every figure the config draws, in the order `rule all` lists them."""
        config = self.config
        names = ["expert_training", "benchmark_images"] + config.enabled_experiments()
        if config.enabled("soft_vs_hard"):
            names += ["accuracy_vs_storage", "pass_inflation", "rank_stability"]
        if config.pictures_enabled:
            names += ["soft_label_bars", "class_similarity"]
        others = set(config.benchmark.methods) - {"random"}
        if config.enabled("soft_vs_hard") and (others or config.external_image_sets):
            names.append("label_robustness")  # a method beside random images, whose label robustness is scored
        return names

    def figure_outputs(self, name: str) -> dict[str, str]:
        files = {"png": self.layout.figure(name, "png"), "pdf": self.layout.figure(name, "pdf")}
        if name in TABLED_FIGURES:
            files |= {"csv": self.layout.table(name, "csv"), "md": self.layout.table(name, "md")}
        return files

    def targets(self) -> list[str]:
        return [path for name in self.figures() for path in self.figure_outputs(name).values()]

    @staticmethod
    def experiment_of(figure: str) -> str | None:
        """The student experiment whose populations a figure compares (None: a figure of no students)."""
        return "soft_vs_hard" if figure in BENCHMARK_FIGURES else figure if figure in STUDENT_EXPERIMENTS else None

    def waits_for(self, figure: str) -> tuple[bool, bool]:
        """(whether the figure's inputs wait for the sweep's best epochs, for the external sets)."""
        experiment = self.experiment_of(figure)
        if experiment is None:
            return False, False
        return (experiment != SWEEP and self.config.uses_auto_epochs()), uses_external(self.config, experiment)

    def figure_roles(self, figure: str) -> tuple[str, ...]:
        """The roles of a figure's input files (the keys of `figure_inputs`)."""
        if self.experiment_of(figure) is None:
            return ("inputs",)
        return ("inputs", "expert_metrics") + (("mass_labels", "mass_images") if figure == "zero_shot" else ())

    def figure_inputs(self, figure: str, best: Best = None, external: External = None) -> dict[str, list[str]]:
        """A figure's input files by role: `inputs` (the files it draws: student results, metrics,
        images, labels), `expert_metrics`, and for zero_shot the control's `mass_labels` and
        `mass_images`, whose label mass on each subject class it reports."""
        config, layout = self.config, self.layout
        experiment = self.experiment_of(figure)
        if experiment is not None:
            files = {"inputs": self.students(experiment, best, external),
                     "expert_metrics": [self.main_metrics(config.block(experiment).expert_run)]}
            if figure == "zero_shot":
                control = zero_shot_control(config, best)
                files |= {"mass_labels": [layout.labels(*control)], "mass_images": [layout.images(control[0])]}
            return files
        if figure == "expert_training":
            return {"inputs": [layout.metrics(run, seed) for run, seed in self.trained_epochs]}
        if figure == "benchmark_images":
            ipc = min(config.benchmark.synthesis_images_per_class)
            return {"inputs": [layout.images(method_set(method, ipc)) for method in config.benchmark.methods]}
        pictures = config.soft_label_pictures
        run = config.label_run(pictures.expert_run)
        if figure == "soft_label_bars":
            return {"inputs": [layout.images(random_set(1))] + [
                layout.labels(random_set(1), expert_label(epoch, run=run)) for epoch in pictures.expert_epochs]}
        if figure == "class_similarity":
            return {"inputs": [layout.class_similarity(expert_label(pictures.similarity_epoch, run=run))]}
        raise LabelworthError(f"unknown figure {figure!r}")

    def external_summaries(self, figure: str) -> list[str]:
        """The external sets' summaries a figure plans from: a missing one (a set just added to a
        finished run) makes Snakemake run its checkpoint and the figure again."""
        experiment = self.experiment_of(figure)
        if experiment is None or not uses_external(self.config, experiment):
            return []
        return [self.layout.external_summary(name) for name in self.config.external_image_sets]

    def figure_settings(self, figure: str):
        """What a figure draws beyond its files, as its settings (None for a figure without any)."""
        config = self.config
        if figure == "expert_training":  # the benchmark's fixed soft-label epochs, marked on the curves
            fixed = {epoch for source in config.benchmark.soft_labels for epoch in source.expert_epoch if epoch != AUTO}
            return ExpertTrainingFigure(marked_epochs=tuple(sorted(fixed)))
        if figure == "soft_label_bars":
            return SoftLabelBarsFigure(image=config.soft_label_pictures.image)
        if figure == "class_similarity":
            return ClassSimilarityFigure(expert_epoch=config.soft_label_pictures.similarity_epoch)
        if figure == "label_robustness":
            return LabelRobustnessFigure(full_data_accuracy=config.benchmark.full_data_accuracy)
        return None
