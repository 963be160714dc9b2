"""`labelworth <stage>`: one subcommand per stage, argument names = config keys.

The Snakemake rules call these; they also run by hand (`labelworth train-expert --help`). Bad input
(a LabelworthError) is reported as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from labelworth.errors import LabelworthError
from labelworth.gpu_lease import lease_for
from labelworth.torchrun import launched_by_torchrun


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back to the kernel.

    By default every large tensor is an mmap that is unmapped when freed, so each training step
    faults in and zeroes fresh pages: on a 2-core CPU that kernel time was a third of a student
    job (benchmarks/results/malloc.md). Returns False where the C library has no `mallopt` (not
    glibc), which changes nothing else."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    largest_heap_block = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit
    return all((mallopt(m_mmap_threshold, largest_heap_block), mallopt(m_trim_threshold, 1 << 30),
                mallopt(m_top_pad, 256 << 20)))


def _add_compute_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")


def _prepare_data(args) -> None:
    from labelworth.data import prepare_data, resolve_raw_root

    prepare_data(args.dataset, resolve_raw_root(args.dataset, args.data_root), args.out_dir, zca=args.zca)


def _fetch_data(args) -> None:
    from labelworth.data import download_fashion_mnist

    if args.dataset != "fashion_mnist":
        raise LabelworthError(f"fetch-data downloads fashion_mnist only; place {args.dataset} under {args.root}")
    print(download_fashion_mnist(args.root))


def _train_expert(args) -> None:
    from labelworth.torchrun import run_under_torchrun

    if args.processes > 1 and not launched_by_torchrun():
        # torchrun's workers run this stage again without --processes, each with its share of the threads
        threads = args.threads or len(os.sched_getaffinity(0))
        run_under_torchrun(args.processes, [
            "train-expert", "--data-dir", args.data_dir, "--arch", args.arch, "--lr", repr(args.lr),
            "--epochs", str(args.epochs), "--seed", str(args.seed), "--batch-size", str(args.batch_size),
            "--checkpoint-dir", args.checkpoint_dir, "--metrics", args.metrics, "--work-dir", args.work_dir,
            "--device", args.device, "--threads", str(max(1, threads // args.processes))])
        return
    from labelworth.experts import train_expert

    train_expert(args.data_dir, args.arch, args.lr, args.epochs, args.seed, args.batch_size,
                 args.checkpoint_dir, args.metrics, args.work_dir, args.device)


def _distill_images(args) -> None:
    from labelworth.specs import SYNTHESIS_METHODS, parse_image_set

    image_set = parse_image_set(args.image_set)
    if image_set.without_class is not None:
        from labelworth.distill.subsets import drop_class

        if not args.source:
            raise LabelworthError(f"{args.image_set} is cut from another set: give --source <its images.pt>")
        drop_class(args.source, image_set.without_class, args.out, args.grid)
    elif image_set.method in SYNTHESIS_METHODS:
        _synthesise_images(args, image_set)
    elif image_set.method == "random":
        from labelworth.distill.random import distill_random

        distill_random(args.data_dir, image_set.images_per_class, args.seed, args.out, args.grid)
    else:
        from labelworth.distill.select_by_loss import distill_by_loss

        if not args.expert_checkpoint:
            raise LabelworthError(f"{args.image_set} ranks images by an expert: give --expert-checkpoint")
        distill_by_loss(args.data_dir, int(image_set.method.removeprefix("lossbin")), image_set.images_per_class,
                        args.expert_checkpoint, args.double_softmax, args.out, args.grid, args.device)


def _synthesise_images(args, image_set) -> None:
    from pathlib import Path

    from labelworth.distill.synthesis import SynthesisFiles
    from labelworth.method_settings import SETTINGS_BY_METHOD, settings_from_options

    if not args.work_dir:
        raise LabelworthError(f"{args.image_set} is synthesised and resumes from a folder: give --work-dir")
    folder = Path(args.out).parent
    files = SynthesisFiles(args.out, args.grid, args.loss_csv or folder / "loss_curve.csv",
                           args.loss_png or folder / "loss_curve.png", args.work_dir)
    settings = settings_from_options(SETTINGS_BY_METHOD[image_set.method], args.method_options)
    ipc = image_set.images_per_class
    if image_set.method == "dm":
        from labelworth.distill.dm import distill_dm

        distill_dm(args.data_dir, ipc, args.seed, settings, files, args.device)
    elif image_set.method == "mtt":
        from labelworth.distill.mtt import distill_mtt

        if not args.trajectories:
            raise LabelworthError(f"{args.image_set} matches expert trajectories: give --trajectories")
        distill_mtt(args.data_dir, args.trajectories, ipc, args.seed, settings, files, args.device)
    elif image_set.method == "bptt":
        from labelworth.distill.bptt import distill_bptt

        distill_bptt(args.data_dir, ipc, args.seed, settings, files, args.device)
    else:
        from labelworth.distill.sre2l import distill_sre2l

        if not args.expert_checkpoint:
            raise LabelworthError(f"{args.image_set} inverts a batch-norm teacher: give --expert-checkpoint")
        distill_sre2l(args.data_dir, args.expert_checkpoint, ipc, args.seed, settings, files, args.device)


def _dump_trajectories(args) -> None:
    from labelworth.trajectories import dump_trajectories

    dump_trajectories(args.checkpoint_dirs, args.epochs, args.out)


def _class_similarity(args) -> None:
    from labelworth.labels import expert_class_similarity

    expert_class_similarity(args.data_dir, args.expert_checkpoint, args.out, args.device)


def _make_labels(args) -> None:
    from labelworth.labels import make_labels

    make_labels(args.images, args.label_spec, args.expert_checkpoints, args.out, args.seed, args.device)


def _evaluate_students(args) -> None:
    from labelworth.students import run_evaluate_students

    run_evaluate_students(args.images, args.labels, args.data_dir, args.out, args.arch, args.seeds,
                          args.epochs, args.lr, args.optimizer, args.batch_size, args.eval_every,
                          args.engine, args.device, args.compile)


def _population_member(args) -> None:
    from labelworth.populations import population_member

    population_member(args.population, args.label_spec, args.out)


def _figure(args) -> None:
    from labelworth.figures import draw_figure

    draw_figure(args.name, args.inputs, args.png, args.pdf, args.table_csv, args.table_md,
                expert_metrics=args.expert_metrics, marked_epochs=args.marked_epochs, extra=args.extra)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labelworth", description=__doc__.splitlines()[0])
    stages = parser.add_subparsers(dest="stage", required=True, metavar="stage")

    stage = stages.add_parser("prepare-data", help="raw dataset files -> cached tensors")
    stage.add_argument("--dataset", required=True)
    stage.add_argument("--data-root", default="auto", help="raw files; auto = the dataset's default place")
    stage.add_argument("--out-dir", required=True)
    stage.add_argument("--zca", action="store_true",
                       help="store ZCA-whitened images, fitted on the training set (METHOD.md 2.2)")
    stage.set_defaults(run=_prepare_data)

    stage = stages.add_parser("fetch-data", help="download Fashion-MNIST with torchvision")
    stage.add_argument("--dataset", default="fashion_mnist")
    stage.add_argument("--root", default="resources/fashion_mnist")
    stage.set_defaults(run=_fetch_data)

    stage = stages.add_parser("train-expert", help="train one expert, checkpoint every epoch")
    stage.add_argument("--data-dir", required=True)
    stage.add_argument("--arch", required=True)
    stage.add_argument("--lr", type=float, required=True)
    stage.add_argument("--epochs", type=int, required=True)
    stage.add_argument("--seed", type=int, required=True)
    stage.add_argument("--batch-size", type=int, default=256)
    stage.add_argument("--checkpoint-dir", required=True)
    stage.add_argument("--metrics", required=True, help="metrics.csv to write")
    stage.add_argument("--work-dir", required=True, help="scratch folder the run resumes from")
    stage.add_argument("--processes", type=int, default=1,
                       help="data-parallel processes, one per GPU, for datasets read from image files (imagenet);"
                       " more than 1 starts them through torchrun; --batch-size and --threads are split among them")
    _add_compute_options(stage)
    stage.set_defaults(run=_train_expert)

    stage = stages.add_parser("distill-images", help="choose or synthesise the images of an image set")
    stage.add_argument("--image-set", required=True,
                       help="random-ipc<n>, lossbin<b>-ipc<n>, {dm,mtt,bptt,sre2l}-ipc<n>, or <set>-without<class>"
                       " (needs --source)")
    stage.add_argument("--data-dir")
    stage.add_argument("--seed", type=int, default=42,
                       help="seed of the random choice (synthesis methods: of the initial images and every later draw)")
    stage.add_argument("--source", help="images.pt a -without<class> set is cut from")
    stage.add_argument("--expert-checkpoint",
                       help="lossbin<b>: the expert that ranks the images; sre2l: the batch-norm teacher")
    stage.add_argument("--double-softmax", action="store_true",
                       help="rank by cross-entropy on probabilities, as the reference does")
    stage.add_argument("--trajectories", help="mtt: the experts' replay buffer (dump-trajectories)")
    stage.add_argument("--method-options", nargs="*", default=[], metavar="KEY=VALUE",
                       help="synthesis methods: hyperparameters, keys as in the config's methods.<method> block")
    stage.add_argument("--work-dir", help="synthesis methods: scratch folder the run resumes from")
    stage.add_argument("--loss-csv", help="synthesis methods: loss per iteration (default: loss_curve.csv next to --out)")
    stage.add_argument("--loss-png", help="synthesis methods: its plot (default: loss_curve.png next to --out)")
    stage.add_argument("--out", required=True)
    stage.add_argument("--grid", required=True, help="png of the images, one row per class")
    _add_compute_options(stage)
    stage.set_defaults(run=_distill_images)

    stage = stages.add_parser("dump-trajectories", help="expert checkpoints -> one replay buffer for mtt")
    stage.add_argument("--checkpoint-dirs", nargs="+", required=True, help="one checkpoints/ folder per expert")
    stage.add_argument("--epochs", type=int, required=True, help="keep epochs 0..epochs of each expert")
    stage.add_argument("--out", required=True)
    stage.set_defaults(run=_dump_trajectories)

    stage = stages.add_parser("class-similarity", help="mean soft label of each class on the training set")
    stage.add_argument("--data-dir", required=True)
    stage.add_argument("--expert-checkpoint", required=True)
    stage.add_argument("--out", required=True, help="csv: one row per true class")
    _add_compute_options(stage)
    stage.set_defaults(run=_class_similarity)

    stage = stages.add_parser("make-labels", help="labels of a LabelSpec for an image set")
    stage.add_argument("--images", required=True)
    stage.add_argument("--label-spec", required=True)
    stage.add_argument("--expert-checkpoints", nargs="*", default=[])
    stage.add_argument("--seed", type=int, default=0, help="seed of the random transforms")
    stage.add_argument("--out", required=True)
    _add_compute_options(stage)
    stage.set_defaults(run=_make_labels)

    stage = stages.add_parser("evaluate-students", help="train and test a population of students")
    stage.add_argument("--images", required=True)
    stage.add_argument("--labels", nargs="+", required=True,
                       help="label files of the images; several train as one population into one file")
    stage.add_argument("--data-dir", required=True)
    stage.add_argument("--out", required=True)
    stage.add_argument("--arch", required=True)
    stage.add_argument("--seeds", type=int, nargs="+", required=True)
    stage.add_argument("--epochs", type=int, required=True)
    stage.add_argument("--lr", type=float, required=True)
    stage.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    stage.add_argument("--batch-size", type=int, default=256)
    stage.add_argument("--eval-every", type=int, required=True)
    stage.add_argument("--engine", choices=["sequential", "vectorised"], default="sequential",
                       help="vectorised trains the population in one torch.func pass (faster on GPUs)")
    stage.add_argument("--compile", action="store_true",
                       help="sequential engine: torch.compile each student (pays for long runs only)")
    _add_compute_options(stage)
    stage.set_defaults(run=_evaluate_students)

    stage = stages.add_parser("population-member",
                              help="one label set's result from a file that evaluate-students wrote for several")
    stage.add_argument("--population", required=True)
    stage.add_argument("--label-spec", required=True)
    stage.add_argument("--out", required=True)
    stage.set_defaults(run=_population_member)

    stage = stages.add_parser("figure", help="draw one figure (and its table) from results files")
    stage.add_argument("name")
    stage.add_argument("--inputs", nargs="+", required=True, help="student result JSONs (or the figure's inputs)")
    stage.add_argument("--png", required=True)
    stage.add_argument("--pdf", required=True)
    stage.add_argument("--table-csv")
    stage.add_argument("--table-md")
    stage.add_argument("--expert-metrics", nargs="*", default=[], help="experts' metrics.csv files")
    stage.add_argument("--marked-epochs", type=int, nargs="*", default=[])
    stage.add_argument("--extra", nargs="*", default=[], help="figure-specific inputs")
    stage.set_defaults(run=_figure)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # before torch allocates anything
    # Under the gpu profile, take one free GPU before anything imports torch: CUDA reads
    # CUDA_VISIBLE_DEVICES once, when it starts (labelworth/gpu_lease.py). A stage that starts
    # torchrun workers (train-expert --processes N) takes none: each worker leases its own.
    starts_workers = getattr(args, "processes", 1) > 1 and not launched_by_torchrun()
    with lease_for(None if starts_workers else getattr(args, "device", None)):
        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        try:
            args.run(args)
        except LabelworthError as error:
            print(f"labelworth {args.stage}: error: {error}", file=sys.stderr)
            return 2
        except FloatingPointError as error:  # raised before any output is written; the message says where
            print(f"labelworth {args.stage}: numerical fault: {error}; no output was written", file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
