"""The vectorised student engine trains the same students as the one-by-one engine
(labelworth.students, labelworth.augment.dsa_augment_population)."""

from __future__ import annotations

import pytest
import torch

from labelworth.augment import dsa_augment, dsa_augment_population
from labelworth.data import load_split
from labelworth.errors import LabelworthError
from labelworth.distill.random import select_random
from labelworth.labels import hard_labels
from labelworth.settings import StudentSettings
from labelworth.students import make_optimizer, train_students

FULL = "color_crop_cutout_flip_scale_rotate"
SEEDS = [0, 1, 2]


def _generators(seeds):
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def _train(data_dir, engine, arch="convnet-d2-w8", optimizer="sgd", epochs=4, seeds=SEEDS, lr=0.01,
           class_indices=False, **options):
    """A population on 5 images per class of the small Fashion-MNIST, batches of 16 (4 steps an epoch,
    the last one short), with one-hot targets or (`class_indices`) int64 ones."""
    train = load_split(data_dir, "train")
    test = load_split(data_dir, "test")
    chosen = select_random(train.labels, 5, 10, seed=42)
    targets = train.labels[chosen] if class_indices else hard_labels(train.labels[chosen], 10)
    settings = StudentSettings(arch=arch, seeds=tuple(seeds), epochs=epochs, lr=lr, optimizer=optimizer, batch_size=16,
                               eval_every=2, engine=engine, **options)
    return train_students(train.images[chosen], targets, test, settings)


def _assert_same_students(first, second, atol):
    assert first.seeds == second.seeds
    for state_a, state_b in zip(first.states, second.states):
        assert list(state_a) == list(state_b)
        for name in state_a:
            torch.testing.assert_close(state_a[name], state_b[name], rtol=0, atol=atol, msg=name)
    for curve_a, curve_b in zip(first.curves, second.curves):
        assert [epoch for epoch, _ in curve_a] == [epoch for epoch, _ in curve_b]
        # 100 test images: rounding may move at most one prediction across a decision boundary
        assert all(abs(a - b) <= 0.0101 for (_, a), (_, b) in zip(curve_a, curve_b))


# --------------------------------------------------------------------------------------------------
# The pieces: augmentation of a population, stacked optimisers, the schedule


def test_population_dsa_equals_one_call_per_member_and_leaves_the_same_generator_states():
    batches = torch.randn(7, 5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    seeds = list(range(7))  # 7 members over 6 ops: some share an op, so grouping is exercised
    for round_ in range(4):
        together_generators = _generators([seed + 10 * round_ for seed in seeds])
        apart_generators = _generators([seed + 10 * round_ for seed in seeds])
        together = dsa_augment_population(batches, FULL, together_generators)
        apart = torch.stack([dsa_augment(batch, FULL, generator)
                             for batch, generator in zip(batches, apart_generators)])
        torch.testing.assert_close(together, apart, rtol=0, atol=1e-6)
        for a, b in zip(together_generators, apart_generators):
            assert torch.equal(a.get_state(), b.get_state())


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_one_optimiser_on_stacked_students_steps_each_as_its_own_would(optimizer):
    """The vectorised engine's optimiser is the protocol's own, on the stacked tensors: every update
    is elementwise, so each student's slice takes exactly the step its own optimiser takes."""
    rng = torch.Generator().manual_seed(0)
    shapes = [(4, 3, 3, 3), (4,), (10, 4)]
    settings = StudentSettings(optimizer=optimizer, lr=0.05, epochs=8)
    students = [[torch.randn(shape, generator=rng) for shape in shapes] for _ in range(3)]
    stacked = [torch.stack([student[i] for student in students]).requires_grad_() for i in range(len(shapes))]
    reference = [[torch.nn.Parameter(tensor.clone()) for tensor in student] for student in students]
    own = [make_optimizer(params, settings) for params in reference]
    shared, shared_schedule = make_optimizer(stacked, settings)
    for _ in range(settings.epochs):
        grads = [torch.randn(tensor.shape, generator=rng) for tensor in stacked]
        for index, (params, (opt, schedule)) in enumerate(zip(reference, own)):
            assert opt.param_groups[0]["lr"] == shared.param_groups[0]["lr"]
            for param, grad in zip(params, grads):
                param.grad = grad[index].clone()
            opt.step()
            schedule.step()
        for tensor, grad in zip(stacked, grads):
            tensor.grad = grad
        shared.step()
        shared_schedule.step()
    for index, params in enumerate(reference):
        for param, tensor in zip(params, stacked):
            assert torch.equal(tensor[index].detach(), param.detach())


def test_the_protocols_momentum_reaches_both_engines(fashion_mnist_data):
    """momentum: both engines build their optimiser with make_optimizer."""
    sequential = _train(fashion_mnist_data, "sequential", epochs=2, momentum=0.5)
    vectorised = _train(fashion_mnist_data, "vectorised", epochs=2, momentum=0.5)
    _assert_same_students(sequential, vectorised, atol=1e-4)
    default = _train(fashion_mnist_data, "sequential", epochs=2)
    assert not torch.equal(default.states[0]["classifier.weight"], sequential.states[0]["classifier.weight"])


def test_step_schedule_multiplies_by_0_3_each_quarter():
    opt, schedule = make_optimizer([torch.nn.Parameter(torch.zeros(1))], StudentSettings(optimizer="sgd", lr=0.01,
                                                                                         epochs=8))
    rates = []
    for _ in range(8):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["weight_decay"] == 5e-4
    assert rates == pytest.approx([0.01, 0.01, 0.003, 0.003, 0.0009, 0.0009, 0.00027, 0.00027])


# --------------------------------------------------------------------------------------------------
# Whole populations


@pytest.mark.parametrize("arch,optimizer", [("convnet-d2-w8", "sgd"), ("convnet-d2-w8-nonorm", "adamw")])
def test_vectorised_and_sequential_engines_train_the_same_students(fashion_mnist_data, arch, optimizer):
    # AdamW on a normalised ConvNet is left out on purpose: a conv bias followed by instance norm has a
    # zero gradient up to rounding, which Adam's g / sqrt(v) turns into full-size steps in random
    # directions, so those (function-irrelevant) biases differ between any two summation orders.
    sequential = _train(fashion_mnist_data, "sequential", arch, optimizer)
    vectorised = _train(fashion_mnist_data, "vectorised", arch, optimizer)
    _assert_same_students(sequential, vectorised, atol=1e-5)
    torch.testing.assert_close(sequential.final_logits, vectorised.final_logits, rtol=0, atol=1e-4)


def test_engines_agree_on_class_index_targets(fashion_mnist_data):
    sequential = _train(fashion_mnist_data, "sequential", epochs=2, class_indices=True)
    vectorised = _train(fashion_mnist_data, "vectorised", epochs=2, class_indices=True)
    _assert_same_students(sequential, vectorised, atol=1e-5)


def test_vectorised_engine_repeats_bitwise_on_cpu(fashion_mnist_data):
    first = _train(fashion_mnist_data, "vectorised")
    second = _train(fashion_mnist_data, "vectorised")
    _assert_same_students(first, second, atol=0)
    assert first.curves == second.curves and torch.equal(first.final_logits, second.final_logits)


def test_a_student_does_not_depend_on_the_rest_of_its_population(fashion_mnist_data):
    alone = _train(fashion_mnist_data, "vectorised", seeds=[1])
    together = _train(fashion_mnist_data, "vectorised", seeds=[0, 1, 2])
    for name, value in alone.states[0].items():
        torch.testing.assert_close(together.states[1][name], value, rtol=0, atol=1e-5)


def test_batchnorm_networks_fall_back_to_the_sequential_engine(fashion_mnist_data):
    sequential = _train(fashion_mnist_data, "sequential", "convnet-d2-w8-batchnorm", epochs=2, seeds=[0, 1])
    vectorised = _train(fashion_mnist_data, "vectorised", "convnet-d2-w8-batchnorm", epochs=2, seeds=[0, 1])
    _assert_same_students(sequential, vectorised, atol=0)
    assert "features.1.running_mean" in vectorised.states[0]


@pytest.mark.parametrize("engine", ["sequential", "vectorised"])
def test_diverging_student_stops_with_its_seed_epoch_and_batch(fashion_mnist_data, engine):
    with pytest.raises(FloatingPointError, match=r"^student seed 0, epoch \d+, batch \d of 4: training loss became"):
        _train(fashion_mnist_data, engine, lr=1e12)


def test_nesterov_reaches_both_engines_and_needs_sgd_momentum(fashion_mnist_data):
    """A protocol setting added to make_optimizer alone trains the same students on both engines."""
    sequential = _train(fashion_mnist_data, "sequential", epochs=2, nesterov=True)
    vectorised = _train(fashion_mnist_data, "vectorised", epochs=2, nesterov=True)
    _assert_same_students(sequential, vectorised, atol=1e-4)
    plain = _train(fashion_mnist_data, "sequential", epochs=2)
    assert not torch.equal(plain.states[0]["classifier.weight"], sequential.states[0]["classifier.weight"])
    with pytest.raises(LabelworthError, match="nesterov: Nesterov momentum is SGD's and needs a momentum above 0"):
        StudentSettings(nesterov=True, momentum=0.0)
