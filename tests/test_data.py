"""labelworth.data on small files written in each dataset's real on-disk format.

Every test writes its dataset into tmp_path the way the published archives lay it out (IDX gz, Python-2
style CIFAR pickles with bytes keys, the tiny-imagenet-200 tree, an ImageFolder tree) and reads it back
through the public functions only.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from labelworth import data
from labelworth.data import (
    SYSTEM_FASHION_MNIST,
    default_raw_root,
    denormalize,
    imagenet_index,
    load_image_files,
    load_raw,
    load_split,
    normalize,
    prepare_data,
    resolve_raw_root,
)
from labelworth.errors import LabelworthError
from labelworth.io import load_tensors
from labelworth.specs import dataset_spec

from conftest import IDX_NAMES, make_idx_arrays, write_idx_dataset


def write_pickle(path: Path, content) -> None:
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=2)  # the originals are Python 2 pickles


def cifar_rows(count: int, rng) -> np.ndarray:
    return rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)


def write_cifar10(folder: Path, seed=0) -> dict:
    """cifar-10-batches-py/: five training batches of 4 images, a test batch of 10, batches.meta."""
    rng = np.random.default_rng(seed)
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    train_labels = rng.permutation(np.arange(20) % 10)
    train_rows = cifar_rows(20, rng)
    for index in range(5):
        part = slice(4 * index, 4 * index + 4)
        write_pickle(batches / f"data_batch_{index + 1}", {
            b"batch_label": f"training batch {index + 1} of 5".encode(),
            b"labels": [int(label) for label in train_labels[part]],
            b"data": train_rows[part],
            b"filenames": [f"img{k}.png".encode() for k in range(4)],
        })
    test_labels, test_rows = rng.permutation(10), cifar_rows(10, rng)
    write_pickle(batches / "test_batch", {b"labels": [int(label) for label in test_labels], b"data": test_rows})
    names = [name.encode() for name in dataset_spec("cifar10").class_names]
    write_pickle(batches / "batches.meta", {b"num_cases_per_batch": 4, b"label_names": names, b"num_vis": 3072})
    return {"train": (train_rows, train_labels), "test": (test_rows, test_labels), "folder": batches}


def write_cifar100(folder: Path, seed=0) -> dict:
    """cifar-100-python/: train (2 images per class), test (1 per class), meta."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, per_class in (("train", 2), ("test", 1)):
        fine = rng.permutation(np.arange(100 * per_class) % 100)
        rows = cifar_rows(len(fine), rng)
        write_pickle(folder / split, {
            b"filenames": [b"x.png"] * len(fine), b"batch_label": split.encode(),
            b"fine_labels": [int(label) for label in fine], b"coarse_labels": [int(label) // 5 for label in fine],
            b"data": rows,
        })
        splits[split] = (rows, fine)
    names = [f"class{index:03d}".encode() for index in range(100)]
    write_pickle(folder / "meta", {b"fine_label_names": names, b"coarse_label_names": [b"c"] * 20})
    return splits


def save_jpeg(path: Path, colour, size=(64, 64), mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path, quality=95)


TINY_WNIDS = ["n03000000", "n01000000", "n02000000"]  # deliberately not sorted in wnids.txt
TINY_WORDS = {"n01000000": "German shepherd, German shepherd dog, alsatian",
              "n02000000": "Egyptian cat", "n03000000": "barn"}
# val file -> wnid, in the file's own (unsorted) order; file names do not group by class.
TINY_VAL = {"val_4.JPEG": "n02000000", "val_0.JPEG": "n03000000", "val_1.JPEG": "n01000000",
            "val_2.JPEG": "n02000000", "val_3.JPEG": "n01000000", "val_5.JPEG": "n03000000"}


def tiny_colour(kind: str, index: int) -> tuple[int, int, int]:
    """A solid colour that identifies a file (JPEG keeps solid colours to within a few levels)."""
    return (200 if kind == "val" else 40, 20 + 30 * index, 230 - 30 * index)


def write_tiny(root: Path, val_rows: dict = TINY_VAL, image_size: int = 64) -> Path:
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    words = {"n09999999": "unrelated, synset", **TINY_WORDS}
    (folder / "words.txt").write_text("".join(f"{wnid}\t{name}\n" for wnid, name in words.items()))
    for class_position, wnid in enumerate(sorted(TINY_WNIDS)):
        for k in range(2):
            save_jpeg(folder / "train" / wnid / "images" / f"{wnid}_{k}.JPEG",
                      tiny_colour("train", 2 * class_position + k), (image_size, image_size))
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text(f"{wnid}_0.JPEG\t0\t0\t10\t10\n")
    for name, wnid in val_rows.items():
        index = int(name.split("_")[1].split(".")[0])
        save_jpeg(folder / "val" / "images" / name, tiny_colour("val", index), (image_size, image_size))
    (folder / "val" / "val_annotations.txt").write_text(
        "".join(f"{name}\t{wnid}\t0\t0\t63\t63\n" for name, wnid in val_rows.items())
    )
    return folder


IMAGENET_CLASSES = ["n02000000", "n01000000", "n10000000"]


def write_imagenet(root: Path) -> Path:
    """ImageFolder tree with images of several sizes and a greyscale PNG."""
    rng = np.random.default_rng(0)
    sizes = [(80, 60), (50, 70), (120, 90)]
    for split, per_class in (("train", 3), ("val", 2)):
        for wnid in IMAGENET_CLASSES:
            for k in range(per_class):
                width, height = sizes[k % len(sizes)]
                pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
                path = root / split / wnid / f"{wnid}_{k}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path, format="JPEG")
        (root / split / IMAGENET_CLASSES[0] / "notes.txt").write_text("not an image")
    Image.fromarray(rng.integers(0, 256, (40, 90), dtype=np.uint8), mode="L").save(
        root / "train" / IMAGENET_CLASSES[1] / "grey.png")
    return root


# --------------------------------------------------------------------------------------------------
# Raw roots


def test_resolve_raw_root_auto_and_explicit(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "SYSTEM_FASHION_MNIST", tmp_path / "absent")
    assert resolve_raw_root("cifar10", None) == Path("resources/cifar10")
    assert resolve_raw_root("cifar10", "auto") == Path("resources/cifar10")
    assert resolve_raw_root("fashion_mnist", "auto") == Path("resources/fashion_mnist")
    assert resolve_raw_root("cifar10", str(tmp_path)) == tmp_path


def test_default_raw_root_prefers_installed_fashion_mnist(tmp_path, monkeypatch):
    system = write_idx_dataset(tmp_path / "system", make_idx_arrays())
    monkeypatch.setattr(data, "SYSTEM_FASHION_MNIST", system)
    assert default_raw_root("fashion_mnist") == system
    assert default_raw_root("mnist") == Path("resources/mnist")
    (system / "t10k-labels-idx1-ubyte.gz").unlink()  # an incomplete install is not used
    assert default_raw_root("fashion_mnist") == Path("resources/fashion_mnist")


def test_unknown_dataset_is_a_labelworth_error():
    with pytest.raises(LabelworthError, match="unknown dataset 'svhn'"):
        default_raw_root("svhn")


# --------------------------------------------------------------------------------------------------
# IDX


@pytest.mark.parametrize("dataset, compressed, subfolder", [
    ("fashion_mnist", True, ""),
    ("fashion_mnist", False, ""),
    ("fashion_mnist", True, "FashionMNIST/raw"),  # where torchvision's download puts them
    ("mnist", True, "MNIST/raw"),
])
def test_idx_round_trips_pixels_and_labels(tmp_path, dataset, compressed, subfolder):
    arrays = make_idx_arrays()
    write_idx_dataset(tmp_path / subfolder, arrays, compressed)
    raw = load_raw(dataset, tmp_path)
    for split, (images, labels) in arrays.items():
        assert raw[split]["images"].dtype == torch.uint8
        assert raw[split]["images"].shape == (len(images), 1, 28, 28)
        assert raw[split]["labels"].dtype == torch.int64
        assert torch.equal(raw[split]["images"][:, 0], torch.from_numpy(images))
        assert raw[split]["labels"].tolist() == labels.tolist()
    assert raw["class_names"] == list(dataset_spec(dataset).class_names)


def test_missing_fashion_mnist_folder_names_path_and_remedy(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(LabelworthError) as error:
        load_raw("fashion_mnist", missing)
    message = str(error.value)
    assert message.startswith(f"{missing}: no Fashion-MNIST files found; expected train-images-idx3-ubyte.gz")
    assert "dataset-fashion-mnist" in message and "make data" in message and "\n" not in message


def test_missing_one_idx_file_is_named(tmp_path):
    write_idx_dataset(tmp_path, make_idx_arrays())
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(LabelworthError, match="t10k-images-idx3-ubyte.gz is missing"):
        load_raw("fashion_mnist", tmp_path)


def test_truncated_gz_names_the_file(tmp_path):
    write_idx_dataset(tmp_path, make_idx_arrays())
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(LabelworthError, match=f"^{path}: truncated or corrupt"):
        load_raw("fashion_mnist", tmp_path)


def test_truncated_uncompressed_idx_names_the_file(tmp_path):
    write_idx_dataset(tmp_path, make_idx_arrays(), compressed=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(LabelworthError, match=f"^{path}: truncated or corrupt .*header promises"):
        load_raw("fashion_mnist", tmp_path)


def test_swapped_idx_files_fail_on_the_magic_number(tmp_path):
    write_idx_dataset(tmp_path, make_idx_arrays(), compressed=False)
    images, labels = tmp_path / "train-images-idx3-ubyte", tmp_path / "train-labels-idx1-ubyte"
    images_content = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(images_content)
    with pytest.raises(LabelworthError, match=f"^{images}: not an IDX file .*2051"):
        load_raw("fashion_mnist", tmp_path)


def test_32x32_images_for_fashion_mnist_are_refused(tmp_path):
    write_idx_dataset(tmp_path, make_idx_arrays(image_size=32))
    with pytest.raises(LabelworthError, match=r"train-images-idx3-ubyte.gz: images are 1x32x32, fashion_mnist expects 1x28x28"):
        load_raw("fashion_mnist", tmp_path)


def test_idx_label_out_of_range_names_the_file(tmp_path):
    arrays = make_idx_arrays()
    images, labels = arrays["test"]
    labels[3] = 10
    write_idx_dataset(tmp_path, arrays)
    with pytest.raises(LabelworthError, match=r"t10k-labels-idx1-ubyte.gz: label 10 is outside 0..9"):
        load_raw("fashion_mnist", tmp_path)


def test_idx_with_too_few_classes_is_refused(tmp_path):
    write_idx_dataset(tmp_path, make_idx_arrays(num_classes=5))
    with pytest.raises(LabelworthError, match="training labels cover 5 classes, fashion_mnist has 10"):
        load_raw("fashion_mnist", tmp_path)


def test_idx_label_count_must_match_image_count(tmp_path):
    arrays = make_idx_arrays()
    images, labels = arrays["train"]
    arrays["train"] = (images, labels[:-1])
    write_idx_dataset(tmp_path, arrays)
    with pytest.raises(LabelworthError, match="train-labels-idx1-ubyte.gz: 29 labels for 30 images"):
        load_raw("fashion_mnist", tmp_path)


# --------------------------------------------------------------------------------------------------
# CIFAR


def test_cifar10_pixels_channel_order_and_batch_order(tmp_path):
    written = write_cifar10(tmp_path)
    rows = written["train"][0]
    rows[0, 0] = 255            # red, row 0, column 0
    rows[0, 1024 + 33] = 7      # green, row 1, column 1
    rows[0, 2048 + 1023] = 9    # blue, row 31, column 31
    pickle_path = written["folder"] / "data_batch_1"
    batch = pickle.loads(pickle_path.read_bytes(), encoding="bytes")
    batch[b"data"] = rows[:4]
    write_pickle(pickle_path, batch)

    raw = load_raw("cifar10", tmp_path)  # the parent of cifar-10-batches-py works as the root
    images = raw["train"]["images"]
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.uint8
    assert (images[0, 0, 0, 0], images[0, 1, 1, 1], images[0, 2, 31, 31]) == (255, 7, 9)
    assert torch.equal(images, torch.from_numpy(rows.reshape(20, 3, 32, 32)))
    assert raw["train"]["labels"].tolist() == written["train"][1].tolist()  # batches 1..5 in order
    assert torch.equal(raw["test"]["images"], torch.from_numpy(written["test"][0].reshape(10, 3, 32, 32)))
    assert raw["test"]["labels"].tolist() == written["test"][1].tolist()
    assert raw["class_names"] == list(dataset_spec("cifar10").class_names)
    assert load_raw("cifar10", written["folder"])["train"]["labels"].tolist() == written["train"][1].tolist()


def test_cifar100_fine_labels_and_names(tmp_path):
    written = write_cifar100(tmp_path / "cifar-100-python")
    raw = load_raw("cifar100", tmp_path)
    assert raw["train"]["images"].shape == (200, 3, 32, 32)
    assert raw["test"]["images"].shape == (100, 3, 32, 32)
    assert raw["train"]["labels"].tolist() == written["train"][1].tolist()
    assert torch.equal(raw["test"]["images"], torch.from_numpy(written["test"][0].reshape(100, 3, 32, 32)))
    assert raw["class_names"][:2] == ["class000", "class001"] and len(raw["class_names"]) == 100


def test_missing_cifar_folder(tmp_path):
    with pytest.raises(LabelworthError, match=f"^{tmp_path}: no CIFAR-10 files found; expected batches.meta, data_batch_1"):
        load_raw("cifar10", tmp_path)


def test_truncated_cifar_pickle_names_the_file(tmp_path):
    folder = write_cifar10(tmp_path)["folder"]
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(LabelworthError, match=f"^{path}: cannot be read as a CIFAR pickle"):
        load_raw("cifar10", tmp_path)


def test_missing_cifar_batch_is_named(tmp_path):
    folder = write_cifar10(tmp_path)["folder"]
    (folder / "test_batch").unlink()
    with pytest.raises(LabelworthError, match=f"^{folder / 'test_batch'}: file not found"):
        load_raw("cifar10", tmp_path)


def test_cifar_meta_with_wrong_class_count(tmp_path):
    folder = write_cifar10(tmp_path)["folder"]
    write_pickle(folder / "batches.meta", {b"label_names": [b"a"] * 9})
    with pytest.raises(LabelworthError, match="batches.meta: lists 9 class names, cifar10 has 10"):
        load_raw("cifar10", tmp_path)


def test_cifar_wrong_image_size(tmp_path):
    folder = write_cifar10(tmp_path)["folder"]
    write_pickle(folder / "test_batch", {b"labels": list(range(10)), b"data": np.zeros((10, 3 * 28 * 28), np.uint8)})
    with pytest.raises(LabelworthError, match="test_batch: images have 2352 values each, cifar10 expects 3x32x32"):
        load_raw("cifar10", tmp_path)


def test_cifar_label_out_of_range(tmp_path):
    folder = write_cifar10(tmp_path)["folder"]
    write_pickle(folder / "test_batch", {b"labels": [0] * 9 + [12], b"data": np.zeros((10, 3072), np.uint8)})
    with pytest.raises(LabelworthError, match=f"^{folder / 'test_batch'}: label 12 is outside 0..9"):
        load_raw("cifar10", tmp_path)


# --------------------------------------------------------------------------------------------------
# Tiny ImageNet


def test_tiny_imagenet_classes_names_and_val_reindexing(tmp_path):
    write_tiny(tmp_path)
    raw = load_raw("tinyimagenet", tmp_path)
    wnids = sorted(TINY_WNIDS)
    assert raw["class_names"] == ["German shepherd", "Egyptian cat", "barn"]  # sorted-wnid order

    train = raw["train"]
    assert train["images"].shape == (6, 3, 64, 64) and train["images"].dtype == torch.uint8
    assert train["labels"].tolist() == [0, 0, 1, 1, 2, 2]
    expected_train = torch.tensor([tiny_colour("train", k) for k in range(6)], dtype=torch.float32)
    assert torch.allclose(train["images"].float().mean(dim=(2, 3)), expected_train, atol=3)

    # Every val image carries the class its annotation names, ordered by class then file name.
    expected = sorted(TINY_VAL.items(), key=lambda item: (wnids.index(item[1]), item[0]))
    test = raw["test"]
    assert test["labels"].tolist() == [wnids.index(wnid) for _, wnid in expected]
    val_colours = torch.tensor([tiny_colour("val", int(name[4])) for name, _ in expected], dtype=torch.float32)
    assert torch.allclose(test["images"].float().mean(dim=(2, 3)), val_colours, atol=3)


def test_tiny_greyscale_jpeg_becomes_rgb(tmp_path):
    folder = write_tiny(tmp_path)
    save_jpeg(folder / "train" / "n01000000" / "images" / "n01000000_0.JPEG", 90, mode="L")
    image = load_raw("tinyimagenet", folder)["train"]["images"][0]
    assert image.shape == (3, 64, 64)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_tiny_annotations_naming_unknown_class(tmp_path):
    folder = write_tiny(tmp_path, {**TINY_VAL, "val_6.JPEG": "n04000000"})
    with pytest.raises(LabelworthError, match=f"^{folder / 'val' / 'val_annotations.txt'}: classes differ "
                                              "from wnids.txt \\(unexpected n04000000\\)"):
        load_raw("tinyimagenet", tmp_path)


def test_tiny_train_folders_must_match_wnids(tmp_path):
    folder = write_tiny(tmp_path)
    (folder / "wnids.txt").write_text("n01000000\nn02000000\n")
    with pytest.raises(LabelworthError, match="class folders do not match wnids.txt \\(unexpected n03000000\\)"):
        load_raw("tinyimagenet", tmp_path)


def test_tiny_wrong_image_size_names_the_file(tmp_path):
    folder = write_tiny(tmp_path)
    bad = folder / "val" / "images" / "val_2.JPEG"
    save_jpeg(bad, (1, 2, 3), size=(32, 32))
    with pytest.raises(LabelworthError, match=f"^{bad}: image is 32x32, tinyimagenet expects 64x64"):
        load_raw("tinyimagenet", tmp_path)


def test_tiny_corrupt_jpeg_names_the_file(tmp_path):
    folder = write_tiny(tmp_path)
    bad = folder / "train" / "n02000000" / "images" / "n02000000_1.JPEG"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(LabelworthError, match=f"^{bad}: cannot be read as an image"):
        load_raw("tinyimagenet", tmp_path)


# --------------------------------------------------------------------------------------------------
# ImageNet


def test_imagenet_index_lists_classes_paths_and_labels(tmp_path):
    write_imagenet(tmp_path)
    index = imagenet_index(tmp_path)
    assert index["class_names"] == sorted(IMAGENET_CLASSES)
    train, val = index["train"], index["val"]
    # n01 has 3 JPEGs and grey.png; n02 and n10 have 3 each; notes.txt is not an image.
    assert train["labels"].tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert train["labels"].dtype == torch.int64
    assert [Path(path).parent.name for path in train["paths"]] == [
        index["class_names"][label] for label in train["labels"].tolist()]
    assert all(Path(path).is_absolute() for path in train["paths"])
    assert val["labels"].tolist() == [0, 0, 1, 1, 2, 2]


def test_imagenet_val_classes_must_match_train(tmp_path):
    write_imagenet(tmp_path)
    (tmp_path / "val" / "n99000000").mkdir()
    with pytest.raises(LabelworthError, match="val: class folders differ from train/ \\(unexpected n99000000\\)"):
        imagenet_index(tmp_path)


def test_missing_imagenet_tree(tmp_path):
    with pytest.raises(LabelworthError, match=f"^{tmp_path}: no ImageNet files found"):
        imagenet_index(tmp_path)


def test_imagenet_is_not_loaded_into_memory(tmp_path):
    with pytest.raises(LabelworthError, match="imagenet is too big"):
        load_raw("imagenet", tmp_path)


def test_eval_files_match_torchvision_eval_preset(tmp_path):
    paths = imagenet_index(write_imagenet(tmp_path))["train"]["paths"]
    images = load_image_files(paths, 32, train_crop=False, generator=None)
    assert images.shape == (len(paths), 3, 32, 32) and images.dtype == torch.uint8
    preset = T.Compose([T.Resize(int(32 * 256 / 224)), T.CenterCrop(32), T.PILToTensor()])
    for path, image in zip(paths, images):
        assert torch.equal(image, preset(Image.open(path).convert("RGB")))


def test_train_crops_are_reproducible_from_the_generator(tmp_path):
    paths = imagenet_index(write_imagenet(tmp_path))["train"]["paths"]
    first = load_image_files(paths, 24, train_crop=True, generator=torch.Generator().manual_seed(3))
    again = load_image_files(paths, 24, train_crop=True, generator=torch.Generator().manual_seed(3))
    other = load_image_files(paths, 24, train_crop=True, generator=torch.Generator().manual_seed(4))
    assert first.shape == (len(paths), 3, 24, 24) and first.dtype == torch.uint8
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize("width, height", [(80, 60), (500, 375), (3, 3), (400, 10), (10, 400)])
def test_crop_box_draws_what_torchvision_draws(width, height):
    """Same seed -> same box as RandomResizedCrop.get_params, including the central fallback."""
    image = torch.zeros(3, height, width)
    for seed in range(50):
        torch.manual_seed(seed)
        expected = T.RandomResizedCrop.get_params(image, [0.08, 1.0], [3 / 4, 4 / 3])
        box = data._random_resized_crop_box(width, height, torch.Generator().manual_seed(seed))
        assert box == expected


# --------------------------------------------------------------------------------------------------
# Normalisation, prepare_data, load_split


@pytest.mark.parametrize("dataset", ["fashion_mnist", "cifar10"])
def test_normalize_denormalize_round_trip(dataset):
    spec = dataset_spec(dataset)
    images = torch.randint(0, 256, (4, spec.channels, 8, 8), dtype=torch.uint8)
    normalised = normalize(images, spec)
    assert normalised.dtype == torch.float32
    assert torch.allclose(denormalize(normalised, spec), images.float() / 255, atol=1e-6)
    assert torch.allclose(denormalize(normalised[0], spec), images[0].float() / 255, atol=1e-6)  # one image


def test_normalize_uses_the_spec_constants_per_channel():
    spec = dataset_spec("cifar10")
    images = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    images[0, :, 0, 0] = 255
    normalised = normalize(images, spec)
    for channel, (mean, std) in enumerate(zip(spec.mean, spec.std)):
        assert normalised[0, channel, 1, 1].item() == pytest.approx(-mean / std, rel=1e-6)
        assert normalised[0, channel, 0, 0].item() == pytest.approx((1 - mean) / std, rel=1e-6)


def test_prepare_then_load_split_round_trip(tmp_path):
    arrays = make_idx_arrays()
    raw_root = write_idx_dataset(tmp_path / "raw", arrays)
    prepare_data("fashion_mnist", raw_root, tmp_path / "data")
    stored = load_tensors(tmp_path / "data" / "train.pt", required=("images", "labels"))
    assert stored["images"].dtype == torch.uint8 and stored["labels"].dtype == torch.int64
    assert stored["meta"]["stage"] == "prepare_data" and stored["meta"]["split"] == "train"
    assert stored["meta"]["mean"] == [0.2861] and stored["meta"]["std"] == [0.3530]
    assert stored["meta"]["num_classes"] == 10

    spec = dataset_spec("fashion_mnist")
    for split, (images, labels) in arrays.items():
        loaded = load_split(tmp_path / "data", split)
        assert loaded.images.dtype == torch.float32 and loaded.images.shape == (len(images), 1, 28, 28)
        expected = (torch.from_numpy(images).float().unsqueeze(1) / 255 - 0.2861) / 0.3530
        assert torch.allclose(loaded.images, expected, atol=1e-6)
        assert loaded.labels.dtype == torch.int64 and loaded.labels.tolist() == labels.tolist()
        assert loaded.class_names == list(spec.class_names) and loaded.num_classes == 10
        assert loaded.spec == spec


def test_load_split_is_mean_centred_for_images_at_the_dataset_mean(tmp_path):
    """Uniform images at the spec mean normalise to ~0 in every channel of CIFAR-10."""
    written = write_cifar10(tmp_path / "raw")
    spec = dataset_spec("cifar10")
    at_mean = np.concatenate([np.full(1024, round(mean * 255), np.uint8) for mean in spec.mean])
    batch = pickle.loads((written["folder"] / "test_batch").read_bytes(), encoding="bytes")
    batch[b"data"] = np.tile(at_mean, (10, 1))
    write_pickle(written["folder"] / "test_batch", batch)
    prepare_data("cifar10", tmp_path / "raw", tmp_path / "data")
    test = load_split(tmp_path / "data", "test")
    channel_means = test.images.mean(dim=(0, 2, 3))
    assert torch.allclose(channel_means, torch.zeros(3), atol=0.5 / 255 / min(spec.std))
    assert test.images.shape == (10, 3, 32, 32)


def test_prepare_data_writes_nothing_for_bad_input(tmp_path):
    arrays = make_idx_arrays()
    arrays["test"][1][0] = 11
    write_idx_dataset(tmp_path / "raw", arrays)
    with pytest.raises(LabelworthError, match="label 11 is outside"):
        prepare_data("fashion_mnist", tmp_path / "raw", tmp_path / "data")
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_prepare_tiny_imagenet_round_trip(tmp_path):
    write_tiny(tmp_path / "raw")
    prepare_data("tinyimagenet", tmp_path / "raw", tmp_path / "data")
    train = load_split(tmp_path / "data", "train")
    assert train.images.shape == (6, 3, 64, 64) and train.num_classes == 3
    assert train.class_names[0] == "German shepherd"


def test_prepare_imagenet_stores_paths_and_labels_only(tmp_path):
    write_imagenet(tmp_path / "raw")
    prepare_data("imagenet", tmp_path / "raw", tmp_path / "data")
    index = imagenet_index(tmp_path / "raw")
    for split, source in (("train", "train"), ("test", "val")):
        stored = load_tensors(tmp_path / "data" / f"{split}.pt", required=("labels",))
        assert "images" not in stored
        assert torch.equal(stored["labels"], index[source]["labels"])
        assert stored["meta"]["paths"] == index[source]["paths"]
        assert stored["meta"]["class_names"] == sorted(IMAGENET_CLASSES)
    # A student's test split decodes the files with the eval preset.
    test = load_split(tmp_path / "data", "test")
    assert test.images.shape == (6, 3, 224, 224) and torch.equal(test.labels, index["val"]["labels"])
    expected = load_image_files(index["val"]["paths"], 224, train_crop=False)
    assert torch.equal(test.images, normalize(expected, dataset_spec("imagenet")))


def test_load_split_errors_name_the_problem(tmp_path):
    with pytest.raises(LabelworthError, match="unknown split 'val'"):
        load_split(tmp_path, "val")
    with pytest.raises(LabelworthError, match=f"^{tmp_path / 'train.pt'}: file not found"):
        load_split(tmp_path, "train")


# --------------------------------------------------------------------------------------------------
# The real Fashion-MNIST


@pytest.mark.skipif(
    not all((SYSTEM_FASHION_MNIST / f"{name}.gz").is_file() for pair in IDX_NAMES.values() for name in pair),
    reason=f"Fashion-MNIST not installed at {SYSTEM_FASHION_MNIST} (Debian package dataset-fashion-mnist)",
)
def test_real_fashion_mnist():
    raw = load_raw("fashion_mnist", SYSTEM_FASHION_MNIST)
    assert raw["train"]["images"].shape == (60000, 1, 28, 28)
    assert raw["test"]["images"].shape == (10000, 1, 28, 28)
    assert torch.bincount(raw["train"]["labels"]).tolist() == [6000] * 10
    assert torch.bincount(raw["test"]["labels"]).tolist() == [1000] * 10
    assert raw["class_names"][0] == "T-shirt/top"


def test_a_validation_slice_is_seeded_per_class_and_disjoint_from_training():
    from labelworth.data import validation_slice

    labels = torch.arange(10).repeat_interleave(30)[torch.randperm(300, generator=torch.Generator().manual_seed(3))]
    kept, held = validation_slice(labels, 4, seed=7)
    assert set(kept.tolist()).isdisjoint(held.tolist()) and sorted(kept.tolist() + held.tolist()) == list(range(300))
    assert torch.bincount(labels[held], minlength=10).tolist() == [4] * 10
    assert torch.equal(validation_slice(labels, 4, seed=7)[1], held)
    assert not torch.equal(validation_slice(labels, 4, seed=8)[1], held)
    with pytest.raises(LabelworthError, match="validation_images_per_class: 30 leaves no training image of class 0"):
        validation_slice(labels, 30, seed=7)


def test_prepare_data_holds_the_validation_slice_out_of_the_training_split(tmp_path):
    arrays = make_idx_arrays(num_train=60)
    raw_root = write_idx_dataset(tmp_path / "raw", arrays)
    prepare_data("fashion_mnist", raw_root, tmp_path / "data", validation_per_class=2, validation_seed=42)
    train, validation = load_split(tmp_path / "data", "train"), load_split(tmp_path / "data", "validation")
    assert len(train.labels) + len(validation.labels) == 60 and len(validation.labels) == 20
    assert torch.bincount(validation.labels, minlength=10).tolist() == [2] * 10
    everything = torch.from_numpy(arrays["train"][0]).float().flatten(1)
    for split in (train, validation):  # every image is one of the raw training images, none in both
        pixels = (split.images * 0.3530 + 0.2861).mul(255).round().flatten(1)
        assert all(((everything - row).abs().sum(1) == 0).any() for row in pixels)
    held = {tuple(row.tolist()) for row in validation.images.flatten(1)}
    assert not any(tuple(row.tolist()) in held for row in train.images.flatten(1))


def test_check_data_counts_each_split_and_the_classes_in_each_real_layout(tmp_path):
    """`labelworth check-data`: CIFAR-10's pickles, Tiny ImageNet's folders and ImageNet's tree, read as
    prepare-data reads them; a missing folder is the loader's one-line error."""
    write_cifar10(tmp_path / "cifar")
    assert data.check_raw_data("cifar10", tmp_path / "cifar").endswith(
        ": 20 training and 10 test images, 10 classes, images 3x32x32: ready for prepare-data")
    write_tiny(tmp_path / "tiny")
    assert f"{2 * len(TINY_WNIDS)} training and {len(TINY_VAL)} test images, {len(TINY_WNIDS)} classes, " \
           "images 3x64x64" in data.check_raw_data("tinyimagenet", tmp_path / "tiny")
    write_imagenet(tmp_path / "imagenet")
    assert "10 training and 6 test images, 3 classes, images 3x224x224" in \
        data.check_raw_data("imagenet", tmp_path / "imagenet")
    with pytest.raises(LabelworthError, match="no CIFAR-10 files found"):
        data.check_raw_data("cifar10", tmp_path / "missing")
