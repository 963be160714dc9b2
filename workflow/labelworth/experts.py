"""Expert training (METHOD.md section 5) with per-epoch checkpoints, metrics and exact resume.

An expert is trained on the full training set with hard labels. Datasets cached as tensors (every one
but ImageNet) follow section 5.1: DSA on every batch and plain SGD (momentum 0, weight decay 0,
constant learning rate, batch 256), as MTT's `buffer.py` and the paper do. ImageNet is read from its
image files and follows torchvision's reference recipe (section 5.2), data-parallel under torchrun
(labelworth/experts_distributed.py). Each epoch's weights are kept because soft labels come from
early-stopped experts.

Both trainers share `run_epochs`, the part that makes a run resumable. Snakemake deletes a job's
declared outputs before it starts and after it fails, so training happens in an undeclared work
folder holding `epoch_XXX.pt` files and `state.pt` (model, optimizer and the trainer's other state,
metrics so far). A restarted job continues from the last finished epoch; asking for more epochs than
before extends the run. When the run is complete its checkpoints are linked (hard links, no copy)
into the declared checkpoint folder and `metrics.csv` is written. A resume state whose finished
epochs are missing or corrupted is ignored, and the run starts afresh.

A NaN or inf loss, or weights that stop being finite, raise FloatingPointError naming the epoch and
batch before that epoch is saved, so the work folder keeps the last good epoch and no output is written.
"""

from __future__ import annotations

import csv
import io as text_io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch
from tqdm import tqdm

from labelworth import io
from labelworth.data import load_split
from labelworth.errors import LabelworthError
from labelworth.models import build_model
from labelworth.specs import DatasetSpec, dataset_spec
from labelworth.training import accuracy, mean_entropy, predict_logits, resolve_device, train_epoch

METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "test_accuracy", "train_label_entropy")


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:03d}.pt"


def load_expert(checkpoint_path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the network a checkpoint was saved from (its meta names arch and dataset)."""
    content = io.load_tensors(checkpoint_path, required=("state_dict",))
    meta = content["meta"]
    model = build_model(meta["arch"], dataset_spec(meta["dataset"]))
    model.load_state_dict(content["state_dict"])
    return model.to(device).eval()


def prepared_dataset(data_dir: str | os.PathLike) -> DatasetSpec:
    """The dataset a prepare-data folder holds, read from its (small) test split."""
    return dataset_spec(io.load_tensors(Path(data_dir) / "test.pt", required=("labels",))["meta"]["dataset"])


def run_identity(dataset: str, arch: str, lr: float, seed: int, batch_size: int) -> dict:
    """Everything that makes two runs' epochs interchangeable (the epoch count does not)."""
    return {"dataset": dataset, "arch": arch, "lr": lr, "seed": seed, "batch_size": batch_size}


@dataclass(frozen=True)
class ExpertFiles:
    """Where a run writes: the declared checkpoint folder and metrics.csv, and its work folder."""

    checkpoint_dir: Path
    metrics_path: Path
    work_dir: Path


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


def _load_state(work_dir: Path, identity: dict, trainer_keys: tuple[str, ...], say: Callable[[str], None]) -> dict | None:
    state_path = work_dir / "state.pt"
    if not state_path.exists():
        return None
    try:
        state = io.load_tensors(state_path, required=("model", "metrics", *trainer_keys))
    except LabelworthError as error:
        say(f"ignoring unreadable resume state: {error}")
        return None
    if state["meta"]["identity"] != identity:
        say(f"resume state in {work_dir} belongs to another run; starting afresh")
        return None
    # The finished epochs are linked into results, so a corrupted one there is corrupted here too;
    # retraining from scratch is the only way to rebuild it (and gives the same bytes).
    for epoch in range(len(state["metrics"])):
        try:
            io.load_tensors(work_dir / checkpoint_name(epoch), required=("state_dict",))
        except LabelworthError as error:
            say(f"ignoring the resume state, a finished epoch is unusable: {error}; starting afresh")
            return None
    return state


def _require_finite(model: torch.nn.Module) -> None:
    """Raise FloatingPointError if a weight or batch-norm statistic is NaN or inf, so a last step that
    spoilt the weights (finite loss, inf gradient) is never saved as a finished epoch."""
    spoilt = [name for name, value in model.state_dict().items()
              if value.is_floating_point() and not torch.isfinite(value).all()]
    if spoilt:
        raise FloatingPointError(f"weights became non-finite after the last batch ({', '.join(spoilt)})")


def _metrics_csv(rows: list[dict]) -> str:
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
    state = _load_state(work_dir, identity, tuple(trainer_state), say)
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
        io.write_text(files.metrics_path, _metrics_csv(metrics))
    return metrics


def _measure(model, train, test, epoch: int, train_loss: float) -> dict:
    train_logits = predict_logits(model, train.images)
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_accuracy": accuracy(train_logits, train.labels),
        "test_accuracy": accuracy(predict_logits(model, test.images), test.labels),
        "train_label_entropy": mean_entropy(train_logits.softmax(1)),
    }


def train_expert(
    data_dir: str | os.PathLike,
    arch: str,
    lr: float,
    epochs: int,
    seed: int,
    batch_size: int,
    checkpoint_dir: str | os.PathLike,
    metrics_path: str | os.PathLike,
    work_dir: str | os.PathLike,
    device: str = "auto",
) -> list[dict]:
    """Train (or resume) one expert for `epochs` epochs; returns the per-epoch metric rows.

    The metrics of epoch k are measured on the weights after k epochs: loss of the training pass,
    clean accuracy on the whole training and test sets, and the mean entropy of the softmax on the
    training set. ImageNet goes to `experts_distributed.train_expert_from_files`, in one process or in
    each of torchrun's.
    """
    files = ExpertFiles(Path(checkpoint_dir), Path(metrics_path), Path(work_dir))
    if not prepared_dataset(data_dir).cached_as_tensors:
        from labelworth.experts_distributed import train_expert_from_files

        return train_expert_from_files(data_dir, arch, lr, epochs, seed, batch_size, files, device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise LabelworthError(
            "data-parallel expert training is for datasets read from image files (imagenet); "
            "a dataset cached as tensors trains in one process"
        )
    device = resolve_device(device)
    train = load_split(data_dir, "train", device)
    test = load_split(data_dir, "test", device)
    spec = train.spec
    files.work_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)  # the initialisation is part of the run's identity
    model = build_model(arch, spec).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)

    def train_one_epoch(epoch: int) -> float:
        # looked up in this module at call time, so a test can wrap it
        return train_epoch(model, optimizer, train.images, train.labels, batch_size, spec.dsa_strategy,
                           generator)[0]

    return run_epochs(model, run_identity(spec.name, arch, lr, seed, batch_size), epochs, files,
                      train_one_epoch, lambda epoch, loss: _measure(model, train, test, epoch, loss),
                      {"optimizer": optimizer, "generator": GeneratorState(generator)})
