"""Hyperparameters of the synthesis methods, with their defaults, and their command-line form.

Plain Python (no torch), because the Snakefile imports it at parse time to know how many expert
epochs the MTT replay buffer needs. Field names are the keys of the config's `methods.<method>`
block and of `labelworth distill-images --method-options key=value`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from labelworth.errors import LabelworthError


@dataclass(frozen=True)
class DmSettings:
    """DM (METHOD.md 8.3): `arch` is the randomly initialised embedding network."""

    arch: str = "convnet-d3"
    iterations: int = 200
    lr_img: float = 1.0
    batch_real: int = 256
    save_every: int = 100


@dataclass(frozen=True)
class MttSettings:
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


def run_settings(settings) -> dict:
    """The settings that make two runs' iterations interchangeable: all but how long the run is and
    how often it saves, so a longer run resumes a shorter one."""
    return {key: value for key, value in dataclasses.asdict(settings).items()
            if key not in ("iterations", "save_every")}


def settings_from_options(settings_class, options: list[str]):
    """A settings dataclass from `key=value` strings (keys = the config's `methods.<method>` keys),
    each value converted to its field's type; unknown keys and bad values are LabelworthErrors."""
    fields = {field.name: field for field in dataclasses.fields(settings_class)}
    values = {}
    for option in options:
        key, separator, text = option.partition("=")
        if not separator or key not in fields:
            raise LabelworthError(
                f"method option {option!r}: expected key=value with key one of {', '.join(fields)}")
        kind = type(fields[key].default)
        if kind is bool and text not in ("True", "False", "true", "false"):
            raise LabelworthError(f"method option {option!r}: expected true or false")
        try:
            values[key] = text.lower() == "true" if kind is bool else kind(text)
        except ValueError:
            raise LabelworthError(f"method option {option!r}: {text!r} is not a {kind.__name__}") from None
    return settings_class(**values)
