"""What every image-synthesis method (DM, MTT) shares: real-image initialisation, the resumable
iteration loop, and the loss curve.

Resume works as for experts (experts.py): Snakemake deletes declared outputs before a job, so the
loop keeps `state.pt` in an undeclared work folder (learnable tensors, optimizer states, the RNG,
the losses so far) every `save_every` iterations, and a restarted run continues after the last saved
iteration. All randomness comes from one `torch.Generator` stored in that state, so on a CPU a run
stopped and resumed ends with the same bytes as an uninterrupted one.

A NaN or inf loss raises FloatingPointError naming the iteration before the optimizers step, so the
images are never spoilt and the work folder keeps the last saved state.
"""

from __future__ import annotations

import csv
import dataclasses
import io as text_io
import math
import os
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from labelworth import io
from labelworth.distill import displayed_pixels, save_image_set
from labelworth.distill.random import select_random
from labelworth.errors import LabelworthError
from labelworth.specs import ImageSetSpec, format_image_set


def draw_seed(generator: torch.Generator) -> int:
    """A seed for a one-off generator or network, drawn from the run's generator."""
    return int(torch.randint(2**31 - 1, (1,), generator=generator).item())


def real_image_init(train, images_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random real images and their classes, class-major: the set `random-ipc{n}` with the same seed
    holds exactly these images (METHOD.md 8.1/8.3 `pix_init=real`)."""
    indices = select_random(train.labels.cpu(), images_per_class, train.spec.num_classes, seed)
    indices = indices.to(train.images.device)
    return train.images[indices].clone(), train.labels[indices].clone()


def _load_state(state_path: Path, identity: dict, learnables: dict, iterations: int) -> dict | None:
    if not state_path.exists():
        return None
    try:
        state = io.load_tensors(state_path, required=("learnables", "optimizers", "generator", "losses"))
    except LabelworthError as error:
        print(f"ignoring unreadable resume state: {error}", flush=True)
        return None
    if state["meta"]["identity"] != identity or set(state["learnables"]) != set(learnables):
        print(f"resume state {state_path} belongs to another run; starting afresh", flush=True)
        return None
    if len(state["losses"]) > iterations:  # its images are past the end of this run
        print(f"resume state {state_path} ran {len(state['losses'])} iterations, more than {iterations}; "
              "starting afresh", flush=True)
        return None
    return state


def run_iterations(
    compute_gradients: Callable[[int], float],
    learnables: dict[str, torch.Tensor],
    optimizers: list[torch.optim.Optimizer],
    generator: torch.Generator,
    iterations: int,
    save_every: int,
    work_dir: str | os.PathLike,
    identity: dict,
    description: str,
) -> list[float]:
    """Run iterations 0..iterations-1 of `compute_gradients(iteration)` (which sets the learnables'
    `.grad` and returns the loss) followed by one step of every optimizer; returns the loss per iteration.

    Resumes from `work_dir/state.pt` when its `identity` matches. Property (tests): stopping after
    any multiple of `save_every` and calling again gives bitwise the same learnables as one call.
    """
    state_path = Path(work_dir) / "state.pt"
    losses: list[float] = []
    state = _load_state(state_path, identity, learnables, iterations)
    if state is not None:
        with torch.no_grad():
            for name, value in learnables.items():
                value.copy_(state["learnables"][name])
        for optimizer, optimizer_state in zip(optimizers, state["optimizers"]):
            optimizer.load_state_dict(optimizer_state)
        generator.set_state(state["generator"])
        losses = [float(loss) for loss in state["losses"]]
        print(f"resuming after iteration {len(losses) - 1} from {state_path}", flush=True)

    saved = [len(losses)]  # iterations done at the last save (a list, so save_state can update it)

    def save_state() -> None:
        saved[0] = len(losses)
        io.save_tensors(
            state_path,
            {"learnables": {name: value.detach() for name, value in learnables.items()},
             "optimizers": [optimizer.state_dict() for optimizer in optimizers],
             "generator": generator.get_state(), "losses": losses},
            io.provenance("distill_images", identity=identity, iteration=len(losses) - 1),
        )

    progress = tqdm(range(len(losses), iterations), desc=description, unit="it", initial=len(losses),
                    total=iterations, mininterval=2.0)
    for iteration in progress:
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss = compute_gradients(iteration)
        if not math.isfinite(loss):  # before the step, so the images are never spoilt
            kept = (f"the state after iteration {saved[0] - 1} is kept in {state_path}" if saved[0]
                    else "no state was saved")
            raise FloatingPointError(f"iteration {iteration}: the distillation loss became {loss}; {kept}")
        for optimizer in optimizers:
            optimizer.step()
        losses.append(loss)
        progress.set_postfix(loss=f"{loss:.4g}")
        if len(losses) % save_every == 0:
            save_state()
    return losses


def loss_curve_csv(losses: list[float]) -> str:
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["iteration", "loss"])
    writer.writerows([iteration, repr(loss)] for iteration, loss in enumerate(losses))
    return buffer.getvalue()


def save_loss_curve(losses: list[float], csv_path: str | os.PathLike, png_path: str | os.PathLike,
                    title: str) -> None:
    """The loss per iteration as csv (exact floats) and as a png line plot."""
    from labelworth.figures.style import new_figure, save_figure  # matplotlib only when drawing

    io.write_text(csv_path, loss_curve_csv(losses))
    figure, axes = new_figure()
    axes.plot(range(len(losses)), losses, linewidth=1)
    axes.set(xlabel="iteration", ylabel="distillation loss", title=title)
    save_figure(figure, png_path)


@dataclasses.dataclass(frozen=True)
class SynthesisFiles:
    """Where a synthesis run writes: the declared outputs and its undeclared resume folder."""

    images: str | os.PathLike
    grid: str | os.PathLike
    loss_csv: str | os.PathLike
    loss_png: str | os.PathLike
    work_dir: str | os.PathLike


def write_synthetic_set(files: SynthesisFiles, images: torch.Tensor, classes: torch.Tensor,
                        image_set: ImageSetSpec, train, losses: list[float],
                        learned_labels: torch.Tensor | None = None, **details) -> None:
    """images.pt (with the method's own labels, if it made any) and its grid through
    `save_image_set`, then the loss curve next to them. On whitened data (`train.zca`) the set also
    stores its images as pixels (`displayed_pixels`)."""
    images = images.detach().cpu()
    save_image_set(files.images, files.grid, images, classes.cpu(), image_set, train.spec, train.class_names,
                   learned_labels=None if learned_labels is None else learned_labels.detach().cpu(),
                   pixels=displayed_pixels(images, train.zca), **details)
    save_loss_curve(losses, files.loss_csv, files.loss_png, format_image_set(image_set))

