"""Experts you bring: a trained network's file (state_dict, TorchScript, a pickled module only when
trusted) read into the workflow's architecture, refused in one line when it does not fit, and
labelling like a trained expert at its one epoch, fixed and online."""

from __future__ import annotations

import csv
import warnings

import pytest
import torch
import yaml

from conftest import TINY, planned_jobs, snakemake
from labelworth import io
from labelworth.brought_experts import fit_weights, import_expert, is_torchscript, read_weights
from labelworth.config import load_config
from labelworth.errors import LabelworthError
from labelworth.experts import expert_run_of, load_expert
from labelworth.models import build_model
from labelworth.plan import WorkflowPlan, check_plan
from labelworth.settings import BroughtExpertSettings
from labelworth.specs import checkpoint_name, dataset_spec, format_brought_run, parse_expert_run, parse_label_spec

FASHION = dataset_spec("fashion_mnist")
IMAGENET = dataset_spec("imagenet")


def convnet(arch: str = "convnet-d2-w8", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(arch, FASHION).eval()


def same_function(first: torch.nn.Module, second: torch.nn.Module, spec=FASHION) -> bool:
    images = torch.randn(4, spec.channels, spec.image_size, spec.image_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return torch.equal(first.eval()(images), second.eval()(images))


def test_every_weights_layout_reads_as_the_networks_own_state_dict(tmp_path):
    source = convnet()
    layouts = {
        "state_dict.pt": source.state_dict(),
        "under_model.pt": {"model": source.state_dict(), "epoch": 3},  # torchvision's reference scripts
        "ddp.pt": {"state_dict": {f"module.{key}": value for key, value in source.state_dict().items()}},
        "compiled.pt": {f"_orig_mod.{key}": value for key, value in source.state_dict().items()},
    }
    for name, content in layouts.items():
        torch.save(content, tmp_path / name)
        weights = read_weights(tmp_path / name)
        assert weights.keys() == source.state_dict().keys(), name
        assert all(torch.equal(weights[key], value) for key, value in source.state_dict().items()), name


def test_torchvision_resnets_load_from_a_state_dict_and_from_torchscript(tmp_path):
    import torchvision

    for depth, constructor in ((18, torchvision.models.resnet18), (50, torchvision.models.resnet50)):
        torch.manual_seed(depth)
        theirs = constructor(weights=None, num_classes=1000).eval()  # what torchvision's pretrained files hold
        torch.save(theirs.state_dict(), tmp_path / f"resnet{depth}.pth")
        ours = build_model(f"resnet{depth}", IMAGENET)
        fit_weights(ours, read_weights(tmp_path / f"resnet{depth}.pth"), "resnet.pth", f"resnet{depth}", IMAGENET)
        assert same_function(ours, theirs, IMAGENET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(theirs).save(str(tmp_path / "resnet50.ts"))
    assert is_torchscript(tmp_path / "resnet50.ts") and not is_torchscript(tmp_path / "resnet50.pth")
    ours = build_model("resnet50", IMAGENET)
    fit_weights(ours, read_weights(tmp_path / "resnet50.ts"), "resnet50.ts", "resnet50", IMAGENET)
    assert same_function(ours, theirs, IMAGENET)


def test_a_pickled_module_is_refused_unless_trusted(tmp_path):
    source = convnet()
    torch.save(source, tmp_path / "module.pt")  # the whole module: unpickling it runs code
    with pytest.raises(LabelworthError, match="refused: it holds Python objects") as refused:
        read_weights(tmp_path / "module.pt")
    assert "\n" not in str(refused.value) and "trusted: true" in str(refused.value)
    assert str(tmp_path / "module.pt") in str(refused.value)
    weights = read_weights(tmp_path / "module.pt", trusted=True)
    assert all(torch.equal(weights[key], value) for key, value in source.state_dict().items())


@pytest.mark.parametrize("case", ["classes", "shape", "keys", "not_weights", "not_torch"])
def test_weights_that_do_not_fit_are_one_line(case, tmp_path):
    import torchvision

    path = tmp_path / f"{case}.pt"
    content, message = {
        "classes": (build_model("convnet-d2-w8", dataset_spec("cifar100")).state_dict(), None),
        "shape": (convnet("convnet-d2-w16").state_dict(), None),
        "keys": (torchvision.models.resnet18(num_classes=10).state_dict(), None),
        "not_weights": ({"accuracy": 0.9}, "not a network's weights"),
        "not_torch": (None, "not a file torch.load reads"),
    }[case]
    if content is None:
        path.write_text("hello")
    else:
        torch.save(content, path)
    expected = {"classes": r"it classifies 100 classes \(classifier.weight\), but fashion_mnist has 10",
                "shape": r"features.0.weight has shape \(16, 1, 3, 3\), but convnet-d2-w8 for fashion_mnist needs "
                         r"\(8, 1, 3, 3\)",
                "keys": r"its keys are not those of convnet-d2-w8 \(missing features.0.weight, .* and \d+ more; "
                        r"unexpected conv1.weight"}.get(case, message)
    model = convnet(seed=5)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(LabelworthError, match=expected) as raised:
        fit_weights(model, read_weights(path), path, "convnet-d2-w8", FASHION)
    assert "\n" not in str(raised.value) and str(path) in str(raised.value)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())  # left as it was


def test_an_imported_expert_is_read_back_as_a_trained_one(fashion_mnist_data, tmp_path):
    source = convnet(seed=3)
    torch.save({"model": source.state_dict()}, tmp_path / "teacher.pth")
    settings = BroughtExpertSettings(arch="convnet-d2-w8", checkpoint=str(tmp_path / "teacher.pth"), epochs=7)
    row = import_expert(fashion_mnist_data, settings, tmp_path / "checkpoints", tmp_path / "metrics.csv", "cpu")
    stored = tmp_path / "checkpoints" / checkpoint_name(7)
    assert [path.name for path in (tmp_path / "checkpoints").iterdir()] == [checkpoint_name(7)]
    assert same_function(load_expert(stored), source)
    digest = io.file_sha256(tmp_path / "teacher.pth")
    assert expert_run_of(stored) == format_brought_run("convnet-d2-w8", digest)
    assert parse_expert_run(expert_run_of(stored)) == ("convnet-d2-w8", None)
    from labelworth.data import load_split

    test = load_split(fashion_mnist_data, "test", "cpu")
    with torch.no_grad():
        expected = (source(test.images).argmax(1) == test.labels).float().mean().item()
    (written,) = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert int(written["epoch"]) == 7 and float(written["test_accuracy"]) == pytest.approx(expected)
    assert row["test_accuracy"] == pytest.approx(expected)


def brought_config(teacher, epochs: int = 5, **brought) -> dict:
    """The tiny config with one run you bring as the default run: random images at IPC 1, hard and
    fixed soft labels at its epoch, and an online row taught by it."""
    base = yaml.safe_load(TINY.read_text())
    keep = ("dataset", "run", "data_root", "device", "image_seed", "students", "defaults")
    config = {key: base[key] for key in keep}
    config["defaults"] = {**config["defaults"], "expert_run": "mine"}
    config["experts"] = {"mine": {"arch": "convnet-d2-w8", "checkpoint": str(teacher), "epochs": epochs, **brought}}
    config["benchmark"] = {"methods": ["random"], "images_per_class": [1], "soft_labels": [{"expert_epoch": [epochs]}],
                           "online_students": [{"student": "online", "methods": ["random"]}]}
    return config


def test_a_brought_run_is_named_by_its_file_and_checked_in_one_line(tmp_path):
    torch.save(convnet().state_dict(), tmp_path / "teacher.pt")
    config = load_config(brought_config(tmp_path / "teacher.pt"))
    folder = config.run_folder("mine")
    assert folder == format_brought_run("convnet-d2-w8", io.file_sha256(tmp_path / "teacher.pt"))
    assert isinstance(config.experts["mine"], BroughtExpertSettings) and folder not in config.trained_runs
    plan = WorkflowPlan(config)
    assert plan.experts() == [] and plan.brought_experts() == [f"{folder}/seed0"]
    assert plan.label_checkpoints("expert-e5")[0].endswith(f"experts/{folder}/seed0/checkpoints/epoch_005.pt")
    assert parse_label_spec(f"expert-{folder}-e5").expert_run == folder
    problems = {
        "missing": (brought_config(tmp_path / "absent.pt"), r"experts.mine.checkpoint: .*absent.pt not found"),
        "epoch": ({**brought_config(tmp_path / "teacher.pt"),
                   "benchmark": {"methods": ["random"], "images_per_class": [1], "soft_labels": [{"expert_epoch": [4]}]}},
                  r"uses expert epoch 4, but the run .* is a checkpoint you bring \(.*teacher.pt\), at epoch 5 only"),
        "unknown_key": (brought_config(tmp_path / "teacher.pt", trusted=True, lr=0.1),
                        r"experts.mine: unknown key `lr`; allowed: arch, checkpoint, epochs, trusted"),
        "mtt": ({**brought_config(tmp_path / "teacher.pt"),
                 "benchmark": {"methods": ["random", "mtt"], "images_per_class": [1],
                               "soft_labels": [{"expert_epoch": [5]}]}},
                r"methods.mtt.expert_run: mine is a checkpoint you bring, one network at one epoch"),
    }
    for case, (raw, message) in problems.items():
        with pytest.raises(LabelworthError, match=message) as raised:
            check_plan(load_config(raw))
        assert "\n" not in str(raised.value), case


@pytest.mark.e2e
def test_a_brought_teacher_labels_fixed_and_online(tmp_path):
    """The workflow imports the file once, labels random images with it at its epoch, and teaches
    an online population with it; no expert trains."""
    from conftest import write_fashion_mnist

    write_fashion_mnist(tmp_path / "raw" / "fashion_mnist", train_per_class=20, test_per_class=10)
    source = convnet(seed=4)
    torch.save(source.state_dict(), tmp_path / "teacher.pt")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(brought_config(tmp_path / "teacher.pt")))
    config = load_config(brought_config(tmp_path / "teacher.pt"))
    folder = config.run_folder("mine")
    results = tmp_path / "results" / "fashion_mnist"
    targets = [f"results/fashion_mnist/students/random-ipc1/{labels}/{protocol}.json"
               for labels, protocol in (("expert-e5", "convnet-d2-w8"), ("expert-e5", "online"))]
    jobs = planned_jobs(snakemake(tmp_path, *targets, config=tmp_path / "config.yaml"))
    assert jobs["import_expert"] == 1 and "train_expert" not in jobs, jobs
    images = io.load_tensors(results / "images" / "random-ipc1" / "images.pt")["images"]
    labels = io.load_tensors(results / "labels" / "random-ipc1" / "expert-e5.pt")
    with torch.no_grad():
        assert torch.allclose(labels["labels"], source(images).softmax(1), atol=1e-6)
    assert labels["meta"]["expert_run"] == folder
    online = io.read_json(results / "students" / "random-ipc1" / "expert-e5" / "online.json")
    assert len(online["students"]) == 2


def test_an_evaluation_with_a_brought_teacher_labels_with_it_and_trains_no_expert(tmp_path):
    """--teacher: the soft labels and the online rows are the brought network's at its epoch; a
    trained teacher trains only to the epochs the labels read, unless the results folder's expert
    went further."""
    from labelworth.evaluate import TEACHER_RUN, evaluation_config
    from labelworth.plan import student_runs, trained_epochs
    from labelworth.settings import ExternalImageSetSettings

    base = yaml.safe_load(TINY.read_text())
    torch.save(convnet().state_dict(), tmp_path / "teacher.pt")
    (tmp_path / "set.pt").touch()
    settings = ExternalImageSetSettings(path=str(tmp_path / "set.pt"), format="pt")
    teacher = {"arch": "convnet-d2-w8", "checkpoint": str(tmp_path / "teacher.pt"), "epochs": 90}
    config = load_config(evaluation_config(base, "set", settings, 1, [], ["soft", "online"], 2, teacher))
    brought = config.run_folder(TEACHER_RUN)
    labels = {(labels, protocol) for _, labels, protocol in
              student_runs(config, "soft_vs_hard", external={"set": {"images_per_class": 1, "learned_labels": False}})}
    assert labels == {("hard", "convnet-d2-w8"), (f"expert-{brought}-e90", "convnet-d2-w8"),
                      (f"expert-{brought}-e90", "online")}
    assert brought not in {run for run, _ in trained_epochs(config)}
    assert WorkflowPlan(config).brought_experts() == [f"{brought}/seed0"]
    # a trained teacher: epoch 1 is all the labels read; a finished expert of 3 epochs stays as it is
    for finished, epochs in (({}, 1), ({"convnet-d2-w8-lr0.01": 3}, 3)):
        raw = evaluation_config(base, "set", settings, 1, [1], ["soft"], 2, finished_epochs=finished)
        assert raw["experts"]["convnet"]["epochs"] == epochs
        assert trained_epochs(load_config(raw))[("convnet-d2-w8-lr0.01", 0)] == epochs


def test_an_imagenet_evaluation_with_a_brought_resnet18_plans_no_synthesis(tmp_path):
    """configs/imagenet.yaml with torchvision's ResNet-18 brought as the teacher: a dry run plans its
    import, the twin's random images, their labels and students; no expert trains, no synthesis."""
    import torchvision

    from conftest import snakemake_command
    from labelworth.evaluate import evaluation_config
    from labelworth.layout import Layout
    from labelworth.plan import student_runs
    from labelworth.settings import ExternalImageSetSettings
    from test_data import write_imagenet

    base = yaml.safe_load((TINY.parent.parent / "configs" / "imagenet.yaml").read_text())
    base["data_root"] = str(write_imagenet(tmp_path / "raw"))
    torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), tmp_path / "resnet18.pth")
    (tmp_path / "my_set").mkdir()
    settings = ExternalImageSetSettings(path=str(tmp_path / "my_set"), format="imagefolder")
    teacher = {"arch": "resnet18", "checkpoint": str(tmp_path / "resnet18.pth"), "epochs": 90}
    derived = evaluation_config(base, "my_set", settings, 10, [], ["soft", "online"], 5, teacher)
    (tmp_path / "evaluation.yaml").write_text(yaml.safe_dump(derived))
    layout = Layout.of("imagenet")
    for path in (layout.data("train"), layout.data("test")):  # prepared, and the set inspected after them
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    summary = {"images_per_class": 10, "images": 10000, "learned_labels": False, "learned_lr": None, "read_as": "pixels"}
    io.write_json(tmp_path / layout.external_summary("my_set"), io.provenance("inspect_external_set", name="my_set",
                                                                              **summary))
    runs = student_runs(load_config(derived), "soft_vs_hard", external={"my_set": summary})
    command, env = snakemake_command(tmp_path, *[layout.student(*run) for run in runs], "--dry-run",
                                     config=tmp_path / "evaluation.yaml")
    import subprocess

    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    jobs = planned_jobs(result)
    # the ResNet-18 read in once; the twin's images; for the set and its twin, hard labels, its soft
    # labels (T 1) and its online labels (T 20, Table 1's relabel), and five populations: hard and soft
    # under the ResNet-18 and ResNet-50 protocols, and the online relabel protocol
    assert jobs == {"import_expert": 1, "distill_images": 1, "external_image_set": 1, "make_labels": 6,
                    "evaluate_students": 10}, jobs


@pytest.mark.e2e
def test_labelworth_evaluate_with_a_brought_teacher_trains_no_expert(tmp_path):
    """From an empty folder: the set and its twin labelled by the file you bring, at its epoch; the
    summary names its labels; no expert trains."""
    import os
    import subprocess
    import sys

    from conftest import write_fashion_mnist
    from labelworth.data import load_split

    write_fashion_mnist(tmp_path / "raw" / "fashion_mnist", train_per_class=20, test_per_class=10)
    source = convnet(seed=6)
    torch.save({"state_dict": source.state_dict()}, tmp_path / "teacher.pt")
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    prepare = subprocess.run([sys.executable, "-m", "labelworth", "prepare-data", "--dataset", "fashion_mnist",
                              "--data-root", "raw/fashion_mnist", "--out-dir", "prepared"], cwd=tmp_path, env=env)
    assert prepare.returncode == 0
    train = load_split(tmp_path / "prepared", "train", "cpu")
    first = [int((train.labels == c).nonzero()[0]) for c in range(10)]
    torch.save(train.images[first].clone(), tmp_path / "my_set.pt")  # normalised, class-major
    result = subprocess.run([sys.executable, "-m", "labelworth", "evaluate", "--images", "my_set.pt", "--configfile",
                             str(TINY), "--regimes", "soft", "--students", "2", "--teacher", "teacher.pt",
                             "--teacher-arch", "convnet-d2-w8", "--teacher-epoch", "9"],
                            cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    digest = io.file_sha256(tmp_path / "teacher.pt")
    label = f"expert-{format_brought_run('convnet-d2-w8', digest)}-e9"
    assert f"expert ({label}, convnet-d2-w8)" in result.stdout
    logs = tmp_path / "logs" / "fashion_mnist"
    assert (logs / "import_expert").is_dir() and not (logs / "train_expert").exists()
    results = tmp_path / "results" / "fashion_mnist"
    labels = io.load_tensors(results / "labels" / "external-my_set-ipc1" / f"{label}.pt")["labels"]
    images = io.load_tensors(results / "images" / "external-my_set-ipc1" / "images.pt")["images"]
    with torch.no_grad():
        assert torch.allclose(labels, source(images).softmax(1), atol=1e-6)
