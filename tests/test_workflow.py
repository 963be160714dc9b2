"""End to end: tests/config.tiny.yaml through snakemake, every rule and figure, then the caching
promises: a second run has nothing to do, and a one-key change reruns only what depends on it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import write_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "config.tiny.yaml"
RULES = {"prepare_data", "train_expert", "distill_images", "make_labels", "evaluate_students",
         "figure_soft_vs_hard", "figure_expert_training"}


def snakemake(workdir: Path, *args: str, config: Path = TINY, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
               "--configfile", str(config), "--replace-workflow-config", "--cores", "2", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run."""
    table = (result.stdout + result.stderr).split("Job stats:")[-1]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M)
            if rule not in ("total", "all")}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    write_fashion_mnist(workdir / "raw" / "fashion_mnist", train_per_class=20, test_per_class=10)
    snakemake(workdir)
    return workdir


@pytest.mark.e2e
def test_every_rule_ran_and_every_output_exists(finished_run):
    results = finished_run / "results" / "fashion_mnist"
    for name in ("soft_vs_hard", "expert_training"):
        for suffix in ("png", "pdf"):
            assert (results / "figures" / f"{name}.{suffix}").stat().st_size > 1000
    table = (results / "tables" / "soft_vs_hard.md").read_text()
    assert "expert-e1" in table and "expert-e3" in table
    ran = {path.parent.name if path.parent.name != "fashion_mnist" else path.stem
           for path in (finished_run / "logs" / "fashion_mnist").rglob("*.log")}
    assert RULES - {"figure_soft_vs_hard", "figure_expert_training"} <= ran
    assert (finished_run / "logs/fashion_mnist/figures/soft_vs_hard.log").exists()
    assert len(list(results.glob("experts/convnet-d2-w8-lr0.01/seed*/checkpoints/epoch_*.pt"))) == 2 * 4


@pytest.mark.e2e
def test_second_run_has_nothing_to_do(finished_run):
    result = snakemake(finished_run, "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.e2e
def test_changing_a_student_hyperparameter_reruns_only_students_and_figures(finished_run, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["student"]["lr"] = 0.05
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = planned_jobs(snakemake(finished_run, "--dry-run", config=changed))
    assert jobs == {"evaluate_students": 4, "figure_soft_vs_hard": 1}


@pytest.mark.e2e
def test_bad_config_fails_at_dag_build_with_one_clear_line(finished_run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("expert_epoch: [1, 3]", "expert_epoch: [1, 9]"))
    result = snakemake(finished_run, "--dry-run", config=bad, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config error: benchmark (IPC 2): label spec 'expert-e9' uses expert epoch 9" in output
    assert "expert.epochs is 3" in output and "Traceback" not in output
