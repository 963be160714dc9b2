"""End to end: tests/config.tiny.yaml through snakemake, every rule and figure, then the caching
promises: a second run has nothing to do, and a one-key change reruns only what depends on it."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, TINY, planned_jobs, snakemake, write_fashion_mnist
from labelworth.config import load_config
from labelworth.plan import expert_label, population_groups

STAGE_RULES = {"prepare_data", "train_expert", "distill_images", "dump_trajectories", "make_labels",
               "class_similarity", "evaluate_students"}
STUDENT_FIGURES = {"soft_vs_hard", "expert_epoch_sweep", "temperature_grid", "label_swap", "zero_shot", "label_budget",
                   "scaling_law", "pareto", "ensembles", "image_selection", "generated_labels", "label_robustness",
                   "accuracy_vs_storage", "pass_inflation", "rank_stability"}
OTHER_FIGURES = {"expert_training", "soft_label_bars", "class_similarity", "benchmark_images"}


@pytest.mark.e2e
def test_every_rule_ran_and_every_output_exists(finished_run):
    results = finished_run / "results" / "fashion_mnist"
    for name in STUDENT_FIGURES | OTHER_FIGURES:
        for suffix in ("png", "pdf"):
            assert (results / "figures" / f"{name}.{suffix}").stat().st_size > 1000, name
    for name in STUDENT_FIGURES:
        assert (results / "tables" / f"{name}.md").stat().st_size > 0, name
    logs = finished_run / "logs" / "fashion_mnist"
    ran = {path.relative_to(logs).parts[0] for path in logs.rglob("*.log")} | {path.stem for path in logs.glob("*.log")}
    assert STAGE_RULES <= ran
    assert {f"{name}" for name in STUDENT_FIGURES | OTHER_FIGURES} <= {p.stem for p in (logs / "figures").glob("*.log")}
    assert len(list(results.glob("experts/convnet-d2-w8-lr0.01/seed0/checkpoints/epoch_*.pt"))) == 4
    # the second expert only serves the ensemble at epoch 1, so it stops there
    assert len(list(results.glob("experts/convnet-d2-w8-lr0.01/seed1/checkpoints/epoch_*.pt"))) == 2
    # SRe2L's batch-norm teacher trains only as far as the epoch it inverts (methods.sre2l.teacher_epoch 1)
    assert len(list(results.glob("experts/convnet-d2-w8-batchnorm-lr0.01/seed0/checkpoints/epoch_*.pt"))) == 2
    for method in ("dm", "mtt", "bptt", "sre2l"):  # every synthesis method drew its images and loss curve
        assert {"images.pt", "grid.png", "loss_curve.csv", "loss_curve.png"} <= {
            path.name for path in (results / "images" / f"{method}-ipc1").iterdir()}, method


@pytest.mark.e2e
def test_auto_expert_epoch_comes_from_the_sweep(finished_run):
    results = finished_run / "results" / "fashion_mnist"
    sweep = {int(row["images_per_class"]): int(row["best_expert_epoch"])
             for row in csv.DictReader(open(results / "tables" / "expert_epoch_sweep.csv"))}
    assert set(sweep) == {1, 2} and all(epoch in (1, 3) for epoch in sweep.values())
    table = list(csv.DictReader(open(results / "tables" / "soft_vs_hard.csv")))
    assert {row["label_spec"] for row in table if row["images_per_class"] == "1" and row["labels"] == "expert"} == {
        f"expert-e{sweep[1]}"}  # IPC 1 is `auto`, for every method
    assert (results / "students" / "random-ipc1" / f"expert-e{sweep[1]}-swap9").is_dir()


@pytest.mark.e2e
def test_second_run_has_nothing_to_do(finished_run):
    result = snakemake(finished_run, "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


def sweep_best_epochs(results) -> dict[int, int]:
    """IPC -> the expert epoch the finished run's sweep chose."""
    return {int(row["images_per_class"]): int(row["best_expert_epoch"])
            for row in csv.DictReader(open(results / "tables" / "expert_epoch_sweep.csv"))}


def config_with_auto_pinned(results) -> dict:
    """The tiny config with `auto` pinned to the epochs the finished run's sweep chose, so a dry run
    sees the whole DAG (behind a checkpoint, Snakemake plans only up to the checkpoint) and the
    populations stay the same."""
    config = yaml.safe_load(TINY.read_text())
    sweep = sweep_best_epochs(results)
    benchmark = config["benchmark"]
    source = benchmark["soft_labels"][0]
    source["expert_epoch"] = [sweep[ipc] if epoch == "auto" else epoch
                              for ipc, epoch in zip(benchmark["images_per_class"], source["expert_epoch"])]
    config["label_swap"]["expert_epoch"] = sweep[1]
    return config


@pytest.mark.e2e
def test_changing_a_student_hyperparameter_reruns_only_students_and_figures(finished_run, tmp_path):
    results = finished_run / "results" / "fashion_mnist"
    config = config_with_auto_pinned(results)
    config["students"]["convnet-d2-w8"]["lr"] = 0.05
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = planned_jobs(snakemake(finished_run, "--dry-run", config=changed))
    populations = len(list((results / "students").rglob("convnet-d2-w8.json")))  # the other protocols stay
    assert jobs == {"evaluate_students": populations} | {f"figure_{name}": 1 for name in STUDENT_FIGURES}


@pytest.mark.e2e
def test_changing_one_label_spec_reruns_only_its_labels_students_and_figure(finished_run, tmp_path):
    """A new temperature in temperature_grid: one label file, its one population, the one figure; the
    label files and students of the other temperature and of every other experiment stay."""
    results = finished_run / "results" / "fashion_mnist"
    config = config_with_auto_pinned(results)
    assert config["temperature_grid"]["temperatures"] == [1.0, 2.0]
    config["temperature_grid"]["temperatures"] = [1.0, 3.0]
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = planned_jobs(snakemake(finished_run, "--dry-run", config=changed))
    assert jobs == {"make_labels": 1, "evaluate_students": 1, "figure_temperature_grid": 1}


@pytest.mark.e2e
def test_changing_one_method_hyperparameter_reruns_only_that_methods_chain(finished_run, tmp_path):
    """methods.dm.iterations: DM's images, their labels and students, and the benchmark figures."""
    results = finished_run / "results" / "fashion_mnist"
    config = config_with_auto_pinned(results)
    config["methods"]["dm"]["iterations"] += 1
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = planned_jobs(snakemake(finished_run, "--dry-run", config=changed))
    dm_labels = len(list((results / "labels" / "dm-ipc1").glob("*.pt")))
    assert jobs == {"synthesise_images": 1, "make_labels": dm_labels, "evaluate_students": dm_labels,
                    "figure_soft_vs_hard": 1, "figure_benchmark_images": 1, "figure_label_robustness": 1,
                    "figure_accuracy_vs_storage": 1, "figure_pass_inflation": 1, "figure_rank_stability": 1}


@pytest.mark.e2e
def test_grouped_populations_train_each_label_set_once_and_give_the_same_students(finished_run, tmp_path):
    """student_populations: per_image_set on a copy of the finished run, `auto` left to the sweep: one
    job per (experiment, image set) trains all its label sets (the sweep's first, the others' after
    its checkpoint), each label set's result file holds the same students the per-label-set job
    trained (on a CPU, exactly), and nothing upstream of the students reruns."""
    workdir = tmp_path / "grouped"
    shutil.copytree(finished_run, workdir, symlinks=True)
    results, logs = workdir / "results" / "fashion_mnist", workdir / "logs" / "fashion_mnist"
    config = yaml.safe_load(TINY.read_text())
    config["student_populations"] = "per_image_set"
    grouped = tmp_path / "grouped.yaml"
    grouped.write_text(yaml.safe_dump(config))
    separate = {path: json.loads(path.read_text()) for path in (results / "students").rglob("*.json")}
    before = {path.relative_to(workdir): path.stat().st_mtime_ns for path in (workdir / "results").rglob("*")
              if path.is_file()}

    snakemake(workdir, config=grouped)

    external = {path.stem: json.loads(path.read_text()) for path in (results / "external").glob("*.json")}
    groups = population_groups(load_config(config), sweep_best_epochs(results), external)
    populations = sum(len(image_sets) for image_sets in groups.values())
    assert 0 < populations < len(separate)
    # One log per job; behind the checkpoint, Snakemake's job table covers only the first part.
    assert len(list((logs / "train_population").glob("*.log"))) == populations
    assert len(list((logs / "population_member").glob("*.log"))) == len(separate)
    rewritten = {path for path, mtime in before.items() if (workdir / path).stat().st_mtime_ns != mtime}
    assert {path.parts[2] for path in rewritten} == {"students", "figures", "tables"}
    for path, alone in separate.items():
        member = json.loads(path.read_text())
        assert member["meta"] == alone["meta"]
        assert [student["curve"] for student in member["students"]] == [student["curve"] for student in alone["students"]]
    assert "Nothing to be done" in snakemake(workdir, "--dry-run", config=grouped).stdout


def test_the_longest_expert_is_scheduled_before_every_other_critical_path_job(tmp_path):
    """From an empty folder, the first seed's expert (3 epochs in the tiny config) outranks the
    shorter experts, which outrank the synthesis jobs."""
    plan = snakemake(tmp_path, "--dry-run").stdout
    experts, synthesis = {}, []
    for block in re.split(r"^\[.*\]$", plan, flags=re.M):  # a job's lines follow its timestamp
        rule = re.search(r"^rule (\w+):", block, re.M)
        priority = re.search(r"priority: (\d+)", block)
        priority = int(priority.group(1)) if priority else 0
        if rule and rule.group(1) == "train_expert":
            experts[re.search(r"wildcards: expert=(\S+)", block).group(1)] = priority
        elif rule and rule.group(1) == "synthesise_images":
            synthesis.append(priority)
    longest = experts.pop("convnet-d2-w8-lr0.01/seed0")
    assert synthesis and longest > max(experts.values()) > max(synthesis)


@pytest.mark.e2e
def test_bad_config_fails_at_dag_build_with_one_clear_line(finished_run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("expert_epoch: [auto, 3]", "expert_epoch: [auto, 9]"))
    result = snakemake(finished_run, "--dry-run", config=bad, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config error: benchmark (random-ipc2): label spec 'expert-e9' uses expert epoch 9" in output
    assert "the run convnet-d2-w8-lr0.01 trains 3 epochs" in output and "Traceback" not in output


@pytest.mark.e2e
@pytest.mark.parametrize("method", ["dm", "mtt", "bptt", "sre2l"])
def test_distilled_images_reloaded_in_a_fresh_process_reproduce_the_recorded_accuracy(finished_run, tmp_path,
                                                                                       method):
    """The images and labels files are all a student needs: a new process evaluating them again lands
    within one standard deviation of the recorded accuracy (on a CPU, exactly on it)."""
    results = finished_run / "results" / "fashion_mnist"
    recorded_path = next((results / "students" / f"{method}-ipc1").glob("*/convnet-d2-w8.json"))  # fixed labels
    recorded = json.loads(recorded_path.read_text())
    settings = recorded["meta"]["settings"]
    out = tmp_path / "again.json"
    labels = results / "labels" / f"{method}-ipc1" / f"{recorded_path.parent.name}.pt"
    subprocess.run(
        [sys.executable, "-m", "labelworth", "evaluate-students", "--images",
         str(results / "images" / f"{method}-ipc1" / "images.pt"), "--labels", str(labels), "--data-dir",
         str(results / "data"), "--out", str(out), "--options",
         *[f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}" for key, value in settings.items()],
         "--device", "cpu"],
        check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT / "workflow")},
    )
    again = json.loads(out.read_text())["best_accuracy"]["mean"]
    mean, std = recorded["best_accuracy"]["mean"], recorded["best_accuracy"]["std"]
    assert abs(again - mean) <= std + 1e-9


@pytest.mark.e2e
def test_external_sets_in_every_format_give_the_students_of_the_same_images(finished_run):
    """The tiny config reads random-ipc1 back as three external sets: exported in MTT's layout, as an
    image folder, and as itself. Each has the IPC counted from its files, trains exactly the students
    random-ipc1 trains on the same labels, and has its row in the benchmark and robustness tables."""
    results = finished_run / "results" / "fashion_mnist"
    reference = results / "students" / "random-ipc1"
    for name in ("mtt_layout", "folder", "own"):
        summary = json.loads((results / "external" / f"{name}.json").read_text())
        assert summary["images_per_class"] == 1 and summary["learned_labels"] is False
        labels = {path.name for path in (results / "students" / f"external-{name}-ipc1").iterdir()}
        # the benchmark's IPC-1 rows, and label swap's (its block has external_sets: true)
        assert {"hard", f"expert-e{sweep_best_epochs(results)[1]}", f"expert-e{sweep_best_epochs(results)[1]}-swap9"} \
            <= labels
        for label in labels:
            ours = json.loads((results / "students" / f"external-{name}-ipc1" / label / "convnet-d2-w8.json").read_text())
            theirs = json.loads((reference / label / "convnet-d2-w8.json").read_text())
            assert [s["curve"] for s in ours["students"]] == [s["curve"] for s in theirs["students"]], (name, label)
    benchmark = list(csv.DictReader(open(results / "tables" / "soft_vs_hard.csv")))
    assert {row["method"] for row in benchmark} >= {"external-mtt_layout", "external-folder", "external-own"}
    robustness = {row["method"] for row in csv.DictReader(open(results / "tables" / "label_robustness.csv"))}
    assert {"external-mtt_layout", "external-folder", "external-own"} <= robustness


@pytest.mark.e2e
def test_a_bad_external_set_stops_at_its_inspection_before_any_student(finished_run, tmp_path):
    """A set whose images have the wrong size fails in inspect_external_set with one line naming the
    file, and no student of it is trained."""
    import torch

    workdir = tmp_path / "bad_external"
    shutil.copytree(finished_run, workdir, symlinks=True)
    torch.save(torch.zeros(10, 1, 32, 32), workdir / "wrong_size.pt")
    config = yaml.safe_load(TINY.read_text())
    config["external_image_sets"] = {"wrong": {"path": "wrong_size.pt", "format": "pt"}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(workdir, config=bad, check=False)
    assert result.returncode != 0
    log = (workdir / "logs" / "fashion_mnist" / "inspect_external_set" / "wrong.log").read_text().strip().splitlines()
    assert log[-1] == ("labelworth import-external-set: error: wrong_size.pt: images are 32x32, "
                       "fashion_mnist expects 28x28"), log
    assert not list((workdir / "results" / "fashion_mnist" / "students").glob("external-wrong*"))


def dc_results_file(exported, path) -> list[str]:
    """random-ipc1's images as DC, DSA and DM save a set (test_external.write_dc_results), as the
    second of two experiments; the `labelworth evaluate` options that pick it."""
    import torch

    from test_external import write_dc_results

    images = torch.load(exported / "images_best.pt")
    write_dc_results(path, [images.flip(-1), images], ipc=1)
    return ["--images", str(path), "--experiment", "1"]


@pytest.mark.e2e
@pytest.mark.parametrize("layout", ["mtt", "dc"])
def test_labelworth_evaluate_runs_one_set_without_a_config_edit_and_prints_its_robustness(finished_run, tmp_path,
                                                                                         layout):
    """`labelworth evaluate --images` on random-ipc1 written out in MTT's layout, or as DC/DSA/DM save
    their sets: in a finished run only the new set's jobs run (no table or figure of the benchmark is
    rewritten), its students are random-ipc1's, and its summary is printed and written."""
    workdir = tmp_path / "evaluate"
    shutil.copytree(finished_run, workdir, symlinks=True)
    results = workdir / "results" / "fashion_mnist"
    exported = results / "exports" / "random-ipc1" / "pt"
    shutil.copytree(exported, workdir / "my_set")
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    if layout == "mtt":
        name, options = "images_best", ["--images", "my_set/images_best.pt", "--labels", "my_set/labels_best.pt"]
    else:
        name, options = "res_dm_fashionmnist", dc_results_file(exported, workdir / "my_set" / "res_DM_FashionMNIST.pt")
    result = subprocess.run([sys.executable, "-m", "labelworth", "evaluate", *options, "--configfile", str(TINY),
                             "--students", "2"],  # the tiny protocol's: the finished run's twin is reused
                            cwd=workdir, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"external-{name}: 1 images per class, read as normalised (detected)" in result.stdout
    assert "teacher epoch" in result.stdout and "the expert-epoch sweep's table" in result.stdout
    assert "label robustness (expert soft)" in result.stdout and "LRS" in result.stdout
    assert "float32 400 B, fp16 200 B, int8 140 B, top2-int8 80 B" in result.stdout  # its soft labels, priced
    # the summary: the set is random-ipc1 itself, so its paired difference with its twin is zero
    assert "| regime | the set | random twin | set - twin (paired) |" in result.stdout
    summary = {row["regime"]: row for row in csv.DictReader(open(results / "evaluations" / f"{name}.csv"))}
    assert float(summary["hard (hard, convnet-d2-w8)"]["difference_mean"]) == 0.0
    assert {"md", "png", "pdf"} <= {path.suffix[1:] for path in (results / "evaluations").glob(f"{name}.*")}
    ours = json.loads((results / "students" / f"external-{name}-ipc1" / "hard" / "convnet-d2-w8.json").read_text())
    theirs = json.loads((results / "students" / "random-ipc1" / "hard" / "convnet-d2-w8.json").read_text())
    assert [s["curve"] for s in ours["students"]] == [s["curve"] for s in theirs["students"]]
    ran = {path.parent.name for path in (workdir / "logs" / "fashion_mnist").rglob("*.log")
           if path.stat().st_mtime_ns > (results / "tables" / "expert_epoch_sweep.csv").stat().st_mtime_ns}
    assert "train_expert" not in ran and "synthesise_images" not in ran
    for table in ("soft_vs_hard.csv", "label_robustness.csv", "accuracy_vs_storage.csv"):  # none rewritten
        ours, theirs = results / "tables" / table, finished_run / "results" / "fashion_mnist" / "tables" / table
        assert ours.read_bytes() == theirs.read_bytes() and ours.stat().st_mtime_ns == theirs.stat().st_mtime_ns


def evaluation_plan(workdir, config, images) -> dict[str, int]:
    """`labelworth evaluate --dry-run` in `workdir`: the rules of the populations' plan, with counts."""
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-m", "labelworth", "evaluate", "--images", str(images), "--configfile",
                             str(config), "--dry-run"], cwd=workdir, capture_output=True, text=True, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    # Snakemake prints a dry run's plan on stdout, a run's (the set's inspection) on stderr
    return planned_jobs(subprocess.CompletedProcess(result.args, 0, result.stdout, ""))


@pytest.mark.e2e
def test_an_evaluation_from_an_empty_folder_plans_no_synthesis(tmp_path):
    """From an empty folder, on the CIFAR-10 paper config (whitened): the expert, the twin's images,
    the labels and the populations of the set and its twin; no synthesis, no experiment, no figure."""
    import numpy as np
    import torch

    from test_data import write_cifar10

    cifar = tmp_path / "cifar"
    rows = write_cifar10(cifar / "raw")["train"]
    config = yaml.safe_load((ROOT / "configs" / "cifar10.yaml").read_text()) | {"data_root": str(cifar / "raw")}
    (cifar / "cifar10.yaml").write_text(yaml.safe_dump(config))
    pixels, labels = rows
    first = [int(np.flatnonzero(labels == c)[0]) for c in range(10)]  # a real image of each class, class-major
    torch.save(torch.from_numpy(pixels[first].reshape(10, 3, 32, 32).copy()), cifar / "set.pt")
    plan = evaluation_plan(cifar, cifar / "cifar10.yaml", cifar / "set.pt")
    # the expert, the twin's random images, the set read in; hard and Table 7's soft labels for both
    # sets; one grouped population per set (the config groups them) and its two members
    assert plan == {"train_expert": 1, "distill_images": 1, "external_image_set": 1, "make_labels": 4,
                    "train_population": 2, "population_member": 4}, plan


@pytest.mark.e2e
def test_an_evaluation_without_a_teacher_epoch_runs_a_sweep_of_its_own(tmp_path):
    """No sweep table, no Table 7 cell, `auto` in the config: the sweep at the set's IPC only, then the
    populations at its best epoch; the sweep's table and figure are the only ones written."""
    import gzip

    import numpy as np
    import torch

    raw = write_fashion_mnist(tmp_path / "raw" / "fashion_mnist", train_per_class=20, test_per_class=10)
    with gzip.open(raw / "train-images-idx3-ubyte.gz") as images, gzip.open(raw / "train-labels-idx1-ubyte.gz") as labels:
        pixels = np.frombuffer(images.read()[16:], np.uint8).reshape(-1, 1, 28, 28)
        classes = np.frombuffer(labels.read()[8:], np.uint8)
    first = [int(np.flatnonzero(classes == c)[0]) for c in range(10)]
    torch.save(torch.from_numpy(pixels[first].copy()), tmp_path / "my_set.pt")
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-m", "labelworth", "evaluate", "--images", "my_set.pt", "--configfile",
                             str(TINY), "--regimes", "soft", "--students", "2"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    best = sweep_best_epochs(tmp_path / "results" / "fashion_mnist")
    assert list(best) == [1] and f"teacher epoch {best[1]}, from its own sweep" in result.stdout
    assert f"expert ({expert_label(best[1])}, convnet-d2-w8)" in result.stdout
    written = {path.name for path in (tmp_path / "results" / "fashion_mnist").glob("tables/*")}
    assert written == {"expert_epoch_sweep.csv", "expert_epoch_sweep.md"}


@pytest.mark.e2e
def test_selection_on_validation_holds_a_slice_out_and_chooses_the_sweep_epoch_on_it(tmp_path):
    """selection: validation: prepare-data writes validation.pt (5 images per class, out of train.pt),
    every sweep student is tested on it too, and the sweep's table says it chose on it."""
    from labelworth.io import load_tensors, read_json

    write_fashion_mnist(tmp_path / "raw" / "fashion_mnist", train_per_class=20, test_per_class=10)
    config = yaml.safe_load(TINY.read_text()) | {"selection": "validation", "validation_images_per_class": 5}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(tmp_path, "results/fashion_mnist/tables/expert_epoch_sweep.csv", config=tmp_path / "config.yaml")
    results = tmp_path / "results" / "fashion_mnist"
    assert len(load_tensors(results / "data" / "train.pt")["labels"]) == 150
    assert len(load_tensors(results / "data" / "validation.pt")["labels"]) == 50
    table = list(csv.DictReader(open(results / "tables" / "expert_epoch_sweep.csv")))
    assert {row["selected_on"] for row in table} == {"validation"}
    for path in (results / "students").rglob("*.json"):
        assert "final_validation_accuracy" in read_json(path), path


@pytest.mark.e2e
def test_a_finished_run_stamps_its_folder_and_renders_every_table_verbatim(finished_run, tmp_path):
    from labelworth.layout import Layout
    from labelworth.render import render_results

    layout = Layout.of("fashion_mnist")
    layout = Layout(str(finished_run / layout.root), str(finished_run / layout.logs), "")
    results = finished_run / "results" / "fashion_mnist"
    stamp = json.loads((finished_run / "logs" / "fashion_mnist" / "runs.jsonl").read_text().splitlines()[0])
    assert stamp["wall_seconds"] > 0 and stamp["commit"] and "core" in stamp["machine"]
    assert stamp["overrides"] == {}  # the run had a config file and no --config
    page = render_results(layout, tmp_path / "docs", ROOT / "workflow" / "report").read_text()
    for table in sorted((results / "tables").glob("*.md")):
        assert table.read_text().rstrip() in page, table.name
    drawn = {path.name for path in (results / "figures").glob("*.png")}
    assert drawn and drawn == {path.name for path in (tmp_path / "docs" / "figures").glob("*.png")}


@pytest.mark.e2e
def test_another_config_plans_no_file_in_the_folder_of_a_finished_run(finished_run, tmp_path):
    """results/{run}: the tiny config under another name plans every output, log and benchmark file in
    folders of its own, so a finished run's files are never overwritten."""
    other = yaml.safe_load(TINY.read_text()) | {"run": "tiny_other"}
    for name in other.get("external_image_sets", {}):  # sets read from the first run's exports keep their files
        other["external_image_sets"][name]["path"] = str(finished_run / other["external_image_sets"][name]["path"])
        if other["external_image_sets"][name].get("labels"):
            other["external_image_sets"][name]["labels"] = str(
                finished_run / other["external_image_sets"][name]["labels"])
    config = tmp_path / "other.yaml"
    config.write_text(yaml.safe_dump(other))
    plan = snakemake(finished_run, "--dry-run", "--printshellcmds", config=config).stdout
    written = re.findall(r"^\s+(?:output|log|benchmark): (.+)$", plan, flags=re.MULTILINE)
    paths = [path.strip() for line in written for path in line.split(", ")]
    assert paths and all(path.split("/")[1] == "tiny_other" for path in paths if path.startswith(("results/", "logs/")))
    assert not [path for path in paths if "fashion_mnist" in path.split("/")[:2]]


def test_plain_snakemake_runs_with_the_default_profile(tmp_path):
    """No --cores: profiles/default gives them, so plain `snakemake` runs a job (here: data prep)."""
    write_fashion_mnist(tmp_path / "raw" / "fashion_mnist", train_per_class=5, test_per_class=2)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
                             "results/fashion_mnist/data/train.pt", "--configfile", str(TINY)],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "results" / "fashion_mnist" / "data" / "train.pt").exists()
