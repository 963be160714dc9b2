import copy
from pathlib import Path

import pytest
import yaml

from labelworth.config import (STUDENT_EXPERIMENTS, check_config, check_number_strings, enabled, ensemble_expert_epochs,
                               population_groups, population_of, sre2l_teacher, student_runs, uses_auto_epochs)
from labelworth.errors import LabelworthError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_default_and_tiny_configs_pass(config):
    check_number_strings(config)
    check_config(config)
    for other in ("tests/config.tiny.yaml", "configs/fashion_mnist_full.yaml"):
        check_config(yaml.safe_load((ROOT / other).read_text()))


def test_benchmark_plan_pairs_hard_and_soft_labels_per_ipc(config):
    config["benchmark"].update(methods=["random"], images_per_class=[1, 10], expert_epoch=[2, 7], temperature=2.0)
    assert student_runs(config, "soft_vs_hard") == [
        ("random-ipc1", "hard"), ("random-ipc1", "expert-e2-t2"), ("random-ipc10", "hard"), ("random-ipc10", "expert-e7-t2")]


def test_benchmark_plan_gives_labelling_methods_their_own_labels_and_synthesis_its_ipcs(config):
    config["benchmark"].update(methods=["random", "dm", "bptt"], images_per_class=[1, 10], expert_epoch=[2, 7],
                               synthesis_images_per_class=[1], temperature=1.0)
    assert student_runs(config, "soft_vs_hard") == [
        ("random-ipc1", "hard"), ("random-ipc1", "expert-e2"), ("random-ipc10", "hard"), ("random-ipc10", "expert-e7"),
        ("dm-ipc1", "hard"), ("dm-ipc1", "expert-e2"),
        ("bptt-ipc1", "hard"), ("bptt-ipc1", "learned"), ("bptt-ipc1", "expert-e2")]
    config["benchmark"]["synthesis_images_per_class"] = [5]
    with pytest.raises(LabelworthError, match=r"synthesis_images_per_class: \[5\] not in"):
        check_config(config)


def test_sre2l_teacher_defaults_to_the_expert_arch_with_batch_norm_and_refuses_one_without(config):
    config["expert"].update(arch="convnet-d3-w32", epochs=12)
    config.pop("methods")
    assert sre2l_teacher(config) == ("convnet-d3-w32-batchnorm", 12)
    config["expert"]["arch"] = "resnet18-small"
    assert sre2l_teacher(config) == ("resnet18-small", 12)  # ResNets have batch norm already
    config["methods"] = {"sre2l": {"teacher_arch": "convnet-d3-w32", "teacher_epoch": 4}}
    with pytest.raises(LabelworthError, match="has no batch norm"):
        check_config(config)
    config["methods"]["sre2l"].update(teacher_arch="convnet-d3-w32-batchnorm", teacher_epoch=13)
    with pytest.raises(LabelworthError, match="teacher_epoch: 13 is past expert.epochs"):
        check_config(config)


def test_auto_epochs_wait_for_the_sweep_then_take_its_best(config):
    config["benchmark"].update(methods=["random"], images_per_class=[1, 10], expert_epoch=["auto", 7])
    assert uses_auto_epochs(config)
    assert student_runs(config, "soft_vs_hard") == [("random-ipc1", "hard"), ("random-ipc10", "hard"),
                                                    ("random-ipc10", "expert-e7")]
    assert ("random-ipc1", "expert-e3") in student_runs(config, "soft_vs_hard", best_epochs={1: 3, 10: 5})


def test_experiment_plans_follow_the_paper(config):
    config["label_swap"].update(images_per_class=[1, 10], expert_epoch="auto", ranks=[1, 9])
    config["zero_shot"].update(images_per_class=10, expert_epoch=4, subject_classes=[6])
    config["scaling_law"].update(images_per_class=[1, 20], top_k=[2], expert_epoch=4)
    config["image_selection"].update(images_per_class=10, expert_epoch=4, bins=[9])
    config["ensembles"].update(images_per_class=[10], sizes=[1, 3], expert_epoch=4)
    config["generated_labels"].update(images_per_class=[1], true_class_mass=[0.8])
    best = {1: 2, 10: 4, 50: 8}
    swap = student_runs(config, "label_swap", best)
    assert ("random-ipc1", "expert-e2-swap1") in swap and ("random-ipc10", "expert-e4-shuffle") in swap
    assert ("random-ipc10", "expert-e4-smooth") in swap and ("random-ipc10", "expert-e4-swap9") in swap
    assert set(student_runs(config, "zero_shot", best)) == {
        ("random-ipc10", "expert-e4"), ("random-ipc10-without6", "expert-e4"), ("random-ipc10", "expert-e4-zeroclass6")}
    scaling = student_runs(config, "scaling_law", best)
    assert ("random-ipc20", "expert-e4-top2") in scaling and ("random-ipc20", "hard") in scaling
    assert ("lossbin9-ipc10", "hard") in student_runs(config, "image_selection", best)
    assert ("random-ipc10", "ensemble3-e4") in student_runs(config, "ensembles", best)
    assert ("random-ipc1", "noise0.8") in student_runs(config, "generated_labels", best)
    assert ensemble_expert_epochs(config) == 4


def test_scientific_notation_without_dot_is_named(config):
    config = yaml.safe_load((ROOT / "config.yaml").read_text().replace("lr: 1.0e-2", "lr: 1e-2", 1))
    with pytest.raises(LabelworthError, match=r"expert\.lr: '1e-2'.*1\.0e-3"):
        check_number_strings(config)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(dataset="svhn"), "unknown dataset 'svhn'"),
        (lambda c: c["expert"].update(arch="vgg11"), "expert.arch: unknown architecture"),
        (lambda c: c["benchmark"].update(expert_epoch=[2, 5, 99]), "expert epoch 99.*expert.epochs is 12"),
        (lambda c: c["label_swap"].update(ranks=[1, 10]), "swap takes at most 9 with 10 classes"),
        (lambda c: c["zero_shot"].update(subject_classes=[10]), "10 is not a class of fashion_mnist"),
        (lambda c: c["expert_epoch_sweep"].update(enabled=False), "needs the expert_epoch_sweep block enabled"),
        (lambda c: c["label_swap"].update(images_per_class=[1, 20]), "does not include 20"),
        (lambda c: c["ensembles"].update(sizes=[1, 4]), "needs 4 experts, but expert.seeds lists 3"),
        (lambda c: c["benchmark"].update(images_per_class=[1, 10, 7000]), "7000 is more than the smallest"),
        (lambda c: c["benchmark"].update(expert_epoch=[2, 5]), "one epoch per IPC"),
        (lambda c: c["student"].update(engine="vectorised", compile=True), "student.compile is an option of the sequential"),
    ],
)
def test_semantic_errors_name_the_key(config, change, message):
    bad = copy.deepcopy(config)
    change(bad)
    with pytest.raises(LabelworthError, match=message):
        check_config(bad)


def test_method_settings_take_per_ipc_overrides_and_the_buffer_covers_every_ipc(config):
    from labelworth.config import method_settings, trajectory_epochs

    config["methods"]["mtt"].update(max_start_epoch=4, expert_epochs=2, syn_steps=20, by_images_per_class=[
        {"images_per_class": 10, "max_start_epoch": 8, "syn_steps": 30}])
    assert method_settings(config, "mtt", 10).syn_steps == 30 and method_settings(config, "mtt", 1).syn_steps == 20
    assert method_settings(config, "dm").arch == config["expert"]["arch"]  # DM embeds with the experts' ConvNet
    assert trajectory_epochs(config) == 10  # IPC 10's 8 + 2, beyond the block's own 4 + 2
    config["methods"]["mtt"]["by_images_per_class"][0]["sin_steps"] = 5
    with pytest.raises(LabelworthError, match="methods.mtt: unknown key.s. sin_steps; known: iterations"):
        check_config(config)


def test_grouped_populations_train_every_run_once_the_sweep_first(config):
    best = {1: 2, 10: 4, 50: 12}
    groups = population_groups(config, best)
    grouped = [(image_set, labels) for image_sets in groups.values()
               for image_set, label_specs in image_sets.items() for labels in label_specs]
    asked = {run for experiment in STUDENT_EXPERIMENTS if enabled(config, experiment)
             for run in student_runs(config, experiment, best)}
    assert len(grouped) == len(set(grouped)) and set(grouped) == asked
    # The benchmark's auto label at IPC 1 is one of the sweep's, so the sweep's group trains it.
    assert list(groups)[0] == "expert_epoch_sweep"
    assert population_of(groups, "random-ipc1", "expert-e2") == "expert_epoch_sweep"
    assert population_of(groups, "dm-ipc1", "hard") == "soft_vs_hard"
    assert groups["label_swap"]["random-ipc1"] == ["expert-e2-shuffle", "expert-e2-smooth"] + [
        f"expert-e2-swap{k}" for k in (1, 3, 9)]
    # Before the sweep has run, its own groups are complete already.
    assert population_groups(config, None)["expert_epoch_sweep"] == groups["expert_epoch_sweep"]
    with pytest.raises(LabelworthError, match="random-ipc7 on hard are in no experiment's population"):
        population_of(groups, "random-ipc7", "hard")
