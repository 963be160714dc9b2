"""Expert training (METHOD.md section 5.1) with per-epoch checkpoints, metrics and exact resume.

An expert is trained on the full training set with hard labels, DSA on every batch, and plain SGD
(momentum 0, weight decay 0, constant learning rate, batch 256), as MTT's `buffer.py` and the paper do.
Each epoch's weights are kept because soft labels come from early-stopped experts.

Resume: Snakemake deletes a job's declared outputs before it starts and after it fails, so training
happens in an undeclared work folder holding `epoch_XXX.pt` files and `state.pt` (model, optimizer,
RNG state, metrics so far). A restarted job continues from the last finished epoch; asking for more
epochs than before extends the run. When the run is complete its checkpoints are linked (hard links,
no copy) into the declared checkpoint folder and `metrics.csv` is written. A resume state whose
finished epochs are missing or corrupted is ignored, and the run starts afresh.

A NaN or inf loss, or weights that stop being finite, raise FloatingPointError naming the epoch and
batch before that epoch is saved, so the work folder keeps the last good epoch and no output is written.
"""

from __future__ import annotations

import csv
import io as text_io
import os
import shutil
from pathlib import Path

import torch
from tqdm import tqdm

from labelworth import io
from labelworth.data import load_split
from labelworth.errors import LabelworthError
from labelworth.models import build_model
from labelworth.specs import dataset_spec
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


def _run_identity(dataset: str, arch: str, lr: float, seed: int, batch_size: int) -> dict:
    """Everything that makes two runs' epochs interchangeable (the epoch count does not)."""
    return {"dataset": dataset, "arch": arch, "lr": lr, "seed": seed, "batch_size": batch_size}


def _load_state(work_dir: Path, identity: dict) -> dict | None:
    state_path = work_dir / "state.pt"
    if not state_path.exists():
        return None
    try:
        state = io.load_tensors(state_path, required=("model", "optimizer", "generator", "metrics"))
    except LabelworthError as error:
        print(f"ignoring unreadable resume state: {error}", flush=True)
        return None
    if state["meta"]["identity"] != identity:
        print(f"resume state in {work_dir} belongs to another run; starting afresh", flush=True)
        return None
    # The finished epochs are linked into results, so a corrupted one there is corrupted here too;
    # retraining from scratch is the only way to rebuild it (and gives the same bytes).
    for epoch in range(len(state["metrics"])):
        try:
            io.load_tensors(work_dir / checkpoint_name(epoch), required=("state_dict",))
        except LabelworthError as error:
            print(f"ignoring the resume state, a finished epoch is unusable: {error}; starting afresh",
                  flush=True)
            return None
    return state


def _measure(model, train, test, epoch: int, train_loss: float) -> dict:
    train_logits = predict_logits(model, train.images)
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_accuracy": accuracy(train_logits, train.labels),
        "test_accuracy": accuracy(predict_logits(model, test.images), test.labels),
        "train_label_entropy": mean_entropy(train_logits.softmax(1)),
    }


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

    Checkpoint k holds the weights after k epochs; epoch 0 is the initialisation. The metrics of
    epoch k are measured on those weights: loss of the training pass, clean accuracy on the whole
    training and test sets, and the mean entropy of the softmax on the training set.
    """
    device = resolve_device(device)
    train = load_split(data_dir, "train", device)
    test = load_split(data_dir, "test", device)
    spec = train.spec
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    identity = _run_identity(spec.name, arch, lr, seed, batch_size)

    torch.manual_seed(seed)  # the initialisation is part of the run's identity
    model = build_model(arch, spec).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    metrics: list[dict] = []

    state = _load_state(work_dir, identity)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        metrics = [dict(row) for row in state["metrics"]][: epochs + 1]
        print(f"resuming after epoch {len(metrics) - 1} from {work_dir}", flush=True)

    def save_epoch(epoch: int) -> None:
        meta = io.provenance("train_expert", **identity, epoch=epoch)
        io.save_tensors(work_dir / checkpoint_name(epoch), {"state_dict": model.state_dict()}, meta)
        io.save_tensors(
            work_dir / "state.pt",
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "metrics": metrics,
            },
            io.provenance("train_expert", identity=identity, epoch=epoch),
        )

    if not metrics:
        metrics.append(_measure(model, train, test, 0, float("nan")))
        save_epoch(0)

    progress = tqdm(range(len(metrics), epochs + 1), desc=f"expert {arch} seed {seed}", unit="epoch",
                    initial=len(metrics) - 1, total=epochs, mininterval=2.0)
    for epoch in progress:
        try:
            loss, _ = train_epoch(model, optimizer, train.images, train.labels, batch_size,
                                  spec.dsa_strategy, generator)
            _require_finite(model)
        except FloatingPointError as error:  # raised before save_epoch: the last good epoch stays saved
            state_path = work_dir / "state.pt"
            raise FloatingPointError(
                f"epoch {epoch}, {error}; the state after epoch {epoch - 1} is kept in {state_path}"
            ) from None
        metrics.append(_measure(model, train, test, epoch, loss))
        save_epoch(epoch)
        progress.set_postfix(loss=f"{loss:.3f}", train=f"{metrics[-1]['train_accuracy']:.3f}",
                             test=f"{metrics[-1]['test_accuracy']:.3f}")

    for epoch in range(epochs + 1):
        _link_or_copy(work_dir / checkpoint_name(epoch), Path(checkpoint_dir) / checkpoint_name(epoch))
    io.write_text(metrics_path, _metrics_csv(metrics))
    return metrics
