import pytest
import torch

from labelworth.data import load_split
from labelworth.distill.random import select_random
from labelworth.errors import LabelworthError
from labelworth.labels import hard_labels
from labelworth.settings import STUDENT_ENGINES as ENGINES
from labelworth.settings import StudentSettings, to_options
from labelworth.students import evaluate_students, population_result, train_students


def _population(data_dir, seeds, epochs=6, arch="convnet-d2-w8", eval_every=2, **options):
    train = load_split(data_dir, "train")
    test = load_split(data_dir, "test")
    chosen = select_random(train.labels, 5, 10, seed=42)
    settings = StudentSettings(arch=arch, seeds=tuple(seeds), epochs=epochs, lr=0.01, optimizer="sgd", batch_size=32,
                               eval_every=eval_every, **options)
    return evaluate_students(train.images[chosen], hard_labels(train.labels[chosen], 10), test, settings)


def test_population_records_every_seed_and_summarises(fashion_mnist_data):
    result = _population(fashion_mnist_data, seeds=[0, 1])
    assert [student["seed"] for student in result["students"]] == [0, 1]
    for student in result["students"]:
        assert [epoch for epoch, _ in student["curve"]] == [2, 4, 6]
        assert student["final_accuracy"] == student["curve"][-1][1]
        assert student["best_accuracy"] == max(acc for _, acc in student["curve"])
        assert len(student["per_class_final_accuracy"]) == 10
    finals = [student["final_accuracy"] for student in result["students"]]
    assert abs(result["final_accuracy"]["mean"] - sum(finals) / 2) < 1e-12
    assert abs(result["final_accuracy"]["std"] - abs(finals[0] - finals[1]) / 2) < 1e-12  # population std


def test_students_learn_the_easy_dataset(fashion_mnist_data):
    assert _population(fashion_mnist_data, seeds=[0], epochs=30)["best_accuracy"]["mean"] > 0.5


def test_a_seed_repeats_exactly_on_cpu(fashion_mnist_data):
    first = _population(fashion_mnist_data, seeds=[4])["students"][0]
    second = _population(fashion_mnist_data, seeds=[4])["students"][0]
    assert first["curve"] == second["curve"]


def _same_curve(first, second) -> bool:
    """Same epochs, accuracies within one of the 100 test images (float rounding may move a prediction)."""
    return [epoch for epoch, _ in first] == [epoch for epoch, _ in second] and all(
        abs(a - b) <= 0.0101 for (_, a), (_, b) in zip(first, second))


@pytest.mark.parametrize("engine", ENGINES)
def test_test_passes_never_change_training(fashion_mnist_data, engine):
    """A pass after every epoch or only after the last: bitwise the same final accuracies (the
    default config tests once, at the end)."""
    every_epoch, at_the_end = (_population(fashion_mnist_data, seeds=[0, 1], epochs=4, engine=engine, eval_every=n)
                               for n in (1, 4))
    assert [len(student["curve"]) for student in at_the_end["students"]] == [1, 1]
    for often, once in zip(every_epoch["students"], at_the_end["students"]):
        assert often["final_accuracy"] == once["final_accuracy"] == once["best_accuracy"]
        assert often["per_class_final_accuracy"] == once["per_class_final_accuracy"]


def test_default_options_repeat_bitwise_on_cpu(fashion_mnist_data):
    assert _population(fashion_mnist_data, seeds=[0, 3]) == _population(fashion_mnist_data, seeds=[0, 3])


def test_both_engines_write_the_same_result_format(fashion_mnist_data):
    results = [_population(fashion_mnist_data, seeds=[0, 1], epochs=2, engine=engine) for engine in ENGINES]
    for result in results:
        assert set(result) == {"students", "final_accuracy", "best_accuracy"}
        for student in result["students"]:
            assert set(student) == {"seed", "final_accuracy", "best_accuracy", "best_epoch",
                                    "per_class_final_accuracy", "curve"}


@pytest.mark.parametrize("engine", ENGINES)
def test_per_student_targets_train_each_label_set_as_if_alone(fashion_mnist_data, engine):
    train = load_split(fashion_mnist_data, "train")
    test = load_split(fashion_mnist_data, "test")
    images = train.images[select_random(train.labels, 5, 10, seed=42)]
    label_sets = torch.softmax(torch.randn(2, len(images), 10, generator=torch.Generator().manual_seed(0)), -1)
    settings = StudentSettings(arch="convnet-d2-w8", epochs=2, lr=0.01, optimizer="sgd", batch_size=16, eval_every=1,
                               engine=engine, seeds=(5, 6))
    # Two label sets x two seeds in one population, as a grouped job would train them.
    grouped = train_students(images, label_sets.repeat_interleave(2, dim=0), test, settings, seeds=[5, 6, 5, 6])
    for index in range(2):
        alone = evaluate_students(images, label_sets[index], test, settings)
        split = population_result(grouped, test, range(2 * index, 2 * index + 2))
        assert set(split) == set(alone)
        for ours, theirs in zip(split["students"], alone["students"]):
            assert ours["seed"] == theirs["seed"] and _same_curve(ours["curve"], theirs["curve"])
    with pytest.raises(LabelworthError, match="do not fit"):
        evaluate_students(images, label_sets, test, StudentSettings(**{**vars(settings), "seeds": (5, 6, 7)}))


@pytest.mark.parametrize("change, message", [
    (dict(engine="gpu"), "engine: 'gpu' is not one of sequential, vectorised"),
    (dict(epochs=0), "epochs: 0 must be at least 1"),
    (dict(eval_every=2.0), "eval_every: 2.0 is not a whole number"),
    (dict(lr=-1.0), "lr: -1.0 must be above 0"),
    (dict(seeds=(0, 0)), r"seeds: \[0, 0\] must be distinct"),
    (dict(batch_size=0), "batch_size: 0 must be at least 1"),
    (dict(arch="vgg11"), "arch: unknown architecture 'vgg11'"),
])
def test_bad_student_settings_are_one_line_errors_naming_the_key(change, message):
    with pytest.raises(LabelworthError, match=message):
        StudentSettings(**change)


def test_settings_travel_as_options_and_back_exactly():
    from labelworth.settings import from_options

    settings = StudentSettings(arch="resnet18", optimizer="adamw", lr=1e-3 / 3, seeds=(4, 2), bf16=True)
    assert from_options(StudentSettings, to_options(settings)) == settings
    with pytest.raises(LabelworthError, match="--options epochs: 0 must be at least 1"):
        from_options(StudentSettings, ["epochs=0"])
    with pytest.raises(LabelworthError, match="option 'epoch=3': expected key=value with key one of arch"):
        from_options(StudentSettings, ["epoch=3"])


@pytest.mark.parametrize("engine", ENGINES)
def test_channels_last_changes_the_layout_not_the_students(fashion_mnist_data, engine):
    plain = _population(fashion_mnist_data, seeds=[0, 1], epochs=2, engine=engine)
    channels_last = _population(fashion_mnist_data, seeds=[0, 1], epochs=2, engine=engine, channels_last=True)
    for a, b in zip(plain["students"], channels_last["students"]):
        assert _same_curve(a["curve"], b["curve"])


def test_bf16_forward_still_learns_with_either_engine(fashion_mnist_data):
    results = [_population(fashion_mnist_data, seeds=[0], epochs=10, engine=engine, bf16=True) for engine in ENGINES]
    for result in results:
        assert result["best_accuracy"]["mean"] > 0.5
    # Autocast (sequential) and casts by hand (vectorised) differ only in bfloat16 rounding.
    assert abs(results[0]["best_accuracy"]["mean"] - results[1]["best_accuracy"]["mean"]) < 0.1


def test_bf16_works_with_batch_norm(fashion_mnist_data):
    result = _population(fashion_mnist_data, seeds=[0], epochs=2, bf16=True, arch="convnet-d2-w8-batchnorm")
    assert all(0 <= accuracy <= 1 for _, accuracy in result["students"][0]["curve"])


def test_one_job_for_several_label_files_writes_what_separate_jobs_would(fashion_mnist_data, tmp_path):
    """evaluate-students with several label files (student.populations: per_image_set) trains them as
    one population; population-member takes out each file's result, equal to the file's own job."""
    from labelworth import io
    from labelworth.populations import population_member
    from labelworth.students import run_evaluate_students

    train = load_split(fashion_mnist_data, "train")
    chosen = select_random(train.labels, 2, 10, seed=42)
    io.save_tensors(tmp_path / "images.pt", {"images": train.images[chosen], "labels": train.labels[chosen]},
                    {"image_set": "random-ipc2", "method": "random", "images_per_class": 2})
    soft = torch.softmax(3 * torch.randn(len(chosen), 10, generator=torch.Generator().manual_seed(1)), -1)
    label_files = {"hard": hard_labels(train.labels[chosen], 10), "expert-e1": soft}
    for spec, labels in label_files.items():
        io.save_tensors(tmp_path / f"{spec}.pt", {"labels": labels}, {"label_spec": spec})
    options = dict(data_dir=fashion_mnist_data, device="cpu", settings=StudentSettings(
        arch="convnet-d2-w8", seeds=(3, 4), epochs=3, lr=0.01, optimizer="sgd", batch_size=8, eval_every=1))
    grouped = run_evaluate_students(tmp_path / "images.pt", [tmp_path / f"{spec}.pt" for spec in label_files],
                                    out_path=tmp_path / "population.json", **options)
    assert [result["meta"]["label_spec"] for result in grouped["label_sets"]] == list(label_files)
    for spec in reversed(list(label_files)):  # the order in the file, not the order asked, finds a set
        alone = run_evaluate_students(tmp_path / "images.pt", [tmp_path / f"{spec}.pt"],
                                      out_path=tmp_path / f"alone-{spec}.json", **options)
        member = population_member(tmp_path / "population.json", spec, tmp_path / f"member-{spec}.json")
        assert io.read_json(tmp_path / f"member-{spec}.json") == member
        assert member["meta"] == alone["meta"]
        assert [s["curve"] for s in member["students"]] == [s["curve"] for s in alone["students"]]
    hard, soft_result = grouped["label_sets"]
    assert [s["curve"] for s in hard["students"]] != [s["curve"] for s in soft_result["students"]]
    with pytest.raises(LabelworthError, match="holds no students trained on expert-e9"):
        population_member(tmp_path / "population.json", "expert-e9", tmp_path / "none.json")


def test_compiled_students_train_like_eager_ones(fashion_mnist_data):
    """torch.compile changes how a step runs, not what it computes: the same students to within float
    rounding (a compile takes ~15 s here, hence one seed and two epochs)."""
    eager = _population(fashion_mnist_data, [2], epochs=2)
    compiled = _population(fashion_mnist_data, [2], epochs=2, compile=True)
    assert _same_curve(compiled["students"][0]["curve"], eager["students"][0]["curve"])
    with pytest.raises(LabelworthError, match="option of the sequential engine"):
        _population(fashion_mnist_data, [2], epochs=1, engine="vectorised", compile=True)


def test_a_clean_pass_gives_bitwise_the_same_logits_in_any_chunk_size():
    from labelworth.models import build_model
    from labelworth.specs import dataset_spec
    from labelworth.training import predict_batch, predict_logits

    torch.manual_seed(0)
    model = build_model("convnet-d3-w32", dataset_spec("fashion_mnist"))
    images = torch.randn(130, 1, 28, 28)
    whole = predict_logits(model, images, batch_size=130)
    assert predict_batch(images.device) < 130
    assert torch.equal(predict_logits(model, images), whole)
    # not tiny chunks: on some CPUs (an Intel Xeon here) oneDNN convolves batches of 32 images or
    # fewer another way, whose bits differ
    assert torch.equal(predict_logits(model, images, batch_size=65), whole)


def test_students_are_also_tested_on_a_held_out_validation_split(fashion_mnist_raw, tmp_path):
    """selection: validation: a data folder with validation.pt gives every student its final accuracy
    there, from its final weights; the students themselves are the same without it."""
    from labelworth import io
    from labelworth.data import prepare_data
    from labelworth.students import run_evaluate_students

    prepare_data("fashion_mnist", fashion_mnist_raw, tmp_path / "data", validation_per_class=5, validation_seed=42)
    train = load_split(tmp_path / "data", "train")
    chosen = select_random(train.labels, 1, 10, seed=42)
    io.save_tensors(tmp_path / "images.pt", {"images": train.images[chosen], "labels": train.labels[chosen]},
                    {"image_set": "random-ipc1", "method": "random", "images_per_class": 1})
    io.save_tensors(tmp_path / "hard.pt", {"labels": hard_labels(train.labels[chosen], 10)}, {"label_spec": "hard"})
    result = run_evaluate_students(tmp_path / "images.pt", [tmp_path / "hard.pt"], tmp_path / "data",
                                   tmp_path / "result.json", StudentSettings(
                                       arch="convnet-d2-w8", seeds=(0, 1), epochs=3, lr=0.01, batch_size=8,
                                       eval_every=3), device="cpu")
    values = [student["final_validation_accuracy"] for student in result["students"]]
    assert all(0 <= value <= 1 and round(value * 50) / 50 == pytest.approx(value) for value in values)  # 50 images
    assert result["final_validation_accuracy"]["mean"] == pytest.approx(sum(values) / 2)
    (tmp_path / "data" / "validation.pt").unlink()  # without the split: the same students, no validation key
    plain = run_evaluate_students(tmp_path / "images.pt", [tmp_path / "hard.pt"], tmp_path / "data",
                                  tmp_path / "again.json", StudentSettings(
                                      arch="convnet-d2-w8", seeds=(0, 1), epochs=3, lr=0.01, batch_size=8,
                                      eval_every=3), device="cpu")
    assert [s["final_accuracy"] for s in plain["students"]] == [s["final_accuracy"] for s in result["students"]]
    assert "final_validation_accuracy" not in plain and "final_validation_accuracy" not in plain["students"][0]
