"""The resume engine of every long stage: experts train epoch by epoch (`run_epochs`), synthesis
methods iterate (`run_iterations`), and both keep their state in an undeclared work folder.

Snakemake deletes a job's declared outputs before it starts and after it fails, so a long stage
works in a folder of its own: `state.pt` (the model or the learnable tensors, optimizer and
generator states, the metrics or losses so far) beside, for experts, one `epoch_XXX.pt` per finished
epoch. A restarted job continues from the last saved point when the state's identity (the settings
that make two runs interchangeable) matches; asking for more epochs or iterations than before
extends the run. A state that is unreadable, belongs to another run, or whose finished epochs are
missing or corrupted is ignored, and the run starts afresh (which gives the same bytes).

A NaN or inf loss, or weights that stop being finite, raise FloatingPointError naming the epoch (or
iteration) and batch before anything is saved, so the work folder keeps the last good state and no
output is written.
"""

from __future__ import annotations

import csv
import io as text_io
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch
from tqdm import tqdm

from labelworth import io
from labelworth.errors import LabelworthError
from labelworth.specs import checkpoint_name

METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "test_accuracy", "train_label_entropy")


@dataclass(frozen=True)
class ExpertFiles:
    """Where a run writes: the declared checkpoint folder and metrics.csv, and its work folder."""

    checkpoint_dir: Path
    metrics_path: Path
    work_dir: Path

    def __post_init__(self):
        for name in ("checkpoint_dir", "metrics_path", "work_dir"):
            object.__setattr__(self, name, Path(getattr(self, name)))


class Stateful(Protocol):
    def state_dict(self): ...

    def load_state_dict(self, state) -> None: ...


class GeneratorState:
    """A torch.Generator seen through state_dict/load_state_dict, like the optimizer beside it."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def state_dict(self) -> torch.Tensor:
        return self.generator.get_state()

    def load_state_dict(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


def load_resume_state(state_path: Path, identity: dict, required: tuple[str, ...],
                      say: Callable[[str], None], usable: Callable[[dict], str | None] = lambda state: None) -> dict | None:
    """The resume state at `state_path`, or None (said through `say`) when there is none, it is
    unreadable, its identity is not `identity`, or `usable(state)` gives a reason not to use it."""
    if not state_path.exists():
        return None
    try:
        state = io.load_tensors(state_path, required=required)
    except LabelworthError as error:
        say(f"ignoring unreadable resume state: {error}")
        return None
    if state["meta"]["identity"] != identity:
        say(f"resume state {state_path} belongs to another run; starting afresh")
        return None
    reason = usable(state)
    if reason:
        say(f"ignoring the resume state {state_path}: {reason}; starting afresh")
        return None
    return state


def _finished_epochs_unusable(work_dir: Path) -> Callable[[dict], str | None]:
    """A state's finished epochs are linked into results, so a corrupted one there is corrupted here
    too; retraining from scratch is the only way to rebuild it (and gives the same bytes)."""

    def reason(state: dict) -> str | None:
        for epoch in range(len(state["metrics"])):
            try:
                io.load_tensors(work_dir / checkpoint_name(epoch), required=("state_dict",))
            except LabelworthError as error:
                return f"a finished epoch is unusable: {error}"
        return None

    return reason


def _require_finite(model: torch.nn.Module) -> None:
    """Raise FloatingPointError if a weight or batch-norm statistic is NaN or inf, so a last step that
    spoilt the weights (finite loss, inf gradient) is never saved as a finished epoch."""
    spoilt = [name for name, value in model.state_dict().items()
              if value.is_floating_point() and not torch.isfinite(value).all()]
    if spoilt:
        raise FloatingPointError(f"weights became non-finite after the last batch ({', '.join(spoilt)})")


def metrics_csv(rows: list[dict]) -> str:
    """An expert's metrics.csv: one row per epoch, METRIC_COLUMNS."""
    buffer = text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _link_or_copy(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.unlink(missing_ok=True)
    try:
        os.link(source, destination)
    except OSError:  # another file system: copy instead
        shutil.copy2(source, destination)


def _say(message: str) -> None:
    print(message, flush=True)


def run_epochs(
    model: torch.nn.Module,
    identity: dict,
    epochs: int,
    files: ExpertFiles,
    train_one_epoch: Callable[[int], float],
    measure: Callable[[int, float], dict],
    trainer_state: dict[str, Stateful],
    writes_files: bool = True,
    after_resume: Callable[[], None] = lambda: None,
) -> list[dict]:
    """Train `model` (resuming from files.work_dir) until it has `epochs` epochs; returns the metric rows.

    `train_one_epoch(epoch)` trains epoch `epoch` (1-based) and returns its mean training loss;
    `measure(epoch, loss)` gives that epoch's metric row; `trainer_state` names what a resume must
    restore besides the model (optimizer, generator, schedule). Checkpoint k holds the weights after
    k epochs; epoch 0 is the initialisation. In a data-parallel run every process calls this with the
    same arguments and only one has `writes_files`; `after_resume` runs once every process has read
    the resume state, before the first write (a barrier), so no process reads a half-updated folder.
    """
    work_dir = Path(files.work_dir)
    say = _say if writes_files else lambda message: None
    metrics: list[dict] = []
    state = load_resume_state(work_dir / "state.pt", identity, ("model", "metrics", *trainer_state), say,
                              _finished_epochs_unusable(work_dir))
    if state is not None:
        model.load_state_dict(state["model"])
        for key, stateful in trainer_state.items():
            stateful.load_state_dict(state[key])
        metrics = [dict(row) for row in state["metrics"]][: epochs + 1]
        say(f"resuming after epoch {len(metrics) - 1} from {work_dir}")
    after_resume()

    def save_epoch(epoch: int) -> None:
        if not writes_files:
            return
        meta = io.provenance("train_expert", **identity, epoch=epoch)
        io.save_tensors(work_dir / checkpoint_name(epoch), {"state_dict": model.state_dict()}, meta)
        io.save_tensors(
            work_dir / "state.pt",
            {"model": model.state_dict(), "metrics": metrics,
             **{key: stateful.state_dict() for key, stateful in trainer_state.items()}},
            io.provenance("train_expert", identity=identity, epoch=epoch),
        )

    if not metrics:
        metrics.append(measure(0, float("nan")))
        save_epoch(0)

    progress = tqdm(range(len(metrics), epochs + 1), desc=f"expert {identity['arch']} seed {identity['seed']}",
                    unit="epoch", initial=len(metrics) - 1, total=epochs, mininterval=2.0,
                    disable=not writes_files)
    for epoch in progress:
        try:
            loss = train_one_epoch(epoch)
            _require_finite(model)
        except FloatingPointError as error:  # raised before save_epoch: the last good epoch stays saved
            raise FloatingPointError(
                f"epoch {epoch}, {error}; the state after epoch {epoch - 1} is kept in {work_dir / 'state.pt'}"
            ) from None
        metrics.append(measure(epoch, loss))
        save_epoch(epoch)
        progress.set_postfix(loss=f"{loss:.3f}", train=f"{metrics[-1]['train_accuracy']:.3f}",
                             test=f"{metrics[-1]['test_accuracy']:.3f}")

    if writes_files:
        for epoch in range(epochs + 1):
            _link_or_copy(work_dir / checkpoint_name(epoch), files.checkpoint_dir / checkpoint_name(epoch))
        io.write_text(files.metrics_path, metrics_csv(metrics))
    return metrics


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
    state = load_resume_state(
        state_path, identity, ("learnables", "optimizers", "generator", "losses"), _say,
        lambda state: ("it holds other tensors" if set(state["learnables"]) != set(learnables) else
                       f"it ran {len(state['losses'])} iterations, more than {iterations}"
                       if len(state["losses"]) > iterations else None))
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


