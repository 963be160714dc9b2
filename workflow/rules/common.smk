# Config validation, path builders, wildcard constraints, settings options and target lists. No rules here.
import dataclasses
import re
import shlex
import sys
from pathlib import Path

import yaml

from snakemake.utils import validate

# The package must be importable at parse time even when it is not installed (e.g. a bare clone).
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from labelworth.checks import check_all, load_config_file
from labelworth.configured import (
    block_expert_run,
    external_set_names,
    external_set_settings,
    label_run,
    labels_folder,
    method_settings,
    mtt_buffer,
    run_folder,
    sre2l_teacher,
    student_protocols,
    student_settings,
    trained_runs,
)
from labelworth.distill.registry import image_method
from labelworth.errors import LabelworthError
from labelworth.io import read_json
from labelworth.plan import (
    EXPERIMENT_BLOCK,
    STUDENT_EXPERIMENTS,
    SWEEP,
    enabled,
    expert_label,
    population_groups,
    population_of,
    read_best_epochs,
    soft_label_sources,
    student_runs,
    trained_epochs,
    trajectory_epochs,
    uses_auto_epochs,
    zero_shot_control,
)
from labelworth.settings import to_options
from labelworth.specs import (
    EXPERT_RUN_PATTERN,
    EXTERNAL_NAME_PATTERN,
    IMAGE_METHOD_PATTERN,
    IMAGE_SET_PATTERN,
    LABEL_SPEC_PATTERN,
    SYNTHETIC_SET_PATTERN,
    dataset_spec,
    format_image_set,
    parse_image_set,
    parse_label_spec,
)

# Snakemake has read the config files already, but YAML keeps the last of two equal keys silently:
# read them again strictly (a syntax error or a missing file has stopped Snakemake before this).
CONFIG_FILES = list(workflow.overwrite_configfiles) or [Path(workflow.basedir) / "config.yaml"]

try:
    for config_file in CONFIG_FILES:
        load_config_file(config_file)
    with open(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml") as schema_file:
        check_all(config, yaml.safe_load(schema_file))  # one line per problem, not a dump of the config
    validate(config, schema="../schemas/config.schema.yaml")  # passes now; fills in the schema's defaults
except LabelworthError as error:
    raise WorkflowError("\n".join(f"config error: {line}" for line in str(error).splitlines())) from None


DATASET = config["dataset"]
RESULTS = f"results/{DATASET}"
LOGS = f"logs/{DATASET}"
TRAINED_RUNS = trained_runs(config)  # {arch}-lr{lr} -> ExpertSettings
TRAINED_EPOCHS = trained_epochs(config)  # ({arch}-lr{lr}, seed) -> epochs that expert trains
NEVER = r"(?!)"  # a wildcard constraint that matches nothing
# Experts, MTT's buffer and the synthesis jobs gate most of the DAG, and a synthesis job is the
# longest single job: run them as soon as they can start, so that no long job starts last with the
# rest of the run queued behind it (in the 63-minute fresh default run of a15afe9, MTT's IPC-10 set
# started among the last jobs).
CRITICAL_PATH_PRIORITY = 10


def any_of(names):
    """A wildcard constraint matching exactly these names."""
    return "|".join(re.escape(str(name)) for name in names) or NEVER


wildcard_constraints:
    run=EXPERT_RUN_PATTERN,
    expert=rf"({EXPERT_RUN_PATTERN})/seed\d+",
    seed=r"\d+",
    method=IMAGE_METHOD_PATTERN,
    ipc=r"\d+",
    image_set=IMAGE_SET_PATTERN,
    labels=LABEL_SPEC_PATTERN,
    student=any_of(student_protocols(config)),
    experiment=any_of(STUDENT_EXPERIMENTS),


def options(settings):
    """A stage's settings object as the `--options key=value ...` its CLI reads back; as a rule
    param, changing any setting reruns exactly the jobs it reaches."""
    return "--options " + " ".join(shlex.quote(option) for option in to_options(settings))


def data_files():
    return {"train": f"{RESULTS}/data/train.pt", "test": f"{RESULTS}/data/test.pt"}


def expert_dir(run, seed):
    """A trained expert: experts/{arch}-lr{lr}/seed{seed} (the `{expert}` wildcard is run/seed{seed})."""
    return f"{RESULTS}/experts/{run}/seed{seed}"


def expert_checkpoint(run, seed, epoch):
    return f"{expert_dir(run, seed)}/checkpoints/epoch_{epoch:03d}.pt"


def expert_metrics(run, seed):
    return f"{expert_dir(run, seed)}/metrics.csv"


def main_seed(run):
    return TRAINED_RUNS[run].seeds[0]


def trajectory_file(run):
    return f"{RESULTS}/trajectories/{run}.pt"


def images_file(image_set):
    return f"{RESULTS}/images/{image_set}/images.pt"


def labels_file(image_set, labels):
    return f"{RESULTS}/labels/{image_set}/{labels}.pt"


def student_result(image_set, labels, student):
    return f"{RESULTS}/students/{image_set}/{labels}/{student}.json"


def population_file(experiment, image_set, student):
    """The students of every label set that `experiment` compares on `image_set`, trained as one
    population (student_populations: per_image_set)."""
    return f"{RESULTS}/populations/{experiment}/{image_set}/{student}.json"


def class_similarity_file(labels):
    """The mean soft label per class of the expert an (untransformed) expert label spec names."""
    return f"{RESULTS}/analysis/class_similarity-{labels}.csv"


# ---- inputs and params that depend on wildcards ----------------------------------------------------


def checkpoint_folder(checkpoint):
    """The declared output a checkpoint file lies in: its expert's checkpoints/ folder (train_expert's
    output is the folder, so that one rule serves every epoch count). Jobs depend on the folder and
    are given the file."""
    return str(Path(checkpoint).parent)


def expert_checkpoints_for_labels(wildcards):
    """The checkpoints a label spec reads: its run's first expert, or the first N for an ensemble."""
    spec = parse_label_spec(wildcards.labels)
    if not spec.uses_experts:
        return []
    run = labels_folder(config, spec)
    return [expert_checkpoint(run, seed, spec.expert_epoch) for seed in TRAINED_RUNS[run].seeds[: spec.ensemble_size]]


def expert_folders_for_labels(wildcards):
    return [checkpoint_folder(checkpoint) for checkpoint in expert_checkpoints_for_labels(wildcards)]


def sre2l_teacher_checkpoint():
    """The batch-norm expert SRe2L inverts (methods.sre2l.teacher_run at teacher_epoch)."""
    run, epoch = sre2l_teacher(config)
    return expert_checkpoint(run, main_seed(run), epoch)


def ranking_expert_checkpoint():
    block = config["image_selection"]
    run = run_folder(config, block_expert_run(config, block))
    return expert_checkpoint(run, main_seed(run), block["expert_epoch"])


# What each input a method reads (labelworth/distill/registry.py) is, as the file its option names,
# and as the declared output the job depends on.
METHOD_INPUTS = {
    "trajectories": (lambda: trajectory_file(mtt_buffer(config)[0]), lambda path: path),
    "teacher": (sre2l_teacher_checkpoint, checkpoint_folder),
    "ranking_expert": (ranking_expert_checkpoint, checkpoint_folder),
}


def method_input_files(image_set):
    return {name: METHOD_INPUTS[name][0]() for name in image_method(image_set.method).inputs}


def image_set_inputs(wildcards):
    """A subset is cut from its full set; every other set reads the data and what its method reads."""
    image_set = parse_image_set(wildcards.image_set)
    if image_set.without_class is not None:
        return {"source": images_file(format_image_set(image_set.base))}
    return data_files() | {name: METHOD_INPUTS[name][1](path) for name, path in method_input_files(image_set).items()}


def image_set_threads(wildcards):
    # Loss ranking runs the expert over the training set; a random pick or a subset only indexes it,
    # so it holds one core and the other stays free.
    image_set = parse_image_set(wildcards.image_set)
    return 2 if image_set.without_class is None and image_set.method.startswith("lossbin") else 1


def image_set_arguments(wildcards, input):
    """The distill-images options naming the files the set's method reads."""
    if "source" in input.keys():
        return f"--source '{input.source}'"
    arguments = [f"--data-dir '{Path(input.train).parent}'"]
    files = method_input_files(parse_image_set(wildcards.image_set))
    arguments += [f"--{name.replace('_', '-')} '{path}'" for name, path in files.items()]
    return " ".join(arguments)


def synthesis_options(wildcards):
    """The synthesis method's settings for this set's IPC."""
    image_set = parse_image_set(wildcards.image_set)
    return options(method_settings(config, image_set.method, image_set.images_per_class))


def external_set_inputs(wildcards):
    """An external set's files (its labels file too, for pt) and the training split whose classes
    and normalisation it is read into."""
    settings = external_set_settings(config, wildcards.name)
    files = {"source": settings.path, "train": data_files()["train"]}
    return files | ({"labels": settings.labels} if settings.labels else {})


def double_softmax_flag(wildcards):
    """The reference's loss-ranking quirk, for loss-ranked sets only (so it reruns only those)."""
    ranked = parse_image_set(wildcards.image_set).method.startswith("lossbin")
    return "--double-softmax" if ranked and config["image_selection"].get("double_softmax") else ""


def student_options(wildcards):
    """The protocol's settings for this image set's IPC (its by_images_per_class entry)."""
    ipc = parse_image_set(wildcards.image_set).images_per_class
    return options(student_settings(config, wildcards.student, ipc))


# ---- experts (experts.smk) --------------------------------------------------------------------


def expert_job_settings(expert):
    """The settings of one expert job: its run's, with its one seed and its own epoch count."""
    run, seed = str(Path(expert).parent), int(Path(expert).name.removeprefix("seed"))
    return dataclasses.replace(TRAINED_RUNS[run], seeds=(seed,), epochs=TRAINED_EPOCHS[(run, seed)])


def expert_processes(wildcards):
    """Data-parallel processes (GPUs) of one expert job: its run's `processes`."""
    return TRAINED_RUNS[str(Path(wildcards.expert).parent)].processes


def expert_threads(wildcards):
    # Cached datasets train from memory on 2 threads; ImageNet decodes every image of every epoch, and
    # its processes share the job's threads (raise them with --set-threads on big nodes).
    return (2 if dataset_spec(DATASET).cached_as_tensors else 8) * expert_processes(wildcards)


# Every expert the config trains, as the `{expert}` wildcard {arch}-lr{lr}/seed{seed}.
TRAINED_EXPERTS = [f"{run}/seed{seed}" for run, seed in TRAINED_EPOCHS]


def trajectory_checkpoint_dirs(wildcards):
    """One checkpoints/ folder per buffered expert of {run} (methods.mtt: expert_run, num_experts)."""
    return [f"{expert_dir(wildcards.run, seed)}/checkpoints" for seed in mtt_buffer(config)[1]]


# ---- figures (figures.smk) ----------------------------------------------------------------------


def figure_outputs(name, category):
    return {
        "png": report(f"{RESULTS}/figures/{name}.png", caption=f"../report/{name}.rst", category=category),
        "pdf": f"{RESULTS}/figures/{name}.pdf",
        "csv": f"{RESULTS}/tables/{name}.csv",
        "md": report(f"{RESULTS}/tables/{name}.md", caption=f"../report/{name}_table.rst", category=category),
    }


# ---- targets --------------------------------------------------------------------------------------


def best_expert_epochs():
    """IPC -> best expert epoch from the sweep's table, or None when no experiment asks for `auto`.

    The table is a checkpoint output: asking for it makes Snakemake run the sweep first and then
    re-evaluate the jobs that depend on it."""
    if not uses_auto_epochs(config):
        return None
    table = checkpoints.figure_expert_epoch_sweep.get().output.csv
    try:
        return read_best_epochs(table)
    except LabelworthError as error:
        raise WorkflowError(f"error: {error}") from None


def external_sets():
    """name -> summary of every external image set (its IPC, whether it has its own labels).

    Each summary is a checkpoint output: the IPC is counted from the set's files, so the benchmark
    plans an external set's populations only once inspect_external_set has read them."""
    return {
        name: read_json(checkpoints.inspect_external_set.get(name=name).output[0])
        for name in external_set_names(config)
    }


def student_results_for(experiment):
    """Input function: the student results an experiment's figure compares."""

    def inputs(wildcards):
        best = None if experiment == SWEEP else best_expert_epochs()
        block = config.get(EXPERIMENT_BLOCK[experiment], {})
        uses_external = experiment == "soft_vs_hard" or block.get("external_sets")
        external = external_sets() if uses_external else None
        try:
            runs = student_runs(config, experiment, best, external)
        except LabelworthError as error:
            raise WorkflowError(f"config error: {error}") from None
        return [student_result(*run) for run in runs]

    return inputs


GROUPS = {}  # the sweep's best epochs (or None) -> population_groups: one plan per DAG, not one per job


def groups_for(best):
    key = None if best is None else tuple(sorted(best.items()))
    if key not in GROUPS:
        try:
            GROUPS[key] = population_groups(config, best, external_sets())
        except LabelworthError as error:
            raise WorkflowError(f"config error: {error}") from None
    return GROUPS[key]


def grouped_labels(wildcards):
    """Input function: the label specs the population of {experiment} on {image_set} with {student}
    trains (the sweep's are known at once; the others' wait for its `auto` epochs)."""
    best = None if wildcards.experiment == SWEEP else best_expert_epochs()
    return groups_for(best)[wildcards.experiment][(wildcards.image_set, wildcards.student)]


def grouped_population(wildcards):
    """Input function: the population file that holds the students of {image_set} on {labels}."""
    key = (wildcards.image_set, wildcards.student)
    groups = groups_for(None)
    if wildcards.labels not in groups.get(SWEEP, {}).get(key, []):
        groups = groups_for(best_expert_epochs())
    try:
        experiment = population_of(groups, wildcards.image_set, wildcards.labels, wildcards.student)
    except LabelworthError as error:
        raise WorkflowError(f"config error: {error}") from None
    return population_file(experiment, wildcards.image_set, wildcards.student)


def pictures_label(epoch):
    """The label spec of the soft-label pictures' expert run at `epoch`."""
    return expert_label(epoch, run=label_run(config, block_expert_run(config, config["soft_label_pictures"])))


def soft_label_picture_inputs():
    block = config.get("soft_label_pictures")
    if not block:
        return []
    return [images_file("random-ipc1")] + [
        labels_file("random-ipc1", pictures_label(epoch)) for epoch in block["expert_epochs"]
    ]


def benchmark_image_sets():
    """The images of every benchmark method at its smallest images per class, shown side by side."""
    block = config["benchmark"]
    ipc = min(block.get("synthesis_images_per_class", block["images_per_class"]))
    return [images_file(f"{method}-ipc{ipc}") for method in block["methods"]]


def marked_expert_epochs():
    """The benchmark's fixed soft-label epochs, marked on the expert-training figure."""
    fixed = {
        epoch
        for source in soft_label_sources(config["benchmark"])
        for epoch in source["expert_epoch"]
        if epoch != "auto"
    }
    return " ".join(str(epoch) for epoch in sorted(fixed))


def block_metrics(experiment):
    """The metrics.csv of the first expert of the run an experiment's block uses."""
    run = run_folder(config, block_expert_run(config, config.get(EXPERIMENT_BLOCK[experiment], {})))
    return expert_metrics(run, main_seed(run))


def external_summaries(experiment):
    """The external sets' summaries an experiment's figure plans from, as plain inputs: a summary that
    is missing (a set just added to a finished run) then makes Snakemake run its checkpoint and this
    figure again, which a checkpoint behind an input function alone does not when the figure exists."""
    block = config.get(EXPERIMENT_BLOCK[experiment], {})
    if not (experiment == "soft_vs_hard" or block.get("external_sets")):
        return []
    return [f"{RESULTS}/external/{name}.json" for name in external_set_names(config)]


def figure_extra_inputs(experiment):
    """Input function: the files a figure reads beside its students (zero_shot: the control's label
    file and images, whose label mass on each subject class it reports) and the external sets'
    summaries it plans from."""

    def inputs(wildcards):
        if experiment != "zero_shot":
            return {"external": external_summaries(experiment)}
        control = zero_shot_control(config, best_expert_epochs())
        return {"mass_labels": labels_file(*control), "mass_images": images_file(control[0])}

    return inputs


def figure_extra_option(experiment):
    """The `--extra key=path` options naming `figure_extra_inputs`."""

    def option(wildcards, input):
        names = [name for name in ("mass_labels", "mass_images") if name in input.keys()]
        return ("--extra " + " ".join(f"{name.removeprefix('mass_')}={input[name]}" for name in names)) if names else ""

    return option


def trained_expert_metrics():
    """Every trained expert's metrics.csv, runs in config order, first seeds first."""
    return [expert_metrics(run, seed) for (run, seed) in TRAINED_EPOCHS]


def full_data_option():
    """`--extra full_data_accuracy=<percent>` when the benchmark block gives one (else the expert's own)."""
    value = config["benchmark"].get("full_data_accuracy")
    return f"--extra full_data_accuracy={value}" if value is not None else ""


def uses_label_robustness():
    """Whether the benchmark has a method beside random images, whose label robustness is scored."""
    others = set(config["benchmark"]["methods"]) - {"random"}
    return enabled(config, "soft_vs_hard") and bool(others or external_set_names(config))


def figure_files(name):
    return [f"{RESULTS}/figures/{name}.png", f"{RESULTS}/figures/{name}.pdf"]


def table_files(name):
    return [f"{RESULTS}/tables/{name}.csv", f"{RESULTS}/tables/{name}.md"]


def all_targets():
    targets = figure_files("expert_training") + figure_files("benchmark_images")
    for experiment in STUDENT_EXPERIMENTS:
        if enabled(config, experiment):
            targets += figure_files(experiment) + table_files(experiment)
    if enabled(config, "soft_vs_hard"):
        targets += figure_files("accuracy_vs_storage") + table_files("accuracy_vs_storage")
    pictures = config.get("soft_label_pictures")
    if pictures and pictures.get("enabled", True):
        targets += figure_files("soft_label_bars") + figure_files("class_similarity")
    if uses_label_robustness():
        targets += figure_files("label_robustness") + table_files("label_robustness")
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
