"""Student evaluation (docs/method.md §7): train fresh networks on (images, labels), test them.

`evaluate_students` trains a *population* (one student per seed) on the same images and labels and
summarises it; callers never loop over seeds themselves, so the engine that trains the population is
an option:

* ``sequential`` trains the students one after another with `training.train_epoch` and torch.optim.
* ``vectorised`` trains them as one batched computation: the students' parameters are stacked
  (`torch.func.stack_module_state`), one `vmap` of `functional_call` computes every student's loss,
  and SGD or AdamW update the stacked tensors with torch.optim's own update rule. Each student still
  has its own initialisation, minibatch order and DSA draws, taken from the same per-seed generators
  in the same order as the sequential engine, so both engines train the same students to within
  float rounding. Networks with batch norm (ResNets, ``-batchnorm`` ConvNets) always train
  sequentially: batch norm updates its running statistics in place during the forward pass, and
  this engine does not batch that (torch.func's own workaround drops the running statistics).

Protocol: cross-entropy with probability targets, DSA on every batch, minibatches of 256. A protocol
may instead relabel every augmented batch by the label spec's experts (`labels: online`), train with
the distillation loss (`loss: kl`) or with SRe2L's CutMix recipe (`augmentation: cutmix`); see
`student_batch_loss` (sequential engine only).
ConvNets use SGD (momentum 0.9, weight decay 5e-4) with the learning rate times 0.3 every quarter of
the epochs; ResNets use AdamW (weight decay 0.01) with a per-epoch cosine schedule. Test accuracy is
measured every `eval_every` epochs and after the last; both the final and the best of these are
reported, since published numbers use both conventions (the paper reports the best).
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from tqdm import tqdm

from labelworth import io
from labelworth.augment import dsa_augment, dsa_augment_population
from labelworth.cutmix import cutmix_augment
from labelworth.data import VALIDATION, Split, load_split
from labelworth.errors import LabelworthError
from labelworth.models import build_model
from labelworth.settings import STUDENT_OPTIMIZERS, StudentSettings, settings_record
from labelworth.specs import parse_arch, parse_label_spec
from labelworth.training import (
    BatchLoss,
    accuracy,
    epoch_minibatches,
    per_class_accuracy,
    predict_batch,
    predict_logits,
    resolve_device,
    test_pass,
    train_epoch,
)

# StudentSettings' default engine, sequential, is the faster on a CPU at the default config sizes (3
# students, IPC 1/10/50, batch 256): training there is compute-bound, and vmap's batched kernels
# (grouped convolutions, norms with a separate affine) run about 2x slower than plain ones. On a GPU
# the vectorised engine is the faster from 5 students on (benchmarks/results/students.md).


def make_optimizer(parameters, settings: StudentSettings):
    """(optimizer, per-epoch scheduler) of the paper's student protocol with `settings`' optimizer and
    its hyperparameters: the one recipe of both engines. The vectorised engine hands it the stacked
    tensors, whose every update is elementwise, so each student takes exactly its own step and a
    setting added here reaches both engines."""
    optimizer, lr, epochs = settings.optimizer, settings.lr, settings.epochs
    if optimizer == "sgd":
        opt = torch.optim.SGD(parameters, lr=lr, momentum=settings.momentum, weight_decay=5e-4,
                              nesterov=settings.nesterov)
        schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=max(epochs // 4, 1), gamma=0.3)
    elif optimizer == "adamw":
        opt = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda epoch: 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        )
    else:
        raise LabelworthError(f"unknown student optimizer {optimizer!r}; expected one of {STUDENT_OPTIMIZERS}")
    return opt, schedule


# --------------------------------------------------------------------------------------------------
# What both engines share: initialisation, targets, the forward pass, the record of a student.


@dataclass
class Population:
    """Trained students in the order of their seeds."""

    seeds: list[int]
    states: list[dict[str, torch.Tensor]]  # each student's final state_dict
    curves: list[list[list]]  # each student's [[epoch, test accuracy], ...]
    final_logits: torch.Tensor  # [students, test images, classes] after the last epoch


def initial_student(arch: str, test: Split, seed: int, device: torch.device, channels_last: bool) -> nn.Module:
    """The network `seed` starts from: torch.manual_seed(seed), then a fresh `build_model`."""
    torch.manual_seed(seed)
    model = build_model(arch, test.spec).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def targets_per_student(targets: torch.Tensor, num_students: int, num_images: int) -> torch.Tensor:
    """`targets` as one row per student: [students, images] class indices or [students, images, classes].

    Shared targets ([images] int64 or [images, classes] float) are expanded without a copy;
    per-student targets ([students, images(, classes)]) let one population train on several label
    sets of the same images.
    """
    shared_dims = 1 if not targets.is_floating_point() else 2
    if targets.dim() == shared_dims:
        targets = targets.expand(num_students, *targets.shape)
    if targets.dim() != shared_dims + 1 or targets.shape[:2] != (num_students, num_images):
        raise LabelworthError(
            f"targets of shape {tuple(targets.shape)} do not fit {num_images} images and {num_students} students; "
            "expected [images] class indices, [images, classes] probabilities, or one of these per student"
        )
    return targets


@dataclass(frozen=True)
class LabelSource:
    """Where a student's targets come from beyond its stored labels: the label spec's temperature
    (the T of `loss: kl`) and, under `labels: online`, the experts that label every augmented batch."""

    temperature: float = 1.0
    teachers: tuple[nn.Module, ...] = ()

    @torch.no_grad()
    def online_labels(self, images: torch.Tensor) -> torch.Tensor:
        """softmax(mean of the teachers' eval-mode logits / T): what make_labels stores for the images."""
        from labelworth.labels import soft_labels

        return soft_labels([teacher.eval()(images) for teacher in self.teachers], self.temperature)


def student_batch_loss(settings: StudentSettings, dsa_strategy: str, source: LabelSource) -> BatchLoss | None:
    """One batch's step under the protocol's labels, loss and augmentation; None for the paper's own
    (fixed labels, DSA, soft cross-entropy), which `training.train_epoch` runs itself.

    Property (tests): with augmentation none, online labels give the students fixed labels give (the
    teacher sees the stored images), to within float rounding."""
    if settings.uses_paper_batches and not source.teachers:
        return None

    def batch_loss(model, images, targets, generator):
        mix = None
        if settings.augmentation == "dsa":
            images = dsa_augment(images, dsa_strategy, generator)
        elif settings.augmentation == "cutmix":
            images, mix = cutmix_augment(images, generator)
        if source.teachers:
            targets = source.online_labels(images)  # the teacher's label of the mixed image itself
        elif mix is not None:
            if not targets.is_floating_point():
                targets = F.one_hot(targets, model_classes(model)).float()
            targets = mix.mix(targets)
        logits = model(images)
        if settings.loss == "kl":
            temperature = source.temperature
            loss = temperature**2 * F.kl_div(F.log_softmax(logits / temperature, 1), targets, reduction="batchmean")
        else:
            loss = F.cross_entropy(logits, targets)
        return loss, logits, targets

    return batch_loss


def model_classes(model: nn.Module) -> int:
    """The number of classes a student predicts (its last layer's outputs)."""
    return [module for module in model.modules() if isinstance(module, nn.Linear)][-1].out_features


def student_forward(network: nn.Module, params: dict, buffers: dict, images: torch.Tensor, bf16: bool) -> torch.Tensor:
    """float32 logits of `network` run with `params` and `buffers` (one student; vmap batches it).

    With `bf16` the weights and inputs are cast to bfloat16 for the forward pass only; gradients flow
    back to the float32 weights, and the loss and the optimiser stay in float32. This is autocast by
    hand, because torch.autocast does not reach the ops inside torch.func.vmap on a CPU
    (pytorch/functorch#305); unlike autocast it runs the norm layers in bfloat16 too.
    """
    if bf16:
        params = {name: value.to(torch.bfloat16) for name, value in params.items()}
        images = images.to(torch.bfloat16)
    return functional_call(network, (params, buffers), (images,)).float()


class Bfloat16Autocast(nn.Module):
    """`network` whose forward pass runs under bfloat16 autocast and returns float32 logits.

    The sequential engine's `bf16`: the augmentation stays outside (autocast would sample its grids in
    bfloat16), and batch norm keeps float32 running statistics, which casting by hand cannot.
    """

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(images.device.type, dtype=torch.bfloat16):
            return self.network(images).float()


def _is_evaluated(epoch: int, eval_every: int, epochs: int) -> bool:
    return epoch % eval_every == 0 or epoch == epochs


def _student_record(seed: int, curve: list[list], final_logits: torch.Tensor, test: Split) -> dict:
    best_epoch, best_accuracy = max(curve, key=lambda point: point[1])
    return {
        "seed": seed,
        "final_accuracy": curve[-1][1],
        "best_accuracy": best_accuracy,
        "best_epoch": best_epoch,
        "per_class_final_accuracy": per_class_accuracy(final_logits, test.labels, test.spec.num_classes),
        "curve": curve,
    }


def _summary(values: list[float]) -> dict:
    """Mean and population standard deviation (np.std, as the reference reports)."""
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


# --------------------------------------------------------------------------------------------------
# The engines


def _train_sequential(images, targets, test, settings: StudentSettings, seeds, progress, sources) -> Population:
    epochs, eval_every = settings.epochs, settings.eval_every
    states, curves, final_logits = [], [], []
    for index, seed in enumerate(seeds):
        network = initial_student(settings.arch, test, seed, images.device, settings.channels_last)
        model = Bfloat16Autocast(network) if settings.bf16 else network
        if settings.compile:  # the forward and backward pass only; DSA's random draws stay eager
            model = torch.compile(model)
        opt, schedule = make_optimizer(model.parameters(), settings)
        generator = torch.Generator().manual_seed(seed)
        batch_loss = student_batch_loss(settings, test.spec.dsa_strategy, sources[index])
        curve = []
        for epoch in range(1, epochs + 1):
            try:
                train_epoch(model, opt, images, targets[index], settings.batch_size, test.spec.dsa_strategy, generator,
                            batch_loss)
            except FloatingPointError as error:
                raise FloatingPointError(f"student seed {seed}, epoch {epoch}, {error}") from error
            schedule.step()
            progress.update()
            if _is_evaluated(epoch, eval_every, epochs):
                with test_pass():
                    logits = predict_logits(model, test.images)
                    curve.append([epoch, accuracy(logits, test.labels)])
                progress.set_postfix(seed=seed, test=f"{curve[-1][1]:.3f}")
        states.append(network.state_dict())
        curves.append(curve)
        final_logits.append(logits)
    return Population(list(seeds), states, curves, torch.stack(final_logits))


def _train_vectorised(images, targets, test, settings: StudentSettings, seeds, progress, sources) -> Population:
    epochs, eval_every, bf16 = settings.epochs, settings.eval_every, settings.bf16
    networks = [initial_student(settings.arch, test, seed, images.device, settings.channels_last) for seed in seeds]
    stacked_params, buffers = stack_module_state(networks)
    if settings.channels_last:  # stacking copies into [students, ...] order; give each student's slice its layout back
        stacked_params = {name: _students_channels_last(value) for name, value in stacked_params.items()}
    params = {name: value.detach().requires_grad_() for name, value in stacked_params.items()}
    template = copy.deepcopy(networks[0]).to("meta")  # the code of the network; the tensors come from params
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    opt, schedule = make_optimizer(list(params.values()), settings)
    student_rows = torch.arange(len(seeds), device=images.device).unsqueeze(1)

    def student_loss(student_params, student_buffers, batch_images, batch_targets):
        logits = student_forward(template, student_params, student_buffers, batch_images, bf16)
        return F.cross_entropy(logits, batch_targets)

    population_loss = vmap(student_loss)
    curve_points = []
    for epoch in range(1, epochs + 1):
        template.train()
        orders = [epoch_minibatches(len(images), settings.batch_size, generator, images.device)
                  for generator in generators]
        for batch_number, student_batches in enumerate(zip(*orders), 1):
            indices = torch.stack(student_batches)  # [students, batch]
            augmented = dsa_augment_population(images[indices], test.spec.dsa_strategy, generators)
            losses = population_loss(params, buffers, augmented, targets[student_rows, indices])
            _check_finite(losses, seeds, epoch, batch_number, len(orders[0]))
            # Students share no parameters, so the gradient of the summed losses is each one's own.
            grads = torch.autograd.grad(losses.sum(), list(params.values()))
            for param, grad in zip(params.values(), grads):
                param.grad = grad
            opt.step()
        schedule.step()
        progress.update(len(seeds))
        if _is_evaluated(epoch, eval_every, epochs):
            with test_pass():
                logits = _population_logits(template, params, buffers, test.images, bf16)
                curve_points.append((epoch, [accuracy(student_logits, test.labels) for student_logits in logits]))
            progress.set_postfix(test=f"{np.mean(curve_points[-1][1]):.3f}")
    tensors = {**params, **buffers}
    states = [{name: tensors[name][index].detach().clone() for name in template.state_dict()}
              for index in range(len(seeds))]
    curves = [[[epoch, accuracies[index]] for epoch, accuracies in curve_points] for index in range(len(seeds))]
    return Population(list(seeds), states, curves, logits)


def _students_channels_last(value: torch.Tensor) -> torch.Tensor:
    """A [students, out, in, kh, kw] weight stored so that every student's slice is channels_last."""
    if value.dim() != 5:
        return value
    return value.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


def _check_finite(losses: torch.Tensor, seeds: list[int], epoch: int, batch_number: int, batches: int) -> None:
    """Stop before a step spoils the weights, naming the first diverged student as the sequential engine would."""
    finite = torch.isfinite(losses)
    if not bool(finite.all()):
        index = int((~finite).nonzero()[0])
        raise FloatingPointError(f"student seed {seeds[index]}, epoch {epoch}, batch {batch_number} of {batches}: "
                                 f"training loss became {losses[index].item()}")


@torch.no_grad()
def _population_logits(template, params, buffers, images, bf16) -> torch.Tensor:
    """[students, images, classes] logits in eval mode, in chunks of `predict_batch` images.

    One student at a time: chunks of test images are big enough to keep any device busy, and plain
    kernels beat vmap's batched ones on a CPU (about 2x on the default ConvNet).
    """
    template.eval()
    chunk = predict_batch(images.device)
    logits = []
    for index in range(len(next(iter(params.values())))):
        student_params = {name: value[index] for name, value in params.items()}
        student_buffers = {name: value[index] for name, value in buffers.items()}
        logits.append(torch.cat([student_forward(template, student_params, student_buffers,
                                                 images[i : i + chunk], bf16)
                                 for i in range(0, len(images), chunk)]))
    return torch.stack(logits)


def train_students(images: torch.Tensor, targets: torch.Tensor, test: Split, settings: StudentSettings,
                   seeds: list[int] | None = None, sources: list[LabelSource] | None = None) -> Population:
    """Train one student per seed (default: the protocol's seeds) on (images, targets); see
    `evaluate_students`. Both engines give the same students for the same seeds, to within float
    rounding; batch-norm networks always train sequentially. `sources` gives each student its label
    spec's temperature and online teachers (default: temperature 1, none)."""
    seeds = list(settings.seeds if seeds is None else seeds)
    targets = targets_per_student(targets, len(seeds), len(images))
    sources = sources or [LabelSource()] * len(seeds)
    if any(source.teachers for source in sources) and settings.engine == "vectorised":
        raise LabelworthError("online labels train with the sequential engine only")
    vectorised = settings.engine == "vectorised" and not parse_arch(settings.arch).uses_batchnorm
    with tqdm(total=settings.epochs * len(seeds), desc=f"students {settings.arch}", unit="epoch",
              mininterval=2.0) as progress:
        engine = _train_vectorised if vectorised else _train_sequential
        return engine(images, targets, test, settings, seeds, progress, sources)


def evaluate_students(images: torch.Tensor, targets: torch.Tensor, test: Split, settings: StudentSettings) -> dict:
    """Train one student per seed of `settings` on (images, targets) and test each on `test`.

    A seed fixes the student's initialisation, minibatch order and augmentation draws, so a seed's
    result is repeatable on a CPU, and the same with either engine to within float rounding.
    `targets` may hold one label set per student ([students, images, classes]).

    The protocol's options (labelworth/settings.py StudentSettings): `engine` vectorised or
    sequential (batch-norm networks always train sequentially); `channels_last` and `bf16` (the
    forward pass in bfloat16: autocast in the sequential engine, casts by hand in the vectorised
    one, see `student_forward`) are meant for GPUs and off by default, which leaves CPU results
    unchanged; `compile` runs each student of the sequential engine through torch.compile: the same
    students to within float rounding, faster steps after a one-off compile that pays only for long
    runs (benchmarks/results/compile.md).
    """
    return population_result(train_students(images, targets, test, settings), test)


def population_result(population: Population, test: Split, members: range | None = None) -> dict:
    """The result of `evaluate_students` for the students at positions `members` (default: all).

    A population trained on several label sets at once ([students, images, classes] targets) splits
    into one result per label set this way, each the result that set alone would have given.
    """
    members = range(len(population.seeds)) if members is None else members
    students = [
        _student_record(population.seeds[index], population.curves[index], population.final_logits[index], test)
        for index in members
    ]
    return {
        "students": students,
        "final_accuracy": _summary([student["final_accuracy"] for student in students]),
        "best_accuracy": _summary([student["best_accuracy"] for student in students]),
    }


def validation_accuracies(population: Population, validation: Split, settings: StudentSettings) -> list[float]:
    """Each trained student's accuracy on the held-out validation split (selection: validation), from
    its final weights, in the forward pass its test passes use (bf16 where the protocol says)."""
    accuracies = []
    for state in population.states:
        network = build_model(settings.arch, validation.spec).to(validation.images.device)
        network.load_state_dict(state)
        model = Bfloat16Autocast(network) if settings.bf16 else network
        with test_pass():
            accuracies.append(accuracy(predict_logits(model, validation.images), validation.labels))
    return accuracies


def with_validation(result: dict, accuracies: list[float]) -> dict:
    """A population result with each student's final validation accuracy and their summary."""
    for student, value in zip(result["students"], accuracies):
        student["final_validation_accuracy"] = value
    return {**result, "final_validation_accuracy": _summary(accuracies)}


def label_source(label_meta: dict, path, settings: StudentSettings, device) -> LabelSource:
    """A label file's temperature and, under `labels: online`, its experts (the checkpoints its meta
    names): an expert spec's labels are then made batch by batch, the same labels on what it sees."""
    if "label_spec" not in label_meta:  # a label file made by hand: its labels as they are
        return LabelSource()
    spec = parse_label_spec(label_meta["label_spec"])
    temperature = spec.temperature if spec.uses_experts else 1.0
    if settings.labels != "online" or not spec.uses_experts:
        return LabelSource(temperature)
    if spec.transforms:
        raise LabelworthError(f"{path}: label spec {label_meta['label_spec']} transforms its expert's labels; online "
                              "labels are the expert's own soft labels of each batch (labels: online takes no transforms)")
    from labelworth.experts import load_expert

    return LabelSource(temperature, tuple(load_expert(checkpoint, device) for checkpoint in label_meta["expert_checkpoints"]))


def run_evaluate_students(
    images_path: str | os.PathLike,
    labels_paths: list[str | os.PathLike],
    data_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    settings: StudentSettings,
    protocol: str | None = None,
    device: str = "auto",
) -> dict:
    """The `evaluate_students` stage: read the files, evaluate, write the JSON with its identity.

    With one label file `out_path` gets that population's result. With several (label sets of the
    same images) one population trains on all of them at once, every seed once per label set, and
    `out_path` gets {"label_sets": [result, ...]} in their order, each result what its label file
    alone would have given (to within float rounding; `populations.population_member` takes one out).
    `protocol` names the protocol in the result's meta (default: the student architecture). Where
    the data folder holds a validation split (selection: validation), each student's final accuracy
    on it is recorded too (`final_validation_accuracy`).
    """
    seeds = settings.seeds
    device = resolve_device(device)
    image_file = io.load_tensors(images_path, required=("images",))
    label_files = [io.load_tensors(path, required=("labels",)) for path in labels_paths]
    images = image_file["images"].to(device)
    for path, label_file in zip(labels_paths, label_files):
        if len(label_file["labels"]) != len(images):
            raise LabelworthError(f"{path} has {len(label_file['labels'])} labels for {len(images)} images "
                                  f"in {images_path}")
    label_sets = [label_file["labels"].to(device) for label_file in label_files]
    # One label set is shared by the seeds without a copy; several give one row per student, label
    # set by label set, each with every seed.
    targets = label_sets[0] if len(label_sets) == 1 else torch.cat(
        [labels.expand(len(seeds), *labels.shape) for labels in label_sets])
    test = load_split(data_dir, "test", device)
    sources = [label_source(label_file["meta"], path, settings, device)
               for path, label_file in zip(labels_paths, label_files) for _ in seeds]
    population = train_students(images, targets, test, settings, list(seeds) * len(label_files), sources)
    held_out = (validation_accuracies(population, load_split(data_dir, VALIDATION, device), settings)
                if (Path(data_dir) / f"{VALIDATION}.pt").exists() else None)
    image_meta = image_file["meta"]
    results = []
    for index, label_file in enumerate(label_files):
        members = range(index * len(seeds), (index + 1) * len(seeds))
        result = population_result(population, test, members)
        if held_out is not None:
            result = with_validation(result, [held_out[member] for member in members])
        result["meta"] = io.provenance(
            "evaluate_students",
            dataset=test.spec.name,
            image_set=image_meta["image_set"],
            method=image_meta["method"],
            images_per_class=image_meta["images_per_class"],
            label_spec=label_file["meta"]["label_spec"],
            # the trained run whose experts made the labels ('' without one, or for a hand-made file)
            expert_run=label_file["meta"].get("expert_run", ""),
            student=protocol or settings.arch,
            settings=settings_record(settings),
            # online labels are stored as their teachers (labelworth/storage.py): the bytes of their weights
            teacher_bytes=sum(tensor.numel() * tensor.element_size() for teacher in sources[index * len(seeds)].teachers
                              for tensor in teacher.state_dict().values()),
            class_names=test.class_names,
        )
        results.append(result)
    written = results[0] if len(results) == 1 else {"label_sets": results}
    io.write_json(out_path, written)
    return written

