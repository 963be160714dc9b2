"""Ra-BPTT: random truncated backpropagation through training, with learned labels (docs/method.md §8.5,
RaT-BPTT's `framework/base2.py` and `distill_higher.py`; the paper's "labels learned by distillation", E13).

Learnable: the synthetic images (N(0, 1) noise in normalised space as the reference, or random real
images; class-major) and, with `learn_labels`, their labels (one-hot at first, float, used raw as
soft targets). One iteration:

1. draw n ~ U{min_window..total_window - window} and a fresh `arch` network (PyTorch's default init);
2. train it n inner steps without a graph, then `window` differentiable steps. Every inner step is
   one Adam step (lr `inner_lr`) on the soft cross-entropy -sum y log softmax(f(DSA(x))) of a
   minibatch of `batch_per_class` synthetic images of every class (0: all of them). The Adam moments
   of the first n steps carry into the window, as `higher` copies the reference's optimiser state;
3. the loss is the cross-entropy of the final network on `batch_real` random real images (DSA'd);
   its gradient reaches the images and labels through the window only.

The inner Adam is `adam_step`, a pure function of tensors with torch.optim.Adam's arithmetic, so
autograd differentiates through it (the reference uses `higher`'s differentiable Adam).

The outer optimiser (`ClippedAdam`) is the reference's: Adam(lr) on the images and Adam(lr /
label_lr_scale) on the labels; the images' gradient norm is clipped at 2x an EMA (coef 0.9, started
at the first norm) of the norms so far, and the labels are clamped at 0 after every step. The EMA
lives in the optimiser's param group, so its `state_dict` (which the resumable loop saves) carries it
and a resumed run is bitwise the uninterrupted one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call

from labelworth.augment import dsa_augment
from labelworth.data import load_split
from labelworth.distill.dm import random_network
from labelworth.distill.synthesis import SynthesisFiles, draw_seed, real_image_init, write_synthetic_set
from labelworth.resume import run_iterations
from labelworth.errors import LabelworthError
from labelworth.settings import BpttSettings, run_settings
from labelworth.specs import ImageSetSpec
from labelworth.training import resolve_device

ADAM_BETAS = (0.9, 0.999)  # torch's and the reference's defaults, inner and outer
ADAM_EPS = 1e-8
CLIP_EMA_COEF = 0.9  # the reference's --clip_coef
CLIP_FACTOR = 2.0  # gradient norms are clipped at this many times their EMA


@dataclass(frozen=True)
class AdamState:
    """The moments of an Adam run on a dict of tensors, after `step` steps."""

    step: int
    exp_avg: dict[str, torch.Tensor]
    exp_avg_sq: dict[str, torch.Tensor]


def initial_adam_state(parameters: dict[str, torch.Tensor]) -> AdamState:
    zeros = {name: torch.zeros_like(value, memory_format=torch.preserve_format).detach()
             for name, value in parameters.items()}
    return AdamState(0, zeros, dict(zeros))


def adam_step(parameters: dict[str, torch.Tensor], gradients: dict[str, torch.Tensor], state: AdamState,
              lr: float, betas: tuple[float, float] = ADAM_BETAS,
              eps: float = ADAM_EPS) -> tuple[dict[str, torch.Tensor], AdamState]:
    """One Adam step (no weight decay) as a pure function: new parameters and moments, the inputs
    untouched, differentiable with respect to whatever the parameters and gradients depend on.

    Property (tests): step after step the values equal torch.optim.Adam's. The square root is taken
    of the second moment clamped at the dtype's smallest normal number, which leaves the value as
    Adam's (below eps it vanishes in the sum) but keeps the derivative finite where a gradient has
    always been zero; sqrt's infinite slope there would turn the whole meta-gradient into NaN.
    """
    beta1, beta2 = betas
    step = state.step + 1
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    new_parameters, exp_avg, exp_avg_sq = {}, {}, {}
    for name, value in parameters.items():
        gradient = gradients[name]
        exp_avg[name] = state.exp_avg[name].lerp(gradient, 1 - beta1)
        exp_avg_sq[name] = state.exp_avg_sq[name].mul(beta2).addcmul(gradient, gradient, value=1 - beta2)
        second_moment = exp_avg_sq[name].clamp(min=torch.finfo(value.dtype).tiny)
        denominator = (second_moment.sqrt() / bias_correction2_sqrt).add(eps)
        new_parameters[name] = value.addcdiv(exp_avg[name], denominator, value=-lr / bias_correction1)
    return new_parameters, AdamState(step, exp_avg, exp_avg_sq)


def ema_update(ema: float | None, value: float, coef: float = CLIP_EMA_COEF) -> float:
    """The exponential moving average after seeing `value`: `value` itself when there is none yet
    (`ema` None, as the reference starts it), else ema + (1 - coef)(value - ema)."""
    return value if ema is None else ema + (1 - coef) * (value - ema)


class ClippedAdam(torch.optim.Adam):
    """Adam with RaT-BPTT's two guards, per param group:

    * `clip_ema_coef` (a float): before the step, the group's gradient norm updates the group's
      `gradient_norm_ema` (`ema_update`), and the gradient is clipped to norm at most
      CLIP_FACTOR x that EMA (`clip_grad_norm_`);
    * `min_value` (a float): after the step, the group's parameters are clamped at it.

    Both are plain group entries, so `state_dict` / `load_state_dict` save and restore the EMA.
    """

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            if group.get("clip_ema_coef") is None:
                continue
            gradients = [parameter.grad.flatten() for parameter in group["params"] if parameter.grad is not None]
            norm = torch.linalg.vector_norm(torch.cat(gradients)).item()
            group["gradient_norm_ema"] = ema_update(group.get("gradient_norm_ema"), norm, group["clip_ema_coef"])
            torch.nn.utils.clip_grad_norm_(group["params"], CLIP_FACTOR * group["gradient_norm_ema"])
        loss = super().step(closure)
        for group in self.param_groups:
            if group.get("min_value") is not None:
                for parameter in group["params"]:
                    parameter.clamp_(min=group["min_value"])
        return loss


def window_start(min_window: int, total_window: int, window: int, generator: torch.Generator) -> int:
    """n ~ U{min_window, ..., total_window - window}, both ends included (the reference's `cctype=2`);
    so n + window never exceeds total_window."""
    return int(torch.randint(min_window, total_window - window + 1, (1,), generator=generator).item())


def inner_minibatch(images_per_class: int, num_classes: int, batch_per_class: int,
                    generator: torch.Generator) -> torch.Tensor:
    """Indices into the class-major synthetic set: `batch_per_class` distinct images of every class,
    ascending within each class (as the reference sorts them), or all images (no draw) when
    batch_per_class is 0 or at least images_per_class."""
    if batch_per_class == 0 or batch_per_class >= images_per_class:
        return torch.arange(images_per_class * num_classes)
    chosen = [torch.randperm(images_per_class, generator=generator)[:batch_per_class].sort().values
              + label * images_per_class for label in range(num_classes)]
    return torch.cat(chosen)


def inner_step(model: torch.nn.Module, parameters: dict[str, torch.Tensor], state: AdamState,
               images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor, strategy: str,
               generator: torch.Generator, inner_lr: float,
               create_graph: bool) -> tuple[dict[str, torch.Tensor], AdamState]:
    """One inner Adam step on the soft cross-entropy of DSA(images[indices]) against labels[indices];
    the parameters must require grad. `create_graph` keeps the graph for the meta-gradient."""
    indices = indices.to(images.device)
    batch = dsa_augment(images[indices], strategy, generator)
    logits = functional_call(model, parameters, (batch,))
    loss = F.cross_entropy(logits, labels[indices])  # float targets: -sum y log softmax, mean over the batch
    gradients = torch.autograd.grad(loss, list(parameters.values()), create_graph=create_graph)
    return adam_step(parameters, dict(zip(parameters, gradients)), state, inner_lr)


def check_windows(settings: BpttSettings) -> None:
    if not 0 <= settings.min_window <= settings.total_window - settings.window:
        raise LabelworthError(
            f"bptt: the unroll before the window is drawn from min_window..total_window - window = "
            f"{settings.min_window}..{settings.total_window - settings.window}, which is empty")


def distill_bptt(data_dir, images_per_class: int, seed: int, settings: BpttSettings, files: SynthesisFiles,
                 device: str = "auto") -> list[float]:
    """Distil `bptt-ipc{images_per_class}` into `files`, its labels as images.pt's `learned_labels`
    (one-hot when `learn_labels` is off); returns the loss per iteration."""
    check_windows(settings)
    if settings.init not in ("noise", "real"):
        raise LabelworthError(f"bptt: init must be 'noise' or 'real', got {settings.init!r}")
    device = resolve_device(device)
    train = load_split(data_dir, "train", device)
    spec = train.spec
    generator = torch.Generator().manual_seed(seed)
    if settings.init == "real":
        images, classes = real_image_init(train, images_per_class, seed)
    else:
        classes = torch.arange(train.num_classes, device=device).repeat_interleave(images_per_class)
        shape = (len(classes), *train.images.shape[1:])
        images = torch.randn(shape, generator=generator).to(device=device, dtype=train.images.dtype)
    images.requires_grad_(True)
    labels = F.one_hot(classes, spec.num_classes).to(images.dtype).requires_grad_(settings.learn_labels)
    groups = [{"params": [images], "lr": settings.lr, "clip_ema_coef": CLIP_EMA_COEF}]
    if settings.learn_labels:
        groups.append({"params": [labels], "lr": settings.lr / settings.label_lr_scale, "min_value": 0.0})
    optimizer = ClippedAdam(groups, lr=settings.lr, betas=ADAM_BETAS, eps=ADAM_EPS)
    learned = [images, labels] if settings.learn_labels else [images]

    def compute_gradients(iteration: int) -> float:
        unroll = window_start(settings.min_window, settings.total_window, settings.window, generator)
        model = random_network(settings.arch, spec, draw_seed(generator), device, images.dtype)
        parameters = {name: value.clone().requires_grad_(True) for name, value in model.named_parameters()}
        state = initial_adam_state(parameters)
        for step in range(unroll + settings.window):
            differentiable = step >= unroll
            indices = inner_minibatch(images_per_class, train.num_classes, settings.batch_per_class, generator)
            parameters, state = inner_step(
                model, parameters, state, images if differentiable else images.detach(),
                labels if differentiable else labels.detach(), indices, spec.dsa_strategy, generator,
                settings.inner_lr, create_graph=differentiable)
            if not differentiable:
                parameters = {name: value.detach().requires_grad_(True) for name, value in parameters.items()}
        real = torch.randperm(len(train.labels), generator=generator)[: settings.batch_real].to(device)
        logits = functional_call(model, parameters, (dsa_augment(train.images[real], spec.dsa_strategy, generator),))
        loss = F.cross_entropy(logits, train.labels[real])
        for tensor, gradient in zip(learned, torch.autograd.grad(loss, learned)):
            tensor.grad = gradient
        return loss.item()

    identity = {"method": "bptt", "dataset": spec.name, "images_per_class": images_per_class, "seed": seed,
                **run_settings(settings)}
    losses = run_iterations(compute_gradients, {"images": images, "labels": labels}, [optimizer], generator,
                            settings.iterations, settings.save_every, files.work_dir, identity,
                            f"BPTT ipc{images_per_class}")
    write_synthetic_set(files, images, classes, ImageSetSpec("bptt", images_per_class), train, losses,
                        learned_labels=labels, seed=seed, **asdict(settings))
    return losses
