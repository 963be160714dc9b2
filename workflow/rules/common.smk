# Config validation, path builders, wildcard constraints and target lists. No rules here.
import sys
from pathlib import Path

from snakemake.utils import validate

# The package must be importable at parse time even when it is not installed (e.g. a bare clone).
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from labelworth.config import benchmark_label_specs, check_config, check_number_strings
from labelworth.errors import LabelworthError
from labelworth.specs import format_number, parse_label_spec

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


wildcard_constraints:
    arch=r"convnet-d\d(-w\d+)?(-[a-z]+norm)?(-maxpool)?|resnet(18|50)(-small)?",
    student=r"convnet-d\d(-w\d+)?(-[a-z]+norm)?(-maxpool)?|resnet(18|50)(-small)?",
    lr=r"[0-9.e+-]+",
    seed=r"\d+",
    method=r"random",
    ipc=r"\d+",
    labels=r"hard|(expert|ensemble\d+)-e\d+(-t[0-9.e+-]+)?",


def data_files():
    return {"train": f"{RESULTS}/data/train.pt", "test": f"{RESULTS}/data/test.pt"}


def expert_checkpoint(seed, epoch):
    return f"{RESULTS}/experts/{EXPERT_RUN}/seed{seed}/checkpoints/epoch_{epoch:03d}.pt"


def expert_metrics(seed):
    return f"{RESULTS}/experts/{EXPERT_RUN}/seed{seed}/metrics.csv"


def expert_checkpoints_for_labels(wildcards):
    """The checkpoints a label spec reads: none for hard labels, the first N experts otherwise."""
    spec = parse_label_spec(wildcards.labels)
    if not spec.is_soft:
        return []
    return [expert_checkpoint(seed, spec.expert_epoch) for seed in EXPERT["seeds"][: spec.ensemble_size]]


def student_result(method, ipc, labels):
    return f"{RESULTS}/students/{method}-ipc{ipc}/{labels}/{STUDENT['arch']}.json"


def benchmark_student_results():
    return [
        student_result(method, ipc, labels)
        for method in config["benchmark"]["methods"]
        for ipc, label_specs in benchmark_label_specs(config).items()
        for labels in label_specs
    ]


def figure_files(name):
    return [f"{RESULTS}/figures/{name}.png", f"{RESULTS}/figures/{name}.pdf"]


def table_files(name):
    return [f"{RESULTS}/tables/{name}.csv", f"{RESULTS}/tables/{name}.md"]


def all_targets():
    return (
        figure_files("soft_vs_hard")
        + table_files("soft_vs_hard")
        + figure_files("expert_training")
    )
