"""`labelworth <stage>`: one subcommand per stage, argument names = config keys.

The Snakemake rules call these; they also run by hand (`labelworth train-expert --help`). Bad input
(a LabelworthError) is reported as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

from labelworth.costs import METER, cost_line
from labelworth.errors import LabelworthError
from labelworth.gpu_lease import lease_for
from labelworth.job_client import run_in_server, server_socket
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


def _add_settings_option(parser: argparse.ArgumentParser, settings: str) -> None:
    parser.add_argument("--options", nargs="*", default=[], metavar="KEY=VALUE",
                        help=f"the stage's settings, keys as in the config (labelworth/settings.py {settings});"
                        " a key left out takes its default")


def _add_compute_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")


def _prepare_data(args) -> None:
    from labelworth.data import prepare_data, resolve_raw_root

    prepare_data(args.dataset, resolve_raw_root(args.dataset, args.data_root), args.out_dir, zca=args.zca,
                 validation_per_class=args.validation_per_class, validation_seed=args.validation_seed)


def _fetch_data(args) -> None:
    from labelworth.data import default_raw_root, download_fashion_mnist
    from labelworth.specs import dataset_spec

    if args.dataset != "fashion_mnist":
        dataset_spec(args.dataset)  # an unknown name is its own error
        raise LabelworthError(f"fetch-data downloads fashion_mnist only; place the {args.dataset} files under "
                              f"{default_raw_root(args.dataset)} (data_root: auto), or give their folder as data_root")
    print(download_fashion_mnist(args.root))


def _train_expert(args) -> None:
    from labelworth.settings import ExpertSettings, from_options
    from labelworth.torchrun import run_under_torchrun

    settings = from_options(ExpertSettings, args.options)
    if settings.processes > 1 and not launched_by_torchrun():
        # torchrun's workers run this same command (they know they are workers), each with its share
        # of the threads
        threads = args.threads or len(os.sched_getaffinity(0))
        run_under_torchrun(settings.processes, _with_threads(args.argv, max(1, threads // settings.processes)))
        return
    from labelworth.experts import train_expert
    from labelworth.resume import ExpertFiles

    train_expert(args.data_dir, settings, ExpertFiles(args.checkpoint_dir, args.metrics, args.work_dir), args.device)


def _import_expert(args) -> None:
    from labelworth.brought_experts import import_expert
    from labelworth.settings import BroughtExpertSettings, from_options

    import_expert(args.data_dir, from_options(BroughtExpertSettings, args.options), args.checkpoint_dir, args.metrics,
                  args.device)


def _with_threads(argv: list[str], threads: int) -> list[str]:
    """`argv` with its --threads value (if any) replaced by `threads`."""
    kept = [word for index, word in enumerate(argv) if word != "--threads" and (index == 0 or argv[index - 1] != "--threads")]
    return kept + ["--threads", str(threads)]


def _distill_images(args) -> None:
    from labelworth.distill.registry import image_method, method_function
    from labelworth.specs import parse_image_set

    image_set = parse_image_set(args.image_set)
    if image_set.without_class is not None:
        from labelworth.distill.subsets import drop_class

        if not args.source:
            raise LabelworthError(f"{args.image_set} is cut from another set: give --source <its images.pt>")
        drop_class(args.source, image_set.without_class, args.out, args.grid)
        return
    method = image_method(image_set.kind)
    missing = [name for name in method.inputs if not getattr(args, name)]
    if missing:
        raise LabelworthError(f"{args.image_set} reads {', '.join(missing)}: give "
                              + " ".join(f"--{name.replace('_', '-')}" for name in missing))
    inputs = [getattr(args, name) for name in method.inputs]
    make = method_function(image_set.kind)
    if method.synthesised:
        _synthesise_images(args, image_set, make, inputs)
    elif image_set.kind == "random":
        make(args.data_dir, image_set.images_per_class, args.seed, args.out, args.grid)
    else:  # lossbin<b>
        from labelworth.settings import LossRankingSettings, from_options

        settings = from_options(LossRankingSettings, args.options)
        make(args.data_dir, image_set.loss_bin, image_set.images_per_class, *inputs,
             settings.double_softmax, args.out, args.grid, args.device)


def _synthesise_images(args, image_set, make, inputs: list[str]) -> None:
    from pathlib import Path

    from labelworth.distill.synthesis import SynthesisFiles
    from labelworth.settings import SETTINGS_BY_METHOD, from_options

    if not args.work_dir:
        raise LabelworthError(f"{args.image_set} is synthesised and resumes from a folder: give --work-dir")
    folder = Path(args.out).parent
    files = SynthesisFiles(args.out, args.grid, args.loss_csv or folder / "loss_curve.csv",
                           args.loss_png or folder / "loss_curve.png", args.work_dir)
    settings = from_options(SETTINGS_BY_METHOD[image_set.kind], args.options)
    make(args.data_dir, *inputs, image_set.images_per_class, args.seed, settings, files, args.device)


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
    from labelworth.settings import StudentSettings, from_options
    from labelworth.students import run_evaluate_students

    settings = from_options(StudentSettings, args.options)
    run_evaluate_students(args.images, args.labels, args.data_dir, args.out, settings, args.protocol, args.device)


def _import_external_set(args) -> None:
    from labelworth import io
    from labelworth.data import input_space
    from labelworth.external import integrity_problems, read_external_set, real_sample, save_external_set
    from labelworth.settings import ExternalImageSetSettings, from_options
    from labelworth.specs import external_method

    settings = from_options(ExternalImageSetSettings, args.options)
    space = input_space(args.data_dir)
    external = read_external_set(settings, space)
    if settings.integrity_checks and args.summary:  # once, when the set is inspected, before any student
        problems = integrity_problems(external.images, external.classes, *real_sample(args.data_dir),
                                      space.num_classes)
        if problems:
            raise LabelworthError(f"{settings.path}: {'; '.join(problems)}; fix the set, or set "
                                  "integrity_checks: false (evaluate --no-integrity-checks) to use it as it is")
    if args.summary:
        io.write_json(args.summary, io.provenance("inspect_external_set", name=args.name, **external.summary()))
        print(f"{external_method(args.name)}: {external.summary()}")
    if args.out:
        if not (args.image_set and args.grid):
            raise LabelworthError("import-external-set: --out needs --image-set and --grid")
        save_external_set(external, settings, space, args.image_set, args.out, args.grid)


def _export_image_set(args) -> None:
    from labelworth.external import export_image_set

    export_image_set(args.images, args.data_dir, args.layout, args.out_dir)


def _evaluate(args) -> None:
    from labelworth.evaluate import default_config, guess_format, run_evaluate, set_name
    from labelworth.settings import ExternalImageSetSettings

    if not Path(args.images).exists():  # before anything runs
        raise LabelworthError(f"--images {args.images}: no such file or folder")
    settings = ExternalImageSetSettings(path=args.images, format=args.format or guess_format(args.images),
                                        labels=args.labels or "", normalised=args.normalised,
                                        experiment=args.experiment, integrity_checks=not args.no_integrity_checks)
    config = Path(args.configfile) if args.configfile else default_config(args.dataset)
    if args.students < 1:
        raise LabelworthError(f"--students {args.students}: give at least 1")
    teacher = None
    if args.teacher and not Path(args.teacher).is_file():
        raise LabelworthError(f"--teacher {args.teacher}: no such file")
    if args.teacher:
        if not args.teacher_arch or not args.teacher_epochs or len(args.teacher_epochs) != 1:
            raise LabelworthError(f"--teacher {args.teacher}: give --teacher-arch (the architecture its weights are, "
                                  "e.g. resnet18) and one --teacher-epoch (the epoch it was trained to, which names "
                                  "its labels)")
        teacher = {"arch": args.teacher_arch, "checkpoint": str(Path(args.teacher).resolve()),
                   "epochs": args.teacher_epochs[0]} | ({"trusted": True} if args.trusted_teacher else {})
    args.status = run_evaluate(settings, args.name or set_name(args.images), config, args.cores, args.dry_run,
                               args.teacher_epochs, args.regimes, args.students, args.profile, teacher)


def _population_member(args) -> None:
    from labelworth.populations import population_member

    population_member(args.population, args.label_spec, args.out)


def _check_config(args) -> None:
    from labelworth.config import read_config_file
    from labelworth.plan import load_checked_config

    try:
        load_checked_config(read_config_file(args.configfile))
    except LabelworthError as error:  # one line per problem, as the workflow prints them
        raise LabelworthError("\n".join(f"config error: {line}" for line in str(error).splitlines())) from None
    print(f"{args.configfile}: a valid config")


def _config_schema(args) -> None:
    import yaml

    from labelworth.schema import config_schema

    print(yaml.safe_dump(config_schema(), sort_keys=False, width=120), end="")


def _config_reference(args) -> None:
    from labelworth.schema import config_reference

    print(config_reference(), end="")


def _render_results(args) -> None:
    from labelworth.config import load_config_file
    from labelworth.layout import Layout
    from labelworth.render import render_results

    page = render_results(Layout.of(args.run_name or load_config_file(args.configfile).run), args.docs, Path(__file__).resolve().parents[1] / "report")
    print(f"written: {page} and its figures in {page.parent / 'figures'}")


def _check_data(args) -> None:
    from labelworth.data import check_raw_data, resolve_raw_root

    print(check_raw_data(args.dataset, resolve_raw_root(args.dataset, args.data_root)))


def _verify(args) -> None:
    from labelworth.verify import run_verify

    args.status = run_verify(args.results, args.repair)


def _figure(args) -> None:
    from labelworth.figures import FigureFiles, draw_figure

    files = FigureFiles(tuple(args.inputs), args.png, args.pdf, args.table_csv, args.table_md,
                        tuple(args.expert_metrics), args.mass_labels, args.mass_images)
    draw_figure(args.name, files, args.options)


def build_parser() -> argparse.ArgumentParser:
    from labelworth.specs import EVALUATION_REGIMES

    parser = argparse.ArgumentParser(prog="labelworth", description=__doc__.splitlines()[0])
    stages = parser.add_subparsers(dest="stage", required=True, metavar="stage")

    stage = stages.add_parser("prepare-data", help="raw dataset files -> cached tensors")
    stage.add_argument("--dataset", required=True)
    stage.add_argument("--data-root", default="auto", help="raw files; auto = the dataset's default place")
    stage.add_argument("--out-dir", required=True)
    stage.add_argument("--zca", action="store_true",
                       help="store ZCA-whitened images, fitted on the training set (docs/method.md §2.2)")
    stage.add_argument("--validation-per-class", type=int, default=0,
                       help="hold this many training images of each class out as validation.pt")
    stage.add_argument("--validation-seed", type=int, default=0, help="the seed of that choice")
    stage.set_defaults(run=_prepare_data)

    stage = stages.add_parser("fetch-data", help="download Fashion-MNIST with torchvision")
    stage.add_argument("--dataset", default="fashion_mnist")
    stage.add_argument("--root", default="resources/fashion_mnist")
    stage.set_defaults(run=_fetch_data)

    stage = stages.add_parser("train-expert", help="train one expert, checkpoint every epoch")
    stage.add_argument("--data-dir", required=True)
    _add_settings_option(stage, "ExpertSettings: arch, lr, epochs, seeds (one), batch_size, processes, weight_decay,"
                         " train_metric_images")
    stage.add_argument("--checkpoint-dir", required=True)
    stage.add_argument("--metrics", required=True, help="metrics.csv to write")
    stage.add_argument("--work-dir", required=True, help="scratch folder the run resumes from")
    _add_compute_options(stage)
    stage.set_defaults(run=_train_expert)

    stage = stages.add_parser("import-expert", help="read a trained network you bring (state_dict, TorchScript, "
                              "or a pickled module when trusted) in as an expert checkpoint")
    stage.add_argument("--data-dir", required=True)
    _add_settings_option(stage, "BroughtExpertSettings: arch, checkpoint, epochs, trusted")
    stage.add_argument("--checkpoint-dir", required=True)
    stage.add_argument("--metrics", required=True, help="metrics.csv to write (its one epoch's accuracies)")
    _add_compute_options(stage)
    stage.set_defaults(run=_import_expert)

    stage = stages.add_parser("distill-images", help="choose or synthesise the images of an image set")
    stage.add_argument("--image-set", required=True,
                       help="random-ipc<n>, lossbin<b>-ipc<n>, {dm,mtt,bptt,sre2l}-ipc<n>, or <set>-without<class>"
                       " (needs --source)")
    stage.add_argument("--data-dir")
    stage.add_argument("--seed", type=int, default=42,
                       help="seed of the random choice (synthesis methods: of the initial images and every later draw)")
    stage.add_argument("--source", help="images.pt a -without<class> set is cut from")
    stage.add_argument("--ranking-expert", help="lossbin<b>: the expert checkpoint whose loss ranks the images")
    stage.add_argument("--teacher", help="sre2l: the batch-norm expert checkpoint it inverts")
    stage.add_argument("--trajectories", help="mtt: the experts' replay buffer (dump-trajectories)")
    _add_settings_option(stage, "DmSettings, MttSettings, BpttSettings, Sre2lSettings: synthesis methods;"
                         " LossRankingSettings: lossbin")
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
    _add_settings_option(stage, "StudentSettings: arch, optimizer, lr, epochs, seeds, batch_size, eval_every, engine,"
                         " compile, channels_last, bf16")
    stage.add_argument("--protocol", help="the protocol's name, recorded in the result (default: the arch)")
    _add_compute_options(stage)
    stage.set_defaults(run=_evaluate_students)

    stage = stages.add_parser("import-external-set",
                              help="read and check an image set distilled elsewhere (pt, imagefolder, labelworth)")
    stage.add_argument("--name", required=True, help="its external_image_sets key")
    _add_settings_option(stage, "ExternalImageSetSettings: path, format, labels, normalised")
    stage.add_argument("--data-dir", required=True, help="the prepared splits (train.pt) it is read into")
    stage.add_argument("--summary", help="write its summary (images per class, own labels) as JSON here")
    stage.add_argument("--image-set", help="external-{name}-ipc{n}, with --out")
    stage.add_argument("--out", help="write it as a labelworth images.pt here")
    stage.add_argument("--grid", help="its image grid (PNG), with --out")
    _add_compute_options(stage)
    stage.set_defaults(run=_import_external_set)

    stage = stages.add_parser("export-image-set", help="write an image set in another codebase's layout")
    stage.add_argument("--images", required=True, help="a labelworth images.pt")
    stage.add_argument("--data-dir", required=True, help="the prepared splits (train.pt) of its dataset")
    stage.add_argument("--layout", required=True, choices=("pt", "imagefolder"),
                       help="pt: MTT's images_best.pt and labels_best.pt; imagefolder: a PNG folder per class")
    stage.add_argument("--out-dir", required=True)
    stage.set_defaults(run=_export_image_set)

    stage = stages.add_parser("evaluate", help="run one distilled set through the benchmark (no config edit) "
                              "and print its label-robustness row")
    stage.add_argument("--images", required=True, help="a pt file (MTT/DATM's images_best.pt, DC/DSA/DM's res_*.pt), "
                       "a folder of class folders, or an images.pt")
    stage.add_argument("--format", choices=("pt", "imagefolder", "labelworth"),
                       help="default: imagefolder for a folder, labelworth for a labelworth file, else pt")
    stage.add_argument("--labels", help="pt only: a file of labels beside the images (MTT's labels_best.pt)")
    stage.add_argument("--normalised", choices=("auto", "true", "false"), default="auto",
                       help="pt only: whether the values are normalised; auto decides from them")
    stage.add_argument("--experiment", type=int, default=0,
                       help="a DC/DSA/DM res_*.pt (one set per experiment): which experiment's set (default 0)")
    stage.add_argument("--no-integrity-checks", action="store_true",
                       help="use a set whose values or class order do not look like the dataset's")
    stage.add_argument("--name", help="its name in external_image_sets (default: from the file name)")
    stage.add_argument("--dataset", default="fashion_mnist", help="picks the repository's config for it")
    stage.add_argument("--configfile", help="the config to add the set to (default: the dataset's)")
    stage.add_argument("--teacher-epoch", type=int, nargs="+", dest="teacher_epochs",
                       help="the expert epochs of the fixed soft labels (default: the sweep's table of a finished "
                            "run, else the paper's Table 7, else the config's number for the set's IPC, else a "
                            "sweep of its own where the results folder has no sweep table); with --teacher, the one "
                            "epoch it was trained to")
    stage.add_argument("--regimes", nargs="+", choices=EVALUATION_REGIMES, default=list(EVALUATION_REGIMES),
                       help="label regimes besides hard labels and the set's own: soft (fixed), online")
    stage.add_argument("--teacher", help="a trained network's file to label with instead of the config's expert "
                       "(a state_dict or TorchScript; a pickled module needs --trusted-teacher)")
    stage.add_argument("--teacher-arch", help="with --teacher: the architecture its weights are (resnet18, "
                       "convnet-d3-w128, ...)")
    stage.add_argument("--trusted-teacher", action="store_true",
                       help="with --teacher: load a whole pickled module, which runs the file's code")
    stage.add_argument("--students", type=int, default=5,
                       help="students per population (default 5, the paper's; a protocol with other seeds is "
                            "copied under a name of its own)")
    stage.add_argument("--profile", choices=("default", "gpu", "slurm"),
                       help="Snakemake's workflow profile (default: profiles/default, every core here)")
    stage.add_argument("--cores", type=int, default=os.cpu_count(), help="cores for Snakemake (default: all)")
    stage.add_argument("--dry-run", action="store_true", help="plan only")
    stage.set_defaults(run=_evaluate)

    stage = stages.add_parser("population-member",
                              help="one label set's result from a file that evaluate-students wrote for several")
    stage.add_argument("--population", required=True)
    stage.add_argument("--label-spec", required=True)
    stage.add_argument("--out", required=True)
    stage.set_defaults(run=_population_member)

    stage = stages.add_parser("check-config", help="check a config file as the workflow would, one line per problem")
    stage.add_argument("--configfile", default="config.yaml")
    stage.set_defaults(run=_check_config)

    stage = stages.add_parser("config-schema", help="print the config's JSON schema (YAML), generated from the "
                              "config model")
    stage.set_defaults(run=_config_schema)

    stage = stages.add_parser("config-reference", help="print docs/configuration.md (markdown), generated from "
                              "the config model")
    stage.set_defaults(run=_config_reference)

    stage = stages.add_parser("render-results", help="write docs/results.md and docs/figures/ from one finished "
                              "run's folder, stamped with its commit, machine and wall time")
    stage.add_argument("--configfile", default="config.yaml", help="the run's config (its `run:` names the folders)")
    stage.add_argument("--run", dest="run_name", help="the run's name instead (a run of this config with `--config run=NAME`)")
    stage.add_argument("--docs", default="docs", help="where results.md and figures/ go (default: docs)")
    stage.set_defaults(run=_render_results)

    stage = stages.add_parser("check-data", help="check a dataset's raw files before a long run: its layout, "
                              "split sizes, classes and image shape (docs/datasets.md)")
    stage.add_argument("--dataset", required=True)
    stage.add_argument("--data-root", default="auto", help="the raw files' folder (auto: the dataset's default)")
    stage.set_defaults(run=_check_data)

    stage = stages.add_parser("verify", help="check every checksummed file under results/; --repair removes "
                              "the bad ones and prints the command that rebuilds them")
    stage.add_argument("--results", default="results", help="the results folder (default: ./results)")
    stage.add_argument("--repair", action="store_true",
                       help="remove each bad file's output so that the printed snakemake command rebuilds it "
                       "and everything downstream")
    stage.set_defaults(run=_verify)

    stage = stages.add_parser("figure", help="draw one figure (and its table) from results files")
    stage.add_argument("name")
    stage.add_argument("--inputs", nargs="+", required=True, help="student result JSONs (or the figure's inputs)")
    stage.add_argument("--png", required=True)
    stage.add_argument("--pdf", required=True)
    stage.add_argument("--table-csv")
    stage.add_argument("--table-md")
    stage.add_argument("--expert-metrics", nargs="*", default=[], help="experts' metrics.csv files")
    stage.add_argument("--mass-labels", help="zero_shot: the control's label file, whose mass it reports")
    stage.add_argument("--mass-images", help="zero_shot: the control's images.pt")
    _add_settings_option(stage, "FIGURE_SETTINGS: what the figure draws beyond its files")
    stage.set_defaults(run=_figure)
    return parser


def _starts_workers(args) -> bool:
    """Whether this is a train-expert that starts torchrun workers (settings.processes > 1)."""
    if args.stage != "train-expert" or launched_by_torchrun():
        return False
    from labelworth.settings import ExpertSettings, from_options

    return from_options(ExpertSettings, args.options).processes > 1


def _run(args) -> None:
    # Under the gpu profile, take one free GPU before anything imports torch: CUDA reads
    # CUDA_VISIBLE_DEVICES once, when it starts (labelworth/gpu_lease.py). A stage that starts
    # torchrun workers takes none: each worker leases its own.
    with lease_for(None if _starts_workers(args) else getattr(args, "device", None)):
        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        args.run(args)


def main(argv: list[str] | None = None) -> int:
    """The `labelworth` command. Without `argv` this call is a job, the whole process: on a local
    run it asks the run's job server to fork it (labelworth/job_client.py), else it runs here."""
    if argv is not None:
        return _main(argv, job=False)
    path = None if launched_by_torchrun() else server_socket()
    returncode = None if path is None else run_in_server(path, sys.argv[1:])
    return run_job(sys.argv[1:]) if returncode is None else returncode


def run_job(argv: list[str]) -> int:
    """`labelworth argv` as a job, the whole of its process (or of a forked worker): its costs are
    metered and a successful one ends its log with their line (labelworth/costs.py)."""
    return _main(argv, job=True)


def _main(argv: list[str], job: bool) -> int:
    argv = list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # a stage that restarts itself under torchrun forwards exactly these arguments
    keep_freed_memory()  # before torch allocates anything
    args.status = 0
    if job:
        METER.metered_imports()
        METER.begin_work()
    try:
        _run(args)
        if job and args.status == 0:
            print(cost_line(), file=sys.stderr)
    except LabelworthError as error:
        print(f"labelworth {args.stage}: error: {error}", file=sys.stderr)
        return 2
    except FloatingPointError as error:  # raised before any output is written; the message says where
        print(f"labelworth {args.stage}: numerical fault: {error}; no output was written", file=sys.stderr)
        return 3
    except OSError as error:  # a full disk, a read-only or unwritable folder: the machine's, not the input's
        if error.errno is None:
            raise
        where = error.filename or "a file"
        print(f"labelworth {args.stage}: error: {where}: {error.strerror} (errno {errno.errorcode.get(error.errno, error.errno)}); "
              "writes are atomic, so no file was left half-written", file=sys.stderr)
        return 2
    return args.status


if __name__ == "__main__":
    sys.exit(main())
