"""Expert-training speed: seconds per epoch of our trainer and of the reference way, by ConvNet width.

    python benchmarks/experts.py                       # CPU, a 5120-image subset, a few minutes
    python benchmarks/experts.py --device cuda --images 60000

An expert epoch is one pass over the training set with hard labels, DSA on every batch and plain SGD
(momentum 0, weight decay 0, batch 256). Ours is `labelworth.training.train_epoch` (data as one
tensor, index slices, DSA parameters drawn as tensors); the reference way is a DataLoader over a
TensorDataset with the reference's per-sample DSA (`reference_epoch` in benchmarks/students.py).
Timings run on `--images` random Fashion-MNIST-shaped images and are extrapolated to the 60000 images
of a full Fashion-MNIST epoch; each cell is the median over `--repeats` rounds, the two ways back to
back within a round.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from labelworth.models import build_model
from labelworth.specs import ArchSpec, dataset_spec, format_arch
from labelworth.training import train_epoch
from common import interleaved_rounds, machine_header, synchronise, write_table
from students import reference_epoch

FULL_EPOCH_IMAGES = 60000


def time_epoch(way: str, arch: str, images, labels, batch_size: int, lr: float, device) -> float:
    """Wall seconds of one expert epoch (a fresh network, so every way starts from the same state)."""
    spec = dataset_spec("fashion_mnist")
    torch.manual_seed(0)
    model = build_model(arch, spec).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0, weight_decay=0.0)
    synchronise(device)
    start = time.perf_counter()
    if way == "ours":
        train_epoch(model, optimizer, images, labels, batch_size, spec.dsa_strategy, torch.Generator().manual_seed(0))
    else:
        loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True, num_workers=0)
        reference_epoch(model, optimizer, loader, spec.dsa_strategy)
    synchronise(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--images", type=int, default=5120, help="training images per timed epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: steadier on a shared machine)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/results/experts.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = machine_header(device)
    started = time.time()
    spec = dataset_spec("fashion_mnist")
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.images, spec.channels, spec.image_size, spec.image_size, generator=generator).to(device)
    labels = torch.randint(0, spec.num_classes, (args.images,), generator=generator).to(device)
    warm_up = images[: 2 * args.batch_size], labels[: 2 * args.batch_size]

    rows = []
    for width in args.widths:
        arch = format_arch(ArchSpec("convnet", args.depth, width))
        ways = ["reference", "ours"]
        for way in ways:
            time_epoch(way, arch, *warm_up, args.batch_size, args.lr, device)
        seconds = interleaved_rounds(
            ways, args.repeats, lambda way: time_epoch(way, arch, images, labels, args.batch_size, args.lr, device))
        scale = FULL_EPOCH_IMAGES / args.images
        reference, ours = (statistics.median(seconds[way]) * scale for way in ways)
        rows.append((arch, width, reference, ours))
        print(f"{arch}: reference {reference:.1f} s, ours {ours:.1f} s per full epoch", flush=True)

    lines = [
        f"Expert epoch on Fashion-MNIST-shaped data (1x28x28, 10 classes, hard labels, DSA, SGD momentum 0, "
        f"batch {args.batch_size}), device {device}: {args.images} random images per timed epoch, seconds "
        f"extrapolated to a full {FULL_EPOCH_IMAGES}-image epoch; medians of {args.repeats} rounds. "
        f"Whole run {time.time() - started:.0f} s.",
        "",
        info,
        "",
        "| network | width | reference s/epoch | ours s/epoch | speed-up |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {arch} | {width} | {reference:.1f} | {ours:.1f} | {reference / ours:.2f}x |"
              for arch, width, reference, ours in rows]
    write_table("Expert epoch time", lines, args.out)


if __name__ == "__main__":
    main()
