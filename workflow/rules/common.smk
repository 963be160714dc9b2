# Config validation, path builders, wildcard constraints and target lists. No rules here.
import csv
import re
import sys
from pathlib import Path

from snakemake.utils import validate

# The package must be importable at parse time even when it is not installed (e.g. a bare clone).
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from labelworth.config import (
    STUDENT_EXPERIMENTS,
    check_config,
    check_number_strings,
    SWEEP,
    enabled,
    ensemble_expert_epochs,
    expert_label,
    method_settings,
    population_groups,
    population_of,
    sre2l_teacher,
    student_runs,
    trajectory_epochs,
    uses_auto_epochs,
)
from labelworth.errors import LabelworthError
from labelworth.specs import (
    SYNTHESIS_METHODS,
    dataset_spec,
    format_image_set,
    format_number,
    parse_image_set,
    parse_label_spec,
)

try:
    check_number_strings(config)  # before the schema, whose message would only say "not a number"
    validate(config, schema="../schemas/config.schema.yaml")
    check_config(config)
except LabelworthError as error:
    raise WorkflowError(f"config error: {error}") from None

DATASET = config["dataset"]
RESULTS = f"results/{DATASET}"
LOGS = f"logs/{DATASET}"
EXPERT = config["expert"]
STUDENT = config["student"]
EXPERT_RUN = f"{EXPERT['arch']}-lr{format_number(EXPERT['lr'])}"
EXPERT_PROCESSES = EXPERT["processes"]  # > 1: data-parallel over that many GPUs (ImageNet)
# Cached datasets train from memory on 2 threads; ImageNet decodes every image of every epoch, and
# its processes share the job's threads (raise them with --set-threads train_expert=N on big nodes).
EXPERT_THREADS = (2 if dataset_spec(DATASET).cached_as_tensors else 8) * EXPERT_PROCESSES
SRE2L_TEACHER_ARCH, SRE2L_TEACHER_EPOCH = sre2l_teacher(config)
# The first expert seed trains for expert.epochs; the others only as far as ensemble labels need.
MAIN_SEED = EXPERT["seeds"][0]
MEMBER_SEEDS = EXPERT["seeds"][1:] if ensemble_expert_epochs(config) > 0 else []
ARCH_PATTERN = r"convnet-d\d(-w\d+)?(-[a-z]+norm)?(-maxpool)?|resnet(18|50)(-small)?"
NEVER = r"(?!)"  # a wildcard constraint that matches nothing
IMAGE_METHOD = rf"random|lossbin\d|{'|'.join(SYNTHESIS_METHODS)}"


wildcard_constraints:
    arch=ARCH_PATTERN,
    student=ARCH_PATTERN,
    lr=r"[0-9.e+-]+",
    seed=r"\d+",
    method=IMAGE_METHOD,
    ipc=r"\d+",
    image_set=rf"({IMAGE_METHOD})-ipc\d+(-without\d+)?",
    labels=r"hard|noise[0-9.e+-]+|(learned|(expert|ensemble\d+)-e\d+)(-[a-z0-9.+]+)*",
    experiment="|".join(STUDENT_EXPERIMENTS),


def data_files():
    return {"train": f"{RESULTS}/data/train.pt", "test": f"{RESULTS}/data/test.pt"}


def expert_dir(seed):
    return f"{RESULTS}/experts/{EXPERT_RUN}/seed{seed}"


def expert_checkpoint(seed, epoch):
    return f"{expert_dir(seed)}/checkpoints/epoch_{epoch:03d}.pt"


def expert_metrics(seed):
    return f"{expert_dir(seed)}/metrics.csv"


def expert_outputs(epochs):
    """Declared outputs of an expert run of `epochs` epochs ({arch}, {lr}, {seed} left as wildcards)."""
    run = f"{RESULTS}/experts/{{arch}}-lr{{lr}}/seed{{seed}}"
    return {
        "checkpoints": [f"{run}/checkpoints/epoch_{epoch:03d}.pt" for epoch in range(epochs + 1)],
        "metrics": f"{run}/metrics.csv",
    }


def trajectory_file():
    return f"{RESULTS}/trajectories/{EXPERT_RUN}.pt"


def images_file(image_set):
    return f"{RESULTS}/images/{image_set}/images.pt"


def labels_file(image_set, labels):
    return f"{RESULTS}/labels/{image_set}/{labels}.pt"


def student_result(image_set, labels):
    return f"{RESULTS}/students/{image_set}/{labels}/{STUDENT['arch']}.json"


def population_file(experiment, image_set):
    """The students of every label set that `experiment` compares on `image_set`, trained as one
    population (student.populations: per_image_set)."""
    return f"{RESULTS}/populations/{experiment}/{image_set}/{STUDENT['arch']}.json"


def class_similarity_file(epoch):
    return f"{RESULTS}/analysis/class_similarity-e{epoch}.csv"


# ---- inputs that depend on wildcards --------------------------------------------------------------


def expert_checkpoints_for_labels(wildcards):
    """The checkpoints a label spec reads: the first expert, or the first N for an ensemble."""
    spec = parse_label_spec(wildcards.labels)
    if not spec.uses_experts:
        return []
    return [expert_checkpoint(seed, spec.expert_epoch) for seed in EXPERT["seeds"][: spec.ensemble_size]]


def image_set_inputs(wildcards):
    """A subset is cut from its full set; a loss-ranked set needs the ranking expert; all need data."""
    image_set = parse_image_set(wildcards.image_set)
    if image_set.without_class is not None:
        return {"source": images_file(format_image_set(image_set.base))}
    inputs = data_files()
    if image_set.method.startswith("lossbin"):
        inputs["expert"] = expert_checkpoint(MAIN_SEED, config["image_selection"]["expert_epoch"])
    if image_set.method == "mtt":
        inputs["trajectories"] = trajectory_file()
    if image_set.method == "sre2l":
        inputs["expert"] = sre2l_teacher_checkpoint()
    return inputs


def similarity_expert_checkpoint(wildcards):
    return expert_checkpoint(MAIN_SEED, int(wildcards.epoch))


def image_set_arguments(wildcards, input):
    """The distill-images options naming the inputs `image_set_inputs` chose."""
    if "source" in input.keys():
        return f"--source '{input.source}'"
    arguments = f"--data-dir '{Path(input.train).parent}'"
    if "expert" in input.keys():
        arguments += f" --expert-checkpoint '{input.expert}'"
    if "trajectories" in input.keys():
        arguments += f" --trajectories '{input.trajectories}'"
    return arguments


# ---- synthesis methods (dm, mtt, bptt, sre2l) ----------------------------------------------------

METHODS = config.get("methods", {})


def sre2l_teacher_checkpoint():
    """The batch-norm expert SRe2L inverts (the experts themselves if they have batch norm, else
    train_sre2l_teacher's)."""
    run = f"{RESULTS}/experts/{SRE2L_TEACHER_ARCH}-lr{format_number(EXPERT['lr'])}/seed{MAIN_SEED}"
    return f"{run}/checkpoints/epoch_{SRE2L_TEACHER_EPOCH:03d}.pt"


def method_options(wildcards):
    """`--method-options key=value ...` for a synthesised set (empty for real-image sets); as a param
    it reruns exactly the sets whose hyperparameters changed."""
    image_set = parse_image_set(wildcards.image_set)
    if image_set.method not in SYNTHESIS_METHODS or image_set.without_class is not None:
        return ""
    settings = method_settings(config, image_set.method, image_set.images_per_class)
    return "--method-options " + " ".join(f"{key}={value}" for key, value in vars(settings).items())


def trajectory_seeds():
    """The expert seeds in the replay buffer: the first methods.mtt.num_experts (default all). Each must
    have trained for `trajectory_epochs(config)`; the first trains expert.epochs, the others as far as
    ensembles need (experts.smk), so asking for more is a config error, said before any job runs."""
    seeds = EXPERT["seeds"][: METHODS.get("mtt", {}).get("num_experts", len(EXPERT["seeds"]))]
    for seed in seeds:
        trained = EXPERT["epochs"] if seed == MAIN_SEED else ensemble_expert_epochs(config)
        if trained < trajectory_epochs(config):
            raise WorkflowError(
                f"config error: methods.mtt: the replay buffer needs epochs 0..{trajectory_epochs(config)} "
                f"(max_start_epoch + expert_epochs) of expert seed {seed}, which trains only {trained} epochs; "
                "lower max_start_epoch or expert_epochs, or set methods.mtt.num_experts"
            )
    return seeds


def trajectory_checkpoint_dirs(wildcards):
    """One checkpoints/ folder per buffered expert of the run named by {arch} and {lr}."""
    run = f"{RESULTS}/experts/{wildcards.arch}-lr{wildcards.lr}"
    return [f"{run}/seed{seed}/checkpoints" for seed in trajectory_seeds()]


def trajectory_checkpoints(wildcards):
    return [f"{folder}/epoch_{epoch:03d}.pt" for folder in trajectory_checkpoint_dirs(wildcards)
            for epoch in range(trajectory_epochs(config) + 1)]


def double_softmax_flag(wildcards):
    """The reference's loss-ranking quirk, for loss-ranked sets only (so it reruns only those)."""
    ranked = parse_image_set(wildcards.image_set).method.startswith("lossbin")
    return "--double-softmax" if ranked and config["image_selection"].get("double_softmax") else ""


# ---- targets --------------------------------------------------------------------------------------


def best_expert_epochs():
    """IPC -> best expert epoch from the sweep's table, or None when no experiment asks for `auto`.

    The table is a checkpoint output: asking for it makes Snakemake run the sweep first and then
    re-evaluate the jobs that depend on it."""
    if not uses_auto_epochs(config):
        return None
    table = checkpoints.figure_expert_epoch_sweep.get().output.csv
    with open(table) as handle:
        return {int(row["images_per_class"]): int(row["best_expert_epoch"]) for row in csv.DictReader(handle)}


def student_results_for(experiment):
    """Input function: the student results an experiment's figure compares."""

    def inputs(wildcards):
        best = None if experiment == "expert_epoch_sweep" else best_expert_epochs()
        return [student_result(image_set, labels) for image_set, labels in student_runs(config, experiment, best)]

    return inputs


def grouped_labels(wildcards):
    """Input function: the label specs the population of {experiment} on {image_set} trains (the
    sweep's are known at once; the others' wait for its `auto` epochs)."""
    best = None if wildcards.experiment == SWEEP else best_expert_epochs()
    return population_groups(config, best)[wildcards.experiment][wildcards.image_set]


def grouped_population(wildcards):
    """Input function: the population file that holds the students of {image_set} on {labels}."""
    groups = population_groups(config, None)
    if wildcards.labels not in groups.get(SWEEP, {}).get(wildcards.image_set, []):
        groups = population_groups(config, best_expert_epochs())
    try:
        experiment = population_of(groups, wildcards.image_set, wildcards.labels)
    except LabelworthError as error:
        raise WorkflowError(f"config error: {error}") from None
    return population_file(experiment, wildcards.image_set)


def soft_label_picture_inputs():
    block = config.get("soft_label_pictures")
    if not block:
        return []
    return [images_file("random-ipc1")] + [labels_file("random-ipc1", expert_label(epoch))
                                           for epoch in block["expert_epochs"]]


def benchmark_image_sets():
    """The images of every benchmark method at its smallest images per class, shown side by side."""
    block = config["benchmark"]
    ipc = min(block.get("synthesis_images_per_class", block["images_per_class"]))
    return [images_file(f"{method}-ipc{ipc}") for method in block["methods"]]


def marked_expert_epochs():
    """The benchmark's fixed soft-label epochs, marked on the expert-training figure."""
    fixed = {epoch for epoch in config["benchmark"]["expert_epoch"] if epoch != "auto"}
    return " ".join(str(epoch) for epoch in sorted(fixed))


def figure_files(name):
    return [f"{RESULTS}/figures/{name}.png", f"{RESULTS}/figures/{name}.pdf"]


def table_files(name):
    return [f"{RESULTS}/tables/{name}.csv", f"{RESULTS}/tables/{name}.md"]


def all_targets():
    targets = figure_files("expert_training") + figure_files("benchmark_images")
    for experiment in STUDENT_EXPERIMENTS:
        if enabled(config, experiment):
            targets += figure_files(experiment) + table_files(experiment)
    pictures = config.get("soft_label_pictures")
    if pictures and pictures.get("enabled", True):
        targets += figure_files("soft_label_bars") + figure_files("class_similarity")
    return targets


# ---- scale-out: GPU requests and the local GPU lease ---------------------------------------------


def gpu_resource():
    """GPUs a torch job asks for: 1 unless the config pins the CPU. Locally, `gpu` is only a
    scheduler token that `--resources gpu=N` (profiles/gpu) bounds and is ignored without it; the
    SLURM plugin turns it into `--gpus=1`."""
    return 0 if config["device"] == "cpu" else 1


# Snakemake bounds how many GPU jobs run but never says which device a job gets, and a profile
# cannot set environment variables. So when `--resources gpu=N` is given (profiles/gpu), every shell
# command exports LABELWORTH_GPU_LEASE=1 (after Snakemake's own strict-mode prefix) and each stage
# leases one free GPU (labelworth/gpu_lease.py). SLURM jobs re-parse this file without that option,
# so they keep the device SLURM gave them.
if "gpu" in workflow.global_resources:
    shell.prefix("set -euo pipefail; export LABELWORTH_GPU_LEASE=1; ")
