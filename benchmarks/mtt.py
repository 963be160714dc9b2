"""MTT distillation speed: seconds per iteration and peak memory of our two meta-gradients and the reference way.

    python benchmarks/mtt.py --data-dir D --checkpoints C          # CPU: 3.5 min of CPU time, 1 thread
    python benchmarks/mtt.py --data-dir D --checkpoints C --quick  # IPC 1, one round: under a minute

D is a prepared Fashion-MNIST folder (train.pt), C the checkpoints/ folder of one convnet-d3-w32 expert;
a replay buffer of its epochs 0..--buffer-epochs is dumped into a scratch folder first. One MTT
iteration draws a start epoch, takes `--syn-steps` differentiable SGD steps of the expert's network
on minibatches of the synthetic images (real-image init, hard labels, DSA on every step), and moves
the images and the student lr by the meta-gradient of the trajectory-matching loss.
Variants:

* reference: MTT's `distill.py` loop: one flat parameter vector put into the
  network per step (`ReparamModule`), the buffer as lists of per-parameter tensors concatenated every
  iteration, draws from the global RNG, DSA with per-sample parameters drawn on the CPU and affine
  matrices built in Python (`reference_dsa` of benchmarks/students.py). It lives here, not in the
  package.
* unrolled: `labelworth.distill.mtt.unrolled_gradients` (the `tesla: false` default).
* tesla:    `labelworth.distill.mtt.tesla_gradients` (the same gradient, one step's graph at a time).

Every reading is a fresh process running one variant: setup, one warm-up iteration, then `--iterations`
timed ones (seconds per iteration = their mean, in wall time and in the process's own CPU time; the
latter is what to compare when other jobs share the cores). Peak memory is the process's peak resident
set (Linux `VmHWM`, reset after setup; torch's allocations are invisible to tracemalloc), given both in
all and as the growth over the resident set just before the first iteration, i.e. what the iterations
themselves need. Processes call `labelworth.cli.keep_freed_memory()` first, as `labelworth
distill-images` does. Each cell is the median over `--repeats` rounds; within a round the variants run
back to back in a rotating order, so the ratios compare like with like. IPC 10 (all 100 images per
step) and IPC 50 (100 of 500) cost about the same per iteration; at IPC 1 a step sees 10 images.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from labelworth.cli import keep_freed_memory
from labelworth.data import load_split
from labelworth.distill.mtt import plan_steps, tesla_gradients, trajectory_network, unrolled_gradients
from labelworth.distill.synthesis import real_image_init
from labelworth.settings import MttSettings
from labelworth.specs import dataset_spec
from labelworth.trajectories import dump_trajectories, load_trajectories, unflatten_parameters

from common import interleaved_rounds, machine_header, median_readings, write_table
from students import reference_dsa

VARIANTS = ("reference", "unrolled", "tesla")
OUR_META_GRADIENTS = {"unrolled": unrolled_gradients, "tesla": tesla_gradients}


# --------------------------------------------------------------------------------------------------
# The reference way


class ReparamNetwork:
    """MTT's `ReparamModule`: the network's parameters are taken out of it and, at every call, views
    of one flat vector are put in their place, so the output is differentiable in that vector."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.slots = [(module, name, parameter.shape) for module in model.modules()
                      for name, parameter in list(module.named_parameters(recurse=False))]
        for module, name, _ in self.slots:
            delattr(module, name)

    def __call__(self, images: torch.Tensor, flat_param: torch.Tensor) -> torch.Tensor:
        pieces = flat_param.split([shape.numel() for _, _, shape in self.slots])
        for (module, name, shape), piece in zip(self.slots, pieces):
            setattr(module, name, piece.view(shape))
        return self.model(images)


def reference_buffer(parameters: torch.Tensor, model: torch.nn.Module) -> list[list[list[torch.Tensor]]]:
    """Our buffer rows as MTT's `replay_buffer_*.pt` holds them: per expert, per epoch, one tensor per
    parameter."""
    return [[[piece.clone() for piece in unflatten_parameters(row, model).values()] for row in expert]
            for expert in parameters]


def reference_iteration(network: ReparamNetwork, trajectories, images, labels, syn_lr, optimizers,
                        settings: MttSettings, strategy: str) -> float:
    """One pass of the loop body of MTT's `distill.py` (no evaluation, no logging); returns the loss."""
    expert_trajectory = trajectories[np.random.randint(len(trajectories))]
    start_epoch = np.random.randint(0, settings.max_start_epoch)
    starting_params = expert_trajectory[start_epoch]
    target_params = expert_trajectory[start_epoch + settings.expert_epochs]
    target_params = torch.cat([p.data.reshape(-1) for p in target_params], 0)
    student_params = [torch.cat([p.data.reshape(-1) for p in starting_params], 0).requires_grad_(True)]
    starting_params = torch.cat([p.data.reshape(-1) for p in starting_params], 0)
    batch_syn = settings.batch_syn or len(images)
    indices_chunks = []
    for _ in range(settings.syn_steps):
        if not indices_chunks:
            indices_chunks = list(torch.split(torch.randperm(len(images)), batch_syn))
        these_indices = indices_chunks.pop()
        x = reference_dsa(images[these_indices], strategy)
        ce_loss = F.cross_entropy(network(x, student_params[-1]), labels[these_indices])
        grad = torch.autograd.grad(ce_loss, student_params[-1], create_graph=True)[0]
        student_params.append(student_params[-1] - syn_lr * grad)
    num_params = target_params.numel()
    param_loss = F.mse_loss(student_params[-1], target_params, reduction="sum") / num_params
    param_dist = F.mse_loss(starting_params, target_params, reduction="sum") / num_params
    grand_loss = param_loss / param_dist
    for optimizer in optimizers:
        optimizer.zero_grad()
    grand_loss.backward()
    for optimizer in optimizers:
        optimizer.step()
    return grand_loss.item()


# --------------------------------------------------------------------------------------------------
# Ours


def our_iteration(meta_gradients, model, parameters, images, classes, lr, optimizers, settings: MttSettings,
                  strategy: str, generator: torch.Generator) -> float:
    """One iteration as `labelworth.distill.mtt.distill_mtt` runs it (its draws, `meta_gradients`,
    the optimiser steps), without the checkpointing of `run_iterations`; returns the loss."""
    expert = int(torch.randint(parameters.shape[0], (1,), generator=generator).item())
    start = int(torch.randint(settings.max_start_epoch, (1,), generator=generator).item())
    theta_start = parameters[expert, start].to(dtype=images.dtype)
    theta_target = parameters[expert, start + settings.expert_epochs].to(dtype=images.dtype)
    steps = plan_steps(len(images), settings.batch_syn, settings.syn_steps, generator)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss = meta_gradients(model, theta_start, theta_target, images, classes, lr, steps, strategy)
    for optimizer in optimizers:
        optimizer.step()
    return loss


# --------------------------------------------------------------------------------------------------
# One timed process


def resident_mb(field: str) -> float:
    """`VmRSS` (resident now) or `VmHWM` (its peak) of this process from /proc/self/status, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"/proc/self/status has no {field}: this benchmark needs Linux")


def reset_peak_resident() -> None:
    """Make the peak resident set (`VmHWM`) start again from the current one (Linux >= 4.0), so that
    the peak read later is that of the iterations, not of importing torch and loading data."""
    Path("/proc/self/clear_refs").write_text("5")


def run_variant(variant: str, init_path: Path, buffer_path: Path, settings: MttSettings, iterations: int) -> dict:
    """Time `iterations` iterations of `variant` after one warm-up; seconds per iteration and memory."""
    spec = dataset_spec("fashion_mnist")
    init = torch.load(init_path, weights_only=True)
    images, classes = init["images"].requires_grad_(True), init["classes"]
    buffer = load_trajectories(buffer_path)
    model = trajectory_network(buffer, spec, "cpu", images.dtype)
    lr = torch.tensor(settings.lr_teacher, requires_grad=True)
    optimizers = [torch.optim.SGD([images], lr=settings.lr_img, momentum=0.5),
                  torch.optim.SGD([lr], lr=settings.lr_lr, momentum=0.5)]
    if variant == "reference":
        np.random.seed(0)
        torch.manual_seed(0)
        trajectories = reference_buffer(buffer["parameters"], model)
        network = ReparamNetwork(model)

        def iteration() -> float:
            return reference_iteration(network, trajectories, images, classes, lr, optimizers, settings,
                                       spec.dsa_strategy)
    else:
        generator = torch.Generator().manual_seed(0)

        def iteration() -> float:
            return our_iteration(OUR_META_GRADIENTS[variant], model, buffer["parameters"], images, classes, lr,
                                 optimizers, settings, spec.dsa_strategy, generator)

    reset_peak_resident()
    resident_before = resident_mb("VmRSS")
    iteration()
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        iteration()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak = resident_mb("VmHWM")
    return {"seconds": seconds / iterations, "cpu_seconds": cpu_seconds / iterations, "peak_mb": peak,
            "growth_mb": peak - resident_before}


def time_in_fresh_process(variant: str, init_path: Path, buffer_path: Path, batch_syn: int, iterations: int,
                          args) -> dict:
    """`run_variant` in a child process of this script (see `--one`)."""
    command = [sys.executable, __file__, "--one", variant, "--init", str(init_path), "--buffer", str(buffer_path),
               "--batch-syn", str(batch_syn), "--iterations", str(iterations), "--syn-steps", str(args.syn_steps),
               "--expert-epochs", str(args.expert_epochs), "--buffer-epochs", str(args.buffer_epochs),
               "--threads", str(args.threads)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="results/fashion_mnist/data", help="prepared Fashion-MNIST (train.pt)")
    parser.add_argument("--checkpoints", default="results/fashion_mnist/experts/convnet-d3-w32-lr0.01/seed0/checkpoints",
                        help="one convnet-d3-w32 expert's checkpoints/ folder")
    parser.add_argument("--images-per-class", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--batch-syn", type=int, nargs="+", default=[0, 0, 100],
                        help="synthetic images per inner step, one per --images-per-class entry (0: all)")
    parser.add_argument("--iterations", type=int, nargs="+", default=[4, 1, 1],
                        help="timed iterations per process, one per --images-per-class entry")
    parser.add_argument("--syn-steps", type=int, default=20)
    parser.add_argument("--expert-epochs", type=int, default=2)
    parser.add_argument("--buffer-epochs", type=int, default=4, help="the buffer holds expert epochs 0..this")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: steadier on a shared machine)")
    parser.add_argument("--quick", action="store_true", help="IPC 1 only, 2 timed iterations, one round")
    parser.add_argument("--out", default="benchmarks/results/mtt.md")
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)  # the child process of one timing
    parser.add_argument("--init", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--buffer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Start epochs 0..max_start_epoch-1 so that start + expert_epochs stays within the buffer.
    max_start_epoch = args.buffer_epochs - args.expert_epochs + 1
    if args.one:
        keep_freed_memory()  # before torch allocates anything, as the CLI does
        torch.set_num_threads(args.threads)
        settings = MttSettings(syn_steps=args.syn_steps, expert_epochs=args.expert_epochs,
                               max_start_epoch=max_start_epoch, batch_syn=args.batch_syn[0])
        print(json.dumps(run_variant(args.one, args.init, args.buffer, settings, args.iterations[0])))
        return
    if args.quick:
        args.images_per_class, args.batch_syn, args.iterations, args.repeats = [1], [0], [2], 1
    if not len(args.images_per_class) == len(args.batch_syn) == len(args.iterations):
        parser.error("give one --batch-syn and one --iterations entry per --images-per-class entry")

    torch.set_num_threads(args.threads)
    info = machine_header()
    started = time.time()
    rows = []
    with tempfile.TemporaryDirectory(prefix="labelworth-mtt-bench-") as scratch:
        buffer_path = Path(scratch) / "trajectories.pt"
        dump_trajectories([args.checkpoints], args.buffer_epochs, buffer_path)
        train = load_split(args.data_dir, "train")
        init_paths = {}
        for ipc in args.images_per_class:
            images, classes = real_image_init(train, ipc, seed=0)
            init_paths[ipc] = Path(scratch) / f"init-ipc{ipc}.pt"
            torch.save({"images": images, "classes": classes}, init_paths[ipc])
        del train

        for ipc, batch_syn, iterations in zip(args.images_per_class, args.batch_syn, args.iterations):
            readings = interleaved_rounds(
                args.variants, args.repeats,
                lambda variant: time_in_fresh_process(variant, init_paths[ipc], buffer_path, batch_syn, iterations,
                                                      args))
            medians = median_readings(readings)
            for variant in args.variants:
                speed_up = {key: medians["reference"][key] / medians[variant][key] if "reference" in medians
                            else float("nan") for key in ("seconds", "cpu_seconds")}
                rows.append({"ipc": ipc, "batch_syn": batch_syn or 10 * ipc, "variant": variant, **medians[variant],
                             "wall_vs_reference": speed_up["seconds"], "cpu_vs_reference": speed_up["cpu_seconds"]})
                print(f"IPC {ipc} {variant}: {medians[variant]['seconds']:.3f} s per iteration "
                      f"({medians[variant]['cpu_seconds']:.3f} s CPU), peak {medians[variant]['peak_mb']:.0f} MB",
                      flush=True)

    lines = [
        f"MTT distillation iterations on Fashion-MNIST: convnet-d3-w32 trajectories (one expert, epochs "
        f"0..{args.buffer_epochs}, start epoch < {max_start_epoch}, expert_epochs {args.expert_epochs}), "
        f"real-image init, hard labels, syn_steps {args.syn_steps}, DSA `{dataset_spec('fashion_mnist').dsa_strategy}`, "
        f"device cpu. Each reading is a fresh process (one warm-up iteration, then "
        + ", ".join(f"{k} timed at IPC {i}" for i, k in zip(args.images_per_class, args.iterations))
        + f"); medians of {args.repeats} rounds, variants interleaved. CPU s is the process's own CPU time "
        f"(steadier than wall time when other jobs share the cores). Peak RSS is the process's peak resident "
        f"set during the iterations; 'growth' is that minus the resident set just before the first one. "
        f"Whole run {time.time() - started:.0f} s.",
        "",
        info,
        "",
        "| IPC | batch_syn | variant | s / iteration | CPU s / iteration | speed-up vs reference (wall) "
        "| (CPU) | peak RSS MB | growth MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {row['ipc']} | {row['batch_syn']} | {row['variant']} | {row['seconds']:.3f} | "
              f"{row['cpu_seconds']:.3f} | {row['wall_vs_reference']:.2f}x | {row['cpu_vs_reference']:.2f}x | "
              f"{row['peak_mb']:.0f} | {row['growth_mb']:.0f} |" for row in rows]
    write_table("MTT iteration speed", lines, args.out)


if __name__ == "__main__":
    main()
