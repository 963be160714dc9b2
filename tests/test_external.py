"""External image sets (labelworth/external.py): each format reads a labelworth set back bit for bit,
pixels and normalised values are told apart, and every defect of the files is one line naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from labelworth import io
from labelworth.cli import main
from labelworth.config import STUDENT_EXPERIMENTS
from labelworth.distill.random import distill_random
from labelworth.errors import LabelworthError
from labelworth.external import (
    class_order_p_value, export_image_set, input_space, read_as, read_external_set, save_external_set,
)
from labelworth.settings import ExternalImageSetSettings, to_options


@pytest.fixture
def own_set(fashion_mnist_data, tmp_path):
    """A random IPC-2 set of the small Fashion-MNIST, as labelworth writes it."""
    distill_random(fashion_mnist_data, 2, 42, tmp_path / "images.pt", tmp_path / "grid.png")
    return io.load_tensors(tmp_path / "images.pt")


def read(path, data_dir, **settings):
    return read_external_set(ExternalImageSetSettings(path=str(path), **settings), input_space(data_dir))


def test_every_format_reads_a_labelworth_set_back_bit_for_bit(fashion_mnist_data, own_set, tmp_path):
    export_image_set(tmp_path / "images.pt", fashion_mnist_data, "pt", tmp_path / "mtt")
    export_image_set(tmp_path / "images.pt", fashion_mnist_data, "imagefolder", tmp_path / "folder")
    cases = [dict(path=tmp_path / "mtt" / "images_best.pt", format="pt", labels=str(tmp_path / "mtt" / "labels_best.pt")),
             dict(path=tmp_path / "mtt" / "images_best.pt", format="pt"),  # class-major, as MTT orders them
             dict(path=tmp_path / "folder", format="imagefolder"),
             dict(path=tmp_path / "images.pt", format="labelworth")]
    for case in cases:
        external = read(data_dir=fashion_mnist_data, **case)
        assert torch.equal(external.images, own_set["images"]), case
        assert torch.equal(external.classes, own_set["labels"]), case
        assert external.images_per_class == 2 and external.learned_labels is None


def test_a_zca_whitened_set_in_mtt_layout_reads_back_in_the_whitened_space(tmp_path):
    """CIFAR-10 whitened as the paper does (zca: true): MTT saves its images in that space, and they
    read back as they are, bit for bit, passing the integrity gates."""
    from labelworth.data import prepare_data
    from test_data import write_cifar10

    prepare_data("cifar10", write_cifar10(tmp_path / "raw")["folder"].parent, tmp_path / "data", zca=True)
    distill_random(tmp_path / "data", 2, 42, tmp_path / "images.pt", tmp_path / "grid.png")
    own = io.load_tensors(tmp_path / "images.pt")
    export_image_set(tmp_path / "images.pt", tmp_path / "data", "pt", tmp_path / "mtt")
    status, error = inspect(tmp_path / "mtt" / "images_best.pt", tmp_path / "data", tmp_path / "summary.json")
    assert status == 0, error
    external = read(tmp_path / "mtt" / "images_best.pt", tmp_path / "data", format="pt")
    assert external.read_as == "normalised (detected)" and input_space(tmp_path / "data").zca is not None
    assert torch.equal(external.images, own["images"]) and torch.equal(external.classes, own["labels"])


def test_pixels_in_any_range_give_the_normalised_images(fashion_mnist_data, own_set, tmp_path):
    export_image_set(tmp_path / "images.pt", fashion_mnist_data, "imagefolder", tmp_path / "folder")
    pixels = torch.stack([torch.from_numpy(np.array(Image.open(path)))[None]
                          for path in sorted((tmp_path / "folder").rglob("*.png"))])
    for values, expected in ((pixels, "pixels 0-255"), (pixels.float(), "pixels 0-255 (detected)"),
                             (pixels.float() / 255, "pixels 0-1 (detected)")):
        torch.save(values, tmp_path / "pixels.pt")
        external = read(tmp_path / "pixels.pt", fashion_mnist_data, format="pt")
        assert external.read_as == expected
        assert torch.allclose(external.images, own_set["images"], atol=1e-5)
    torch.save(pixels.float() / 255, tmp_path / "pixels.pt")  # told: pixels, not normalised
    assert read(tmp_path / "pixels.pt", fashion_mnist_data, format="pt", normalised="false").read_as == "pixels 0-1"


def test_read_as_calls_negative_values_normalised_and_uint8_pixels():
    assert read_as(torch.tensor([-0.5, 2.0]), "auto") == "normalised (detected)"
    assert read_as(torch.tensor([0.0, 200.0]), "auto") == "pixels 0-255 (detected)"
    assert read_as(torch.tensor([0, 200], dtype=torch.uint8), "auto") == "pixels 0-255"
    with pytest.raises(LabelworthError, match="uint8 images are pixels"):
        read_as(torch.tensor([0], dtype=torch.uint8), "true")


def test_a_dict_with_soft_labels_gives_the_sets_own_labels(fashion_mnist_data, own_set, tmp_path):
    logits = torch.randn(20, 10)
    torch.save({"image_syn": own_set["images"], "label_syn": logits, "syn_lr": torch.tensor(0.01)}, tmp_path / "datm.pt")
    external = read(tmp_path / "datm.pt", fashion_mnist_data, format="pt")
    assert torch.allclose(external.learned_labels, logits.softmax(1))  # logits: softmaxed
    assert external.learned_lr == pytest.approx(0.01)
    torch.save({"images": own_set["images"], "labels": logits.softmax(1)}, tmp_path / "probabilities.pt")
    probabilities = read(tmp_path / "probabilities.pt", fashion_mnist_data, format="pt").learned_labels
    assert torch.allclose(probabilities, logits.softmax(1))  # already distributions: as given
    save_external_set(external, ExternalImageSetSettings(path="datm.pt"), input_space(fashion_mnist_data),
                      "external-datm-ipc2", tmp_path / "out.pt", tmp_path / "out.png")
    saved = io.load_tensors(tmp_path / "out.pt")
    assert saved["meta"]["image_set"] == "external-datm-ipc2" and torch.equal(saved["learned_labels"], external.learned_labels)
    with pytest.raises(LabelworthError, match="holds 2 images per class, but the image set is external-datm-ipc3"):
        save_external_set(external, ExternalImageSetSettings(path="datm.pt"), input_space(fashion_mnist_data),
                          "external-datm-ipc3", tmp_path / "out.pt", tmp_path / "out.png")


def test_datm_and_dd_ranking_files_read_as_their_code_writes_them(fashion_mnist_data, own_set, tmp_path):
    """DATM (distill/DATM.py) saves bare tensors under no_grad: images_best.pt (float32, class-major,
    in the training space), labels_best.pt (learned soft-label logits, N x classes, a leaf that
    required grad) and lr_best.pt (a 0-dim tensor); DD-Ranking's demos load images.pt, labels.pt and
    lr.pt of that layout, and its writers put image folders as {class:05d}/{i:05d}.jpg."""
    logits = torch.randn(20, 10, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    for folder, stem in (("datm", "_best"), ("dd_ranking", "")):
        (tmp_path / folder).mkdir()
        with torch.no_grad():
            torch.save(own_set["images"].clone(), tmp_path / folder / f"images{stem}.pt")
            torch.save(logits.cpu(), tmp_path / folder / f"labels{stem}.pt")
            torch.save(torch.tensor(0.0123), tmp_path / folder / f"lr{stem}.pt")
        external = read(tmp_path / folder / f"images{stem}.pt", fashion_mnist_data, format="pt",
                        labels=str(tmp_path / folder / f"labels{stem}.pt"))
        assert torch.equal(external.images, own_set["images"]) and torch.equal(external.classes, own_set["labels"])
        assert torch.allclose(external.learned_labels, logits.detach().softmax(1)), folder  # logits, softmaxed
        assert external.learned_lr == pytest.approx(0.0123), folder
        assert external.read_as == "normalised (detected)"
    for c in range(10):
        for i in range(2):
            path = tmp_path / "dd_ranking_folder" / f"{c:05d}" / f"{i:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((28, 28), 20 * c + 5, dtype=np.uint8), mode="L").save(path, format="JPEG")
    external = read(tmp_path / "dd_ranking_folder", fashion_mnist_data, format="imagefolder")
    assert external.classes.tolist() == sorted(list(range(10)) * 2) and external.images_per_class == 2
    levels = torch.tensor([20 * c + 5 for c in range(10)], dtype=torch.uint8).repeat_interleave(2)
    expected = input_space(fashion_mnist_data).from_pixels(levels[:, None, None, None].expand(20, 1, 28, 28))
    assert torch.allclose(external.images, expected, atol=0.05)  # a solid JPEG keeps its level to within 2 or so


def _png(path, array, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)


def _folder(root, classes=range(10), per_class=2, size=28, mode="L", name=lambda c: f"{c:03d}"):
    channels = () if mode == "L" else (3,)
    for c in classes:
        for i in range(per_class):
            _png(root / name(c) / f"{i}.png", np.full((size, size, *channels), 10 * c, dtype=np.uint8), mode)
    return root


BAD_PT = {
    "wrong channels": (lambda images: images.expand(-1, 3, -1, -1).clone(), "images have 3 channel\\(s\\), fashion_mnist has 1"),
    "wrong size": (lambda images: images[:, :, :20, :20].clone(), "images are 20x20, fashion_mnist expects 28x28"),
    "NaN": (lambda images: images.index_put_((torch.tensor([3]),), torch.tensor(float("nan"))), "NaN or inf"),
    "uneven count": (lambda images: images[:-1].clone(), "19 images without labels, expected class-major images"),
}


@pytest.mark.parametrize("case", sorted(BAD_PT))
def test_a_bad_pt_set_is_one_line_naming_the_file(case, fashion_mnist_data, own_set, tmp_path, capsys):
    change, message = BAD_PT[case]
    torch.save(change(own_set["images"].clone()), tmp_path / "bad.pt")
    settings = ExternalImageSetSettings(path=str(tmp_path / "bad.pt"), format="pt")
    status = main(["import-external-set", "--name", "bad", "--options", *to_options(settings),
                   "--data-dir", str(fashion_mnist_data), "--summary", str(tmp_path / "bad.json")])
    error = capsys.readouterr().err
    assert status == 2 and error.count("\n") == 1 and str(tmp_path / "bad.pt") in error
    assert __import__("re").search(message, error), error
    assert not (tmp_path / "bad.json").exists()


def test_bad_labels_are_one_line_naming_the_labels_file(fashion_mnist_data, own_set, tmp_path):
    torch.save(own_set["images"], tmp_path / "images.pt")
    for labels, message in ((torch.arange(20) % 12, "labels range 0..11, but the dataset has 10 classes"),
                            (torch.rand(20, 5), "soft labels of shape \\(20, 5\\), expected 20 x 10"),
                            (torch.arange(20) // 4, "class\\(es\\) 5, 6, 7, 8, 9 have no images"),
                            (torch.tensor([0] * 3 + [1] + sorted(list(range(2, 10)) * 2)), "uneven count")):
        torch.save(labels, tmp_path / "labels.pt")
        with pytest.raises(LabelworthError, match=message):
            read(tmp_path / "images.pt", fashion_mnist_data, format="pt", labels=str(tmp_path / "labels.pt"))


def test_bad_image_folders_are_one_line_naming_the_file(fashion_mnist_data, tmp_path):
    cases = {
        "rgb": (lambda root: _folder(root, mode="RGB"), "a RGB image; fashion_mnist has 1 channel\\(s\\)"),
        "size": (lambda root: _folder(root, size=32), "image is 32x32, fashion_mnist expects 28x28"),
        "names": (lambda root: _folder(root, name=lambda c: f"cat{'abcdefghij'[c]}"), "are not classes of fashion_mnist"),
        "missing class": (lambda root: _folder(root, classes=range(9)), "no folder for class\\(es\\) 9 \\(an empty class\\)"),
        "empty class": (lambda root: (_folder(root, classes=range(9)), (root / "009").mkdir()), "009: no image files"),
        "uneven": (lambda root: (_folder(root), _png(root / "003" / "9.png", np.zeros((28, 28), np.uint8), "L")),
                   "uneven count"),
        "unreadable": (lambda root: (_folder(root), (root / "004" / "0.png").write_bytes(b"not a png")),
                       "004/0.png: cannot be read as an image"),
    }
    for case, (make, message) in cases.items():
        root = tmp_path / case
        make(root)
        with pytest.raises(LabelworthError, match=message) as raised:
            read(root, fashion_mnist_data, format="imagefolder")
        assert "\n" not in str(raised.value) and str(root) in str(raised.value), case


def test_class_names_and_prefixed_indices_name_class_folders(fashion_mnist_data, tmp_path):
    names = ("T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    by_name = read(_folder(tmp_path / "names", name=lambda c: names[c]), fashion_mnist_data, format="imagefolder")
    by_index = read(_folder(tmp_path / "sre2l", name=lambda c: f"new{c:03d}"), fashion_mnist_data, format="imagefolder")
    assert torch.equal(by_name.images, by_index.images) and by_name.classes.tolist() == sorted(list(range(10)) * 2)


def write_dc_results(path, experiments, ipc: int) -> None:
    """A results file as DC, DSA and DM save theirs (main.py, main_DM.py): for each experiment, the
    synthetic images normalised by the dataset's mean and std and their int64 class-major labels,
    built from a list of numpy arrays as they build them; the accuracies as lists of numpy floats."""
    data = []
    for images in experiments:
        labels = torch.tensor(np.array([np.ones(ipc) * c for c in range(10)]), dtype=torch.long).view(-1)
        data.append([images.detach().cpu().clone(), labels.clone()])
    accs = {"ConvNet": [np.float64(0.71), np.float64(0.69)]}
    torch.save({"data": data, "accs_all_exps": accs}, path)


def test_a_dc_dsa_dm_results_file_gives_the_experiment_asked(fashion_mnist_data, own_set, tmp_path):
    first, second = own_set["images"], own_set["images"].flip(-1).contiguous()  # normalised, as DM keeps them
    write_dc_results(tmp_path / "res_DM_FashionMNIST_ConvNet_2ipc.pt", [first, second], ipc=2)
    path = tmp_path / "res_DM_FashionMNIST_ConvNet_2ipc.pt"
    default = read(path, fashion_mnist_data, format="pt")
    assert torch.equal(default.images, first) and default.read_as == "normalised (detected)"
    assert torch.equal(default.classes, own_set["labels"]) and default.learned_labels is None
    assert torch.equal(read(path, fashion_mnist_data, format="pt", experiment=1).images, second)
    with pytest.raises(LabelworthError, match="experiment 2, but the file holds 2 experiment\\(s\\) \\(0..1\\)"):
        read(path, fashion_mnist_data, format="pt", experiment=2)
    torch.save(first, tmp_path / "images_best.pt")
    with pytest.raises(LabelworthError, match="experiment 1 asked, but the file is not a DC/DSA/DM results dict"):
        read(tmp_path / "images_best.pt", fashion_mnist_data, format="pt", experiment=1)
    torch.save({"data": [first], "accs_all_exps": {}}, tmp_path / "res_bad.pt")
    with pytest.raises(LabelworthError, match="'data' is not a list of \\[images, labels\\] pairs"):
        read(tmp_path / "res_bad.pt", fashion_mnist_data, format="pt")


def inspect(path, data_dir, summary, **settings) -> tuple[int, str]:
    """`labelworth import-external-set --summary` (the checkpoint that inspects a set): status, stderr."""
    import contextlib
    import io as text_io

    options = to_options(ExternalImageSetSettings(path=str(path), **settings))
    error = text_io.StringIO()
    with contextlib.redirect_stderr(error):
        status = main(["import-external-set", "--name", "x", "--options", *options, "--data-dir", str(data_dir),
                       "--summary", str(summary)])
    return status, error.getvalue()


def test_integrity_gates_refuse_a_permuted_or_misread_set_unless_told(fashion_mnist_data, own_set, tmp_path):
    torch.save({"images": own_set["images"], "labels": own_set["labels"]}, tmp_path / "good.pt")
    assert inspect(tmp_path / "good.pt", fashion_mnist_data, tmp_path / "good.json") == (0, "")
    torch.save({"images": own_set["images"], "labels": (own_set["labels"] + 1) % 10}, tmp_path / "permuted.pt")
    status, error = inspect(tmp_path / "permuted.pt", fashion_mnist_data, tmp_path / "permuted.json")
    assert status == 2 and error.count("\n") == 1 and str(tmp_path / "permuted.pt") in error
    assert "its classes look permuted" in error and "integrity_checks: false" in error
    assert not (tmp_path / "permuted.json").exists()
    # its values once more normalised, as if the set's own normalisation were taken for pixels
    torch.save({"images": (own_set["images"] - 0.2861) / 0.3530, "labels": own_set["labels"]}, tmp_path / "twice.pt")
    status, error = inspect(tmp_path / "twice.pt", fashion_mnist_data, tmp_path / "twice.json")
    assert status == 2 and "its values have mean" in error and "is `normalised` right" in error
    assert inspect(tmp_path / "permuted.pt", fashion_mnist_data, tmp_path / "told.json", integrity_checks=False)[0] == 0


def test_the_class_order_test_tells_a_matching_order_from_shuffled_ones():
    similarity = torch.eye(10) + 0.05 * torch.rand(10, 10, generator=torch.Generator().manual_seed(0))
    assert class_order_p_value(similarity) == 0.0
    shuffled = [class_order_p_value(similarity[torch.randperm(10, generator=torch.Generator().manual_seed(seed))])
                for seed in range(20)]
    assert sum(p > 0.01 for p in shuffled) >= 18  # a shuffled order passes as rarely as the limit allows


def test_settings_refuse_what_a_format_does_not_read():
    with pytest.raises(LabelworthError, match="labels: a separate labels file is read for format pt only"):
        ExternalImageSetSettings(path="x", format="imagefolder", labels="y")
    with pytest.raises(LabelworthError, match="format: 'npz' is not one of pt, imagefolder, labelworth"):
        ExternalImageSetSettings(path="x", format="npz")
    with pytest.raises(LabelworthError, match="path: give the set's file"):
        ExternalImageSetSettings(format="pt")
    with pytest.raises(LabelworthError, match="experiment: picks one set of a DC/DSA/DM res_\\*.pt file"):
        ExternalImageSetSettings(path="x", format="imagefolder", experiment=1)
    with pytest.raises(LabelworthError, match="experiment"):
        ExternalImageSetSettings(path="x", experiment=-1)


def test_an_evaluation_plans_only_the_set_its_twin_and_the_teachers_labels(tmp_path):
    import yaml

    from conftest import TINY
    from labelworth.config import load_config
    from labelworth.evaluate import evaluation_config, set_name
    from labelworth.plan import WorkflowPlan, student_runs

    base = yaml.safe_load(TINY.read_text())
    (tmp_path / "My Set.pt").touch()
    settings = ExternalImageSetSettings(path=str(tmp_path / "My Set.pt"), format="pt")
    raw = evaluation_config(base, set_name(settings.path), settings, 2, [1, 3], ["soft", "online"], None)
    assert raw["external_image_sets"] == {"my_set": {"path": str(tmp_path / "My Set.pt"), "format": "pt"}}
    assert {key: raw[key] for key in ("experts", "students", "dataset")} == {key: base[key] for key in
                                                                             ("experts", "students", "dataset")}
    config = load_config(raw)
    assert all(config.block(experiment) is None for experiment in STUDENT_EXPERIMENTS[1:])  # no experiment
    runs = student_runs(config, "soft_vs_hard", external={"my_set": {"images_per_class": 2, "learned_labels": False}})
    assert {images for images, _, _ in runs} == {"random-ipc2", "external-my_set-ipc2"}  # no method's images
    labels = {(labels, student) for images, labels, student in runs if images == "random-ipc2"}
    assert labels == {("hard", "convnet-d2-w8"), ("expert-e1", "convnet-d2-w8"), ("expert-e3", "convnet-d2-w8"),
                      ("expert-e1", "online"), ("expert-e3", "online")}
    assert labels == {(labels, student) for images, labels, student in runs if images == "external-my_set-ipc2"}
    assert WorkflowPlan(config).figures() and not [m for m in config.benchmark.methods if m != "random"]
    # another student count is a protocol of its own: a finished run's populations stay as they are
    counted = load_config(evaluation_config(base, "my_set", settings, 2, [1], ["soft", "online"], 5))
    assert config.students["convnet-d2-w8"] == counted.students["convnet-d2-w8"]
    assert counted.benchmark.students == ("convnet-d2-w8-5students",)
    assert counted.students["convnet-d2-w8-5students"].at(2).seeds == (0, 1, 2, 3, 4)
    assert [row.student for row in counted.benchmark.online_students] == ["online-5students"]  # online rows too
    assert counted.students["online-5students"].at(2).seeds == (0, 1, 2, 3, 4)
    assert load_config(evaluation_config(base, "my_set", settings, 2, [1], ["soft"], 2)).benchmark.students == (
        "convnet-d2-w8",)  # the protocol's own seeds: no copy




def test_a_teacher_far_from_table_7_is_named_in_one_line(tmp_path):
    from labelworth.evaluate import table7_entry, teacher_accuracy_problem

    entry = table7_entry("cifar10", "convnet-d3", 10)
    assert entry["expert_epoch"] == 44 and entry["expert_test_accuracy"] == 65.1
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,train_loss,train_accuracy,test_accuracy,train_label_entropy\n"
                       "44,1.0,0.7,0.62,1.0\n45,1.0,0.7,0.40,1.0\n")
    assert teacher_accuracy_problem(metrics, 44, entry) is None  # 62.0 is within 5 points of 65.1
    problem = teacher_accuracy_problem(metrics, 44, {**entry, "expert_test_accuracy": 75.0})
    assert "\n" not in problem and "is 62.0%, the paper's Table 7 says 75.0%" in problem and str(metrics) in problem
    assert table7_entry("fashion_mnist", "convnet-d3-w32", 10) is None
