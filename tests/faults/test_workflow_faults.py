"""Faults around whole runs, through the real snakemake CLI and real processes: bad config and data,
kill -9 of a stage and of snakemake itself, repeat runs, and a second snakemake in the same folder.

Runs use a micro config (config.tiny.yaml's core with one expert, one image per class and one
student seed: 10 jobs) and `--max-threads 1` in every run, since torch's thread count may change
float results and each run must be comparable bit for bit with the reference run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import checksums, flip_tensor_byte, micro_config, snakemake, snakemake_command, write_fashion_mnist

EXPERT_EPOCHS = 8  # leaves several epochs after epoch 1 for a kill to land in
MICRO = {
    "expert": {"arch": "convnet-d2-w8", "lr": 0.01, "epochs": EXPERT_EPOCHS, "seeds": [0], "batch_size": 64},
    "student": {"arch": "convnet-d2-w8", "epochs": 2, "seeds": [0], "batch_size": 64, "eval_every": 1},
    "benchmark": {"images_per_class": [1], "soft_labels": [{"expert_epoch": [1]}]},
}
RUN_ARGS = ("--max-threads", "1")
EXPERT = "experts/convnet-d2-w8-lr0.01/seed0"  # under work/fashion_mnist and results/fashion_mnist
TIMEOUT_S = 300


def prepare(workdir: Path, config: dict | None = None) -> Path:
    """A workflow folder holding the small Fashion-MNIST (60 training images per class, so an expert
    epoch takes long enough to be caught mid-run) and `config` (default: micro); returns the config."""
    write_fashion_mnist(workdir / "raw" / "fashion_mnist", train_per_class=60, test_per_class=10)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config or micro_config(MICRO)))
    return path


def start(workdir: Path, config: Path, *args: str) -> subprocess.Popen:
    """snakemake in the background in its own process group, so that killing the group takes its
    jobs too, as a crash of the machine would; its output is appended to workdir/snakemake.out."""
    command, env = snakemake_command(workdir, *RUN_ARGS, *args, config=config)
    with open(workdir / "snakemake.out", "a") as output:
        return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL to the process group `process` leads (it was started with start_new_session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_until(condition, process: subprocess.Popen, what: str, log: Path) -> None:
    """Poll `condition` every 20 ms until it holds; fail if `process` ends first or time runs out."""
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            kill_group(process)
            pytest.fail(f"{what} never happened; end of {log}:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def stage_running(group: int, stage: str) -> bool:
    """Whether a `labelworth <stage>` process runs in process group `group` (read from Linux's /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
            if os.getpgid(int(entry.name)) == group and stage.encode() in arguments[:4]:
                return True
        except OSError:  # the process ended while we looked
            continue
    return False


# --------------------------------------------------------------------------------------------------
# Bad input through snakemake: config errors stop the dry run, bad data stops its job


def _set(*path: str, **values):
    """An edit of the config block at `path` (keys, or list positions)."""
    def edit(config):
        block = config
        for key in path:
            block = block[key]
        block.update(values)
    return edit


@pytest.mark.parametrize("edit, expected", [
    pytest.param(_set("experts", "convnet", lr="1e-2"), "config error: experts.convnet.lr", id="number read as text"),
    pytest.param(_set("benchmark", images_per_class=[7000]),
                 "config error: benchmark.images_per_class: 7000", id="more images than a class has"),
    pytest.param(_set("benchmark", "soft_labels", 0, expert_epoch=[EXPERT_EPOCHS + 1]),
                 f"uses expert epoch {EXPERT_EPOCHS + 1}", id="epoch beyond training"),
])
def test_bad_config_stops_the_dry_run_with_one_line(edit, expected, tmp_path):
    config = micro_config(MICRO)
    edit(config)
    result = snakemake(tmp_path, "--dry-run", config=prepare(tmp_path, config), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and expected in output and "Traceback" not in output
    assert not (tmp_path / "results").exists()


def test_missing_data_fails_its_job_with_the_folder_named(tmp_path):
    config = micro_config(MICRO)
    config["data_root"] = "empty"
    (tmp_path / "empty").mkdir()
    target = "results/fashion_mnist/data/train.pt"
    result = snakemake(tmp_path, target, "--show-failed-logs", config=prepare(tmp_path, config), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "labelworth prepare-data: error: empty: no Fashion-MNIST files found" in output
    assert not (tmp_path / target).exists()


# --------------------------------------------------------------------------------------------------
# Whole runs against one uninterrupted reference run


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the micro config, and beside it (at the same time, to save time) a
    second one in another folder for the repeat test. While the reference's first job runs, a third
    snakemake is started in its folder (with --rerun-incomplete, as the local profile sets it) and
    must be refused; its output, exit status and duration are kept for the test."""
    workdir, repeat = tmp_path_factory.mktemp("reference"), tmp_path_factory.mktemp("repeat")
    config = prepare(workdir)
    runs = [start(workdir, config), start(repeat, prepare(repeat))]
    try:
        wait_until(lambda: any((workdir / "logs").rglob("*.log")), runs[0], "the first job",
                   workdir / "snakemake.out")
        began = time.monotonic()
        intruder = snakemake(workdir, *RUN_ARGS, "--rerun-incomplete", config=config, check=False)
        probe = SimpleNamespace(result=intruder, seconds=time.monotonic() - began,
                                first_still_running=runs[0].poll() is None)
        for run, folder in zip(runs, (workdir, repeat)):
            assert run.wait(timeout=TIMEOUT_S) == 0, (folder / "snakemake.out").read_text()[-3000:]
    finally:  # never leave a run behind when the fixture fails
        for run in runs:
            kill_group(run)
    return SimpleNamespace(workdir=workdir, checksums=checksums(workdir / "results"), probe=probe,
                           repeat_checksums=checksums(repeat / "results"))


def test_second_snakemake_in_the_same_folder_is_refused_quickly(reference):
    probe = reference.probe
    assert probe.first_still_running, "the first run ended before the second tried; nothing was tested"
    assert probe.result.returncode != 0 and probe.seconds < 60
    assert "Directory cannot be locked" in probe.result.stdout + probe.result.stderr


def test_second_run_in_another_folder_writes_identical_files(reference):
    """Every file under results/ (data, checkpoints, images, grid, labels, students, figures,
    tables) is bitwise identical across two runs of one config."""
    names = set(reference.checksums)
    assert {f"fashion_mnist/{EXPERT}/metrics.csv", "fashion_mnist/figures/soft_vs_hard.pdf",
            "fashion_mnist/figures/expert_training.png"} <= names
    assert sum(name.endswith(".json") for name in names) == 2  # hard and soft labels
    assert reference.repeat_checksums == reference.checksums


def test_killed_snakemake_reruns_to_identical_files(reference, tmp_path):
    """kill -9 of snakemake and its jobs, first while the expert trains (after its epoch 1), then,
    after `--unlock` and a rerun, while students are evaluated: the expert resumes from its work
    folder, the killed students start again from scratch, and the final files equal the reference's.
    The figures, which no kill here touches, are left out to save time."""
    config, out = prepare(tmp_path), tmp_path / "snakemake.out"
    until = ("--until", "evaluate_students")
    run = start(tmp_path, config, *until)
    wait_until(lambda: (tmp_path / "work/fashion_mnist" / EXPERT / "epoch_001.pt").exists(), run,
               "the expert's epoch 1", out)
    kill_group(run)
    assert not (tmp_path / "results/fashion_mnist" / EXPERT / "metrics.csv").exists(), \
        "the kill came after the expert finished"

    # The killed snakemake leaves its lock behind; --unlock removes it.
    stale = snakemake(tmp_path, *RUN_ARGS, *until, "--rerun-incomplete", config=config, check=False)
    assert "Directory cannot be locked" in stale.stdout + stale.stderr
    snakemake(tmp_path, "--unlock", config=config)
    run = start(tmp_path, config, *until, "--rerun-incomplete")
    wait_until(lambda: stage_running(run.pid, "evaluate-students"), run, "a student evaluation", out)
    kill_group(run)
    unfinished = [name for name in reference.checksums
                  if "/students/" in name and not (tmp_path / "results" / name).exists()]
    assert unfinished, "the kill came after the students finished"

    snakemake(tmp_path, "--unlock", config=config)
    final = snakemake(tmp_path, *RUN_ARGS, *until, "--rerun-incomplete", config=config)
    assert re.search(r"^evaluate_students\s+[12]\s*$", final.stdout + final.stderr, re.M)
    expert_log = tmp_path / "logs/fashion_mnist/train_expert/convnet-d2-w8-lr0.01/seed0.log"
    assert "resuming after epoch" in expert_log.read_text()
    drawn = ("fashion_mnist/figures/", "fashion_mnist/tables/")
    assert checksums(tmp_path / "results") == {name: checksum for name, checksum in reference.checksums.items()
                                               if not name.startswith(drawn)}


def test_killed_expert_resumes_to_identical_files(reference, tmp_path):
    """`labelworth train-expert` killed with SIGKILL once epoch 1 is saved, then rerun with the same
    command, ends with the reference run's checkpoints and metrics.csv, byte for byte."""
    command = [sys.executable, "-m", "labelworth", "train-expert",
               "--data-dir", str(reference.workdir / "results/fashion_mnist/data"), "--options",
               "arch=convnet-d2-w8", "lr=0.01", "seeds=0", f"epochs={EXPERT_EPOCHS}", "batch_size=64",
               "--checkpoint-dir", str(tmp_path / "expert/checkpoints"), "--metrics",
               str(tmp_path / "expert/metrics.csv"), "--work-dir", str(tmp_path / "work"), "--device", "cpu",
               "--threads", "1"]
    with open(tmp_path / "expert.out", "w") as output:
        killed = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    wait_until(lambda: (tmp_path / "work/epoch_001.pt").exists(), killed, "epoch 1", tmp_path / "expert.out")
    kill_group(killed)
    assert not (tmp_path / "expert/metrics.csv").exists(), "the kill came after the expert finished"

    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming after epoch" in rerun.stdout
    expected = checksums(reference.workdir / "results/fashion_mnist" / EXPERT)
    assert len(expected) == EXPERT_EPOCHS + 2  # epochs 0..8 and metrics.csv
    assert checksums(tmp_path / "expert") == expected


def test_a_corrupted_file_repaired_as_its_message_says_comes_back_identical(reference, tmp_path):
    """A flipped bit in a finished run's labels and in an expert checkpoint: the stage that reads one
    names `labelworth verify --repair`; that and the command it prints, run literally, rebuild both
    and everything downstream, and every result file equals the reference's again."""
    workdir = tmp_path / "run"
    shutil.copytree(reference.workdir, workdir, symlinks=True)
    results = workdir / "results" / "fashion_mnist"
    labels = next((results / "labels" / "random-ipc1").glob("expert-*.pt"))
    flip_tensor_byte(labels)
    flip_tensor_byte(results / EXPERT / "checkpoints" / "epoch_001.pt")

    students = subprocess.run(
        [sys.executable, "-m", "labelworth", "evaluate-students", "--images", str(labels.parent.parent.parent /
         "images" / "random-ipc1" / "images.pt"), "--labels", str(labels), "--data-dir", str(results / "data"),
         "--out", str(tmp_path / "students.json"), "--options", "arch=convnet-d2-w8", "epochs=1", "seeds=0",
         "eval_every=1", "--device", "cpu"], capture_output=True, text=True)
    assert students.returncode == 2 and "run `labelworth verify --repair` and then the snakemake command" in students.stderr

    verify = subprocess.run([sys.executable, "-m", "labelworth", "verify", "--repair"], cwd=workdir,
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.count("bad: ") == 2
    command = verify.stdout.strip().splitlines()[-1].split()
    assert command[:2] == ["snakemake", "all"]
    # The printed command, with this test's way of calling snakemake (its config, one thread).
    rebuilt = snakemake(workdir, *RUN_ARGS, *command[2:], config=workdir / "config.yaml")
    assert "train_expert" in rebuilt.stdout + rebuilt.stderr
    assert checksums(workdir / "results") == reference.checksums
    again = subprocess.run([sys.executable, "-m", "labelworth", "verify"], cwd=workdir, capture_output=True, text=True)
    assert again.returncode == 0 and "are good" in again.stdout
