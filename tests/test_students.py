import torch

from labelworth.data import load_split
from labelworth.distill.random import select_random
from labelworth.labels import hard_labels
from labelworth.students import evaluate_students


def _population(data_dir, seeds, epochs=6):
    train = load_split(data_dir, "train")
    test = load_split(data_dir, "test")
    chosen = select_random(train.labels, 5, 10, seed=42)
    return evaluate_students(train.images[chosen], hard_labels(train.labels[chosen], 10), test,
                             "convnet-d2-w8", seeds, epochs=epochs, lr=0.01, optimizer="sgd",
                             batch_size=32, eval_every=2)


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
