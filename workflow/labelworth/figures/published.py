"""The paper's published numbers (published.yaml beside this file), matched to our table cells.

A published accuracy matches a cell when dataset, image method, IPC and label kind agree, and the
expert and student architectures agree wherever the paper's table names them."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

PUBLISHED = Path(__file__).with_name("published.yaml")


@lru_cache(maxsize=1)
def published() -> dict:
    return yaml.safe_load(PUBLISHED.read_text())


def published_accuracy(dataset: str, method: str, ipc: int, labels: str, expert_arch: str = "",
                       student_arch: str = "") -> dict | None:
    """The published cell for one of our populations (value and std in percent, source), or None."""
    for entry in published()["accuracy"]:
        if (entry["dataset"], entry["method"], entry["ipc"], entry["labels"]) != (dataset, method, ipc, labels):
            continue
        if entry.get("anchor"):
            continue
        if entry.get("expert", expert_arch) == expert_arch and entry.get("student", student_arch) == student_arch:
            return entry
    return None


def anchors(dataset: str) -> list[dict]:
    """The hard-label reference numbers of methods we do not run (DC, DSA) on `dataset`."""
    return [entry for entry in published()["accuracy"] if entry["dataset"] == dataset
            and (entry.get("anchor"))]


def source_text(key: str) -> str:
    return published()["sources"][key]
