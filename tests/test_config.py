"""The config model (named expert runs, named student protocols, per-IPC overrides), its checks, and
the experiment planner, on the default config and variants of it."""

import copy
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from labelworth.config import STUDENT_EXPERIMENTS, load_config
from labelworth.errors import LabelworthError
from labelworth.plan import load_checked_config as check_config
from labelworth.plan import population_groups, population_of, student_runs, trained_epochs, trajectory_epochs

ROOT = Path(__file__).resolve().parents[1]
STUDENT = "convnet-d3-w32"  # the default config's protocol


@pytest.fixture
def default_config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.fixture
def config(default_config):
    """The default config with one student protocol: without its online-label rows and their
    protocols, which tests of their own cover (they run only in the benchmark)."""
    default_config["benchmark"].pop("online_students")
    default_config["methods"]["sre2l"].pop("relabel_student")
    default_config["students"] = {STUDENT: default_config["students"][STUDENT]}
    default_config["defaults"].pop("student")
    return default_config


def pairs(runs):
    """(image set, labels) of (image set, labels, protocol) runs."""
    return [(images, labels) for images, labels, _ in runs]


def test_default_tiny_and_paper_configs_pass(config):
    load_config(config)
    check_config(config)
    for other in ["tests/config.tiny.yaml", "tests/config.distill.yaml"] + sorted(
            f"configs/{path.name}" for path in (ROOT / "configs").glob("*.yaml")):
        check_config(yaml.safe_load((ROOT / other).read_text()))


def test_benchmark_plan_pairs_hard_and_soft_labels_per_ipc(config):
    config["benchmark"].update(methods=["random"], images_per_class=[1, 10],
                               soft_labels=[{"expert_epoch": [2, 7], "temperature": 2.0}])
    assert student_runs(load_config(config), "soft_vs_hard") == [
        ("random-ipc1", "hard", STUDENT), ("random-ipc1", "expert-e2-t2", STUDENT),
        ("random-ipc10", "hard", STUDENT), ("random-ipc10", "expert-e7-t2", STUDENT)]


def test_benchmark_plan_gives_labelling_methods_their_own_labels_and_synthesis_its_ipcs(config):
    config["benchmark"].update(methods=["random", "dm", "bptt"], images_per_class=[1, 10],
                               soft_labels=[{"expert_epoch": [2, 7]}], synthesis_images_per_class=[1])
    assert pairs(student_runs(load_config(config), "soft_vs_hard")) == [
        ("random-ipc1", "hard"), ("random-ipc1", "expert-e2"), ("random-ipc10", "hard"), ("random-ipc10", "expert-e7"),
        ("dm-ipc1", "hard"), ("dm-ipc1", "expert-e2"),
        ("bptt-ipc1", "hard"), ("bptt-ipc1", "learned"), ("bptt-ipc1", "expert-e2")]
    config["benchmark"]["synthesis_images_per_class"] = [5]
    with pytest.raises(LabelworthError, match=r"synthesis_images_per_class: \[5\] not in"):
        check_config(config)


def test_named_expert_runs_per_ipc_cross_named_student_protocols(config):
    """Table 1's shape: per-IPC expert runs of two architectures, evaluated by two protocols. A run
    other than the default is named in the label spec by what it is, {arch}-lr{lr}."""
    config["experts"].update(
        small_lr={"arch": "convnet-d3-w32", "lr": 5.0e-4, "epochs": 30, "seeds": [0]},
        large_lr={"arch": "convnet-d3-w32", "lr": 0.1, "epochs": 30, "seeds": [0]})
    config["defaults"]["student"] = STUDENT
    config["students"]["adamw"] = {"arch": "convnet-d2-w8", "optimizer": "adamw", "lr": 5.0e-3, "epochs": 50,
                                   "seeds": [0], "eval_every": 25,
                                   "by_images_per_class": [{"images_per_class": 1, "lr": 1.0e-3}]}
    config["benchmark"].update(methods=["random"], images_per_class=[1, 10], students=[STUDENT, "adamw"],
                               soft_labels=[{"expert_run": ["small_lr", "large_lr"], "expert_epoch": [12, 30]},
                                            {"expert_run": "convnet", "expert_epoch": [2, 4]}])
    check_config(config)
    runs = student_runs(load_config(config), "soft_vs_hard")
    assert ("random-ipc1", "expert-convnet-d3-w32-lr0.0005-e12", "adamw") in runs
    assert ("random-ipc10", "expert-convnet-d3-w32-lr0.1-e30", STUDENT) in runs
    assert ("random-ipc10", "expert-e4", "adamw") in runs  # the default run needs no token
    assert len(runs) == 2 * 2 * 3  # protocols x IPCs x (hard + two sources)
    assert load_config(config).student("adamw", 1).lr == 1.0e-3 and load_config(config).student("adamw", 10).lr == 5.0e-3
    assert trained_epochs(load_config(config))[("convnet-d3-w32-lr0.1", 0)] == 30
    config["benchmark"]["soft_labels"][0]["expert_run"] = ["small_lr", "large"]
    with pytest.raises(LabelworthError, match="expert run 'large' is not in experts: .did you mean `large_lr`"):
        check_config(config)


def test_several_runs_or_protocols_need_a_named_default_whatever_their_order(config):
    """A YAML mapping's order does not survive every tool (yaml.safe_dump sorts keys), so with several
    runs the default is named, never taken to be the first."""
    del config["defaults"]
    with pytest.raises(LabelworthError, match=r"defaults.expert_run: experts lists 2 \(convnet, bn_teacher\)"):
        check_config(config)
    config["defaults"] = {"expert_run": "convnett"}
    with pytest.raises(LabelworthError, match="'convnett' is not in experts: .did you mean `convnet`"):
        check_config(config)
    config["defaults"] = {"expert_run": "convnet"}
    config["students"]["other"] = dict(config["students"][STUDENT], epochs=10)
    with pytest.raises(LabelworthError, match="defaults.student: students lists 2"):
        check_config(config)
    config["defaults"]["student"] = STUDENT
    reordered = {**config, "experts": dict(reversed(config["experts"].items()))}
    assert student_runs(load_config(reordered), "soft_vs_hard") == student_runs(load_config(config), "soft_vs_hard")


def test_two_names_for_one_run_share_its_experts_and_must_agree(config):
    config["experts"]["copy"] = {"arch": "convnet-d3-w32", "lr": 1.0e-2, "epochs": 30, "seeds": [5, 0]}
    trained = load_config(config).trained_runs["convnet-d3-w32-lr0.01"]
    assert trained.seeds == (0, 1, 2, 5) and trained.epochs == 30  # seeds in increasing order
    assert load_config(config).run_folder("copy") == load_config(config).run_folder("convnet")
    config["experts"]["copy"]["batch_size"] = 128
    with pytest.raises(LabelworthError, match="experts.copy.batch_size: 128, but experts.convnet trains the same run"):
        check_config(config)


def test_other_seeds_train_only_as_far_as_their_ensembles_and_the_buffer_need(config):
    config["ensembles"].update(sizes=[1, 2], expert_epoch=4)
    config["methods"]["mtt"].update(num_experts=1)
    epochs = trained_epochs(load_config(config))
    assert epochs[("convnet-d3-w32-lr0.01", 0)] == 25 and epochs[("convnet-d3-w32-lr0.01", 1)] == 4
    assert ("convnet-d3-w32-lr0.01", 2) not in epochs  # no ensemble of 3 any more
    config["methods"]["mtt"].update(num_experts=3)
    assert trained_epochs(load_config(config))[("convnet-d3-w32-lr0.01", 2)] == trajectory_epochs(load_config(config)) == 6


def test_sre2l_teacher_is_a_named_batch_norm_run(config):
    assert load_config(config).sre2l_teacher == ("convnet-d3-w32-batchnorm-lr0.01", 2)
    config["methods"]["sre2l"].update(teacher_run="convnet")
    with pytest.raises(LabelworthError, match="run 'convnet' .convnet-d3-w32. has no batch norm"):
        check_config(config)
    config["methods"]["sre2l"].update(teacher_run="bn_teacher", teacher_epoch=3)
    with pytest.raises(LabelworthError, match=r"teacher_epoch: 3 is past experts.bn_teacher.epochs \(2\)"):
        check_config(config)


def test_auto_epochs_wait_for_the_sweep_then_take_its_best(config):
    config["benchmark"].update(methods=["random"], images_per_class=[1, 10], soft_labels=[{"expert_epoch": ["auto", 7]}])
    assert load_config(config).uses_auto_epochs()
    assert pairs(student_runs(load_config(config), "soft_vs_hard")) == [("random-ipc1", "hard"), ("random-ipc10", "hard"),
                                                           ("random-ipc10", "expert-e7")]
    assert ("random-ipc1", "expert-e3", STUDENT) in student_runs(load_config(config), "soft_vs_hard", best={1: 3, 10: 5})


def test_experiment_plans_follow_the_paper(config):
    config["label_swap"].update(images_per_class=[1, 10], expert_epoch="auto", ranks=[1, 9])
    config["zero_shot"].update(images_per_class=10, expert_epoch=4, subject_classes=[6], temperature=1.0)
    config["scaling_law"].update(images_per_class=[1, 20], top_k=[2], expert_epoch=4)
    config["image_selection"].update(images_per_class=10, expert_epoch=4, bins=[9])
    config["ensembles"].update(images_per_class=[10], sizes=[1, 3], expert_epoch=4)
    config["generated_labels"].update(images_per_class=[1], true_class_mass=[0.8])
    best = {1: 2, 10: 4, 50: 8}
    swap = pairs(student_runs(load_config(config), "label_swap", best))
    assert ("random-ipc1", "expert-e2-swap1") in swap and ("random-ipc10", "expert-e4-shuffle") in swap
    assert ("random-ipc10", "expert-e4-smooth") in swap and ("random-ipc10", "expert-e4-swap9") in swap
    assert set(pairs(student_runs(load_config(config), "zero_shot", best))) == {
        ("random-ipc10", "expert-e4"), ("random-ipc10-without6", "expert-e4"), ("random-ipc10", "expert-e4-zeroclass6")}
    scaling = pairs(student_runs(load_config(config), "scaling_law", best))
    assert ("random-ipc20", "expert-e4-top2") in scaling and ("random-ipc20", "hard") in scaling
    assert ("lossbin9-ipc10", "hard") in pairs(student_runs(load_config(config), "image_selection", best))
    assert ("random-ipc10", "ensemble3-e4") in pairs(student_runs(load_config(config), "ensembles", best))
    assert ("random-ipc1", "noise0.8") in pairs(student_runs(load_config(config), "generated_labels", best))
    assert trained_epochs(load_config(config))[("convnet-d3-w32-lr0.01", 2)] == 4


def test_an_analysis_block_names_its_run_and_protocol(config):
    config["experts"]["long"] = {"arch": "convnet-d3-w32", "lr": 2.0e-2, "epochs": 40, "seeds": [0]}
    config["students"]["short"] = {"arch": "convnet-d2-w8", "lr": 1.0e-2, "epochs": 10, "seeds": [0], "eval_every": 5}
    config["defaults"]["student"] = STUDENT
    config["scaling_law"].update(expert_run="long", student="short", images_per_class=[1], top_k=[2], expert_epoch=30)
    check_config(config)
    assert set(student_runs(load_config(config), "scaling_law")) == {
        ("random-ipc1", "hard", "short"), ("random-ipc1", "expert-convnet-d3-w32-lr0.02-e30", "short"),
        ("random-ipc1", "expert-convnet-d3-w32-lr0.02-e30-top2", "short")}
    config["label_swap"].update(expert_run="long")  # auto: the sweep's epochs are the default run's
    with pytest.raises(LabelworthError, match="label_swap.expert_epoch is auto for run 'long', but the sweep finds the best epochs of"):
        check_config(config)


def test_scientific_notation_without_dot_is_named(config):
    config = yaml.safe_load((ROOT / "config.yaml").read_text().replace("lr: 1.0e-2", "lr: 1e-2", 1))
    with pytest.raises(LabelworthError, match=r"experts\.convnet\.lr: '1e-2'.*1\.0e-3"):
        load_config(config)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(dataset="svhn"), "dataset: 'svhn' is not one of fashion_mnist, mnist"),
        (lambda c: c["experts"]["convnet"].update(arch="vgg11"), "experts.convnet.arch: unknown architecture"),
        (lambda c: c["benchmark"]["soft_labels"][0].update(expert_epoch=[2, 5, 99]),
         "expert epoch 99, but the run convnet-d3-w32-lr0.01 trains 25 epochs"),
        (lambda c: c["label_swap"].update(ranks=[1, 10]), "swap takes at most 9 with 10 classes"),
        (lambda c: c.update(zca="false"), r"zca: 'false' is text, not true or false \(with --config, write zca=False\)"),
        (lambda c: c.update(zca=1), "zca: 1 is not true or false"),
        (lambda c: c["zero_shot"].update(subject_classes=[10]), "10 is not a class of fashion_mnist"),
        (lambda c: c["expert_epoch_sweep"].update(enabled=False), "needs the expert_epoch_sweep block enabled"),
        (lambda c: c["label_swap"].update(images_per_class=[1, 20]), "does not include 20"),
        (lambda c: c["ensembles"].update(sizes=[1, 4]), "needs 4 experts, but the run convnet-d3-w32-lr0.01 lists 3"),
        (lambda c: c["ensembles"].update(expert_epoch="auto"), "ensembles.expert_epoch: auto is not available"),
        (lambda c: c["benchmark"].update(images_per_class=[1, 10, 7000]), "7000 is more than the smallest"),
        (lambda c: c["benchmark"]["soft_labels"][0].update(expert_epoch=[2, 5]), "give one per IPC"),
        (lambda c: c["students"][STUDENT].update(engine="vectorised", compile=True),
         f"students.{STUDENT}.compile is an option of the sequential"),
        (lambda c: c["students"][STUDENT].update(epochs=4.0), f"students.{STUDENT}.epochs: 4.0 is not a whole number"),
        (lambda c: c["students"][STUDENT].update(by_images_per_class=[{"images_per_class": 10, "lr": 0}]),
         rf"students.{STUDENT} \(by_images_per_class 10\).lr: 0.0 must be above 0"),
        (lambda c: c["students"][STUDENT].update(by_images_per_class=[{"images_per_class": 10, "epoch": 5}]),
         "students.convnet-d3-w32 .by_images_per_class 10.: unknown key `epoch` .did you mean `epochs`.."),
        (lambda c: c["experts"]["convnet"].update(seeds=[0, 0]), "seeds: .0, 0. must be distinct"),
        (lambda c: c["scaling_law"].update(student="resnet"), "student protocol 'resnet' is not in students"),
        (lambda c: c["students"][STUDENT].update(arch="convnet-d6-w32"),
         "students.convnet-d3-w32.arch: convnet-d6-w32 halves the 28-pixel fashion_mnist images 6 times, below one "
         "pixel; use a depth of at most 5"),
        (lambda c: c["soft_label_pictures"].update(similarity_epoch=26),
         "soft_label_pictures.similarity_epoch: label spec 'expert-e26' uses expert epoch 26"),
        (lambda c: c["soft_label_pictures"].update(expert_epochs=[0, 40]),
         "soft_label_pictures.expert_epochs: label spec 'expert-e40' uses expert epoch 40"),
        (lambda c: c["students"]["online-cutmix"].update(labels="fixed"),
         "benchmark.online_students.0.student: protocol online-cutmix has labels: fixed; online rows need"),
        (lambda c: c["benchmark"]["online_students"][0].update(methods=["random", "tesla"]),
         "benchmark.online_students.0.methods: 'tesla' is not one of random, dm, mtt, bptt, sre2l, external"),
        (lambda c: c["benchmark"]["online_students"][0].update(images_per_class=[1, 5]),
         r"benchmark.online_students.0.images_per_class: .5. not in benchmark.images_per_class .1, 10, 50."),
        (lambda c: c["methods"]["sre2l"].update(relabel_student="nope"),
         "methods.sre2l.relabel_student: student protocol 'nope' is not in students"),
        (lambda c: c["benchmark"]["online_students"][0].update(expert_run="convnet"),
         "expert_run names the teacher's run, so give its expert_epoch too"),
        (lambda c: c["external_image_sets"]["mtt_export"].update(path="nowhere/images_best.pt"),
         "external_image_sets.mtt_export.path: nowhere/images_best.pt not found"),
        (lambda c: c["external_image_sets"]["mtt_export"].update(format="imagefolder"),
         "external_image_sets.mtt_export.labels: a separate labels file is read for format pt only"),
        # an empty list means none, never "the default"
        (lambda c: c["benchmark"].update(students=[]), "benchmark.students: give at least one entry"),
        (lambda c: c["benchmark"]["online_students"][0].update(images_per_class=[]),
         "benchmark.online_students.0.images_per_class: give at least one entry"),
        # a method block's own keys are named beside its settings'
        (lambda c: c["methods"]["mtt"].update(expert_rn="convnet"),
         "methods.mtt: unknown key `expert_rn` .did you mean `expert_run`..; allowed: expert_run, num_experts, iterations"),
        (lambda c: c["experts"].update({123: c["experts"]["convnet"]}), "experts: the name 123 is not text"),
        (lambda c: c["defaults"].update(expert_run=["convnet"]), "defaults.expert_run: .'convnet'. is not text"),
        (lambda c: c["zero_shot"].update(subject_classes=3),
         "zero_shot.subject_classes: 3 is not a list of whole numbers or all"),
        (lambda c: c["experts"].update(copy={**c["experts"]["convnet"], "processes": 2}),
         "experts.copy.processes: 2, but experts.convnet trains the same run"),
        (lambda c: c["label_budget"].update(stored=["int8-top2"]),
         "label_budget.stored: 'int8-top2' is not a transform chain .* one of them comes last"),
        (lambda c: c["label_budget"].update(hard_images_per_class=[1, 7000]), "7000 is more than the smallest"),
        (lambda c: c.update(selection="valid"), "selection: 'valid' is not one of test, validation"),
        (lambda c: c.update(selection="validation", validation_images_per_class=6000),
         "validation_images_per_class: 6000 leaves no training image in fashion_mnist's smallest class .6000."),
        (lambda c: c.update(selection="validation", validation_images_per_class=5980),
         r"benchmark.images_per_class: 50 is more than the smallest fashion_mnist class has \(20 training images\)"),
    ],
)
def test_semantic_errors_name_the_key(default_config, change, message):
    bad = copy.deepcopy(default_config)
    change(bad)
    with pytest.raises(LabelworthError, match=message):
        check_config(bad)


def test_method_settings_take_per_ipc_overrides_and_the_buffer_covers_every_ipc(config):
    config["methods"]["mtt"].update(max_start_epoch=4, expert_epochs=2, syn_steps=20, by_images_per_class=[
        {"images_per_class": 10, "max_start_epoch": 8, "syn_steps": 30}])
    assert load_config(config).method("mtt", 10).syn_steps == 30 and load_config(config).method("mtt", 1).syn_steps == 20
    assert load_config(config).method("dm").arch == config["experts"]["convnet"]["arch"]  # the default run's ConvNet
    assert trajectory_epochs(load_config(config)) == 10  # IPC 10's 8 + 2, beyond the block's own 4 + 2
    config["methods"]["mtt"]["by_images_per_class"][0]["sin_steps"] = 5
    with pytest.raises(LabelworthError, match=r"methods.mtt \(by_images_per_class 10\): unknown key `sin_steps` \(did you mean `syn_steps`\?\)"):
        check_config(config)


def test_grouped_populations_train_every_run_once_the_sweep_first(config):
    best = {1: 2, 10: 4, 50: 12}
    groups = population_groups(load_config(config), best)
    grouped = [(image_set, labels, student) for image_sets in groups.values()
               for (image_set, student), label_specs in image_sets.items() for labels in label_specs]
    asked = {run for experiment in STUDENT_EXPERIMENTS if load_config(config).enabled(experiment)
             for run in student_runs(load_config(config), experiment, best)}
    assert len(grouped) == len(set(grouped)) and set(grouped) == asked
    # The benchmark's auto label at IPC 1 is one of the sweep's, so the sweep's group trains it.
    assert list(groups)[0] == "expert_epoch_sweep"
    assert population_of(groups, "random-ipc1", "expert-e2", STUDENT) == "expert_epoch_sweep"
    assert population_of(groups, "dm-ipc1", "hard", STUDENT) == "soft_vs_hard"
    assert groups["label_swap"][("random-ipc1", STUDENT)] == ["expert-e2-shuffle", "expert-e2-smooth"] + [
        f"expert-e2-swap{k}" for k in (1, 3, 9)]
    # Before the sweep has run, its own groups are complete already.
    assert population_groups(load_config(config), None)["expert_epoch_sweep"] == groups["expert_epoch_sweep"]
    with pytest.raises(LabelworthError, match="random-ipc7 on hard are in no experiment's population"):
        population_of(groups, "random-ipc7", "hard", STUDENT)




@pytest.mark.parametrize("change, message", [
    (lambda c: c["benchmark"].update(images_per_class=[1, 10.0, 50]),
     r"^benchmark.images_per_class.1: 10.0 is not a whole number \(write it without a decimal point\)$"),
    (lambda c: c["zero_shot"].update(expert_epoch=2.0), r"^zero_shot.expert_epoch: 2.0 is not a whole number"),
    (lambda c: c["students"][STUDENT].update(epoch=4),
     r"^students.convnet-d3-w32: unknown key `epoch` \(did you mean `epochs`\?\); allowed: arch, optimizer"),
    (lambda c: c.update(benchmak={}), r"^\(top level\): unknown key `benchmak` \(did you mean `benchmark`\?\)"),
    (lambda c: c["label_swap"].update(ranks="1"), r"^label_swap.ranks: '1' is not a list of whole numbers$"),
    (lambda c: [c.pop(key) for key in ("experts", "students")],
     r"^\(top level\): missing experts, students: a --configfile replaces config.yaml whole"),
])
def test_schema_problems_are_one_line_each_naming_the_key(config, change, message):
    change(config)
    with pytest.raises(LabelworthError) as raised:
        load_config(config)
    lines = str(raised.value).splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), lines


def test_a_valid_config_has_no_schema_problem(config):
    load_config(config)


def test_a_malformed_sweep_table_is_named(tmp_path):
    from labelworth.plan import read_best_epochs

    table = tmp_path / "expert_epoch_sweep.csv"
    table.write_text("images_per_class,best_expert_epoch\n1,2\n10,4\n")
    assert read_best_epochs(table) == {1: 2, 10: 4}
    table.write_text("images_per_class,best\n1,2\n")
    with pytest.raises(LabelworthError, match=f"{table}: not the expert-epoch sweep's table .KeyError"):
        read_best_epochs(table)
    table.write_text("images_per_class,best_expert_epoch\n1,two\n")
    with pytest.raises(LabelworthError, match="ValueError"):
        read_best_epochs(table)


@pytest.mark.parametrize("text, message", [
    ("dataset: fashion_mnist\nexperts:\n  a: {arch: x\n", r":4:1: YAML syntax error: expected ',' or '}'"),
    ("dataset: fashion_mnist\ndataset: mnist\n", r":2: the key `dataset` appears twice in one mapping \(first on line 1\)"),
    ("experts:\n  a: {lr: 1}\n  a: {lr: 2}\n", r":3: the key `a` appears twice"),
    ("- a list\n", ": a config is a mapping of keys"),
])
def test_config_files_are_read_strictly_with_the_line_named(tmp_path, text, message):
    from labelworth.config import read_config_file

    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(LabelworthError, match=re.escape(str(path)) + message):
        read_config_file(path)
    with pytest.raises(LabelworthError, match="no such config file"):
        read_config_file(tmp_path / "missing.yaml")


def test_check_config_command_reads_and_checks_a_file(tmp_path, capsys):
    from labelworth.cli import main

    assert main(["check-config", "--configfile", str(ROOT / "config.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "config.yaml").read_text().replace("epochs: 120 ", "epochs: 120.0 "))
    assert main(["check-config", "--configfile", str(bad)]) == 2
    assert "students.convnet-d3-w32.epochs: 120.0 is not a whole number" in capsys.readouterr().err


def test_online_rows_relabel_random_and_sre2l_images_with_each_source_and_sre2l_its_own_teacher(default_config):
    config = default_config
    best = {1: 2, 10: 12, 50: 12}
    online = [run for run in student_runs(load_config(config), "soft_vs_hard", best) if run[2] != STUDENT]
    assert online == [("random-ipc1", "expert-e2", "online-cutmix"), ("random-ipc10", "expert-e12", "online-cutmix"),
                      ("sre2l-ipc1", "expert-e2", "online-cutmix"),
                      ("sre2l-ipc10", "expert-e12", "online-cutmix"),
                      ("sre2l-ipc1", "expert-convnet-d3-w32-batchnorm-lr0.01-e2", "sre2l-relabel"),
                      ("sre2l-ipc10", "expert-convnet-d3-w32-batchnorm-lr0.01-e2", "sre2l-relabel")]
    config["benchmark"]["online_students"][0].update(expert_run="convnet", expert_epoch=[1, 4, 8], temperature=20.0,
                                                     images_per_class=[1, 10, 50])
    assert [labels for images, labels, student in student_runs(load_config(config), "soft_vs_hard", best)
            if student == "online-cutmix"] == ["expert-e1-t20", "expert-e4-t20", "expert-e8-t20", "expert-e1-t20",
                                              "expert-e4-t20"]  # sre2l at its synthesis IPCs only


def test_zero_shot_takes_every_class_at_its_temperature(config):
    runs = pairs(student_runs(load_config(config), "zero_shot"))
    assert runs[0] == ("random-ipc1", "expert-e1-t4")
    assert {images for images, _ in runs} == {"random-ipc1"} | {f"random-ipc1-without{c}" for c in range(10)}
    assert ("random-ipc1", "expert-e1-t4-zeroclass9") in runs and len(runs) == 21


def test_external_sets_enter_the_benchmark_at_the_ipc_counted_from_their_files(config):
    from labelworth.plan import external_runs

    summary = {"images_per_class": 10, "learned_labels": True}
    runs = external_runs(load_config(config), {10: 12}, {"mine": summary})
    assert runs == [("external-mine-ipc10", "hard"), ("external-mine-ipc10", "learned"),
                    ("external-mine-ipc10", "expert-e12")]
    with pytest.raises(LabelworthError, match="external_image_sets.mine: its files hold 7 images per class, but "
                                              r"benchmark.images_per_class lists \[1, 10, 50\]; add 7"):
        external_runs(load_config(config), None, {"mine": {**summary, "images_per_class": 7}})


def test_external_sets_join_label_swap_scaling_law_and_online_rows_where_their_blocks_ask(default_config):
    external = {"mine": {"images_per_class": 1, "learned_labels": False}}
    best = {1: 2, 10: 12, 50: 12}
    swap = pairs(student_runs(load_config(default_config), "label_swap", best, external))
    assert [labels for images, labels in swap if images == "external-mine-ipc1"] == \
        [labels for images, labels in swap if images == "random-ipc1"]
    scaling = pairs(student_runs(load_config(default_config), "scaling_law", best, external))
    assert ("external-mine-ipc1", "expert-e2-top1") in scaling and ("external-mine-ipc1", "hard") in scaling
    online = [run for run in student_runs(load_config(default_config), "soft_vs_hard", best, external) if run[0].startswith("ext")]
    assert ("external-mine-ipc1", "expert-e2", "online-cutmix") in online
    default_config["label_swap"]["external_sets"] = False
    assert not [images for images, _ in pairs(student_runs(load_config(default_config), "label_swap", best, external))
                if images.startswith("external")]


def test_the_model_resolves_what_the_config_leaves_implicit(default_config):
    """Built once: every block names its run and protocol, per-IPC overrides are whole settings, the
    benchmark's per-IPC lists have one entry per IPC, and methods embed with the default run's arch."""
    config = load_config(default_config)
    assert config.pareto.expert_run == "convnet" and config.pareto.student == STUDENT
    assert config.benchmark.students == (STUDENT,)
    assert config.benchmark.soft_labels[0].expert_run == ("convnet",) * 3
    online = config.benchmark.online_students[0]
    assert online.images_per_class == (1, 10) and online.expert_epoch is None
    assert config.student(STUDENT, 10).seeds == (0, 1) and config.student(STUDENT, 1).seeds == (0, 1, 2)
    assert config.method("dm").arch == config.experts["convnet"].arch == "convnet-d3-w32"
    assert config.methods.sre2l.teacher_run == "bn_teacher" and config.methods.sre2l.teacher_epoch == 2
    assert config.mtt_buffer == ("convnet-d3-w32-lr0.01", (0,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.dataset = "mnist"


def test_the_generated_schema_is_the_models(default_config):
    """Every key of every settings class stands in the schema with its type, default and choices,
    and the schema accepts every shipped config and refuses what the model refuses for its shape."""
    import jsonschema

    from labelworth.schema import config_schema
    from labelworth.settings import ExpertSettings, StudentSettings

    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    properties = schema["properties"]
    student = properties["students"]["additionalProperties"]["properties"]
    for field in dataclasses.fields(StudentSettings):
        assert student[field.name]["default"] == (list(field.default) if isinstance(field.default, tuple)
                                                  else field.default), field.name
    assert student["optimizer"]["enum"] == list(StudentSettings.choices["optimizer"])
    assert student["momentum"] == {"type": "number", "minimum": 0, "exclusiveMaximum": 1.0, "default": 0.9,
                                   "description": "SGD's; AdamW has none"}
    trained, brought = properties["experts"]["additionalProperties"]["oneOf"]  # a run you train, or one you bring
    assert set(trained["properties"]) == {field.name for field in dataclasses.fields(ExpertSettings)}
    assert trained["required"] == list(ExpertSettings.required)
    assert set(brought["properties"]) == {"arch", "checkpoint", "epochs", "trusted"}
    assert brought["required"] == ["arch", "checkpoint", "epochs"]
    mtt = properties["methods"]["properties"]["mtt"]["oneOf"][0]  # or null: `mtt:` with nothing under it
    assert set(mtt["properties"]) >= {"syn_steps", "expert_run", "num_experts", "by_images_per_class"}
    for path in ["config.yaml", "tests/config.tiny.yaml", "tests/config.distill.yaml", *sorted(
            f"configs/{config.name}" for config in (ROOT / "configs").glob("*.yaml"))]:
        jsonschema.validate(yaml.safe_load((ROOT / path).read_text()), schema)
    default_config["students"][STUDENT]["epoch"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(default_config, schema)


def test_config_schema_command_prints_the_schema(capsys):
    from labelworth.cli import main

    assert main(["config-schema"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["title"] == "labelworth config" and "benchmark" in printed["required"]


def test_nothing_but_the_config_model_reads_the_raw_config():
    """`config[` and `config.get(` appear in the config model alone (and in the Snakefile's configfile
    line); rules, input functions and stages read the model."""
    readers = [path for path in [ROOT / "Snakefile", *(ROOT / "workflow").rglob("*.py"), *(ROOT / "workflow").rglob(
        "*.smk")] if re.search(r"\bconfig(\[|\.get\()", path.read_text())]
    assert readers == [], readers


def test_each_config_writes_its_own_results_folder(default_config):
    """results/{run}: the shipped configs name different runs; a config without one gets a folder that
    follows its contents (equal configs share it, a changed value moves it), and no config may name a
    run in the derived names' space."""
    from labelworth.layout import Layout

    shipped = [yaml.safe_load((ROOT / path).read_text())["run"]
               for path in ["config.yaml", *sorted(f"configs/{p.name}" for p in (ROOT / "configs").glob("*.yaml"))]]
    assert len(set(shipped)) == len(shipped) and shipped[0] == "fashion_mnist"
    assert Layout.of(load_config(default_config).run).root == "results/fashion_mnist"
    unnamed = copy.deepcopy(default_config)
    del unnamed["run"]
    derived = load_config(unnamed).run
    assert re.fullmatch(r"config-[0-9a-f]{10}", derived) and load_config(copy.deepcopy(unnamed)).run == derived
    unnamed["image_seed"] = 7
    assert load_config(unnamed).run not in (derived, "fashion_mnist")
    default_config["run"] = "config-mine"
    with pytest.raises(LabelworthError, match=r"^run: 'config-mine' starts with 'config-', which names the runs"):
        load_config(default_config)
