"""Every image-set method in one table: what it reads besides the prepared data, and which function
makes it. The Snakemake rules ask it for a method's inputs (labelworth/rules common.smk), the CLI
for the function to call, so a new method is one entry here, its settings class and its module.

Plain Python, no torch: the modules are imported only when a method runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from labelworth.errors import LabelworthError

# What a method may read besides the prepared data, each a `distill-images --<name>` option:
#   trajectories     MTT's replay buffer (dump-trajectories)
#   teacher          the batch-norm expert checkpoint SRe2L inverts and relabels with
#   ranking_expert   the expert checkpoint whose per-image loss ranks real images (lossbin)
INPUT_OPTIONS = ("trajectories", "teacher", "ranking_expert")


@dataclass(frozen=True)
class ImageMethod:
    module: str  # labelworth.distill.<module>
    function: str  # its function that makes the set
    inputs: tuple[str, ...] = ()  # names from INPUT_OPTIONS
    synthesised: bool = True  # optimises pixels (resumable, a loss curve, `--options`)


METHODS = {
    "random": ImageMethod("random", "distill_random", synthesised=False),
    "lossbin": ImageMethod("select_by_loss", "distill_by_loss", ("ranking_expert",), synthesised=False),
    "dm": ImageMethod("dm", "distill_dm"),
    "mtt": ImageMethod("mtt", "distill_mtt", ("trajectories",)),
    "bptt": ImageMethod("bptt", "distill_bptt"),
    "sre2l": ImageMethod("sre2l", "distill_sre2l", ("teacher",)),
}


def image_method(kind: str) -> ImageMethod:
    """The entry of an image set's kind (`specs.ImageSetSpec.kind`: `lossbin3` is of kind `lossbin`)."""
    if kind not in METHODS:
        raise LabelworthError(f"unknown image-set method {kind!r}; known: {', '.join(METHODS)}")
    return METHODS[kind]


def method_function(kind: str):
    """The function that makes a set of `kind` (imports its module, and with it torch)."""
    entry = image_method(kind)
    return getattr(importlib.import_module(f"labelworth.distill.{entry.module}"), entry.function)
