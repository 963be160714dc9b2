import pytest

from labelworth.errors import LabelworthError
from labelworth.specs import (
    DATASETS, checkpoint_name, external_method, external_set, format_arch, format_expert, format_expert_run,
    format_image_set, format_label_spec, format_number, is_seed_folder, loss_bin_set, parse_arch, parse_expert,
    parse_expert_run, parse_image_method, parse_image_set, parse_label_spec,
)

LABEL_SPECS = ["hard", "expert-e0", "expert-e20", "expert-e20-t2", "expert-e7-t0.5", "ensemble5-e20",
               "ensemble2-e3-t1.5", "learned"]
ARCHS = ["convnet-d3", "convnet-d4", "convnet-d3-w32", "convnet-d3-batchnorm", "convnet-d3-w64-nonorm-maxpool",
         "convnet-d2-w8-layernorm", "resnet18", "resnet50", "resnet18-small"]


@pytest.mark.parametrize("text", LABEL_SPECS)
def test_label_spec_round_trips(text):
    spec = parse_label_spec(text)
    assert format_label_spec(spec) == text
    assert parse_label_spec(format_label_spec(spec)) == spec


def test_label_spec_fields():
    spec = parse_label_spec("ensemble5-e20-t2")
    assert (spec.source, spec.ensemble_size, spec.expert_epoch, spec.temperature) == ("ensemble", 5, 20, 2.0)
    assert not parse_label_spec("hard").is_soft


@pytest.mark.parametrize("text", ["soft", "expert-20", "expert-e2-t0", "expert-e2-t1", "expert-e02",
                                  "ensemble0-e3", "Hard", "expert-e2-t2.0", ""])
def test_bad_or_non_canonical_label_specs_are_refused(text):
    with pytest.raises(LabelworthError):
        parse_label_spec(text)


@pytest.mark.parametrize("text", ARCHS)
def test_arch_round_trips(text):
    assert format_arch(parse_arch(text)) == text


@pytest.mark.parametrize("text", ["convnet", "convnet-d3-w128", "convnet-d3-instancenorm", "resnet34", "vgg11"])
def test_bad_or_non_canonical_archs_are_refused(text):
    with pytest.raises(LabelworthError):
        parse_arch(text)


def test_format_number_is_short_and_round_trips():
    for value, text in [(0.01, "0.01"), (2.0, "2"), (5e-4, "0.0005"), (1e-5, "1e-05")]:
        assert format_number(value) == text
        assert float(text) == value


def test_registry_constants_follow_method_md():
    assert DATASETS["fashion_mnist"].mean == (0.2861,) and DATASETS["fashion_mnist"].std == (0.3530,)
    assert DATASETS["cifar100"].mean == DATASETS["cifar10"].mean  # the paper's quirk, kept on purpose
    assert "flip" not in DATASETS["mnist"].dsa_strategy
    assert DATASETS["tinyimagenet"].image_size == 64 and DATASETS["tinyimagenet"].num_classes == 200


@pytest.mark.parametrize("text", ["noise0.9", "noise1", "expert-e4-swap1", "expert-e4-top2", "expert-e4-top2r",
                                  "expert-e4-shuffle", "expert-e4-zeroclass6", "expert-e4-smooth",
                                  "expert-e4-boost0.3a0.05", "ensemble3-e4-t2-swap2-top4", "learned-swap1",
                                  "learned-top2r-shuffle", "expert-e4-fp16", "expert-e4-int8", "expert-e4-top2-int8",
                                  "learned-top3r-fp16", "expert-resnet18-filee3b0c44298-e90-int8"])
def test_transform_chains_round_trip(text):
    assert format_label_spec(parse_label_spec(text)) == text


def test_transform_fields():
    spec = parse_label_spec("expert-e4-t2-top3r-boost0.1a0.05")
    assert [(t.kind, t.value, t.renormalise) for t in spec.transforms] == [("top", 3, True), ("boost", 0.1, False)]
    assert spec.transforms[1].alpha == 0.05 and spec.temperature == 2.0


@pytest.mark.parametrize("text", ["hard-swap1", "noise0", "noise1.5", "expert-e4-swap1r", "expert-e4-flip",
                                  "noise0.9-swap1", "expert-e4-boost0.3", "learned-t2", "learned-e4", "learned-flip",
                                  "expert-e4-int8-top2", "expert-e4-fp16-int8", "hard-int8", "expert-e4-int4"])
def test_bad_transform_chains_are_refused(text):
    with pytest.raises(LabelworthError):
        parse_label_spec(text)


@pytest.mark.parametrize("text", ["random-ipc1", "random-ipc50", "random-ipc10-without3", "lossbin0-ipc10", "dm-ipc1",
                                  "mtt-ipc10-without2", "bptt-ipc1", "sre2l-ipc50", "external-mine-ipc1",
                                  "lossbin9-ipc2-without0"])
def test_image_sets_round_trip(text):
    assert format_image_set(parse_image_set(text)) == text


def test_image_set_base_drops_the_subset():
    assert parse_image_set("random-ipc10-without3").base == parse_image_set("random-ipc10")
    with pytest.raises(LabelworthError):
        parse_image_set("random-ipc0")


def test_image_sets_carry_their_parsed_loss_bin_and_external_name():
    binned, external = parse_image_set("lossbin7-ipc5-without2"), parse_image_set("external-my_set-ipc10")
    assert (binned.kind, binned.loss_bin, binned.method, binned.is_real) == ("lossbin", 7, "lossbin7", True)
    assert (external.kind, external.external_name, external.method, external.is_real) == \
        ("external", "my_set", "external-my_set", False)
    assert loss_bin_set(7, 5) == "lossbin7-ipc5" and external_set("my_set", 10) == "external-my_set-ipc10"
    assert external_method("my_set") == "external-my_set"
    assert parse_image_method("lossbin3").loss_bin == 3 and parse_image_method("dm").kind == "dm"
    with pytest.raises(LabelworthError):
        parse_image_set("external-My-Set-ipc1")  # a name has no '-': `-ipc` must end it


def test_experts_seed_folders_and_checkpoints_are_named_once():
    assert format_expert("convnet-d3-lr0.01", 2) == "convnet-d3-lr0.01/seed2"
    assert parse_expert("convnet-d3-lr0.01/seed2") == ("convnet-d3-lr0.01", 2)
    assert is_seed_folder("seed12") and not is_seed_folder("seeds") and not is_seed_folder("checkpoints")
    assert checkpoint_name(7) == "epoch_007.pt"
    assert parse_expert_run("resnet18-small-lr0.1") == ("resnet18-small", 0.1)
    assert format_expert_run(*parse_expert_run("convnet-d3-w32-lr1e-05")) == "convnet-d3-w32-lr1e-05"
    for text in ("convnet-d3", "convnet-d3-lr0.010", "vgg-lr0.1"):
        with pytest.raises(LabelworthError):
            parse_expert_run(text)
