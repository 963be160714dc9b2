"""What a workflow config names: its expert runs, its student protocols and its methods' settings,
each built once into its settings object (labelworth/settings.py).

Plain Python (no torch), imported by Snakemake at parse time.

* `experts: {name: {arch, lr, epochs, seeds, batch_size, processes}}` names expert runs; the default
  run of every block and label that names none is the only one, or `defaults.expert_run`. A trained run is named by what it is,
  `{arch}-lr{lr}` (its folder under experts/ and its token in label specs), so two names with the
  same settings share one trained expert: their seeds join (in order) and the longer epochs win.
* `students: {name: {arch, optimizer, lr, epochs, seeds, ..., by_images_per_class}}` names student
  protocols; the default is the only one, or `defaults.student`. The name is the file name of a population's result
  (`students/{image set}/{labels}/{name}.json`), so two protocols never collide.
* `external_image_sets: {name: {path, format, labels, normalised}}` names sets distilled elsewhere;
  each is the image set `external-{name}-ipc{n}`, n counted from its files (labelworth/external.py).
"""

from __future__ import annotations

import dataclasses
import difflib

from labelworth.errors import LabelworthError
from labelworth.settings import (
    PER_IPC, SETTINGS_BY_METHOD, ExpertSettings, ExternalImageSetSettings, StudentSettings, block_values, build_settings, settings_keys,
)
from labelworth.specs import LabelSpec, format_expert_run, parse_arch

AUTO = "auto"  # an expert epoch chosen by the expert-epoch sweep for that IPC


def close_match(word: str, choices) -> str:
    """' (did you mean `x`?)' for a misspelt name, '' when nothing is close."""
    matches = difflib.get_close_matches(str(word), [str(choice) for choice in choices], n=1)
    return f" (did you mean `{matches[0]}`?)" if matches else ""


# --------------------------------------------------------------------------------------------------
# Expert runs


def expert_run_names(config: dict) -> list[str]:
    return list(config["experts"])


def _default(config: dict, block: str, key: str) -> str:
    """The only name of config[block], or the one `defaults.<key>` names: never the first listed,
    since a YAML mapping's order does not survive every tool that rewrites it."""
    names = list(config[block])
    if len(names) == 1:
        return names[0]
    chosen = config.get("defaults", {}).get(key)
    if chosen is None:
        raise LabelworthError(f"defaults.{key}: {block} lists {len(names)} ({', '.join(names)}); name the one "
                              f"that blocks without their own `{key}` use")
    if chosen not in names:
        raise LabelworthError(f"defaults.{key}: {chosen!r} is not in {block}:{close_match(chosen, names)}; "
                              f"known: {', '.join(names)}")
    return chosen


def default_expert_run(config: dict) -> str:
    return _default(config, "experts", "expert_run")


def expert_settings(config: dict, name: str) -> ExpertSettings:
    """The settings of the run `experts.<name>` (a LabelworthError naming the key if unknown or bad)."""
    runs = config["experts"]
    if name not in runs:
        raise LabelworthError(f"expert run {name!r} is not in experts:{close_match(name, runs)}; "
                              f"known runs: {', '.join(runs)}")
    return build_settings(ExpertSettings, dict(runs[name]), f"experts.{name}")


def run_folder(config: dict, name: str) -> str:
    """`{arch}-lr{lr}`: the trained run a named run is."""
    settings = expert_settings(config, name)
    return format_expert_run(settings.arch, settings.lr)


def trained_runs(config: dict) -> dict[str, ExpertSettings]:
    """`{arch}-lr{lr}` -> the settings every named run of it shares: the seeds of all of them in
    increasing order (the first trains the run's epochs, an ensemble of N reads the first N), the
    longest epochs. Runs of one folder that differ in anything else (batch
    size, processes) would overwrite each other's experts, so they are a config error."""
    trained: dict[str, ExpertSettings] = {}
    first_name: dict[str, str] = {}
    for name in expert_run_names(config):
        settings = expert_settings(config, name)
        folder = format_expert_run(settings.arch, settings.lr)
        if folder not in trained:
            trained[folder] = dataclasses.replace(settings, seeds=tuple(sorted(settings.seeds)))
            first_name[folder] = name
            continue
        known = trained[folder]
        for key in ("batch_size", "processes"):
            if getattr(known, key) != getattr(settings, key):
                raise LabelworthError(
                    f"experts.{name}.{key}: {getattr(settings, key)!r}, but experts.{first_name[folder]} trains the "
                    f"same run {folder} with {getattr(known, key)!r}; one folder holds one run, so give them the "
                    "same value or another lr")
        seeds = tuple(sorted(set(known.seeds) | set(settings.seeds)))
        trained[folder] = dataclasses.replace(known, seeds=seeds, epochs=max(known.epochs, settings.epochs))
    return trained


def label_run(config: dict, name: str) -> str | None:
    """The run token a label spec of run `name` carries: None for the default run's folder."""
    folder = run_folder(config, name)
    return None if folder == run_folder(config, default_expert_run(config)) else folder


def labels_folder(config: dict, spec: LabelSpec) -> str:
    """The trained run (`{arch}-lr{lr}`) whose experts an expert label spec reads."""
    return spec.expert_run or run_folder(config, default_expert_run(config))


def block_expert_run(config: dict, block: dict) -> str:
    """The expert run a config block names (`expert_run`), or the default run."""
    return block.get("expert_run", default_expert_run(config))


# --------------------------------------------------------------------------------------------------
# Student protocols


def student_protocols(config: dict) -> list[str]:
    return list(config["students"])


def default_student(config: dict) -> str:
    return _default(config, "students", "student")


def student_settings(config: dict, name: str, images_per_class: int | None = None) -> StudentSettings:
    """Protocol `students.<name>` for students of `images_per_class` images per class: its block
    overridden by its `by_images_per_class` entry for that IPC (the paper tunes the student lr per
    IPC, METHOD.md 7 and 10.3)."""
    protocols = config["students"]
    if name not in protocols:
        raise LabelworthError(f"student protocol {name!r} is not in students:{close_match(name, protocols)}; "
                              f"known protocols: {', '.join(protocols)}")
    where = f"students.{name}" + (f" ({PER_IPC} {images_per_class})" if images_per_class is not None else "")
    return build_settings(StudentSettings, block_values(protocols[name], images_per_class), where)


def block_students(config: dict, block: dict) -> list[str]:
    """The student protocols a config block names (`students`, a list, or `student`), or the default."""
    if "students" in block:
        return list(block["students"])
    return [block.get("student", default_student(config))]


# --------------------------------------------------------------------------------------------------
# Synthesis methods

# Keys of a methods.<method> block that choose the method's inputs (which experts), not its
# iterations: they change the input files, which is what reruns the method.
INPUT_KEYS = {"mtt": ("expert_run", "num_experts"), "sre2l": ("teacher_run", "teacher_epoch", "relabel_student")}


def method_block(config: dict, method: str) -> dict:
    return config.get("methods", {}).get(method, {})


def method_settings(config: dict, method: str, images_per_class: int | None = None):
    """A synthesis method's settings: the code's defaults, overridden by the config's
    methods.<method> block, overridden by its `by_images_per_class` entry for this IPC (the papers
    tune MTT per IPC, METHOD.md 8.1). DM embeds with, and BPTT trains, the default expert run's
    architecture unless the block names another."""
    settings_class = SETTINGS_BY_METHOD[method]
    values = block_values(method_block(config, method), images_per_class, INPUT_KEYS.get(method, ()))
    if "arch" in settings_keys(settings_class):
        values.setdefault("arch", expert_settings(config, default_expert_run(config)).arch)
    where = f"methods.{method}" + (f" ({PER_IPC} {images_per_class})" if images_per_class is not None else "")
    return build_settings(settings_class, values, where)


def mtt_buffer(config: dict) -> tuple[str, tuple[int, ...]]:
    """(trained run, seeds) of MTT's replay buffer: methods.mtt.expert_run (default: the default
    run) and its first methods.mtt.num_experts seeds (default: all)."""
    block = method_block(config, "mtt")
    folder = run_folder(config, block.get("expert_run", default_expert_run(config)))
    seeds = trained_runs(config)[folder].seeds
    return folder, seeds[: block.get("num_experts", len(seeds))]


def sre2l_teacher(config: dict) -> tuple[str, int]:
    """(trained run, epoch) of the batch-norm expert SRe2L inverts (METHOD.md 8.6): the run
    methods.sre2l.teacher_run (default: the default run) at methods.sre2l.teacher_epoch (default:
    that run's last epoch)."""
    block = method_block(config, "sre2l")
    name = block.get("teacher_run", default_expert_run(config))
    return run_folder(config, name), block.get("teacher_epoch", expert_settings(config, name).epochs)


def check_sre2l_teacher(config: dict) -> None:
    block = method_block(config, "sre2l")
    name = block.get("teacher_run", default_expert_run(config))
    settings = expert_settings(config, name)
    if not parse_arch(settings.arch).uses_batchnorm:
        raise LabelworthError(
            f"methods.sre2l.teacher_run: run {name!r} ({settings.arch}) has no batch norm, whose statistics "
            "SRe2L matches; name a run of a convnet with -batchnorm or of a resnet")
    epoch = sre2l_teacher(config)[1]
    if epoch > settings.epochs:
        raise LabelworthError(f"methods.sre2l.teacher_epoch: {epoch} is past experts.{name}.epochs "
                              f"({settings.epochs}), the teacher's training length")


def external_set_names(config: dict) -> list[str]:
    """The names of the config's external image sets (`external_image_sets`), in config order."""
    return list(config.get("external_image_sets") or {})


def external_set_settings(config: dict, name: str) -> ExternalImageSetSettings:
    """`external_image_sets.<name>` as settings; `normalised` may be a YAML boolean or `auto`."""
    values = dict(config["external_image_sets"][name])
    if isinstance(values.get("normalised"), bool):
        values["normalised"] = str(values["normalised"]).lower()
    return build_settings(ExternalImageSetSettings, values, f"external_image_sets.{name}")
