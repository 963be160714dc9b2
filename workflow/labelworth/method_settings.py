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


@dataclass(frozen=True)
class BpttSettings:
    """Truncated backpropagation through training with learned labels (METHOD.md 8.5, RaT-BPTT).

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


@dataclass(frozen=True)
class Sre2lSettings:
    """SRe2L's recover and relabel (METHOD.md 8.6) from a batch-norm teacher.

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


SETTINGS_BY_METHOD = {"dm": DmSettings, "mtt": MttSettings, "bptt": BpttSettings, "sre2l": Sre2lSettings}


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
