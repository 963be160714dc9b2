"""The paper-scale configs (configs/*.yaml) through `snakemake -n`, without their datasets: the DAG
must hold exactly the jobs the config asks for, counted here straight from the config's lists, and
parsing the workflow must not import torch (a cluster re-parses the Snakefile for every job)."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pytest
import yaml

from conftest import ROOT, planned_jobs, snakemake
from labelworth.config import population_groups

PAPER_CONFIGS = ("cifar10", "cifar100", "tinyimagenet", "imagenet")
DAG_BUILD_LIMIT_S = 20
# Optional experiment blocks, each drawing the figure `figure_<block>` (the benchmark draws soft_vs_hard).
EXPERIMENT_BLOCKS = ("expert_epoch_sweep", "temperature_grid", "label_swap", "zero_shot", "scaling_law",
                     "pareto", "ensembles", "image_selection", "generated_labels")


def random_set(ipc: int) -> str:
    return f"random-ipc{ipc}"


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def populations(config: dict) -> set[tuple[str, str]]:
    """Every (image set, label spec) the config's experiments train students on, written out from the
    config's lists with the grammar of README's results tree (not with labelworth.config's planners,
    which the workflow itself uses)."""
    block = config["benchmark"]
    runs = set()
    for ipc, epoch in zip(block["images_per_class"], block["expert_epoch"]):
        runs |= {(random_set(ipc), "hard"), (random_set(ipc), f"expert-e{epoch}")}
        if ipc in block.get("synthesis_images_per_class", block["images_per_class"]):
            for method in set(block["methods"]) - {"random"}:
                runs |= {(f"{method}-ipc{ipc}", "hard"), (f"{method}-ipc{ipc}", f"expert-e{epoch}")}
                if method in ("bptt", "sre2l"):
                    runs.add((f"{method}-ipc{ipc}", "learned"))
    if block := config.get("expert_epoch_sweep"):
        runs |= {(random_set(ipc), label) for ipc in block["images_per_class"]
                 for label in ["hard"] + [f"expert-e{epoch}" for epoch in block["expert_epochs"]]}
    if block := config.get("temperature_grid"):
        runs |= {(random_set(block["images_per_class"]), f"expert-e{epoch}" + ("" if t == 1 else f"-t{t:g}"))
                 for epoch in block["expert_epochs"] for t in block["temperatures"]}
    if block := config.get("label_swap"):
        expert = f"expert-e{block['expert_epoch']}"
        transforms = ["", "-shuffle", "-smooth"] + [f"-swap{rank}" for rank in block["ranks"]]
        runs |= {(random_set(ipc), expert + t) for ipc in block["images_per_class"] for t in transforms}
    if block := config.get("zero_shot"):
        ipc, expert = block["images_per_class"], f"expert-e{block['expert_epoch']}"
        runs.add((random_set(ipc), expert))
        for subject in block["subject_classes"]:
            runs |= {(f"{random_set(ipc)}-without{subject}", expert), (random_set(ipc), f"{expert}-zeroclass{subject}")}
    if block := config.get("scaling_law"):
        expert = f"expert-e{block['expert_epoch']}"
        runs |= {(random_set(ipc), label) for ipc in block["images_per_class"]
                 for label in ["hard", expert] + [f"{expert}-top{k}" for k in block["top_k"]]}
    if block := config.get("pareto"):
        runs |= {(random_set(ipc), label) for ipc in block["images_per_class"]
                 for label in ["hard"] + [f"expert-e{epoch}" for epoch in block["expert_epochs"]]}
    if block := config.get("ensembles"):
        epoch = block["expert_epoch"]
        runs |= {(random_set(ipc), f"expert-e{epoch}" if size == 1 else f"ensemble{size}-e{epoch}")
                 for ipc in block["images_per_class"] for size in block["sizes"]}
    if block := config.get("image_selection"):
        ipc = block["images_per_class"]
        image_sets = [random_set(ipc)] + [f"lossbin{b}-ipc{ipc}" for b in block["bins"]]
        runs |= {(images, label) for images in image_sets for label in ("hard", f"expert-e{block['expert_epoch']}")}
    if block := config.get("generated_labels"):
        expert = f"expert-e{block['expert_epoch']}"
        labels = (["hard", expert] + [f"noise{p:g}" for p in block["true_class_mass"]]
                  + [f"{expert}-boost{q:g}a{block['boost_alpha']:g}" for q in block["boost_fraction"]])
        runs |= {(random_set(ipc), label) for ipc in block["images_per_class"] for label in labels}
    return runs


def expected_jobs(config: dict) -> dict[str, int]:
    """Rule -> job count of a full run of `config` from an empty folder."""
    runs = populations(config)
    pictures = config.get("soft_label_pictures")
    label_files = set(runs) | ({(random_set(1), f"expert-e{epoch}") for epoch in pictures["expert_epochs"]}
                               if pictures else set())
    # A `-without<c>` set is cut from its full set, which must exist too.
    image_sets = {images for images, _ in label_files}
    image_sets |= {images.split("-without")[0] for images in image_sets}
    ensemble_sizes = [size for size in config.get("ensembles", {}).get("sizes", []) if size > 1]
    figures = ["soft_vs_hard", "benchmark_images", "expert_training"] + [name for name in EXPERIMENT_BLOCKS if name in config]
    if pictures:
        figures += ["soft_label_bars", "class_similarity"]
    synthesised = {images for images in image_sets if images.split("-")[0] in ("dm", "mtt", "bptt", "sre2l")}
    jobs = {"prepare_data": 1, "train_expert": 1, "distill_images": len(image_sets - synthesised),
            "make_labels": len(label_files), "evaluate_students": len(runs)}
    if synthesised:
        jobs["synthesise_images"] = len(synthesised)
    if any(images.startswith("mtt-") for images in synthesised):
        jobs["dump_trajectories"] = 1
    if ensemble_sizes:  # the other seeds train only for ensembles; the expert figure shows every seed
        jobs["train_ensemble_expert"] = len(config["expert"]["seeds"]) - 1
    if pictures:
        jobs["class_similarity"] = 1
    if config["student"].get("populations") == "per_image_set":  # one job per group, one local job per run
        groups = population_groups(config, None)  # the paper configs fix every expert epoch
        jobs["train_population"] = sum(len(image_sets) for image_sets in groups.values())
        jobs["population_member"] = jobs.pop("evaluate_students")
    return jobs | {f"figure_{name}": 1 for name in figures}


@pytest.fixture(scope="module", params=PAPER_CONFIGS)
def dry_run(request, tmp_path_factory):
    """`snakemake -n` of one paper config in an empty folder (no dataset anywhere), with Python's
    import-time log on (PYTHONPROFILEIMPORTTIME), and how long it took."""
    path = ROOT / "configs" / f"{request.param}.yaml"
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    began = time.monotonic()
    try:
        result = snakemake(tmp_path_factory.mktemp(request.param), "--dry-run", "--quiet", "rules", "host",
                           config=path)
    finally:
        monkeypatch.undo()
    return SimpleNamespace(name=request.param, config=yaml.safe_load(path.read_text()), result=result,
                           seconds=time.monotonic() - began)


def test_dry_run_plans_exactly_the_jobs_the_config_asks_for(dry_run):
    assert planned_jobs(dry_run.result) == expected_jobs(dry_run.config)


def test_parsing_the_workflow_never_imports_torch(dry_run):
    imported = re.findall(r"^import time:.*\|\s*(\S+)\s*$", dry_run.result.stderr, re.M)
    assert "labelworth.config" in {name.strip() for name in imported}, "the import-time log is missing"
    assert not [name for name in imported if name.strip().split(".")[0] == "torch"]


def test_dag_of_a_paper_config_builds_quickly(dry_run):
    """The largest config (CIFAR-100: 1,327 jobs) takes about 3 s here, parse included."""
    assert dry_run.seconds < DAG_BUILD_LIMIT_S, f"{dry_run.name}: {dry_run.seconds:.1f} s"
