"""Experts for datasets read from image files (ImageNet), data-parallel under torchrun (docs/method.md §5.2).

ImageNet is too big to cache as one tensor (data.py), so each minibatch is decoded from its files:
the train preset (RandomResizedCrop + horizontal flip, bilinear) for training, the eval preset
(resize to 256/224 of the size, centre crop) for measuring. The recipe is torchvision's reference
`train.py` as far as the config can say it: SGD with momentum 0.9 and weight decay 1e-4 on every
parameter, lr divided by 10 every 30 epochs, global batch `batch_size` (256), no DSA. The
config gives lr, batch and epochs; the rest are the constants below.

Under `torchrun --nproc-per-node N` (or `labelworth train-expert --processes N`, which starts it
through labelworth/torchrun.py) each process joins one process group (NCCL on GPUs, gloo on CPUs),
takes GPU `LOCAL_RANK` and trains a DistributedDataParallel copy of the network on its shard of
every epoch: a DistributedSampler permutation seeded by the run's seed and the epoch, batch_size / N
images per step. The gradients, and so the weights, are the same in every process. Measuring is
sharded too, its sums added over the processes, so every process holds the same metric rows;
process 0 alone writes checkpoints, state and metrics through experts.run_epochs, in the
single-process format. Without torchrun the same code runs as one process.

Resume is exact at an epoch boundary without any random state in the checkpoint: the epoch's
order comes from (seed, epoch) and each process's crops from (seed, epoch, rank), so a resumed
run repeats the draws an uninterrupted one makes.
"""

from __future__ import annotations

import contextlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from labelworth import io
from labelworth.data import load_image_files, normalize
from labelworth.errors import LabelworthError
from labelworth.resume import ExpertFiles, run_epochs
from labelworth.settings import ExpertSettings
from labelworth.models import build_model
from labelworth.specs import DatasetSpec, dataset_spec
from labelworth.training import expert_optimizer, mean_entropy, predict_batch, resolve_device, train_metric_indices

# torchvision references/classification defaults for ResNets (docs/method.md §5.2).
MOMENTUM = 0.9
WEIGHT_DECAY = 1.0e-4
LR_STEP_EPOCHS = 30
LR_STEP_FACTOR = 0.1


# --------------------------------------------------------------------------------------------------
# The process group


@dataclass(frozen=True)
class Processes:
    """This process's place among the data-parallel ones (rank 0 of 1 without torchrun)."""

    rank: int
    count: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.count > 1

    def summed(self, values: torch.Tensor) -> torch.Tensor:
        """A copy of `values` (on this process's device) summed element-wise over the processes."""
        total = values.clone()
        if self.distributed:
            dist.all_reduce(total)
        return total

    def share_buffers(self, model: torch.nn.Module) -> None:
        """Give every process process 0's buffers (batch-norm running statistics). Each process's
        last forward pass updated its own, but the checkpoint process 0 writes holds process 0's,
        and the metrics must describe that checkpoint."""
        if self.distributed:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def _process_device(requested: str, local_rank: int, local_count: int) -> torch.device:
    """GPU `local_rank` of the visible ones, or the one visible GPU when each process was given its
    own (per-process leases); the CPU when asked for or when there is no GPU."""
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if requested not in ("auto", "cuda"):
        raise LabelworthError(f"device {requested} names one device; each data-parallel process takes its own "
                              "GPU (use auto or cuda)")
    visible = torch.cuda.device_count()
    if visible == 1:
        return torch.device("cuda", 0)
    if visible < local_count:
        raise LabelworthError(f"{local_count} processes on this machine but {visible} GPUs visible "
                              f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def joined_processes(device: str) -> Iterator[Processes]:
    """Join torchrun's process group (NCCL on GPUs, gloo on CPUs) for the block; one process alone
    without torchrun."""
    environ = os.environ  # torchrun's variables
    count = int(environ.get("WORLD_SIZE", "1"))
    if count == 1:
        yield Processes(0, 1, resolve_device(device))
        return
    processes = Processes(int(environ["RANK"]), count, _process_device(
        device, int(environ["LOCAL_RANK"]), int(environ.get("LOCAL_WORLD_SIZE", count))))
    if processes.device.type == "cuda":
        torch.cuda.set_device(processes.device)
    dist.init_process_group("nccl" if processes.device.type == "cuda" else "gloo")
    try:
        yield processes
    finally:
        dist.destroy_process_group()


# --------------------------------------------------------------------------------------------------
# Data: shards and decoded minibatches


@dataclass(frozen=True)
class ImageFiles:
    """One prepared split of a dataset read from files: absolute paths and int64 labels."""

    paths: list[str]
    labels: torch.Tensor
    spec: DatasetSpec


def load_image_files_split(data_dir: str | os.PathLike, split: str) -> ImageFiles:
    """data_dir/{split}.pt from prepare_data for a dataset that is not cached as tensors."""
    path = Path(data_dir) / f"{split}.pt"
    content = io.load_tensors(path, required=("labels",))
    spec = dataset_spec(content["meta"]["dataset"])
    if spec.cached_as_tensors or "paths" not in content["meta"]:
        raise LabelworthError(f"{path}: holds {spec.name} as tensors, not as image files")
    return ImageFiles(list(content["meta"]["paths"]), content["labels"].long(), spec)


def training_shard(num_images: int, seed: int, epoch: int, rank: int, count: int) -> list[int]:
    """Indices of the training images process `rank` of `count` trains on in `epoch`, in order.

    The shards of one epoch are disjoint and cover every image when `count` divides `num_images`;
    otherwise, as torch's DistributedSampler does, a few images are repeated so every process takes
    the same number of steps. The order depends on (seed, epoch) only, not on the process.
    """
    sampler = DistributedSampler(range(num_images), num_replicas=count, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


def crop_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    """The generator of one process's random crops in one epoch, independent of every other one's."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0]))


def _prefetched(batches: Sequence, load: Callable) -> Iterator[tuple]:
    """(batch, load(batch)) for each batch, the next one loading in a background thread while the
    caller trains on this one. Loads run one at a time, in order, so a generator they draw from
    gives the same draws as loading in the foreground."""
    with ThreadPoolExecutor(max_workers=1) as loader:
        pending = loader.submit(load, batches[0]) if batches else None
        for position, batch in enumerate(batches):
            loaded = pending.result()
            if position + 1 < len(batches):
                pending = loader.submit(load, batches[position + 1])
            yield batch, loaded


def _pixels_loader(files: ImageFiles, train_crop: bool, device: torch.device,
                   generator: torch.Generator | None = None) -> Callable[[list[int]], torch.Tensor]:
    def load(batch: list[int]) -> torch.Tensor:
        pixels = load_image_files([files.paths[i] for i in batch], files.spec.image_size, train_crop, generator)
        return pixels.pin_memory() if device.type == "cuda" else pixels  # pinned: the copy overlaps compute

    return load


# --------------------------------------------------------------------------------------------------
# Training and measuring


def _train_one_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, files: ImageFiles, epoch: int,
                     seed: int, batch_per_process: int, processes: Processes) -> float:
    """One epoch on this process's shard; returns the mean training loss over all processes' images.

    The loss of every step is averaged over the processes before any of them steps, so a NaN or inf
    stops every process at the same batch with the same FloatingPointError."""
    shard = training_shard(len(files.labels), seed, epoch, processes.rank, processes.count)
    batches = [shard[start : start + batch_per_process] for start in range(0, len(shard), batch_per_process)]
    print(f"process {processes.rank} of {processes.count}, epoch {epoch}: {len(shard)} of {len(files.labels)} "
          f"training images", flush=True)
    load = _pixels_loader(files, True, processes.device, crop_generator(seed, epoch, processes.rank))
    model.train()
    loss_sum = 0.0
    for batch_number, (batch, pixels) in enumerate(_prefetched(batches, load), 1):
        images = normalize(pixels.to(processes.device, non_blocking=True), files.spec)
        loss = F.cross_entropy(model(images), files.labels[batch].to(processes.device, non_blocking=True))
        step_loss = processes.summed(loss.detach()).item() / processes.count
        if not math.isfinite(step_loss):  # stop before the step spoils the weights
            raise FloatingPointError(f"batch {batch_number} of {len(batches)}: training loss became {step_loss}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # DistributedDataParallel averages the gradients over the processes here
        optimizer.step()
        loss_sum += step_loss * len(batch)
    processes.share_buffers(model)
    return loss_sum / len(shard)


@torch.no_grad()
def accuracy_and_entropy(model: torch.nn.Module, files: ImageFiles, processes: Processes,
                          indices: torch.Tensor | None = None) -> tuple[float, float]:
    """(accuracy, mean softmax entropy) on the images of `files` at `indices` (None: every image)
    with the eval preset; each process takes every count-th of them, and the sums are added over
    the processes."""
    measured = range(len(files.labels)) if indices is None else indices.tolist()
    mine = list(measured[processes.rank :: processes.count])
    chunk = predict_batch(processes.device)
    batches = [mine[start : start + chunk] for start in range(0, len(mine), chunk)]
    model.eval()
    sums = torch.zeros(2, dtype=torch.float64)  # correct predictions, entropies
    for batch, pixels in _prefetched(batches, _pixels_loader(files, False, processes.device)):
        logits = model(normalize(pixels.to(processes.device, non_blocking=True), files.spec)).cpu()
        sums += torch.tensor([(logits.argmax(1) == files.labels[batch]).sum().item(),
                              mean_entropy(logits.softmax(1)) * len(batch)], dtype=torch.float64)
    correct, entropy_sum = processes.summed(sums.to(processes.device)).tolist()
    return correct / len(measured), entropy_sum / len(measured)


def measure_files(model: torch.nn.Module, train: ImageFiles, test: ImageFiles, processes: Processes,
                  train_sample: torch.Tensor | None, epoch: int, train_loss: float) -> dict:
    """An epoch's metric row, as experts.measure_epoch's, with the eval preset over image files."""
    train_accuracy, train_entropy = accuracy_and_entropy(model, train, processes, train_sample)
    test_accuracy, _ = accuracy_and_entropy(model, test, processes)
    return {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_accuracy,
            "test_accuracy": test_accuracy, "train_label_entropy": train_entropy}


def train_expert_from_files(data_dir: str | os.PathLike, settings: ExpertSettings, files: ExpertFiles,
                            device: str = "auto") -> list[dict]:
    """Train (or resume) one expert on a dataset read from image files, in this process or in each
    of torchrun's; returns the per-epoch metric rows (the same in every process).

    The metrics are those of experts.train_expert, measured with the eval preset: training loss
    (train preset), clean accuracy on the test set and on the measured training images
    (`settings.train_metric_images`), mean softmax entropy on those images."""
    train = load_image_files_split(data_dir, "train")
    test = load_image_files_split(data_dir, "test")
    seed, batch_size = settings.seed, settings.batch_size
    train_sample = train_metric_indices(len(train.labels), settings.train_metric_images)
    with joined_processes(device) as processes:
        if batch_size % processes.count:
            raise LabelworthError(f"batch size {batch_size} does not split over {processes.count} processes")
        if processes.rank == 0:
            Path(files.work_dir).mkdir(parents=True, exist_ok=True)
        if processes.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels

        torch.manual_seed(seed)  # the same initialisation in every process, as in one
        model = build_model(settings.arch, train.spec).to(processes.device)
        trained = DistributedDataParallel(model, device_ids=[processes.device] if processes.device.type == "cuda"
                                          else None) if processes.distributed else model
        optimizer = expert_optimizer(model.parameters(), settings, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, LR_STEP_EPOCHS, LR_STEP_FACTOR)

        def train_one_epoch(epoch: int) -> float:
            loss = _train_one_epoch(trained, optimizer, train, epoch, seed, batch_size // processes.count, processes)
            schedule.step()
            return loss

        return run_epochs(model, settings.run_identity(train.spec.name), settings.epochs, files,
                          train_one_epoch,
                          lambda epoch, loss: measure_files(model, train, test, processes, train_sample, epoch, loss),
                          {"optimizer": optimizer, "schedule": schedule},
                          writes_files=processes.rank == 0, after_resume=processes.barrier)
