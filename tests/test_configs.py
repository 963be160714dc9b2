"""The paper-scale configs (configs/*.yaml) through `snakemake -n`, without their datasets: the DAG
must hold exactly the jobs the config asks for, counted here straight from the config's lists; every
cell of the paper's Table 7 must be a job with the published hyperparameters, read from the jobs'
own shell commands; and parsing the workflow must not import torch (a cluster re-parses the
Snakefile for every job)."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pytest
import yaml

from conftest import ROOT, planned_jobs, snakemake
from labelworth.figures.published import published
from labelworth.config import load_config
from labelworth.plan import population_groups

PAPER_CONFIGS = ("cifar10", "cifar100", "tinyimagenet", "imagenet")
DAG_BUILD_LIMIT_S = 20
# Optional experiment blocks, each drawing the figure `figure_<block>` (the benchmark draws soft_vs_hard).
EXPERIMENT_BLOCKS = ("expert_epoch_sweep", "temperature_grid", "label_swap", "zero_shot", "scaling_law",
                     "pareto", "ensembles", "image_selection", "generated_labels")

# The paper's Table 7, from the published numbers the tables show (labelworth/figures/published.yaml):
# dataset -> expert arch -> IPC -> (expert lr, student lr, expert epoch). The epochs are the
# reference's 0-based checkpoint numbers for ImageNet (model_11.pth is the expert after 12 epochs,
# docs/method.md §5.2), so its jobs read epoch + 1; the ConvNet experts count epochs as we do.
TABLE_7: dict = {}
for _cell in published()["table7"]:
    TABLE_7.setdefault(_cell["dataset"], {}).setdefault(_cell["expert"], {})[_cell["ipc"]] = (
        _cell["expert_lr"], _cell["student_lr"], _cell["expert_epoch"])
ZERO_BASED_EPOCHS = {"imagenet"}
# Table 1's students: every ImageNet soft-label cell is evaluated on both.
TABLE_1_STUDENTS = ("resnet18", "resnet50")


def random_set(ipc: int) -> str:
    return f"random-ipc{ipc}"


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def folder(run: dict) -> str:
    return f"{run['arch']}-lr{run['lr']:g}"


def default(config: dict, block: str, key: str) -> str:
    """The only name of a block, or the one `defaults` names."""
    return next(iter(config[block])) if len(config[block]) == 1 else config["defaults"][key]


def label_token(config: dict, name: str | None) -> str:
    """The run part of an expert label spec: '' for the default run's folder."""
    runs = config["experts"]
    chosen = folder(runs[name or default(config, "experts", "expert_run")])
    return "" if chosen == folder(runs[default(config, "experts", "expert_run")]) else f"-{chosen}"


def expert(config: dict, block: dict, epoch, run=None) -> str:
    return f"expert{label_token(config, run or block.get('expert_run'))}-e{epoch}"


def populations(config: dict) -> set[tuple[str, str, str]]:
    """Every (image set, label spec, protocol) the config's experiments train students on, written
    out from the config's lists with the grammar of README's results tree (not with labelworth's
    planners, which the workflow itself uses)."""
    default_student = default(config, "students", "student")
    block = config["benchmark"]
    runs = set()
    for student in block.get("students", [default_student]):
        for position, ipc in enumerate(block["images_per_class"]):
            image_sets = [random_set(ipc)]
            if ipc in block.get("synthesis_images_per_class", block["images_per_class"]):
                image_sets += [f"{method}-ipc{ipc}" for method in set(block["methods"]) - {"random"}]
            for images in image_sets:
                runs.add((images, "hard", student))
                if images.split("-")[0] in ("bptt", "sre2l"):
                    runs.add((images, "learned", student))
                for source in block["soft_labels"]:
                    run = source.get("expert_run")
                    run = run[position] if isinstance(run, list) else run
                    runs.add((images, expert(config, block, source["expert_epoch"][position], run), student))

    for entry in block.get("online_students", []):  # online rows: the entry's own teacher at its IPCs
        for position, ipc in enumerate(block["images_per_class"]):
            if ipc not in entry.get("images_per_class", block["images_per_class"]):
                continue
            for method in entry["methods"]:
                if method != "random" and ipc not in block.get("synthesis_images_per_class", block["images_per_class"]):
                    continue
                epoch = entry["expert_epoch"]
                label = expert(config, block, epoch[position] if isinstance(epoch, list) else epoch, entry.get("expert_run"))
                temperature = entry.get("temperature", 1.0)
                runs.add((f"{method}-ipc{ipc}", label + (f"-t{temperature:g}" if temperature != 1 else ""), entry["student"]))
    sre2l = config.get("methods", {}).get("sre2l", {})
    if sre2l.get("relabel_student") and "sre2l" in block["methods"]:
        temperature = sre2l.get("relabel_temperature", 1.0)
        label = expert(config, block, sre2l["teacher_epoch"], sre2l["teacher_run"]) + \
            (f"-t{temperature:g}" if temperature != 1 else "")
        runs.update((f"sre2l-ipc{ipc}", label, sre2l["relabel_student"])
                    for ipc in block.get("synthesis_images_per_class", block["images_per_class"]))

    def add(block, pairs):
        runs.update((images, labels, block.get("student", default_student)) for images, labels in pairs)

    if block := config.get("expert_epoch_sweep"):
        add(block, {(random_set(ipc), label) for ipc in block["images_per_class"]
                    for label in ["hard"] + [expert(config, block, epoch) for epoch in block["expert_epochs"]]})
    if block := config.get("temperature_grid"):
        add(block, {(random_set(block["images_per_class"]), expert(config, block, epoch) + ("" if t == 1 else f"-t{t:g}"))
                    for epoch in block["expert_epochs"] for t in block["temperatures"]})
    if block := config.get("label_swap"):
        label = expert(config, block, block["expert_epoch"])
        transforms = ["", "-shuffle", "-smooth"] + [f"-swap{rank}" for rank in block["ranks"]]
        add(block, {(random_set(ipc), label + t) for ipc in block["images_per_class"] for t in transforms})
    if block := config.get("zero_shot"):
        ipc, label = block["images_per_class"], expert(config, block, block["expert_epoch"])
        pairs = {(random_set(ipc), label)}
        for subject in block["subject_classes"]:
            pairs |= {(f"{random_set(ipc)}-without{subject}", label), (random_set(ipc), f"{label}-zeroclass{subject}")}
        add(block, pairs)
    if block := config.get("scaling_law"):
        label = expert(config, block, block["expert_epoch"])
        add(block, {(random_set(ipc), labels) for ipc in block["images_per_class"]
                    for labels in ["hard", label] + [f"{label}-top{k}" for k in block["top_k"]]})
    if block := config.get("pareto"):
        add(block, {(random_set(ipc), label) for ipc in block["images_per_class"]
                    for label in ["hard"] + [expert(config, block, epoch) for epoch in block["expert_epochs"]]})
    if block := config.get("ensembles"):
        label = expert(config, block, block["expert_epoch"])
        add(block, {(random_set(ipc), label if size == 1 else label.replace("expert", f"ensemble{size}", 1))
                    for ipc in block["images_per_class"] for size in block["sizes"]})
    if block := config.get("image_selection"):
        ipc = block["images_per_class"]
        image_sets = [random_set(ipc)] + [f"lossbin{b}-ipc{ipc}" for b in block["bins"]]
        add(block, {(images, label) for images in image_sets
                    for label in ("hard", expert(config, block, block["expert_epoch"]))})
    if block := config.get("generated_labels"):
        label = expert(config, block, block["expert_epoch"])
        add(block, {(random_set(ipc), labels) for ipc in block["images_per_class"]
                    for labels in (["hard", label] + [f"noise{p:g}" for p in block["true_class_mass"]]
                                   + [f"{label}-boost{q:g}a{block['boost_alpha']:g}" for q in block["boost_fraction"]])})
    return runs


def trained_experts(config: dict) -> int:
    """How many expert jobs: every named run's folder trains its first seed; another seed trains when
    an ensemble or MTT's buffer reads it."""
    seeds: dict[str, list[int]] = {}
    for run in config["experts"].values():
        seeds.setdefault(folder(run), [])
        seeds[folder(run)] += [seed for seed in run["seeds"] if seed not in seeds[folder(run)]]
    seeds = {name: sorted(listed) for name, listed in seeds.items()}
    trained = {(name, listed[0]) for name, listed in seeds.items()}
    default_run = folder(config["experts"][default(config, "experts", "expert_run")])
    if block := config.get("ensembles"):
        run = folder(config["experts"][block["expert_run"]]) if "expert_run" in block else default_run
        trained |= {(run, seed) for seed in seeds[run][: max(block["sizes"])]}
    mtt = config.get("methods", {}).get("mtt")
    if mtt and "mtt" in config["benchmark"]["methods"]:
        run = folder(config["experts"][mtt["expert_run"]]) if "expert_run" in mtt else default_run
        trained |= {(run, seed) for seed in seeds[run][: mtt.get("num_experts", len(seeds[run]))]}
    return len(trained)


def expected_jobs(config: dict) -> dict[str, int]:
    """Rule -> job count of a full run of `config` from an empty folder."""
    runs = populations(config)
    pictures = config.get("soft_label_pictures")
    label_files = {(images, labels) for images, labels, _ in runs}
    if pictures:
        label_files |= {(random_set(1), expert(config, pictures, epoch)) for epoch in pictures["expert_epochs"]}
    # A `-without<c>` set is cut from its full set, which must exist too.
    image_sets = {images for images, _ in label_files}
    image_sets |= {images.split("-without")[0] for images in image_sets}
    figures = ["soft_vs_hard", "benchmark_images", "expert_training", "accuracy_vs_storage", "pass_inflation",
               "rank_stability"] + [
        name for name in EXPERIMENT_BLOCKS if name in config]
    if pictures:
        figures += ["soft_label_bars", "class_similarity"]
    if set(config["benchmark"]["methods"]) - {"random"}:
        figures.append("label_robustness")
    synthesised = {images for images in image_sets if images.split("-")[0] in ("dm", "mtt", "bptt", "sre2l")}
    jobs = {"prepare_data": 1, "train_expert": trained_experts(config), "distill_images": len(image_sets - synthesised),
            "make_labels": len(label_files), "evaluate_students": len(runs)}
    if synthesised:
        jobs["synthesise_images"] = len(synthesised)
    if any(images.startswith("mtt-") for images in synthesised):
        jobs["dump_trajectories"] = 1
    if pictures:
        jobs["class_similarity"] = 1
    if config.get("student_populations") == "per_image_set":  # one job per group, one local job per run
        groups = population_groups(load_config(config), None)  # the paper configs fix every expert epoch
        jobs["train_population"] = sum(len(image_sets) for image_sets in groups.values())
        jobs["population_member"] = jobs.pop("evaluate_students")
    return jobs | {f"figure_{name}": 1 for name in figures}


@pytest.fixture(scope="module", params=PAPER_CONFIGS)
def dry_run(request, tmp_path_factory):
    """`snakemake -n -p` of one paper config in an empty folder (no dataset anywhere), with Python's
    import-time log on (PYTHONPROFILEIMPORTTIME), and how long it took."""
    path = ROOT / "configs" / f"{request.param}.yaml"
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    began = time.monotonic()
    try:
        result = snakemake(tmp_path_factory.mktemp(request.param), "--dry-run", "--printshellcmds", config=path)
    finally:
        monkeypatch.undo()
    return SimpleNamespace(name=request.param, config=yaml.safe_load(path.read_text()), result=result,
                           seconds=time.monotonic() - began)


def job_commands(result) -> dict[str, list[str]]:
    """Rule -> the shell command of each of its planned jobs."""
    commands: dict[str, list[str]] = {}
    for block in result.stdout.split("\nrule ")[1:]:
        rule = block.split(":", 1)[0].strip()
        command = re.search(r"^Shell command: (.*)$", block, re.M)
        if command:
            commands.setdefault(rule, []).append(command.group(1))
    return commands


def options_of(command: str) -> dict[str, str]:
    """The key=value settings after --options in a shell command."""
    words = command.split("--options ", 1)[1].split(" --")[0].split()
    return dict(word.split("=", 1) for word in words)


def test_dry_run_plans_exactly_the_jobs_the_config_asks_for(dry_run):
    assert planned_jobs(dry_run.result) == expected_jobs(dry_run.config)


def test_every_table_7_cell_is_a_job_with_the_published_hyperparameters(dry_run):
    """For each published (expert, IPC): the expert job trains that arch at that lr at least as far as
    the epoch, the labels are made from that epoch's checkpoint of that run, and students of that
    arch (every Table 1 student, on ImageNet) train on them at the published student lr."""
    commands = job_commands(dry_run.result)
    experts = [options_of(command) for command in commands["train_expert"]]
    student_jobs = commands.get("evaluate_students", []) + commands.get("train_population", [])
    for expert_arch, cells in TABLE_7[dry_run.name].items():
        for ipc, (expert_lr, student_lr, epoch) in cells.items():
            epoch += dry_run.name in ZERO_BASED_EPOCHS
            run = f"{expert_arch}-lr{expert_lr:g}"
            assert any(job["arch"] == expert_arch and float(job["lr"]) == expert_lr and int(job["epochs"]) >= epoch
                       for job in experts), (run, epoch)
            checkpoint = f"experts/{run}/seed0/checkpoints/epoch_{epoch:03d}.pt"
            label_files = {re.search(r"--out (\S+)", command).group(1) for command in commands["make_labels"]
                           if f"random-ipc{ipc}/images.pt" in command and checkpoint in command
                           and re.search(r"--label-spec expert(-\S+)?-e\d+ ", command)}
            assert len(label_files) == 1, (run, ipc, epoch, label_files)
            students = TABLE_1_STUDENTS if dry_run.name == "imagenet" else (expert_arch,)
            for student_arch in students:
                assert any(label_files & set(command.split()) and options_of(command)["arch"] == student_arch
                           and float(options_of(command)["lr"]) == student_lr for command in student_jobs), (
                    run, ipc, student_arch, student_lr)


def test_mtt_replays_a_buffer_trained_as_the_mtt_paper_trained_it(dry_run):
    """100 experts at lr 1e-2 (docs/method.md §8.1), each trained at least as far as the buffer reads."""
    commands = job_commands(dry_run.result).get("dump_trajectories")
    if "mtt" not in dry_run.config["benchmark"]["methods"]:
        assert not commands  # ImageNet's Table 1 has no MTT column
        return
    folders = re.search(r"--checkpoint-dirs (.*?) --epochs", commands[0]).group(1).split()
    assert len(folders) == 100 and all("-lr0.01/seed" in folder for folder in folders)


def test_parsing_the_workflow_never_imports_torch(dry_run):
    imported = re.findall(r"^import time:.*\|\s*(\S+)\s*$", dry_run.result.stderr, re.M)
    assert "labelworth.plan" in {name.strip() for name in imported}, "the import-time log is missing"
    assert not [name for name in imported if name.strip().split(".")[0] == "torch"]


def test_dag_of_a_paper_config_builds_quickly(dry_run):
    """The largest config (CIFAR-100: about 1,500 jobs) takes about 5 s here, parse included."""
    assert dry_run.seconds < DAG_BUILD_LIMIT_S, f"{dry_run.name}: {dry_run.seconds:.1f} s"
