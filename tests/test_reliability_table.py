"""docs/reliability.md's table of bad inputs and the one line each gives, made by running every case.

Each case feeds one bad input to the code a user meets (the config checks the workflow runs at DAG
build, or a `labelworth` stage) and records the line it prints. The test fails when a case gives
more than one line, a traceback, or a line the page does not show; with LABELWORTH_WRITE_TABLE=1
it writes the table into docs/reliability.md between its markers instead."""

from __future__ import annotations

import os

import pytest
import torch
import yaml

from conftest import ROOT, flip_tensor_byte
from labelworth import io
from labelworth.config import read_config_file
from labelworth.cli import main
from labelworth.errors import LabelworthError
from labelworth.plan import load_checked_config

TABLE_PAGE = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- reliability table: tests/test_reliability_table.py -->", "<!-- end of reliability table -->"
STUDENT = "convnet-d3-w32"


def config_line(edit) -> str:
    """The first line `snakemake -n` prints for the default config after `edit`, as the workflow
    prefixes it."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    edit(config)
    try:
        load_checked_config(config)
    except LabelworthError as error:
        lines = str(error).splitlines()
        assert len(lines) == 1, lines
        return f"config error: {lines[0]}"
    raise AssertionError("the config passed")


def file_line(tmp_path, text: str) -> str:
    path = tmp_path / "my.yaml"
    path.write_text(text)
    with pytest.raises(LabelworthError) as raised:
        read_config_file(path)
    return f"config error: {raised.value}".replace(str(tmp_path) + "/", "")


def cli_line(capsys, tmp_path, argv) -> str:
    assert main(argv) in (1, 2)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0].replace(str(tmp_path) + "/", "")


def replace(block, **values):
    return lambda config: block(config).update(values)


CONFIG_CASES = [
    ("a number YAML reads as text (`lr: 1e-2`)", replace(lambda c: c["experts"]["convnet"], lr="1e-2")),
    ("a float for a whole number", replace(lambda c: c["students"][STUDENT], epochs=4.0)),
    ("a misspelt key", lambda c: c["students"][STUDENT].update(epoch=c["students"][STUDENT].pop("epochs"))),
    ("a misspelt run name", replace(lambda c: c["scaling_law"], expert_run="convnett")),
    ("`--config zca=false` (Snakemake reads only True and False as booleans)", lambda c: c.update(zca="false")),
    ("a `--configfile` holding only a few keys", lambda c: [c.pop(key) for key in list(c) if key != "dataset"]),
    ("an unknown architecture", replace(lambda c: c["experts"]["convnet"], arch="vgg11")),
    ("a ConvNet deeper than the images allow", replace(lambda c: c["students"][STUDENT], arch="convnet-d6-w32")),
    ("an expert epoch beyond the run's training", replace(lambda c: c["benchmark"]["soft_labels"][0],
                                                          expert_epoch=[2, 5, 99])),
    ("an analysis epoch beyond the run's training", replace(lambda c: c["soft_label_pictures"], similarity_epoch=26)),
    ("more images per class than a class has", replace(lambda c: c["benchmark"], images_per_class=[1, 10, 7000])),
    ("two equal seeds", replace(lambda c: c["students"][STUDENT], seeds=[0, 0])),
    ("two names of one run that disagree", lambda c: c["experts"].update(
        other={"arch": "convnet-d3-w32", "lr": 1.0e-2, "epochs": 4, "seeds": [0], "batch_size": 128})),
    ("online rows with a protocol of fixed labels", replace(lambda c: c["students"]["online-cutmix"], labels="fixed")),
    ("an external set that is not there", replace(lambda c: c["external_image_sets"]["mtt_export"],
                                                    path="sets/images_best.pt")),
]


def cases(tmp_path, capsys, monkeypatch) -> list[tuple[str, str]]:
    rows = [(case, config_line(edit)) for case, edit in CONFIG_CASES]
    rows.append(("a key given twice in one mapping", file_line(tmp_path, "dataset: fashion_mnist\ndataset: mnist\n")))
    rows.append(("a YAML syntax error (`labelworth check-config`)",
                 file_line(tmp_path, "dataset: fashion_mnist\nexperts:\n  a: {arch: x\n")))
    rows.append(("a missing config file (`labelworth check-config`)",
                 cli_line(capsys, tmp_path, ["check-config", "--configfile", str(tmp_path / "missing.yaml")])))
    from labelworth.plan import read_best_epochs

    table = tmp_path / "expert_epoch_sweep.csv"
    table.write_text("images_per_class,best\n1,2\n")
    with pytest.raises(LabelworthError) as raised:
        read_best_epochs(table)
    rows.append(("a malformed sweep table behind `auto`", f"error: {raised.value}".replace(str(tmp_path) + "/", "")))

    images, labels = tmp_path / "images.pt", tmp_path / "labels.pt"
    io.save_tensors(images, {"images": torch.zeros(10, 1, 28, 28), "labels": torch.arange(10)}, {"image_set": "x"})
    io.save_tensors(labels, {"labels": torch.eye(10)}, {"label_spec": "hard"})
    data = tmp_path / "data"
    student = ["evaluate-students", "--images", str(images), "--labels", str(labels), "--data-dir", str(data),
               "--out", str(tmp_path / "out.json"), "--device", "cpu", "--options", "arch=convnet-d2-w8"]
    rows.append(("a stage run by hand with epochs 0", cli_line(capsys, tmp_path, student + ["epochs=0"])))
    rows.append(("a stage run by hand with two equal seeds", cli_line(capsys, tmp_path, student + ["seeds=0,0"])))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rows.append(("`device: cuda` where no GPU is visible (at job time)",
                 cli_line(capsys, tmp_path, ["class-similarity", "--data-dir", str(data), "--expert-checkpoint",
                                             str(labels), "--out", str(tmp_path / "s.csv"), "--device", "cuda"])))
    flip_tensor_byte(labels)
    rows.append(("a corrupted file", cli_line(capsys, tmp_path, student + ["epochs=1"])))
    rows.append(("`fetch-data` for another dataset", cli_line(capsys, tmp_path, ["fetch-data", "--dataset", "mnist"])))
    from labelworth.specs import dataset_spec

    io.save_tensors(data / "train.pt", {"labels": torch.arange(10)},
                    {"dataset": "fashion_mnist", "class_names": list(dataset_spec("fashion_mnist").class_names)})
    torch.save(torch.zeros(10, 3, 28, 28), tmp_path / "images_best.pt")
    external = ["import-external-set", "--name", "mine", "--data-dir", str(data), "--summary", str(tmp_path / "s.json"),
                "--options", "format=pt"]
    rows.append(("an external set with the wrong channel count",
                 cli_line(capsys, tmp_path, external + [f"path={tmp_path / 'images_best.pt'}"])))
    for name in ("cat", "dog"):
        (tmp_path / "folder" / name).mkdir(parents=True)
    rows.append(("class folders that are not the dataset's classes",
                 cli_line(capsys, tmp_path, external[:-1] + ["format=imagefolder", f"path={tmp_path / 'folder'}"])))
    return rows


def markdown(rows) -> str:
    lines = ["| bad input | the one line the user sees |", "|---|---|"]
    lines += [f"| {case} | `{line.replace('|', '/')}` |" if "`" not in line else f"| {case} | ``{line}`` |"
              for case, line in rows]
    return "\n".join(lines)


def test_every_bad_input_gives_the_one_line_the_docs_show(tmp_path, capsys, monkeypatch):
    rows = cases(tmp_path, capsys, monkeypatch)
    for case, line in rows:
        assert line and "Traceback" not in line, case
    table = markdown(rows)
    text = TABLE_PAGE.read_text()
    assert BEGIN in text and END in text, "docs/reliability.md lacks the table markers"
    before, rest = text.split(BEGIN)
    current, after = rest.split(END)
    if os.environ.get("LABELWORTH_WRITE_TABLE") == "1":
        TABLE_PAGE.write_text(f"{before}{BEGIN}\n{table}\n{END}{after}")
        return
    current = current.strip()
    assert current == table, ("docs/reliability.md's table is not what the cases give; rerun with "
                              "LABELWORTH_WRITE_TABLE=1 to write it")
