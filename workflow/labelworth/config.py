"""Checks of a workflow config that a JSON schema cannot express, and the experiment plans derived
from it. Plain Python (no torch): Snakemake runs this at parse time, so a bad config fails before any
job starts, with a message naming the key.
"""

from __future__ import annotations

import dataclasses
import re

from labelworth.errors import LabelworthError
from labelworth.method_settings import SETTINGS_BY_METHOD
from labelworth.specs import (
    LABELLING_METHODS, SYNTHESIS_METHODS, ImageSetSpec, LabelSpec, LabelTransform, dataset_spec, format_arch, format_image_set,
    format_label_spec, parse_arch, parse_label_spec,
)

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


def check_number_strings(config: dict) -> None:
    hits = find_number_strings(config)
    if hits:
        raise LabelworthError(
            f"{'; '.join(hits)} read as text, not a number: YAML needs a dot and a signed exponent, "
            "e.g. write 1.0e-3 instead of 1e-3"
        )


AUTO = "auto"  # an expert epoch chosen by the expert-epoch sweep for that IPC

# Experiments whose figures compare student populations, in the order `rule all` lists them.
STUDENT_EXPERIMENTS = ("soft_vs_hard", "expert_epoch_sweep", "temperature_grid", "label_swap", "zero_shot",
                       "scaling_law", "pareto", "ensembles", "image_selection", "generated_labels")
# Config block of each experiment (the spine's benchmark block draws the soft_vs_hard figure).
EXPERIMENT_BLOCK = {name: name for name in STUDENT_EXPERIMENTS} | {"soft_vs_hard": "benchmark"}

StudentRun = tuple[str, str]  # (image set, label spec): one population of students


def expert_label(epoch: int, temperature: float = 1.0, transforms: tuple = (), ensemble_size: int = 1) -> str:
    source = "expert" if ensemble_size == 1 else "ensemble"
    return format_label_spec(LabelSpec(source, epoch, ensemble_size, temperature, tuple(transforms)))


def _random(ipc: int, without_class: int | None = None) -> str:
    return format_image_set(ImageSetSpec("random", ipc, without_class))


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def enabled(config: dict, experiment: str) -> bool:
    block = config.get(EXPERIMENT_BLOCK[experiment])
    return bool(block) and block.get("enabled", True)


def uses_auto_epochs(config: dict) -> bool:
    """Whether any enabled experiment asks for `expert_epoch: auto` (so the sweep must run first)."""
    for experiment in STUDENT_EXPERIMENTS:
        if enabled(config, experiment):
            epochs = config[EXPERIMENT_BLOCK[experiment]].get("expert_epoch")
            if AUTO in _as_list(epochs if epochs is not None else []):
                return True
    return False


def _epoch_for(value, ipc: int, best_epochs: dict[int, int] | None, where: str) -> int | None:
    """An expert epoch from config: an int, or `auto` = the sweep's best epoch for this IPC.

    Returns None for `auto` while the sweep has not run yet (`best_epochs` is None)."""
    if value != AUTO:
        return value
    if best_epochs is None:
        return None
    if ipc not in best_epochs:
        raise LabelworthError(
            f"{where}.expert_epoch is auto, but expert_epoch_sweep.images_per_class does not include {ipc}"
        )
    return best_epochs[ipc]


def _benchmark_runs(block, best) -> list[StudentRun]:
    """Every method's images at every IPC with hard labels, the method's own labels if it makes any,
    and the expert's soft labels at the IPC's epoch (the paper's Table 2 and Figure 1)."""
    runs = []
    synthesised = block.get("synthesis_images_per_class", block["images_per_class"])
    for method in block["methods"]:
        for ipc, epoch in zip(block["images_per_class"], block["expert_epoch"]):
            if method in SYNTHESIS_METHODS and ipc not in synthesised:
                continue
            images = format_image_set(ImageSetSpec(method, ipc))
            epoch = _epoch_for(epoch, ipc, best, "benchmark")
            runs += [(images, "hard")]
            if method in LABELLING_METHODS:
                runs += [(images, "learned")]
            if epoch is not None:
                runs += [(images, expert_label(epoch, block.get("temperature", 1.0)))]
    return runs


def _sweep_runs(block, best) -> list[StudentRun]:
    return [(_random(ipc), label) for ipc in block["images_per_class"]
            for label in ["hard"] + [expert_label(epoch) for epoch in block["expert_epochs"]]]


def _temperature_runs(block, best) -> list[StudentRun]:
    return [(_random(ipc), expert_label(epoch, temperature)) for ipc in _as_list(block["images_per_class"])
            for epoch in block["expert_epochs"] for temperature in block["temperatures"]]


def _swap_runs(block, best) -> list[StudentRun]:
    runs = []
    for ipc in block["images_per_class"]:
        epoch = _epoch_for(block["expert_epoch"], ipc, best, "label_swap")
        if epoch is None:
            continue
        controls = [(), (LabelTransform("shuffle"),), (LabelTransform("smooth"),)]
        swaps = [(LabelTransform("swap", rank),) for rank in block["ranks"]]
        runs += [(_random(ipc), expert_label(epoch, transforms=t)) for t in controls + swaps]
    return runs


def _zero_shot_runs(block, best) -> list[StudentRun]:
    ipc = block["images_per_class"]
    epoch = _epoch_for(block["expert_epoch"], ipc, best, "zero_shot")
    if epoch is None:
        return []
    runs = [(_random(ipc), expert_label(epoch))]
    for subject in block["subject_classes"]:
        runs += [(_random(ipc, without_class=subject), expert_label(epoch)),
                 (_random(ipc), expert_label(epoch, transforms=(LabelTransform("zeroclass", subject),)))]
    return runs


def _scaling_runs(block, best) -> list[StudentRun]:
    runs = []
    for ipc in block["images_per_class"]:
        epoch = _epoch_for(block["expert_epoch"], ipc, best, "scaling_law")
        runs += [(_random(ipc), "hard")]
        if epoch is not None:
            runs += [(_random(ipc), expert_label(epoch))]
            runs += [(_random(ipc), expert_label(epoch, transforms=(LabelTransform("top", k),)))
                     for k in block["top_k"]]
    return runs


def _pareto_runs(block, best) -> list[StudentRun]:
    return [(_random(ipc), label) for ipc in block["images_per_class"]
            for label in ["hard"] + [expert_label(epoch) for epoch in block["expert_epochs"]]]


def _ensemble_runs(block, best) -> list[StudentRun]:
    runs = []
    for ipc in block["images_per_class"]:
        epoch = _epoch_for(block["expert_epoch"], ipc, best, "ensembles")
        if epoch is not None:
            runs += [(_random(ipc), expert_label(epoch, ensemble_size=size)) for size in block["sizes"]]
    return runs


def _selection_runs(block, best) -> list[StudentRun]:
    ipc = block["images_per_class"]
    epoch = _epoch_for(block["expert_epoch"], ipc, best, "image_selection")
    if epoch is None:
        return []
    image_sets = [_random(ipc)] + [format_image_set(ImageSetSpec(f"lossbin{b}", ipc)) for b in block["bins"]]
    return [(images, label) for images in image_sets for label in ("hard", expert_label(epoch))]


def _generated_runs(block, best) -> list[StudentRun]:
    runs = []
    for ipc in block["images_per_class"]:
        epoch = _epoch_for(block["expert_epoch"], ipc, best, "generated_labels")
        runs += [(_random(ipc), "hard")]
        runs += [(_random(ipc), format_label_spec(LabelSpec("noise", true_class_mass=p)))
                 for p in block["true_class_mass"]]
        if epoch is not None:
            boosts = [(LabelTransform("boost", q, block["boost_alpha"]),) for q in block["boost_fraction"]]
            runs += [(_random(ipc), expert_label(epoch, transforms=t)) for t in [()] + boosts]
    return runs


_PLANNERS = {
    "soft_vs_hard": _benchmark_runs, "expert_epoch_sweep": _sweep_runs, "temperature_grid": _temperature_runs,
    "label_swap": _swap_runs, "zero_shot": _zero_shot_runs, "scaling_law": _scaling_runs,
    "pareto": _pareto_runs, "ensembles": _ensemble_runs, "image_selection": _selection_runs,
    "generated_labels": _generated_runs,
}


def student_runs(config: dict, experiment: str, best_epochs: dict[int, int] | None = None) -> list[StudentRun]:
    """The (image set, label spec) populations an experiment's figure compares, without repeats.

    With `best_epochs` None, runs whose epoch is `auto` are left out (they are known only after the
    expert-epoch sweep has run)."""
    runs = _PLANNERS[experiment](config[EXPERIMENT_BLOCK[experiment]], best_epochs)
    return list(dict.fromkeys(runs))


SWEEP = "expert_epoch_sweep"  # the experiment whose table gives `auto` its meaning


def population_groups(config: dict, best_epochs: dict[int, int] | None) -> dict[str, dict[str, list[str]]]:
    """experiment -> image set -> the label specs one grouped job trains together (per_image_set).

    Every (image set, label spec) run of the enabled experiments appears exactly once, under the
    first experiment that compares it, the expert-epoch sweep first: the sweep's runs are known
    before `auto` is, so its groups never wait for its own result. With `best_epochs` None the other
    experiments' groups lack their `auto` runs; ask for them only once the sweep has run.
    """
    order = [SWEEP] + [name for name in STUDENT_EXPERIMENTS if name != SWEEP]
    groups: dict[str, dict[str, list[str]]] = {}
    grouped: set[StudentRun] = set()
    for experiment in order:
        if not enabled(config, experiment):
            continue
        for run in student_runs(config, experiment, None if experiment == SWEEP else best_epochs):
            if run not in grouped:
                grouped.add(run)
                image_set, labels = run
                groups.setdefault(experiment, {}).setdefault(image_set, []).append(labels)
    return groups


def population_of(groups: dict[str, dict[str, list[str]]], image_set: str, labels: str) -> str:
    """The experiment whose group of `image_set` trains `labels` (see population_groups)."""
    for experiment, image_sets in groups.items():
        if labels in image_sets.get(image_set, []):
            return experiment
    raise LabelworthError(
        f"students of {image_set} on {labels} are in no experiment's population; with "
        "student.populations: per_image_set only the runs an enabled experiment compares are trained"
    )


def ensemble_expert_epochs(config: dict) -> int:
    """How far the experts after the first must train: the latest epoch any ensemble label uses."""
    latest = 0
    for experiment in STUDENT_EXPERIMENTS:
        if enabled(config, experiment):
            for _, label in student_runs(config, experiment):
                spec = parse_label_spec(label)
                if spec.source == "ensemble":
                    latest = max(latest, spec.expert_epoch)
    return latest


# Keys of a methods.<method> block that choose the method's inputs (which experts), not its
# iterations: they change the input files, which is what reruns the method.
INPUT_KEYS = {"mtt": ("num_experts",), "sre2l": ("teacher_arch", "teacher_epoch")}
PER_IPC = "by_images_per_class"  # a list of {images_per_class: n, <key>: value, ...} overrides


def overridden_ipcs(config: dict, method: str) -> list[int | None]:
    """None (the block's own settings) and every IPC the block's `by_images_per_class` overrides."""
    block = config.get("methods", {}).get(method, {})
    return [None] + [entry["images_per_class"] for entry in block.get(PER_IPC, [])]


def method_settings(config: dict, method: str, images_per_class: int | None = None):
    """A synthesis method's settings: the code's defaults, overridden by the config's
    methods.<method> block, overridden by its `by_images_per_class` entry for this IPC (the papers
    tune MTT per IPC, METHOD.md 8.1). DM embeds with, and BPTT trains, the expert architecture unless
    the block names another."""
    block = dict(config.get("methods", {}).get(method, {}))
    for entry in block.pop(PER_IPC, []):
        if entry["images_per_class"] == images_per_class:
            block.update({key: value for key, value in entry.items() if key != "images_per_class"})
    defaults = {"arch": config["expert"]["arch"]} if method in ("dm", "bptt") else {}
    input_keys = INPUT_KEYS.get(method, ())
    values = {**defaults, **{key: value for key, value in block.items() if key not in input_keys}}
    known = [field.name for field in dataclasses.fields(SETTINGS_BY_METHOD[method])]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise LabelworthError(f"methods.{method}: unknown key(s) {', '.join(unknown)}; "
                              f"known: {', '.join(known + list(input_keys))}")
    return SETTINGS_BY_METHOD[method](**values)


def trajectory_epochs(config: dict) -> int:
    """The last epoch MTT's replay buffer holds: the largest max_start_epoch + expert_epochs over
    the IPCs it distils (METHOD.md 8.1), one buffer serving them all."""
    return max(settings.max_start_epoch + settings.expert_epochs
               for settings in (method_settings(config, "mtt", ipc) for ipc in overridden_ipcs(config, "mtt")))


def sre2l_teacher(config: dict) -> tuple[str, int]:
    """The batch-norm expert SRe2L inverts (METHOD.md 8.6), as (arch, epoch): by default the expert
    architecture with batch norm, at the experts' last epoch."""
    block = config.get("methods", {}).get("sre2l", {})
    expert = parse_arch(config["expert"]["arch"])
    default = expert if expert.uses_batchnorm else dataclasses.replace(expert, norm="batchnorm")
    return block.get("teacher_arch", format_arch(default)), block.get("teacher_epoch", config["expert"]["epochs"])


def _check_sre2l_teacher(config: dict) -> None:
    arch, epoch = sre2l_teacher(config)
    try:
        spec = parse_arch(arch)
    except LabelworthError as error:
        raise LabelworthError(f"methods.sre2l.teacher_arch: {error}") from None
    if not spec.uses_batchnorm:
        raise LabelworthError(f"methods.sre2l.teacher_arch: {arch!r} has no batch norm, whose statistics "
                              "SRe2L matches; use a convnet with -batchnorm or a resnet")
    if epoch > config["expert"]["epochs"]:
        raise LabelworthError(f"methods.sre2l.teacher_epoch: {epoch} is past expert.epochs "
                              f"({config['expert']['epochs']}), the teacher's training length")


def check_label_spec(text: str, config: dict, where: str) -> LabelSpec:
    """Parse a label spec and check it against the configured experts and classes."""
    try:
        spec = parse_label_spec(text)
    except LabelworthError as error:
        raise LabelworthError(f"{where}: {error}") from None
    expert = config["expert"]
    if spec.uses_experts and spec.expert_epoch > expert["epochs"]:
        raise LabelworthError(
            f"{where}: label spec {text!r} uses expert epoch {spec.expert_epoch}, but expert.epochs is "
            f"{expert['epochs']}; raise expert.epochs or pick an epoch in 0..{expert['epochs']}"
        )
    if spec.ensemble_size > len(expert["seeds"]):
        raise LabelworthError(
            f"{where}: label spec {text!r} needs {spec.ensemble_size} experts, but expert.seeds lists "
            f"{len(expert['seeds'])}"
        )
    num_classes = dataset_spec(config["dataset"]).num_classes
    limits = {"swap": num_classes - 1, "top": num_classes, "zeroclass": num_classes - 1}
    for transform in spec.transforms:
        if transform.kind in limits and transform.value > limits[transform.kind]:
            raise LabelworthError(
                f"{where}: label spec {text!r}: {transform.kind} takes at most {limits[transform.kind]} "
                f"with {num_classes} classes"
            )
    return spec


def _check_images_per_class(config: dict, where: str, values) -> None:
    spec = dataset_spec(config["dataset"])
    for ipc in _as_list(values):
        if ipc > spec.min_train_per_class:
            raise LabelworthError(
                f"{where}.images_per_class: {ipc} is more than the smallest {spec.name} class has "
                f"({spec.min_train_per_class} training images)"
            )


def _check_auto(config: dict, experiment: str) -> None:
    block = config[EXPERIMENT_BLOCK[experiment]]
    if AUTO not in _as_list(block.get("expert_epoch", [])):
        return
    where = EXPERIMENT_BLOCK[experiment]
    if not enabled(config, "expert_epoch_sweep"):
        raise LabelworthError(f"{where}.expert_epoch is auto, which needs the expert_epoch_sweep block enabled")
    swept = set(config["expert_epoch_sweep"]["images_per_class"])
    for ipc in _as_list(block["images_per_class"]):
        if ipc not in swept:
            raise LabelworthError(
                f"{where}.expert_epoch is auto, but expert_epoch_sweep.images_per_class does not include {ipc}"
            )


def check_config(config: dict) -> None:
    """Raise a LabelworthError naming the key for anything the schema cannot catch."""
    dataset = dataset_spec(config["dataset"])
    for key in ("expert", "student"):
        try:
            parse_arch(config[key]["arch"])
        except LabelworthError as error:
            raise LabelworthError(f"{key}.arch: {error}") from None
    if config["student"].get("compile") and config["student"].get("engine") == "vectorised":
        raise LabelworthError("student.compile is an option of the sequential engine; the vectorised engine "
                              "batches the students with torch.func instead")
    processes = config["expert"].get("processes", 1)
    if processes > 1 and dataset.cached_as_tensors:
        raise LabelworthError(f"expert.processes is {processes}, but data-parallel experts are for datasets read "
                              f"from image files (imagenet); {dataset.name} trains in one process")
    block = config["benchmark"]
    if len(block["expert_epoch"]) != len(block["images_per_class"]):
        raise LabelworthError(
            f"benchmark.expert_epoch has {len(block['expert_epoch'])} entries but "
            f"benchmark.images_per_class has {len(block['images_per_class'])}; give one epoch per IPC"
        )
    missing = set(block.get("synthesis_images_per_class", [])) - set(block["images_per_class"])
    if missing:
        raise LabelworthError(f"benchmark.synthesis_images_per_class: {sorted(missing)} not in "
                              "benchmark.images_per_class, whose entries give each IPC its expert epoch")
    _check_sre2l_teacher(config)
    for method in config.get("methods", {}):
        for ipc in overridden_ipcs(config, method):
            method_settings(config, method, ipc)  # raises for unknown keys
    if enabled(config, "zero_shot"):
        for subject in config["zero_shot"]["subject_classes"]:
            if subject >= dataset.num_classes:
                raise LabelworthError(
                    f"zero_shot.subject_classes: {subject} is not a class of {dataset.name} "
                    f"(0..{dataset.num_classes - 1})"
                )
    # `auto` epochs stand in as epoch 0 here, so labels waiting for the sweep are checked too.
    swept = config["expert_epoch_sweep"]["images_per_class"] if enabled(config, "expert_epoch_sweep") else []
    placeholder_epochs = {ipc: 0 for ipc in swept}
    for experiment in STUDENT_EXPERIMENTS:
        if not enabled(config, experiment):
            continue
        where = EXPERIMENT_BLOCK[experiment]
        _check_images_per_class(config, where, config[where]["images_per_class"])
        _check_auto(config, experiment)
        for image_set, label in student_runs(config, experiment, placeholder_epochs):
            check_label_spec(label, config, f"{where} ({image_set})")
