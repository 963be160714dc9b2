"""The experiment planner: which student populations each experiment of a config compares, how they
group into jobs, and how far each trained expert must train.

Plain Python (no torch), imported by Snakemake at parse time. A population is a `StudentRun`,
(image set, label spec, student protocol); its result is students/{image set}/{labels}/{protocol}.json.
"""

from __future__ import annotations

import dataclasses

from labelworth.configured import (
    AUTO, block_expert_run, block_students, default_expert_run, label_run, labels_folder, method_block, method_settings, mtt_buffer,
    sre2l_teacher, trained_runs,
)
from labelworth.errors import LabelworthError
from labelworth.settings import overridden_ipcs
from labelworth.specs import (
    EXTERNAL_PREFIX, LABELLING_METHODS, SYNTHESIS_METHODS, ImageSetSpec, LabelSpec, LabelTransform, format_image_set,
    dataset_spec, format_label_spec, parse_label_spec,
)

# Experiments whose figures compare student populations, in the order `rule all` lists them.
STUDENT_EXPERIMENTS = ("soft_vs_hard", "expert_epoch_sweep", "temperature_grid", "label_swap", "zero_shot",
                       "scaling_law", "pareto", "ensembles", "image_selection", "generated_labels")
# Config block of each experiment (the benchmark block draws the soft_vs_hard figure).
EXPERIMENT_BLOCK = {name: name for name in STUDENT_EXPERIMENTS} | {"soft_vs_hard": "benchmark"}
SWEEP = "expert_epoch_sweep"  # the experiment whose table gives `auto` its meaning
# Experiments whose blocks may add the external sets (`external_sets: true`) beside random images.
EXTERNAL_EXPERIMENTS = ("label_swap", "scaling_law")

StudentRun = tuple[str, str, str]  # (image set, label spec, student protocol): one population
LabelledSet = tuple[str, str]  # (image set, label spec), before the protocols are crossed in


def expert_label(epoch: int, temperature: float = 1.0, transforms: tuple = (), ensemble_size: int = 1,
                 run: str | None = None) -> str:
    source = "expert" if ensemble_size == 1 else "ensemble"
    return format_label_spec(LabelSpec(source, epoch, ensemble_size, temperature, tuple(transforms), expert_run=run))


def _random(ipc: int, without_class: int | None = None) -> str:
    return format_image_set(ImageSetSpec("random", ipc, without_class))


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def enabled(config: dict, experiment: str) -> bool:
    block = config.get(EXPERIMENT_BLOCK[experiment])
    return bool(block) and block.get("enabled", True)


def soft_label_sources(block: dict) -> list[dict]:
    """The benchmark's soft-label sources: {expert_run (a name or one per IPC), expert_epoch (one per
    IPC), temperature}, one labelled population per source, IPC and protocol."""
    return block.get("soft_labels", [])


def per_ipc(value, position: int):
    """An entry given once for the block or once per images_per_class entry."""
    return value[position] if isinstance(value, list) else value


def epoch_settings(config: dict, experiment: str) -> list[tuple[str, object, list[int]]]:
    """(key path, expert_epoch value, its IPCs) of every expert epoch an experiment's block sets."""
    where = EXPERIMENT_BLOCK[experiment]
    block = config[where]
    if experiment == "soft_vs_hard":
        return [(f"benchmark.soft_labels[{index}].expert_epoch", source["expert_epoch"], block["images_per_class"])
                for index, source in enumerate(soft_label_sources(block))]
    if "expert_epoch" not in block:
        return []
    return [(f"{where}.expert_epoch", block["expert_epoch"], as_list(block["images_per_class"]))]


def uses_auto_epochs(config: dict) -> bool:
    """Whether any enabled experiment asks for `expert_epoch: auto` (so the sweep must run first)."""
    return any(AUTO in as_list(value) for experiment in STUDENT_EXPERIMENTS if enabled(config, experiment)
               for _, value, _ in epoch_settings(config, experiment))


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


def _epoch_for(value, ipc: int, best_epochs: dict[int, int] | None, where: str) -> int | None:
    """An expert epoch from config: an int, or `auto` = the sweep's best epoch for this IPC.

    Returns None for `auto` while the sweep has not run yet (`best_epochs` is None)."""
    if value != AUTO:
        return value
    if best_epochs is None:
        return None
    if ipc not in best_epochs:
        raise LabelworthError(f"{where} is auto, but expert_epoch_sweep.images_per_class does not include {ipc}")
    return best_epochs[ipc]


def _block_label(config: dict, block: dict, epoch: int, **details) -> str:
    """An expert label of the block's expert run."""
    return expert_label(epoch, run=label_run(config, block_expert_run(config, block)), **details)


def _benchmark_labels(config, block, best, images: str, position: int, own_labels: bool) -> list[LabelledSet]:
    """One image set's benchmark rows: hard labels, its own labels if it has any, and each soft-label
    source's labels at the run and epoch of the IPC at `position` in images_per_class."""
    ipc = block["images_per_class"][position]
    runs = [(images, "hard")] + ([(images, "learned")] if own_labels else [])
    for index, source in enumerate(soft_label_sources(block)):
        epoch = _epoch_for(source["expert_epoch"][position], ipc, best, f"benchmark.soft_labels[{index}].expert_epoch")
        if epoch is not None:
            run = label_run(config, per_ipc(source.get("expert_run", block_expert_run(config, block)), position))
            runs += [(images, expert_label(epoch, source.get("temperature", 1.0), run=run))]
    return runs


def _benchmark_runs(config, block, best) -> list[LabelledSet]:
    """Every method's images at every IPC with hard labels, the method's own labels if it makes any,
    and each soft-label source's labels at the IPC's run and epoch (the paper's Tables 1 and 2)."""
    runs = []
    synthesised = block.get("synthesis_images_per_class", block["images_per_class"])
    for method in block["methods"]:
        for position, ipc in enumerate(block["images_per_class"]):
            if method in SYNTHESIS_METHODS and ipc not in synthesised:
                continue
            images = format_image_set(ImageSetSpec(method, ipc))
            runs += _benchmark_labels(config, block, best, images, position, method in LABELLING_METHODS)
    return runs


def _online_teachers(config: dict, block: dict, best, entry: dict, images: str, position: int) -> list[str]:
    """The label specs that teach `images` in one `online_students` entry: its own teacher, or every
    soft-label source's expert."""
    if "expert_epoch" in entry:
        run = label_run(config, per_ipc(entry.get("expert_run", block_expert_run(config, block)), position))
        return [expert_label(per_ipc(entry["expert_epoch"], position), entry.get("temperature", 1.0), run=run)]
    return [labels for _, labels in _benchmark_labels(config, block, best, images, position, False) if labels != "hard"]


def online_runs(config: dict, block: dict, best, external_sets: dict[str, dict] | None = None) -> list[StudentRun]:
    """The benchmark's online-label rows: each `online_students` entry's protocol on its methods'
    images at its IPCs (`external`: every external set, once read) with every soft-label source's expert as the
    teacher, or the entry's own (expert_run, expert_epoch, temperature; the paper's Table 1 "CutMix
    SL" columns), and SRe2L's images under its own relabel protocol (`methods.sre2l.relabel_student`:
    its batch-norm teacher at its relabel temperature)."""
    runs = []
    synthesised = block.get("synthesis_images_per_class", block["images_per_class"])
    for entry in block.get("online_students", []):
        ipcs = entry.get("images_per_class", block["images_per_class"])
        for method in entry["methods"]:
            if method == "external":
                for name, summary in (external_sets or {}).items():
                    ipc = summary["images_per_class"]
                    if ipc not in ipcs:
                        continue
                    images = format_image_set(ImageSetSpec(f"{EXTERNAL_PREFIX}{name}", ipc))
                    position = block["images_per_class"].index(ipc)
                    runs += [(images, labels, entry["student"])
                             for labels in _online_teachers(config, block, best, entry, images, position)]
                continue
            for position, ipc in enumerate(block["images_per_class"]):
                if ipc not in ipcs or (method in SYNTHESIS_METHODS and ipc not in synthesised):
                    continue
                images = format_image_set(ImageSetSpec(method, ipc))
                runs += [(images, labels, entry["student"])
                         for labels in _online_teachers(config, block, best, entry, images, position)]
    sre2l = method_block(config, "sre2l")
    if sre2l.get("relabel_student") and "sre2l" in block["methods"]:
        run = label_run(config, sre2l.get("teacher_run", default_expert_run(config)))
        epoch = sre2l_teacher(config)[1]
        runs += [(format_image_set(ImageSetSpec("sre2l", ipc)),
                  expert_label(epoch, method_settings(config, "sre2l", ipc).relabel_temperature, run=run),
                  sre2l["relabel_student"]) for ipc in synthesised]
    return runs


def beside_random(labelled: list[LabelledSet], external_sets: dict[str, dict]) -> list[LabelledSet]:
    """Each external set with the label specs its IPC's random images get (label swap, scaling law)."""
    return [(format_image_set(ImageSetSpec(f"{EXTERNAL_PREFIX}{name}", summary["images_per_class"])), labels)
            for name, summary in external_sets.items() for images, labels in labelled
            if images == _random(summary["images_per_class"])]


def external_runs(config: dict, block: dict, best, external_sets: dict[str, dict]) -> list[LabelledSet]:
    """The benchmark rows of every external set whose files have been inspected (`external_sets`:
    name -> the summary of labelworth/external.py), at the IPC counted from its files."""
    runs = []
    for name, summary in external_sets.items():
        ipc = summary["images_per_class"]
        if ipc not in block["images_per_class"]:
            raise LabelworthError(
                f"external_image_sets.{name}: its files hold {ipc} images per class, but benchmark.images_per_class "
                f"lists {block['images_per_class']}; add {ipc} (each entry gives its IPC the soft labels' epoch)")
        images = format_image_set(ImageSetSpec(f"{EXTERNAL_PREFIX}{name}", ipc))
        runs += _benchmark_labels(config, block, best, images, block["images_per_class"].index(ipc),
                                  summary["learned_labels"])
    return runs


def _sweep_runs(config, block, best) -> list[LabelledSet]:
    return [(_random(ipc), label) for ipc in block["images_per_class"]
            for label in ["hard"] + [_block_label(config, block, epoch) for epoch in block["expert_epochs"]]]


def _temperature_runs(config, block, best) -> list[LabelledSet]:
    return [(_random(ipc), _block_label(config, block, epoch, temperature=temperature))
            for ipc in as_list(block["images_per_class"])
            for epoch in block["expert_epochs"] for temperature in block["temperatures"]]


def _swap_runs(config, block, best) -> list[LabelledSet]:
    runs = []
    for ipc in block["images_per_class"]:
        epoch = _epoch_for(block["expert_epoch"], ipc, best, "label_swap.expert_epoch")
        if epoch is None:
            continue
        controls = [(), (LabelTransform("shuffle"),), (LabelTransform("smooth"),)]
        swaps = [(LabelTransform("swap", rank),) for rank in block["ranks"]]
        runs += [(_random(ipc), _block_label(config, block, epoch, transforms=t)) for t in controls + swaps]
    return runs


def subject_classes(config: dict) -> list[int]:
    """The zero-shot block's subject classes: its list, or every class of the dataset for `all`."""
    subjects = config["zero_shot"]["subject_classes"]
    return list(range(dataset_spec(config["dataset"]).num_classes)) if subjects == "all" else list(subjects)


def zero_shot_control(config: dict, best) -> LabelledSet | None:
    """The zero-shot control: all images with the block's soft labels (at its epoch and temperature),
    whose labels also give the figure its label-mass diagnostic; None while `auto` is unknown."""
    block = config["zero_shot"]
    ipc = block["images_per_class"]
    epoch = _epoch_for(block["expert_epoch"], ipc, best, "zero_shot.expert_epoch")
    if epoch is None:
        return None
    return _random(ipc), _block_label(config, block, epoch, temperature=block.get("temperature", 1.0))


def _zero_shot_runs(config, block, best) -> list[LabelledSet]:
    control = zero_shot_control(config, best)
    if control is None:
        return []
    images, label = control
    spec = parse_label_spec(label)
    runs = [control]
    for subject in subject_classes(config):
        zeroed = format_label_spec(dataclasses.replace(spec, transforms=(LabelTransform("zeroclass", subject),)))
        runs += [(_random(block["images_per_class"], without_class=subject), label), (images, zeroed)]
    return runs


def _scaling_runs(config, block, best) -> list[LabelledSet]:
    runs = []
    for ipc in block["images_per_class"]:
        epoch = _epoch_for(block["expert_epoch"], ipc, best, "scaling_law.expert_epoch")
        runs += [(_random(ipc), "hard")]
        if epoch is not None:
            runs += [(_random(ipc), _block_label(config, block, epoch))]
            runs += [(_random(ipc), _block_label(config, block, epoch, transforms=(LabelTransform("top", k),)))
                     for k in block["top_k"]]
    return runs


def _pareto_runs(config, block, best) -> list[LabelledSet]:
    return [(_random(ipc), label) for ipc in block["images_per_class"]
            for label in ["hard"] + [_block_label(config, block, epoch) for epoch in block["expert_epochs"]]]


def _ensemble_runs(config, block, best) -> list[LabelledSet]:
    return [(_random(ipc), _block_label(config, block, block["expert_epoch"], ensemble_size=size))
            for ipc in block["images_per_class"] for size in block["sizes"]]


def _selection_runs(config, block, best) -> list[LabelledSet]:
    ipc = block["images_per_class"]
    image_sets = [_random(ipc)] + [format_image_set(ImageSetSpec(f"lossbin{b}", ipc)) for b in block["bins"]]
    label = _block_label(config, block, block["expert_epoch"])
    return [(images, labels) for images in image_sets for labels in ("hard", label)]


def _generated_runs(config, block, best) -> list[LabelledSet]:
    runs = []
    for ipc in block["images_per_class"]:
        epoch = _epoch_for(block["expert_epoch"], ipc, best, "generated_labels.expert_epoch")
        runs += [(_random(ipc), "hard")]
        runs += [(_random(ipc), format_label_spec(LabelSpec("noise", true_class_mass=p)))
                 for p in block["true_class_mass"]]
        if epoch is not None:
            boosts = [(LabelTransform("boost", q, block["boost_alpha"]),) for q in block["boost_fraction"]]
            runs += [(_random(ipc), _block_label(config, block, epoch, transforms=t)) for t in [()] + boosts]
    return runs


_PLANNERS = {
    "soft_vs_hard": _benchmark_runs, "expert_epoch_sweep": _sweep_runs, "temperature_grid": _temperature_runs,
    "label_swap": _swap_runs, "zero_shot": _zero_shot_runs, "scaling_law": _scaling_runs,
    "pareto": _pareto_runs, "ensembles": _ensemble_runs, "image_selection": _selection_runs,
    "generated_labels": _generated_runs,
}


def student_runs(config: dict, experiment: str, best_epochs: dict[int, int] | None = None,
                 external_sets: dict[str, dict] | None = None) -> list[StudentRun]:
    """The (image set, label spec, protocol) populations an experiment's figure compares, without
    repeats: every labelled set of the block with each protocol it names (default: the first).

    With `best_epochs` None, runs whose epoch is `auto` are left out (they are known only after the
    expert-epoch sweep has run); with `external_sets` None, so are the external sets' (known once
    their files are inspected)."""
    block = config[EXPERIMENT_BLOCK[experiment]]
    labelled = _PLANNERS[experiment](config, block, best_epochs)
    if experiment == "soft_vs_hard" and external_sets:
        labelled += external_runs(config, block, best_epochs, external_sets)
    if experiment in EXTERNAL_EXPERIMENTS and external_sets and block.get("external_sets"):
        labelled += beside_random(labelled, external_sets)
    runs = [(images, labels, student) for student in block_students(config, block) for images, labels in labelled]
    if experiment == "soft_vs_hard":
        runs += online_runs(config, block, best_epochs, external_sets)
    return list(dict.fromkeys(runs))


PopulationGroups = dict[str, dict[tuple[str, str], list[str]]]


def population_groups(config: dict, best_epochs: dict[int, int] | None,
                      external_sets: dict[str, dict] | None = None) -> PopulationGroups:
    """experiment -> (image set, protocol) -> the label specs one grouped job trains together
    (student_populations: per_image_set).

    Every run of the enabled experiments appears exactly once, under the first experiment that
    compares it, the expert-epoch sweep first: the sweep's runs are known before `auto` is, so its
    groups never wait for its own result. With `best_epochs` None the other experiments' groups
    lack their `auto` runs; ask for them only once the sweep has run.
    """
    order = [SWEEP] + [name for name in STUDENT_EXPERIMENTS if name != SWEEP]
    groups: PopulationGroups = {}
    grouped: set[StudentRun] = set()
    for experiment in order:
        if not enabled(config, experiment):
            continue
        for run in student_runs(config, experiment, None if experiment == SWEEP else best_epochs, external_sets):
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


def trajectory_epochs(config: dict) -> int:
    """The last epoch MTT's replay buffer holds: the largest max_start_epoch + expert_epochs over
    the IPCs it distils (METHOD.md 8.1), one buffer serving them all."""
    return max(settings.max_start_epoch + settings.expert_epochs
               for settings in (method_settings(config, "mtt", ipc)
                                for ipc in overridden_ipcs(method_block(config, "mtt"))))


def uses_method(config: dict, method: str) -> bool:
    return enabled(config, "soft_vs_hard") and method in config["benchmark"]["methods"]


def trained_epochs(config: dict) -> dict[tuple[str, int], int]:
    """(trained run `{arch}-lr{lr}`, seed) -> how many epochs that expert trains.

    The first seed of every run trains the run's epochs (its curve is the expert-training figure);
    each other seed trains only as far as the labels and the replay buffer that use it need: an
    ensemble of N reads the run's first N seeds, MTT's buffer its first num_experts. A seed nothing
    uses is not trained. Labels waiting for `auto` are left out, so `auto` cannot pick ensemble
    epochs (a config error, labelworth/checks.py)."""
    trained = trained_runs(config)
    epochs = {(folder, settings.seeds[0]): settings.epochs for folder, settings in trained.items()}

    def need(folder: str, seed: int, epoch: int) -> None:
        epochs[(folder, seed)] = max(epochs.get((folder, seed), 0), epoch)

    for experiment in STUDENT_EXPERIMENTS:
        if enabled(config, experiment):
            for _, label, _ in student_runs(config, experiment):
                spec = parse_label_spec(label)
                if spec.uses_experts:
                    folder = labels_folder(config, spec)
                    for seed in trained[folder].seeds[: spec.ensemble_size]:
                        need(folder, seed, spec.expert_epoch)
    if uses_method(config, "mtt"):
        folder, seeds = mtt_buffer(config)
        for seed in seeds:
            need(folder, seed, trajectory_epochs(config))
    return epochs

