"""End to end: tests/config.tiny.yaml through snakemake, every rule and figure, then the caching
promises: a second run has nothing to do, and a one-key change reruns only what depends on it."""

from __future__ import annotations

import csv

import pytest
import yaml

from conftest import TINY, planned_jobs, snakemake

STAGE_RULES = {"prepare_data", "train_expert", "train_ensemble_expert", "distill_images", "make_labels",
               "class_similarity", "evaluate_students"}
STUDENT_FIGURES = {"soft_vs_hard", "expert_epoch_sweep", "temperature_grid", "label_swap", "zero_shot",
                   "scaling_law", "pareto", "ensembles", "image_selection", "generated_labels"}
OTHER_FIGURES = {"expert_training", "soft_label_bars", "class_similarity"}


@pytest.mark.e2e
def test_every_rule_ran_and_every_output_exists(finished_run):
    results = finished_run / "results" / "fashion_mnist"
    for name in STUDENT_FIGURES | OTHER_FIGURES:
        for suffix in ("png", "pdf"):
            assert (results / "figures" / f"{name}.{suffix}").stat().st_size > 1000, name
    for name in STUDENT_FIGURES:
        assert (results / "tables" / f"{name}.md").stat().st_size > 0, name
    logs = finished_run / "logs" / "fashion_mnist"
    ran = {path.parent.name for path in logs.rglob("*.log")} | {path.stem for path in logs.glob("*.log")}
    assert STAGE_RULES - {"train_ensemble_expert"} <= ran  # both expert rules log under train_expert/
    assert {f"{name}" for name in STUDENT_FIGURES | OTHER_FIGURES} <= {p.stem for p in (logs / "figures").glob("*.log")}
    assert len(list(results.glob("experts/convnet-d2-w8-lr0.01/seed0/checkpoints/epoch_*.pt"))) == 4
    # the second expert only serves the ensemble at epoch 1, so it stops there
    assert len(list(results.glob("experts/convnet-d2-w8-lr0.01/seed1/checkpoints/epoch_*.pt"))) == 2


@pytest.mark.e2e
def test_auto_expert_epoch_comes_from_the_sweep(finished_run):
    results = finished_run / "results" / "fashion_mnist"
    sweep = {int(row["images_per_class"]): int(row["best_expert_epoch"])
             for row in csv.DictReader(open(results / "tables" / "expert_epoch_sweep.csv"))}
    assert set(sweep) == {1, 2} and all(epoch in (1, 3) for epoch in sweep.values())
    table = (results / "tables" / "soft_vs_hard.md").read_text()
    assert f"expert-e{sweep[1]}" in table  # IPC 1 is `auto`
    assert (results / "students" / "random-ipc1" / f"expert-e{sweep[1]}-swap9").is_dir()


@pytest.mark.e2e
def test_second_run_has_nothing_to_do(finished_run):
    result = snakemake(finished_run, "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.e2e
def test_changing_a_student_hyperparameter_reruns_only_students_and_figures(finished_run, tmp_path):
    results = finished_run / "results" / "fashion_mnist"
    config = yaml.safe_load(TINY.read_text())
    # Pin `auto` to the epochs the sweep chose, so the dry run sees the whole DAG (behind a
    # checkpoint, Snakemake plans only up to the checkpoint) and the populations stay the same.
    sweep = {int(row["images_per_class"]): int(row["best_expert_epoch"])
             for row in csv.DictReader(open(results / "tables" / "expert_epoch_sweep.csv"))}
    config["benchmark"]["expert_epoch"] = [sweep[ipc] if epoch == "auto" else epoch for ipc, epoch
                                           in zip(config["benchmark"]["images_per_class"], config["benchmark"]["expert_epoch"])]
    config["label_swap"]["expert_epoch"] = sweep[1]
    config["student"]["lr"] = 0.05
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = planned_jobs(snakemake(finished_run, "--dry-run", config=changed))
    populations = len(list((results / "students").rglob("*.json")))
    assert jobs == {"evaluate_students": populations} | {f"figure_{name}": 1 for name in STUDENT_FIGURES}


@pytest.mark.e2e
def test_bad_config_fails_at_dag_build_with_one_clear_line(finished_run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("expert_epoch: [auto, 3]", "expert_epoch: [auto, 9]"))
    result = snakemake(finished_run, "--dry-run", config=bad, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config error: benchmark (random-ipc2): label spec 'expert-e9' uses expert epoch 9" in output
    assert "expert.epochs is 3" in output and "Traceback" not in output
