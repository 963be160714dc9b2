# The config model and the plan, built once; the input functions, params and targets the rules read
# from them. No rules here, and none reads `config` itself (labelworth/config.py is its one reader).
import re
import shlex
import sys
import time
from pathlib import Path

# The package must be importable at parse time even when it is not installed (e.g. a bare clone).
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from labelworth.config import SWEEP, STUDENT_EXPERIMENTS, read_config_file
from labelworth.errors import LabelworthError
from labelworth.io import read_json
from labelworth.job_client import JobServer
from labelworth.plan import (
    WorkflowPlan,
    figure_rule,
    load_checked_config,
    population_of,
    read_best_epochs,
    trajectory_epochs,
)
from labelworth.render import record_run
from labelworth.settings import to_options
from labelworth.specs import (
    EXPERT_RUN_PATTERN,
    EXTERNAL_NAME_PATTERN,
    IMAGE_SET_PATTERN,
    LABEL_SPEC_PATTERN,
    REAL_SET_PATTERN,
    SYNTHETIC_SET_PATTERN,
    external_set,
    format_image_set,
    parse_image_set,
)


def planned(plan_step):
    """`plan_step()`, with a config problem it finds raised as Snakemake's one-line errors (one line
    per problem), not a traceback."""
    try:
        return plan_step()
    except LabelworthError as error:
        raise WorkflowError("\n".join(f"config error: {line}" for line in str(error).splitlines())) from None


def _read_config():
    # Snakemake has read the config files already, but YAML keeps the last of two equal keys
    # silently: read them again strictly (a syntax error or a missing file has stopped Snakemake).
    for config_file in list(workflow.overwrite_configfiles) or [Path(workflow.basedir) / "config.yaml"]:
        read_config_file(config_file)
    return load_checked_config(config)


CONFIG = planned(_read_config)  # the config model: the only reading of `config`
PLAN = planned(lambda: WorkflowPlan(CONFIG))
LAYOUT = PLAN.layout
DEVICE = CONFIG.device
# Students are also tested on the held-out validation split where there is one (selection: validation).
VALIDATION_INPUT = {"validation": LAYOUT.data("validation")} if CONFIG.validation else {}
NEVER = r"(?!)"  # a wildcard constraint that matches nothing
# Experts, MTT's buffer and the synthesis jobs gate most of the DAG, and a synthesis job is the
# longest single job: run them as soon as they can start, so that no long job starts last with the
# rest of the run queued behind it (in the 63-minute fresh default run of a15afe9, MTT's IPC-10 set
# started among the last jobs).
CRITICAL_PATH_PRIORITY = 10


# One warm Python forks the jobs of a local run (labelworth/job_client.py): a job's imports cost up to
# 2.6 s of CPU each, nearly 300 times in the default run (benchmarks/results/job_server.md). Not for jobs that run elsewhere (SLURM), in a conda
# or container environment of their own, or a dry run (Snakemake calls no hooks then);
# LABELWORTH_JOB_SERVER=off runs every job in its own process. Its log is the run's, beside the jobs'.
JOB_SERVER = JobServer(f"{LAYOUT.logs}/job_server.log")


# Each finished run stamps its log folder (logs/{run}/runs.jsonl): docs/results.md is rendered with it.
RUN_STARTED = []


onstart:
    RUN_STARTED.append(time.time())
    if workflow.local_exec and not workflow.deployment_settings.deployment_method:
        JOB_SERVER.start()


onsuccess:
    JOB_SERVER.stop()
    if RUN_STARTED:
        record_run(
            LAYOUT.logs,
            RUN_STARTED[0],
            time.time(),
            list(workflow.overwrite_configfiles),
            Path(workflow.basedir),
            dict(workflow.config_settings.config),
        )


onerror:
    JOB_SERVER.stop()


def any_of(names):
    """A wildcard constraint matching exactly these names."""
    return "|".join(re.escape(str(name)) for name in names) or NEVER


wildcard_constraints:
    run=EXPERT_RUN_PATTERN,
    expert=rf"({EXPERT_RUN_PATTERN})/seed\d+",
    seed=r"\d+",
    ipc=r"\d+",
    name=EXTERNAL_NAME_PATTERN,
    image_set=IMAGE_SET_PATTERN,
    labels=LABEL_SPEC_PATTERN,
    student=any_of(CONFIG.students),
    experiment=any_of(STUDENT_EXPERIMENTS),


def options(settings):
    """A stage's settings object as the `--options key=value ...` its CLI reads back; as a rule
    param, changing any setting reruns exactly the jobs it reaches."""
    written = to_options(settings) if settings is not None else []
    return ("--options " + " ".join(shlex.quote(option) for option in written)) if written else ""


def checkpoint_folder(checkpoint):
    """The declared output a checkpoint file lies in: its expert's checkpoints/ folder (train_expert's
    output is the folder, so that one rule serves every epoch count). Jobs depend on the folder and
    are given the file."""
    return str(Path(checkpoint).parent)


def gpu_resource():
    """GPUs a torch job asks for: 1 unless the config pins the CPU. Locally, `gpu` is only a
    scheduler token that `--resources gpu=N` (profiles/gpu) bounds and is ignored without it; the
    SLURM plugin turns it into `--gpus=1`."""
    return 0 if DEVICE == "cpu" else 1


# ---- what the workflow learns while it runs: the sweep's best epochs, the external sets' sizes ----


def best_expert_epochs():
    """IPC -> best expert epoch from the sweep's table, or None when no experiment asks for `auto`.

    The table is a checkpoint output: asking for it makes Snakemake run the sweep first and then
    re-evaluate the jobs that depend on it."""
    if not CONFIG.uses_auto_epochs():
        return None
    return planned(lambda: read_best_epochs(checkpoints.figure_expert_epoch_sweep.get().output.csv))


def external_sets():
    """name -> summary of every external image set (its IPC, whether it has its own labels).

    Each summary is a checkpoint output: the IPC is counted from the set's files, so the benchmark
    plans an external set's populations only once inspect_external_set has read them."""
    return {
        name: read_json(checkpoints.inspect_external_set.get(name=name).output[0])
        for name in CONFIG.external_image_sets
    }


# ---- data, experts, images and labels --------------------------------------------------------------


def expert_processes(wildcards):
    """Data-parallel processes (GPUs) of one expert job: its run's `processes`."""
    return PLAN.expert_job(wildcards.expert).processes


def expert_priority(wildcards):
    """Above every other critical-path job, the longest expert first: the first seed's expert is the
    longest job on that path (everything `auto` waits for its last epoch, MTT's buffer for its
    folder), and among equal priorities the greedy scheduler started DM, the batch-norm teacher,
    SRe2L and BPTT before it in the fresh run of 4f70d2b."""
    return CRITICAL_PATH_PRIORITY + PLAN.expert_job(wildcards.expert).epochs


def expert_threads(wildcards):
    # Cached datasets train from memory on 2 threads; ImageNet decodes every image of every epoch, and
    # its processes share the job's threads (raise them with --set-threads on big nodes).
    return (2 if CONFIG.dataset_spec.cached_as_tensors else 8) * expert_processes(wildcards)


def image_set_inputs(wildcards):
    """A subset is cut from its full set; every other set reads the data and what its method reads
    (a checkpoint through its expert's folder)."""
    image_set = parse_image_set(wildcards.image_set)
    if image_set.without_class is not None:
        return {"source": LAYOUT.images(format_image_set(image_set.base))}
    files = PLAN.method_inputs(wildcards.image_set)
    return LAYOUT.data_files() | {
        name: path if name == "trajectories" else checkpoint_folder(path) for name, path in files.items()
    }


def image_set_threads(wildcards):
    # Loss ranking runs the expert over the training set; a random pick or a subset only indexes it,
    # so it holds one core and the other stays free.
    image_set = parse_image_set(wildcards.image_set)
    return 2 if image_set.without_class is None and image_set.loss_bin is not None else 1


def image_set_arguments(wildcards, input):
    """The distill-images options naming the files the set's method reads."""
    if "source" in input.keys():
        return f"--source '{input.source}'"
    arguments = [f"--data-dir '{Path(input.train).parent}'"]
    files = PLAN.method_inputs(wildcards.image_set)
    arguments += [f"--{name.replace('_', '-')} '{path}'" for name, path in files.items()]
    return " ".join(arguments)


def image_set_options(wildcards):
    """The set's method settings (a synthesis method's for its IPC, the loss ranking's), if any:
    a subset is cut as it is, and reruns with the set it is cut from."""
    if parse_image_set(wildcards.image_set).without_class is not None:
        return ""
    return options(PLAN.image_set_settings(wildcards.image_set))


def external_set_inputs(wildcards):
    """An external set's files (its labels file too, for pt) and the training split whose classes
    and normalisation it is read into."""
    settings = CONFIG.external_image_sets[wildcards.name]
    files = {"source": settings.path, "train": LAYOUT.data("train")}
    return files | ({"labels": settings.labels} if settings.labels else {})


def label_checkpoints(wildcards):
    return PLAN.label_checkpoints(wildcards.labels)


def label_checkpoint_folders(wildcards):
    return [checkpoint_folder(checkpoint) for checkpoint in label_checkpoints(wildcards)]


# ---- students -----------------------------------------------------------------------------------


def student_options(wildcards):
    return options(PLAN.student_settings(wildcards.image_set, wildcards.student))


def grouped_labels(wildcards):
    """Input function: the label specs the population of {experiment} on {image_set} with {student}
    trains (the sweep's are known at once; the others' wait for its `auto` epochs)."""
    best = None if wildcards.experiment == SWEEP else best_expert_epochs()
    groups = planned(lambda: PLAN.groups(best, external_sets()))
    return groups[wildcards.experiment][(wildcards.image_set, wildcards.student)]


def grouped_population(wildcards):
    """Input function: the population file that holds the students of {image_set} on {labels}."""
    key = (wildcards.image_set, wildcards.student)
    groups = planned(lambda: PLAN.groups(None, external_sets()))
    if wildcards.labels not in groups.get(SWEEP, {}).get(key, []):
        best = best_expert_epochs()
        groups = planned(lambda: PLAN.groups(best, external_sets()))
    experiment = planned(lambda: population_of(groups, wildcards.image_set, wildcards.labels, wildcards.student))
    return LAYOUT.population(experiment, wildcards.image_set, wildcards.student)


# ---- figures ------------------------------------------------------------------------------------

REPORT_CATEGORY = {
    "expert_epoch_sweep": "Expert epoch",
    "expert_training": "Experts",
    "soft_label_bars": "Soft-label pictures",
    "class_similarity": "Soft-label pictures",
}


def figure_outputs(name):
    """A figure's files, its PNG and table in the report (workflow/report/{name}.rst captions)."""
    category = REPORT_CATEGORY.get(name, "Soft-label analyses")
    files = PLAN.figure_outputs(name)
    files["png"] = report(files["png"], caption=f"../report/{name}.rst", category=category)
    if "md" in files:
        files["md"] = report(files["md"], caption=f"../report/{name}_table.rst", category=category)
    return files


def figure_role(name, role):
    """Input function: a figure's files of one role (labelworth.plan.WorkflowPlan.figure_inputs), the
    sweep's best epochs and the external sets' summaries asked for only where it plans from them."""

    def files(wildcards):
        waits_for_sweep, waits_for_external = PLAN.waits_for(name)
        best = best_expert_epochs() if waits_for_sweep else None
        external = external_sets() if waits_for_external else None
        return planned(lambda: PLAN.figure_inputs(name, best, external))[role]

    return files


def figure_inputs(name):
    """A figure's inputs, one named input function per role: behind a checkpoint, Snakemake stands
    the checkpoint's output in for each until it has run."""
    return {role: figure_role(name, role) for role in PLAN.figure_roles(name)}


FIGURE_OPTIONS = {
    "inputs": "--inputs",
    "expert_metrics": "--expert-metrics",
    "mass_labels": "--mass-labels",
    "mass_images": "--mass-images",
    "png": "--png",
    "pdf": "--pdf",
    "csv": "--table-csv",
    "md": "--table-md",
}
# The figure rules are made in a loop, and a shell command is formatted when its job runs: so the
# command names its figure and files through params, which are bound when the rule is made.
FIGURE_COMMAND = "labelworth figure {params.name} {params.files} {params.options} > {log:q} 2>&1"


def as_list(paths):
    """A named input or output as a list: Snakemake gives one file as a string."""
    return [paths] if isinstance(paths, str) else list(paths)


def figure_files(name):
    """Params function: `labelworth figure` options naming the figure's files by role and its outputs."""

    def files(wildcards, input, output):
        roles = [(role, getattr(input, role)) for role in PLAN.figure_roles(name)]
        roles += [(role, getattr(output, role)) for role in PLAN.figure_outputs(name)]
        return " ".join(
            f"{FIGURE_OPTIONS[role]} {' '.join(shlex.quote(path) for path in as_list(paths))}" for role, paths in roles
        )

    return files


def figure_options(name):
    return options(PLAN.figure_settings(name))


# ---- scale-out: the local GPU lease ---------------------------------------------------------------

# Snakemake bounds how many GPU jobs run but never says which device a job gets, and a profile
# cannot set environment variables. So when `--resources gpu=N` is given (profiles/gpu), every shell
# command exports LABELWORTH_GPU_LEASE=1 (after Snakemake's own strict-mode prefix) and each stage
# leases one free GPU (labelworth/gpu_lease.py). SLURM jobs re-parse this file without that option,
# so they keep the device SLURM gave them.
if "gpu" in workflow.global_resources:
    shell.prefix("set -euo pipefail; export LABELWORTH_GPU_LEASE=1; ")
