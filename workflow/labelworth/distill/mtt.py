"""MTT: matching training trajectories (docs/method.md §8.1, MTT's `distill.py`), with TESLA's
constant-activation-memory meta-gradient as an option (8.2).

Learnable: the synthetic images (real-image init, class-major, hard labels) and a scalar student lr
initialised to `lr_teacher`. One iteration draws an expert of the replay buffer and a start epoch
t ~ U{0..max_start_epoch-1}, sets θ_0 = expert[t], θ* = expert[t + expert_epochs], and takes
`syn_steps` SGD steps θ_{i+1} = θ_i - lr ∇CE(f(DSA(X_i); θ_i), y_i) on minibatches X_i of `batch_syn`
synthetic images (chunks of a fresh permutation, as MTT pops them; DSA per sample with a fresh seed
per step). Loss L = ||θ_N - θ*||² / ||θ_0 - θ*||²; SGD with momentum 0.5 moves the images (lr_img) and
the lr (lr_lr).

Two ways to the same gradient of L:
* unrolled (MTT): keep the graph of all steps and backpropagate once; memory grows with
  syn_steps x the activations of a step.
* `tesla`: run the steps without a graph keeping only θ_0..θ_N, then walk back one step at a time,
  rebuilding that step's graph and pulling the adjoint a_i = ∂L/∂θ_i through it (a_i = a_{i+1} -
  lr H_i a_{i+1}, a Hessian-vector product), accumulating ∂L/∂X and ∂L/∂lr on the way. Activation
  memory is one step's whatever syn_steps is; the θ_i cost syn_steps parameter vectors. It is exact,
  not an approximation: tests check it equals the unrolled gradient in float64.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call

from labelworth.augment import dsa_augment
from labelworth.data import load_split
from labelworth.distill.synthesis import SynthesisFiles, draw_seed, real_image_init, write_synthetic_set
from labelworth.resume import run_iterations
from labelworth.errors import LabelworthError
from labelworth.settings import MttSettings, run_settings
from labelworth.models import build_model
from labelworth.specs import ImageSetSpec
from labelworth.trajectories import load_trajectories, parameter_shapes, unflatten_parameters
from labelworth.training import resolve_device


@dataclass(frozen=True)
class Step:
    """One inner SGD step's draws: which synthetic images, and the seed of their DSA."""

    indices: torch.Tensor
    dsa_seed: int


def plan_steps(num_images: int, batch_syn: int, syn_steps: int, generator: torch.Generator) -> list[Step]:
    """`syn_steps` minibatches popped from chunks of fresh permutations (a new one when the chunks
    run out), each with its own DSA seed; every image appears once per permutation."""
    batch_syn = batch_syn or num_images
    steps, chunks = [], []
    for _ in range(syn_steps):
        if not chunks:
            chunks = list(torch.randperm(num_images, generator=generator).split(batch_syn))
        steps.append(Step(chunks.pop(0), draw_seed(generator)))
    return steps


def sgd_step(model: torch.nn.Module, theta: torch.Tensor, images: torch.Tensor, classes: torch.Tensor,
             lr: torch.Tensor, step: Step, strategy: str, create_graph: bool) -> torch.Tensor:
    """θ - lr ∇_θ CE(f(DSA(images[step]); θ), classes[step]) for flat parameters θ (which must require
    grad); `create_graph` keeps the graph through the gradient for a meta-gradient."""
    indices = step.indices.to(images.device)
    batch = dsa_augment(images[indices], strategy, torch.Generator().manual_seed(step.dsa_seed))
    logits = functional_call(model, unflatten_parameters(theta, model), (batch,))
    (gradient,) = torch.autograd.grad(F.cross_entropy(logits, classes[indices]), theta, create_graph=create_graph)
    return theta - lr * gradient


def matching_loss(theta_end: torch.Tensor, theta_start: torch.Tensor, theta_target: torch.Tensor) -> torch.Tensor:
    """||θ_N - θ*||² / ||θ_0 - θ*||² (sums over all parameters)."""
    return (theta_end - theta_target).pow(2).sum() / (theta_start - theta_target).pow(2).sum()


def unrolled_gradients(model, theta_start, theta_target, images, classes, lr, steps, strategy) -> float:
    """MTT's meta-gradient: backpropagate through the whole unrolled student training. Sets
    `images.grad` and `lr.grad`; returns the loss."""
    theta = theta_start.clone().requires_grad_(True)
    for step in steps:
        theta = sgd_step(model, theta, images, classes, lr, step, strategy, create_graph=True)
    loss = matching_loss(theta, theta_start, theta_target)
    loss.backward()
    return loss.item()


def tesla_gradients(model, theta_start, theta_target, images, classes, lr, steps, strategy) -> float:
    """The same gradient as `unrolled_gradients`, one step's graph at a time (see the module doc)."""
    thetas = [theta_start]
    for step in steps:
        theta = thetas[-1].detach().requires_grad_(True)
        thetas.append(sgd_step(model, theta, images.detach(), classes, lr.detach(), step, strategy,
                               create_graph=False).detach())
    theta_end = thetas[-1].requires_grad_(True)
    loss = matching_loss(theta_end, theta_start, theta_target)
    (adjoint,) = torch.autograd.grad(loss, theta_end)
    image_grad, lr_grad = torch.zeros_like(images), torch.zeros_like(lr)
    for theta, step in zip(reversed(thetas[:-1]), reversed(steps)):
        theta = theta.detach().requires_grad_(True)
        theta_next = sgd_step(model, theta, images, classes, lr, step, strategy, create_graph=True)
        adjoint, step_image_grad, step_lr_grad = torch.autograd.grad(theta_next, (theta, images, lr), adjoint)
        image_grad += step_image_grad
        lr_grad += step_lr_grad
    images.grad, lr.grad = image_grad, lr_grad
    return loss.item()


def trajectory_network(buffer: dict, spec, device, dtype) -> torch.nn.Module:
    """The network the buffer's rows parametrise (its own weights are never used)."""
    meta = buffer["meta"]
    model = build_model(meta["arch"], spec).to(device=device, dtype=dtype)
    if meta["dataset"] != spec.name or parameter_shapes(model) != meta["parameter_shapes"]:
        raise LabelworthError(f"the trajectories are of a {meta['arch']} on {meta['dataset']}, "
                              f"which does not match the {spec.name} images being distilled")
    return model


def distill_mtt(data_dir, trajectories_path, images_per_class: int, seed: int, settings: MttSettings,
                files: SynthesisFiles, device: str = "auto") -> list[float]:
    """Distil `mtt-ipc{images_per_class}` into `files`; returns the loss per iteration. images.pt's
    meta records the learned student lr as `learned_lr`."""
    device = resolve_device(device)
    train = load_split(data_dir, "train", device)
    spec = train.spec
    buffer = load_trajectories(trajectories_path)
    parameters = buffer["parameters"]  # [experts, epochs + 1, num_params], memory-mapped
    last_start = settings.max_start_epoch - 1
    if settings.max_start_epoch < 1 or last_start + settings.expert_epochs >= parameters.shape[1]:
        raise LabelworthError(
            f"MTT needs expert epochs up to max_start_epoch - 1 + expert_epochs = "
            f"{last_start + settings.expert_epochs}, but {trajectories_path} holds epochs 0..{parameters.shape[1] - 1}"
        )
    model = trajectory_network(buffer, spec, device, train.images.dtype)
    images, classes = real_image_init(train, images_per_class, seed)
    images.requires_grad_(True)
    lr = torch.tensor(settings.lr_teacher, device=device, requires_grad=True)
    optimizers = [torch.optim.SGD([images], lr=settings.lr_img, momentum=0.5),
                  torch.optim.SGD([lr], lr=settings.lr_lr, momentum=0.5)]
    generator = torch.Generator().manual_seed(seed)
    meta_gradients = tesla_gradients if settings.tesla else unrolled_gradients

    def compute_gradients(iteration: int) -> float:
        expert = int(torch.randint(parameters.shape[0], (1,), generator=generator).item())
        start = int(torch.randint(settings.max_start_epoch, (1,), generator=generator).item())
        theta_start = parameters[expert, start].to(device=device, dtype=images.dtype)
        theta_target = parameters[expert, start + settings.expert_epochs].to(device=device, dtype=images.dtype)
        steps = plan_steps(len(images), settings.batch_syn, settings.syn_steps, generator)
        return meta_gradients(model, theta_start, theta_target, images, classes, lr, steps, spec.dsa_strategy)

    identity = {"method": "mtt", "dataset": spec.name, "images_per_class": images_per_class, "seed": seed,
                "trajectories": buffer["meta"]["sha256"], **run_settings(settings)}
    losses = run_iterations(compute_gradients, {"images": images, "lr": lr}, optimizers, generator,
                            settings.iterations, settings.save_every, files.work_dir, identity,
                            f"MTT ipc{images_per_class}")
    write_synthetic_set(files, images, classes, ImageSetSpec("mtt", images_per_class), train, losses,
                        seed=seed, learned_lr=lr.item(), **asdict(settings))
    return losses
