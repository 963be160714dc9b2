"""Checks of a workflow config that a JSON schema cannot express, and the experiment plans derived
from it. Plain Python (no torch): Snakemake runs this at parse time, so a bad config fails before any
job starts, with a message naming the key.
"""

from __future__ import annotations

import re

from labelworth.errors import LabelworthError
from labelworth.specs import LabelSpec, dataset_spec, format_label_spec, parse_arch, parse_label_spec

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


def benchmark_label_specs(config: dict) -> dict[int, list[str]]:
    """For each benchmark IPC: hard labels and the expert's soft labels at that IPC's expert epoch."""
    block = config["benchmark"]
    temperature = block.get("temperature", 1.0)
    plan = {}
    for ipc, epoch in zip(block["images_per_class"], block["expert_epoch"]):
        soft = LabelSpec("expert", expert_epoch=epoch, temperature=temperature)
        plan[ipc] = ["hard", format_label_spec(soft)]
    return plan


def check_label_spec(text: str, config: dict, where: str) -> LabelSpec:
    """Parse a label spec and check it against the configured experts."""
    try:
        spec = parse_label_spec(text)
    except LabelworthError as error:
        raise LabelworthError(f"{where}: {error}") from None
    expert = config["expert"]
    if spec.is_soft and spec.expert_epoch > expert["epochs"]:
        raise LabelworthError(
            f"{where}: label spec {text!r} uses expert epoch {spec.expert_epoch}, but expert.epochs is "
            f"{expert['epochs']}; raise expert.epochs or pick an epoch in 0..{expert['epochs']}"
        )
    if spec.ensemble_size > len(expert["seeds"]):
        raise LabelworthError(
            f"{where}: label spec {text!r} needs {spec.ensemble_size} experts, but expert.seeds lists "
            f"{len(expert['seeds'])}"
        )
    return spec


def check_config(config: dict) -> None:
    """Raise a LabelworthError naming the key for anything the schema cannot catch."""
    spec = dataset_spec(config["dataset"])
    for key in ("expert", "student"):
        try:
            parse_arch(config[key]["arch"])
        except LabelworthError as error:
            raise LabelworthError(f"{key}.arch: {error}") from None
    block = config["benchmark"]
    if len(block["expert_epoch"]) != len(block["images_per_class"]):
        raise LabelworthError(
            f"benchmark.expert_epoch has {len(block['expert_epoch'])} entries but "
            f"benchmark.images_per_class has {len(block['images_per_class'])}; give one epoch per IPC"
        )
    for ipc in block["images_per_class"]:
        if ipc > spec.min_train_per_class:
            raise LabelworthError(
                f"benchmark.images_per_class: {ipc} is more than the smallest {spec.name} class has "
                f"({spec.min_train_per_class} training images)"
            )
    for ipc, label_specs in benchmark_label_specs(config).items():
        for text in label_specs:
            check_label_spec(text, config, f"benchmark (IPC {ipc})")
