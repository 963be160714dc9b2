"""Expected GPU-hours of each paper-scale config, from its job list and costs measured on an H100.

Nothing here trains: the jobs come from the same planners the workflow uses (labelworth.plan,
labelworth/config.py), and each job's cost from a two-number model calibrated on the lent H100
(benchmarks/results/):

* arithmetic: a training image costs 3 x the network's multiply-accumulates (forward, backward),
  at the rate an expert epoch reached: convnet-d3 (width 128) ran a 60,000-image Fashion-MNIST epoch
  with DSA in 1.1 s (experts.md), i.e. 60,000 x 3 x 37.0 M MACs / 1.1 s = 6.1 T MAC/s; a test image
  costs 1 x;
* per-step overhead: at IPC 1 a student step is a few images and time goes to kernel launches and
  augmentation, 1.5 ms per student step with the vectorised engine at S = 5 (students.md), which
  the paper configs use;
* a step costs the larger of the two. Assumed, not measured on a GPU: an MTT inner step costs 2 x
  a training step (the meta-gradient backpropagates through it a second time), a DM iteration one
  forward of `batch_real` real images per class plus a training step of the synthetic ones.

This is an estimate, not a measurement: no paper config has run here. It leaves out data loading
(which bounds the ImageNet expert, read from JPEGs) and the CPU-side figure jobs. Run it to reprint
the table:

    python benchmarks/gpu_hours.py            # writes benchmarks/results/gpu_hours.md
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import yaml

from common import ROOT, write_table

sys.path.insert(0, str(ROOT / "workflow"))

from labelworth.config import Config, load_config  # noqa: E402
from labelworth.plan import student_runs, trained_epochs  # noqa: E402
from labelworth.specs import SYNTHESIS_METHODS, parse_arch, parse_image_set  # noqa: E402

MAC_RATE = 60_000 * 3 * 37.0e6 / 1.1  # effective training MAC/s of convnet-d3 on the H100 (see above)
STEP_OVERHEAD_S = 1.5e-3  # per student step, vectorised engine, S = 5
SPLIT_SIZES = {"fashion_mnist": (60_000, 10_000), "mnist": (60_000, 10_000), "cifar10": (50_000, 10_000),
               "cifar100": (50_000, 10_000), "tinyimagenet": (100_000, 10_000), "imagenet": (1_281_167, 50_000)}
RESNET18_MACS_224 = 1.82e9  # torchvision's ResNet-18 at 224 x 224
RESNET50_MACS_224 = 4.1e9


def convnet_macs(depth: int, width: int, channels: int, size: int) -> float:
    """Multiply-accumulates of the paper's ConvNet (3x3 convolutions, each followed by a 2x pooling)."""
    macs, in_channels = 0.0, channels
    for _ in range(depth):
        macs += size * size * in_channels * width * 9
        in_channels, size = width, size // 2
    return macs


def network_macs(arch: str, spec) -> float:
    parsed = parse_arch(arch)
    if parsed.family == "convnet":
        return convnet_macs(parsed.depth, parsed.width, spec.channels, spec.image_size)
    full = RESNET18_MACS_224 if parsed.depth == 18 else RESNET50_MACS_224
    # the small-image variant skips the stem's 4x downsampling per side: 16x the MACs per pixel
    return full * (spec.image_size / 224) ** 2 * (16 if parsed.small_stem else 1)


@dataclass
class Cost:
    experts: float = 0.0
    synthesis: float = 0.0
    students: float = 0.0

    @property
    def total(self) -> float:
        return self.experts + self.synthesis + self.students


def step_seconds(images: int, macs: float, factor: float = 3.0) -> float:
    return max(STEP_OVERHEAD_S, images * factor * macs / MAC_RATE)


def synthesis_arch(config: Config, method: str, settings) -> str:
    """The network a synthesis method trains or inverts: MTT's replay-buffer experts, SRe2L's
    teacher, or the method's own `arch` (DM's embedding network, BPTT's)."""
    if method == "mtt":
        return config.trained_runs[config.mtt_buffer[0]].arch
    if method == "sre2l":
        return config.trained_runs[config.sre2l_teacher[0]].arch
    return settings.arch


def config_cost(config: Config) -> tuple[Cost, int]:
    """GPU-seconds by stage, and the number of student populations."""
    spec = config.dataset_spec
    train_size, test_size = SPLIT_SIZES[spec.name]
    trained = config.trained_runs
    cost = Cost()

    # Every expert the workflow trains, each as far as trained_epochs says (the first seed of a run
    # its epochs, the others as far as ensembles and MTT's buffer need). An epoch trains on the
    # training set, then measures train accuracy/entropy and the test set.
    for (folder, _), epochs in trained_epochs(config).items():
        expert_macs = network_macs(trained[folder].arch, spec)
        epoch = train_size * 3 * expert_macs / MAC_RATE + (train_size + test_size) * expert_macs / MAC_RATE
        cost.experts += epoch * epochs

    placeholder_epochs = {ipc: 1 for ipc in range(1, 10_001)}  # `auto` resolves to some epoch; cost is alike
    runs = {run for experiment in config.enabled_experiments()
            for run in student_runs(config, experiment, placeholder_epochs)}
    for image_set, _, protocol in runs:
        parsed = parse_image_set(image_set)
        student = config.student(protocol, parsed.images_per_class)  # its per-IPC overrides applied
        student_macs = network_macs(student.arch, spec)
        images = parsed.images_per_class * (spec.num_classes - (parsed.without_class is not None))
        steps = math.ceil(images / student.batch_size)
        per_student = student.epochs * steps * step_seconds(min(images, student.batch_size), student_macs)
        tests = student.epochs // student.eval_every
        per_student += tests * test_size * student_macs / MAC_RATE
        cost.students += len(student.seeds) * per_student

    synthesised = {parse_image_set(image_set) for image_set, _, _ in runs}
    for image_set in synthesised:
        if image_set.method not in SYNTHESIS_METHODS or image_set.without_class is not None:
            continue
        settings = config.method(image_set.method, image_set.images_per_class)
        expert_macs = network_macs(synthesis_arch(config, image_set.method, settings), spec)
        images = image_set.images_per_class * spec.num_classes
        if image_set.method == "mtt":
            batch = settings.batch_syn or images
            iteration = settings.syn_steps * step_seconds(batch, expert_macs, factor=6.0)
        elif image_set.method == "dm":
            real = spec.num_classes * settings.batch_real
            iteration = real * expert_macs / MAC_RATE + step_seconds(images, expert_macs)
        else:  # bptt, sre2l: not in the paper configs; a training step per inner step as a bound
            iteration = step_seconds(images, expert_macs) * getattr(settings, "total_window", 1)
        cost.synthesis += settings.iterations * iteration
    return cost, len(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["cifar10", "cifar100", "tinyimagenet", "imagenet"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_hours.md"))
    args = parser.parse_args()
    lines = ["| config | student populations | experts | synthesis | students | total GPU-hours |",
             "|---|---|---|---|---|---|"]
    for name in args.configs:
        config = load_config(yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text()))
        cost, populations = config_cost(config)
        hours = [value / 3600 for value in (cost.experts, cost.synthesis, cost.students, cost.total)]
        lines.append(f"| {name} | {populations} | " + " | ".join(f"{value:,.1f}" for value in hours) + " |")
    write_table("Expected H100 GPU-hours per paper config (model in benchmarks/gpu_hours.py: measured "
                f"{MAC_RATE / 1e12:.1f} T MAC/s and {STEP_OVERHEAD_S * 1e3:.1f} ms per student step; "
                "data loading not included)", lines, args.out)


if __name__ == "__main__":
    main()
