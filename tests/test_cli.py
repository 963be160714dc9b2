"""Bad input reaches the user as one line naming what was expected where, with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labelworth.cli import main


def _error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_unknown_dataset(capsys, tmp_path):
    assert main(["prepare-data", "--dataset", "svhn", "--out-dir", str(tmp_path)]) == 2
    [line] = _error_lines(capsys)
    assert line.startswith("labelworth prepare-data: error: unknown dataset 'svhn'")


def test_folder_without_the_dataset(capsys, tmp_path):
    assert main(["prepare-data", "--dataset", "fashion_mnist", "--data-root", str(tmp_path / "empty"),
                 "--out-dir", str(tmp_path / "data")]) == 2
    [line] = _error_lines(capsys)
    assert str(tmp_path / "empty") in line and "train-images-idx3-ubyte" in line
    assert not (tmp_path / "data").exists()


def test_corrupted_checkpoint_is_named(capsys, tmp_path, fashion_mnist_data):
    images, checkpoint = tmp_path / "images.pt", tmp_path / "epoch_001.pt"
    assert main(["distill-images", "--image-set", "random-ipc2", "--data-dir", str(fashion_mnist_data), "--seed", "42", "--out", str(images),
                 "--grid", str(tmp_path / "grid.png")]) == 0
    checkpoint.write_bytes(b"PK\x03\x04 truncated")
    assert main(["make-labels", "--images", str(images), "--label-spec", "expert-e1",
                 "--expert-checkpoints", str(checkpoint), "--out", str(tmp_path / "labels.pt")]) == 2
    [line] = _error_lines(capsys)
    assert str(checkpoint) in line and "corrupted or truncated" in line
    assert not (tmp_path / "labels.pt").exists()


def test_too_many_images_per_class(capsys, tmp_path, fashion_mnist_data):
    assert main(["distill-images", "--image-set", "random-ipc21", "--data-dir", str(fashion_mnist_data), "--seed", "42", "--out", str(tmp_path / "images.pt"),
                 "--grid", str(tmp_path / "grid.png")]) == 2
    [line] = _error_lines(capsys)
    assert "images_per_class=21" in line and "only 20 training images" in line


def test_every_stage_has_help():
    for stage in ("prepare-data", "train-expert", "distill-images", "make-labels", "evaluate-students", "figure"):
        result = subprocess.run([sys.executable, "-m", "labelworth", stage, "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "usage: labelworth" in result.stdout


def test_fetch_data_for_another_dataset_names_its_folder(capsys):
    assert main(["fetch-data", "--dataset", "mnist"]) == 2
    [line] = _error_lines(capsys)
    assert "place the mnist files under resources/mnist" in line


def test_a_figure_given_the_wrong_results_says_so(capsys, tmp_path):
    from test_figures import write_result

    inputs = [write_result(tmp_path, "random-ipc1", "hard", 0.5), write_result(tmp_path, "random-ipc1", "expert-e2", 0.6)]
    assert main(["figure", "zero_shot", "--inputs", *inputs, "--png", str(tmp_path / "a.png"),
                 "--pdf", str(tmp_path / "a.pdf"), "--table-csv", str(tmp_path / "a.csv"),
                 "--table-md", str(tmp_path / "a.md")]) == 2
    [line] = _error_lines(capsys)
    assert "figure zero_shot: its inputs (2 file(s)" in line and "are not the results this figure compares" in line


def test_a_cuda_device_on_a_machine_without_one_is_one_line(capsys, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["class-similarity", "--data-dir", str(tmp_path), "--expert-checkpoint", str(tmp_path / "e.pt"),
                 "--out", str(tmp_path / "s.csv"), "--device", "cuda"]) == 2
    [line] = _error_lines(capsys)
    assert "device 'cuda': this machine has 0 visible CUDA device(s)" in line


def test_evaluate_names_a_missing_set_before_anything_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--images", "missing_set.pt"]) == 2
    [line] = _error_lines(capsys)
    assert line == "labelworth evaluate: error: --images missing_set.pt: no such file or folder"
    assert not (tmp_path / "results").exists() and not (tmp_path / ".snakemake").exists()


def test_evaluate_refuses_no_students_before_anything_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "set.pt").touch()
    assert main(["evaluate", "--images", "set.pt", "--students", "0"]) == 2
    [line] = _error_lines(capsys)
    assert line == "labelworth evaluate: error: --students 0: give at least 1"
    assert not (tmp_path / ".snakemake").exists()


@pytest.mark.parametrize("options, message", [
    (["--teacher", "absent.pt"], "--teacher absent.pt: no such file"),
    (["--teacher", "teacher.pt"], "--teacher teacher.pt: give --teacher-arch (the architecture its weights are"),
    (["--teacher", "teacher.pt", "--teacher-arch", "resnet18", "--teacher-epoch", "3", "5"],
     "--teacher teacher.pt: give --teacher-arch"),
])
def test_evaluate_names_a_bad_teacher_before_anything_runs(options, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "set.pt").touch()
    (tmp_path / "teacher.pt").touch()
    assert main(["evaluate", "--images", "set.pt", *options]) == 2
    [line] = _error_lines(capsys)
    assert line.startswith(f"labelworth evaluate: error: {message}")
    assert not (tmp_path / ".snakemake").exists()
