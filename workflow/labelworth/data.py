"""Raw dataset files -> validated tensors on disk -> normalised (or ZCA-whitened) splits on the device.

Each dataset is read from its own published on-disk format, parsed here rather than through
torchvision's dataset classes (those check md5 sums of whole archives, which small test files cannot
match, and hide which file was bad):

    fashion_mnist, mnist   IDX files (gz or not): big-endian magic 2051/2049, big-endian dims, uint8 values
    cifar10, cifar100      Python pickles of dicts with bytes keys; rows of 3072 bytes, channel-major
    tinyimagenet           tiny-imagenet-200/ tree; val/ labelled by val/val_annotations.txt
    imagenet               ImageFolder tree; too big to cache, so only paths + labels are stored and the
                           chosen files are decoded on demand by `load_image_files`

`prepare_data` validates everything before it writes anything, so bad input leaves no output behind; every
problem is a one-line `LabelworthError` that names the file or folder at fault.

With `zca` on (docs/method.md §2.2, the paper's CIFAR-10) the splits hold float32 images already whitened
by the training set's ZCA, together with that whitening (`zca_mean`, `zca_transform`, `zca_inverse`),
so every later stage works in whitened space and can still turn images back into pixels.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import pickle
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from labelworth.costs import DATA, phase
from labelworth.errors import LabelworthError
from labelworth.io import load_tensors, provenance, save_tensors
from labelworth.specs import DatasetSpec, dataset_spec
from labelworth.zca import ZCA_EPSILON, Zca, fit_zca, whiten

SPLITS = ("train", "test")
VALIDATION = "validation"  # a split held out of the training set (selection: validation)

# Debian package dataset-fashion-mnist installs the four original IDX gz files here.
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_DISPLAY_NAMES = {
    "fashion_mnist": "Fashion-MNIST", "mnist": "MNIST", "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100", "tinyimagenet": "Tiny ImageNet", "imagenet": "ImageNet",
}
_FETCH_HINTS = {
    "fashion_mnist": "install Debian package dataset-fashion-mnist or run `make data`",
    "mnist": "download the four IDX files from the MNIST page or torchvision (docs/datasets.md)",
    "cifar10": "download and unpack cifar-10-python.tar.gz (docs/datasets.md)",
    "cifar100": "download and unpack cifar-100-python.tar.gz (docs/datasets.md)",
    "tinyimagenet": "download and unpack tiny-imagenet-200.zip (docs/datasets.md)",
    "imagenet": "download ILSVRC2012 and sort val/ into one folder per class",
}

# The suffixes torchvision's ImageFolder accepts (torchvision.datasets.folder.IMG_EXTENSIONS).
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


# --------------------------------------------------------------------------------------------------
# Where the raw files are


def default_raw_root(dataset: str) -> Path:
    """The system Fashion-MNIST when all four files are installed, else `resources/<dataset>` (cwd-relative)."""
    dataset_spec(dataset)  # an unknown name fails here, listing the known ones
    if dataset == "fashion_mnist" and all(
        (SYSTEM_FASHION_MNIST / f"{name}.gz").is_file() for name in _idx_file_names()
    ):
        return SYSTEM_FASHION_MNIST
    return Path("resources") / dataset


def resolve_raw_root(dataset: str, data_root: str | None) -> Path:
    """`None` or "auto" means `default_raw_root(dataset)`; anything else is taken as the folder."""
    if data_root is None or data_root == "auto":
        return default_raw_root(dataset)
    return Path(data_root)


def download_fashion_mnist(root: str | os.PathLike) -> Path:
    """Fetch both splits with torchvision; returns the folder of .gz files (root/FashionMNIST/raw)."""
    from torchvision.datasets import FashionMNIST  # here only: importing torchvision doubles a job's start-up

    try:
        for train in (True, False):
            dataset = FashionMNIST(str(root), train=train, download=True)
    except (OSError, RuntimeError) as error:  # torchvision reports failed mirrors as RuntimeError
        reason = " ".join(str(error).split())  # torchvision's message spans lines, one per mirror
        raise LabelworthError(f"{root}: Fashion-MNIST download failed ({reason})") from None
    return Path(dataset.raw_folder)


def _dataset_folder(dataset: str, root: Path, subfolders: Sequence[str], markers: Sequence[str],
                    expected: str) -> Path:
    """The first of `root`, `root/<subfolder>`... holding any marker file (the archives unpack one level down)."""
    for folder in (root, *(root / subfolder for subfolder in subfolders)):
        if any((folder / marker).is_file() for marker in markers):
            return folder
    raise _no_files_found(dataset, root, expected)


def _no_files_found(dataset: str, root: Path, expected: str) -> LabelworthError:
    hint = _FETCH_HINTS.get(dataset, "run `make data`")
    return LabelworthError(f"{root}: no {_DISPLAY_NAMES[dataset]} files found; expected {expected} ({hint})")


# --------------------------------------------------------------------------------------------------
# Checks shared by every format


def _dims(shape: Sequence[int]) -> str:
    return "x".join(str(size) for size in shape)


def _check_image_shape(images: torch.Tensor, spec: DatasetSpec, source) -> None:
    """Images are N x C x H x W with C, H, W those of the spec."""
    expected = (spec.channels, spec.image_size, spec.image_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise LabelworthError(
            f"{source}: images are {_dims(images.shape[1:])}, {spec.name} expects {_dims(expected)}"
        )


def _check_labels(labels: torch.Tensor, num_images: int, num_classes: int, source) -> None:
    """One label per image, each in 0..num_classes-1."""
    if len(labels) != num_images:
        raise LabelworthError(f"{source}: {len(labels)} labels for {num_images} images")
    outside = labels[(labels < 0) | (labels >= num_classes)]
    if len(outside):
        raise LabelworthError(
            f"{source}: label {int(outside[0])} is outside 0..{num_classes - 1}"
        )


def _check_every_class_present(labels: torch.Tensor, spec: DatasetSpec, source) -> None:
    """The training labels use exactly spec.num_classes classes (random selection draws from each)."""
    present = int(torch.unique(labels).numel())
    if present != spec.num_classes:
        raise LabelworthError(
            f"{source}: training labels cover {present} classes, {spec.name} has {spec.num_classes}"
        )


def _check_class_count_at_most(class_names: Sequence[str], spec: DatasetSpec, source) -> None:
    """Folder datasets may be subsets (small test trees), but never more classes than the spec."""
    if not 0 < len(class_names) <= spec.num_classes:
        raise LabelworthError(
            f"{source}: {len(class_names)} classes, {spec.name} needs 1..{spec.num_classes}"
        )


def _describe_difference(found: Sequence[str], expected: Sequence[str]) -> str:
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    parts = [f"{label} {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
             for label, names in (("missing", missing), ("unexpected", unexpected)) if names]
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------------
# IDX (Fashion-MNIST, MNIST)

_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (N, rows, columns)
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (N)
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# torchvision's download puts the files in <root>/<class name>/raw/.
_IDX_SUBFOLDERS = {"fashion_mnist": ("FashionMNIST/raw",), "mnist": ("MNIST/raw",)}


def _idx_file_names() -> list[str]:
    return [name for pair in _IDX_FILES.values() for name in pair]


def _idx_file(folder: Path, name: str) -> Path:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise LabelworthError(f"{folder}: {name}.gz is missing (nor is there an uncompressed {name})")


def _read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it ends in .gz."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:  # gzip reports truncation as EOFError
        raise LabelworthError(f"{path}: truncated or corrupt ({type(error).__name__}: {error})") from None


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file; the array has the header's dims and the file has no byte more or less."""
    content = _read_bytes(path)
    if len(content) < 4 or int.from_bytes(content[:4], "big") != magic:
        raise LabelworthError(f"{path}: not an IDX file of this kind (expected magic number {magic})")
    header_size = 4 + 4 * content[3]  # the magic's last byte is the number of dimensions
    if len(content) < header_size:
        raise LabelworthError(f"{path}: truncated or corrupt ({len(content)} bytes, not even a header)")
    dims = tuple(int(size) for size in np.frombuffer(content[4:header_size], dtype=">u4"))
    if len(content) != header_size + math.prod(dims):
        raise LabelworthError(
            f"{path}: truncated or corrupt ({len(content)} bytes; its header promises "
            f"{header_size + math.prod(dims)})"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(dims).copy()


def _load_idx(dataset: str, root: Path) -> dict:
    spec = dataset_spec(dataset)
    markers = [f"{name}{suffix}" for name in _idx_file_names() for suffix in (".gz", "")]
    folder = _dataset_folder(dataset, root, _IDX_SUBFOLDERS[dataset], markers,
                             ", ".join(f"{name}.gz" for name in _idx_file_names()))
    loaded = {}
    for split, (image_name, label_name) in _IDX_FILES.items():
        image_path, label_path = _idx_file(folder, image_name), _idx_file(folder, label_name)
        images = torch.from_numpy(_read_idx(image_path, _IDX_IMAGES_MAGIC)).unsqueeze(1)  # add C = 1
        _check_image_shape(images, spec, image_path)
        labels = torch.from_numpy(_read_idx(label_path, _IDX_LABELS_MAGIC)).long()
        _check_labels(labels, len(images), spec.num_classes, label_path)
        if split == "train":
            _check_every_class_present(labels, spec, label_path)
        loaded[split] = {"images": images, "labels": labels}
    return {**loaded, "class_names": list(spec.class_names)}


# --------------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 python pickles


@dataclass(frozen=True)
class _CifarLayout:
    subfolder: str
    meta_file: str
    names_key: str
    labels_key: str
    files: dict  # split -> file names, concatenated in this order


_CIFAR_LAYOUTS = {
    "cifar10": _CifarLayout(
        "cifar-10-batches-py", "batches.meta", "label_names", "labels",
        {"train": [f"data_batch_{index}" for index in range(1, 6)], "test": ["test_batch"]},
    ),
    "cifar100": _CifarLayout(
        "cifar-100-python", "meta", "fine_label_names", "fine_labels",
        {"train": ["train"], "test": ["test"]},
    ),
}


def _unpickle(path: Path) -> dict:
    """A CIFAR pickle as a dict with str keys (the originals, written by Python 2, have bytes keys)."""
    if not path.is_file():
        raise LabelworthError(f"{path}: file not found")
    try:
        with open(path, "rb") as handle:
            content = pickle.load(handle, encoding="bytes")
    except Exception as error:  # a damaged pickle raises many types (EOFError, UnpicklingError, ...)
        raise LabelworthError(
            f"{path}: cannot be read as a CIFAR pickle ({type(error).__name__}); "
            "the file is corrupted or truncated"
        ) from None
    if not isinstance(content, dict):
        raise LabelworthError(f"{path}: not a CIFAR pickle (holds a {type(content).__name__}, not a dict)")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in content.items()}


def _entry(content: dict, key: str, path: Path):
    if key not in content:
        raise LabelworthError(f"{path}: not a CIFAR file of this kind (no {key!r} entry)")
    return content[key]


def _cifar_class_names(path: Path, names_key: str, spec: DatasetSpec) -> list[str]:
    names = [name.decode() if isinstance(name, bytes) else str(name)
             for name in _entry(_unpickle(path), names_key, path)]
    if len(names) != spec.num_classes:
        raise LabelworthError(f"{path}: lists {len(names)} class names, {spec.name} has {spec.num_classes}")
    return names


def _cifar_images(data, spec: DatasetSpec, path: Path) -> torch.Tensor:
    """Rows of C*H*W bytes (all red, then all green, then all blue, each row by row) -> N x C x H x W."""
    data = np.asarray(data)
    values_per_image = spec.channels * spec.image_size**2
    if data.dtype != np.uint8 or data.ndim != 2:
        raise LabelworthError(f"{path}: 'data' is not an N x {values_per_image} uint8 array")
    if data.shape[1] != values_per_image:
        raise LabelworthError(
            f"{path}: images have {data.shape[1]} values each, {spec.name} expects "
            f"{_dims((spec.channels, spec.image_size, spec.image_size))} = {values_per_image}"
        )
    # The byte order already is channel-major, so decoding is a reshape.
    return torch.from_numpy(data.reshape(-1, spec.channels, spec.image_size, spec.image_size).copy())


def _read_cifar_split(paths: list[Path], labels_key: str, spec: DatasetSpec) -> dict:
    images, labels = [], []
    for path in paths:
        content = _unpickle(path)
        batch_images = _cifar_images(_entry(content, "data", path), spec, path)
        batch_labels = torch.as_tensor(np.asarray(_entry(content, labels_key, path)), dtype=torch.int64)
        _check_labels(batch_labels, len(batch_images), spec.num_classes, path)
        images.append(batch_images)
        labels.append(batch_labels)
    return {"images": torch.cat(images), "labels": torch.cat(labels)}


def _load_cifar(dataset: str, root: Path) -> dict:
    spec, layout = dataset_spec(dataset), _CIFAR_LAYOUTS[dataset]
    file_names = [layout.meta_file, *layout.files["train"], *layout.files["test"]]
    folder = _dataset_folder(dataset, root, (layout.subfolder,), (layout.meta_file,),
                             ", ".join(file_names) + f" in the folder or in its {layout.subfolder}/")
    class_names = _cifar_class_names(folder / layout.meta_file, layout.names_key, spec)
    loaded = {split: _read_cifar_split([folder / name for name in names], layout.labels_key, spec)
              for split, names in layout.files.items()}
    _check_every_class_present(loaded["train"]["labels"], spec, folder)
    return {**loaded, "class_names": class_names}


# --------------------------------------------------------------------------------------------------
# Image files (Tiny ImageNet, ImageNet)


def _image_files(folder: Path) -> list[str]:
    """Image files directly in `folder`, sorted by name as ImageFolder sorts them."""
    try:
        names = sorted(entry.name for entry in os.scandir(folder)
                       if entry.is_file() and entry.name.lower().endswith(_IMAGE_SUFFIXES))
    except FileNotFoundError:
        raise LabelworthError(f"{folder}: folder not found") from None
    if not names:
        raise LabelworthError(f"{folder}: no image files")
    return [os.path.join(folder, name) for name in names]


def _paths_and_labels(files_per_class: list[list[str]]) -> tuple[list[str], torch.Tensor]:
    """Concatenate per-class file lists; the label of each file is its class's position in the list."""
    counts = torch.tensor([len(files) for files in files_per_class], dtype=torch.int64)
    labels = torch.repeat_interleave(torch.arange(len(files_per_class)), counts)
    return [path for files in files_per_class for path in files], labels


def _open_rgb(path) -> Image.Image:
    """The decoded image in RGB (Tiny ImageNet has some greyscale JPEGs)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise LabelworthError(f"{path}: file not found") from None
    except (OSError, SyntaxError, ValueError) as error:  # what PIL raises for damaged files
        raise LabelworthError(f"{path}: cannot be read as an image ({error})") from None


def _decode_images(jobs: Sequence, image_size: int, decode: Callable[..., np.ndarray]) -> torch.Tensor:
    """`decode(job)` -> S x S x 3 uint8 for every job, in order, as an N x 3 x S x S uint8 tensor.

    PIL releases the GIL while it decodes and resizes, so threads give a near-linear speed-up on the
    one step that must run per file; torch's thread count is what the job was given.
    """
    decoded = np.empty((len(jobs), image_size, image_size, 3), dtype=np.uint8)

    def decode_into(index: int) -> None:
        decoded[index] = decode(jobs[index])

    with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
        list(pool.map(decode_into, range(len(jobs))))  # list() re-raises the first failure
    return torch.from_numpy(decoded).permute(0, 3, 1, 2).contiguous()


def _read_exact_size(path: str, image_size: int, spec_name: str) -> np.ndarray:
    image = _open_rgb(path)
    if image.size != (image_size, image_size):
        raise LabelworthError(
            f"{path}: image is {_dims(image.size)}, {spec_name} expects {image_size}x{image_size}"
        )
    return np.asarray(image)


# --------------------------------------------------------------------------------------------------
# Tiny ImageNet


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise LabelworthError(f"{path}: file not found")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _tiny_class_names(words_path: Path, wnids: list[str]) -> list[str]:
    """The first synonym in words.txt ('German shepherd, German shepherd dog, ...' -> 'German shepherd')."""
    words = dict(line.split("\t", 1) for line in _read_lines(words_path) if "\t" in line)
    return [words.get(wnid, wnid).split(",")[0].strip() for wnid in wnids]


def _tiny_train_files(train_dir: Path, wnids: list[str]) -> tuple[list[str], torch.Tensor]:
    folders = sorted(entry.name for entry in train_dir.iterdir() if entry.is_dir()) if train_dir.is_dir() else []
    if folders != wnids:
        raise LabelworthError(
            f"{train_dir}: class folders do not match wnids.txt ({_describe_difference(folders, wnids)})"
        )
    return _paths_and_labels([_image_files(train_dir / wnid / "images") for wnid in wnids])


def _tiny_val_files(val_dir: Path, wnids: list[str]) -> tuple[list[str], torch.Tensor]:
    """Label val/images/* from val_annotations.txt (filename, wnid, bbox), in ImageFolder order.

    The reference code moved the files into one folder per class and used ImageFolder, which orders by
    class, then file name; sorting the annotations the same way gives the same split without moving files.
    """
    annotations = val_dir / "val_annotations.txt"
    rows = [line.split("\t") for line in _read_lines(annotations)]
    for line_number, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise LabelworthError(f"{annotations}: line {line_number} is not 'file<TAB>wnid<TAB>box'")
    class_index = {wnid: index for index, wnid in enumerate(wnids)}
    annotated = sorted({row[1] for row in rows})
    if annotated != wnids:
        raise LabelworthError(
            f"{annotations}: classes differ from wnids.txt ({_describe_difference(annotated, wnids)})"
        )
    rows.sort(key=lambda row: (class_index[row[1]], row[0]))
    paths = [os.path.join(val_dir, "images", row[0]) for row in rows]
    return paths, torch.tensor([class_index[row[1]] for row in rows], dtype=torch.int64)


def _load_tiny(dataset: str, root: Path) -> dict:
    spec = dataset_spec(dataset)
    folder = _dataset_folder(
        dataset, root, ("tiny-imagenet-200",), ("wnids.txt",),
        "wnids.txt, words.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt",
    )
    wnids = sorted(_read_lines(folder / "wnids.txt"))  # ImageFolder's class order
    _check_class_count_at_most(wnids, spec, folder / "wnids.txt")
    class_names = _tiny_class_names(folder / "words.txt", wnids)
    file_lists = {"train": _tiny_train_files(folder / "train", wnids),
                  "test": _tiny_val_files(folder / "val", wnids)}
    read = functools.partial(_read_exact_size, image_size=spec.image_size, spec_name=spec.name)
    loaded = {split: {"images": _decode_images(paths, spec.image_size, read), "labels": labels}
              for split, (paths, labels) in file_lists.items()}
    return {**loaded, "class_names": class_names}


# --------------------------------------------------------------------------------------------------
# ImageNet: an index of files, decoded on demand


def imagenet_index(raw_root: str | os.PathLike) -> dict:
    """{"train"|"val": {"paths": [absolute str], "labels": int64}, "class_names": wnids} from an ImageFolder tree.

    Classes are the sorted folder names of train/, which val/ must repeat exactly; paths are absolute so
    the stored index works from any working directory.
    """
    spec = dataset_spec("imagenet")
    root = Path(raw_root).absolute()
    if not ((root / "train").is_dir() and (root / "val").is_dir()):
        raise _no_files_found("imagenet", root, "train/<wnid>/*.JPEG and val/<wnid>/*.JPEG")
    class_folders = {split: sorted(entry.name for entry in (root / split).iterdir() if entry.is_dir())
                     for split in ("train", "val")}
    classes = class_folders["train"]
    if class_folders["val"] != classes:
        raise LabelworthError(
            f"{root / 'val'}: class folders differ from train/ "
            f"({_describe_difference(class_folders['val'], classes)})"
        )
    _check_class_count_at_most(classes, spec, root / "train")
    index = {}
    for split in ("train", "val"):
        paths, labels = _paths_and_labels([_image_files(root / split / name) for name in classes])
        index[split] = {"paths": paths, "labels": labels}
    return {**index, "class_names": classes}


def _random_resized_crop_box(width: int, height: int, generator: torch.Generator,
                             scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0)) -> tuple[int, int, int, int]:
    """(top, left, height, width) exactly as torchvision's RandomResizedCrop.get_params draws it.

    Same draws in the same order, but from `generator` instead of the global RNG, so a seeded generator
    gives the box torchvision would give after `torch.manual_seed` with that seed.
    """
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        aspect_ratio = torch.exp(
            torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)
        ).item()
        crop_width = int(round(math.sqrt(target_area * aspect_ratio)))
        crop_height = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            top = torch.randint(0, height - crop_height + 1, size=(1,), generator=generator).item()
            left = torch.randint(0, width - crop_width + 1, size=(1,), generator=generator).item()
            return top, left, crop_height, crop_width
    # Ten misses: fall back to the largest central crop within the ratio range.
    in_ratio = width / height
    if in_ratio < min(ratio):
        crop_width, crop_height = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        crop_width, crop_height = int(round(height * max(ratio))), height
    else:
        crop_width, crop_height = width, height
    return (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width


def _train_crop(path: str, image_size: int, seed: int) -> np.ndarray:
    """RandomResizedCrop(image_size, bilinear) then RandomHorizontalFlip(0.5), driven by `seed`."""
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    image = _open_rgb(path)
    generator = torch.Generator().manual_seed(seed)
    top, left, height, width = _random_resized_crop_box(image.width, image.height, generator)
    image = TF.resized_crop(image, top, left, height, width, [image_size, image_size],
                            InterpolationMode.BILINEAR, antialias=True)
    if torch.rand(1, generator=generator) < 0.5:
        image = TF.hflip(image)
    return np.asarray(image)


def _eval_crop(path: str, image_size: int) -> np.ndarray:
    """torchvision's eval preset: shorter side to image_size*256/224 (256 for 224), then the centre crop."""
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    image = TF.resize(_open_rgb(path), int(image_size * 256 / 224), InterpolationMode.BILINEAR,
                      antialias=True)
    return np.asarray(TF.center_crop(image, [image_size, image_size]))


def load_image_files(paths: Sequence[str | os.PathLike], image_size: int, train_crop: bool,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Decode files into an N x 3 x S x S uint8 tensor with the ImageNet train or eval preset.

    train_crop=True applies the train preset's random crop and flip once (docs/method.md §2.1); the same
    generator state gives the same tensor, whatever the thread scheduling, because one seed per image is
    drawn from `generator` (the global RNG when None) before any decoding starts.
    """
    if not train_crop:
        return _decode_images(list(paths), image_size, lambda path: _eval_crop(path, image_size))
    seeds = torch.randint(0, 2**63 - 1, (len(paths),), generator=generator).tolist()
    return _decode_images(list(zip(paths, seeds)), image_size,
                          lambda job: _train_crop(job[0], image_size, job[1]))


# --------------------------------------------------------------------------------------------------
# Raw files -> cached tensors

_RAW_LOADERS = {"fashion_mnist": _load_idx, "mnist": _load_idx, "cifar10": _load_cifar,
                "cifar100": _load_cifar, "tinyimagenet": _load_tiny}


def load_raw(dataset: str, raw_root: str | os.PathLike) -> dict:
    """{"train"|"test": {"images": uint8 N x C x H x W, "labels": int64 N}, "class_names": [...]}, validated.

    Images have the spec's shape; labels lie in 0..num_classes-1; for IDX and CIFAR the training labels
    use all spec.num_classes classes; for Tiny ImageNet train and val have the same classes.
    """
    spec = dataset_spec(dataset)
    if not spec.cached_as_tensors:
        raise LabelworthError(
            f"{dataset} is too big to load into memory; use imagenet_index and load_image_files"
        )
    return _RAW_LOADERS[dataset](dataset, Path(raw_root))


def check_raw_data(dataset: str, raw_root: str | os.PathLike) -> str:
    """`labelworth check-data`: read a dataset's raw files as prepare-data will (every check of the
    loaders: layout, file format, image shape, labels, classes) and describe them in one line, or
    raise the loader's one-line error. ImageNet is indexed, and one image per split decoded.

    Property (tests): the description counts every image of each split and the classes."""
    spec = dataset_spec(dataset)
    if spec.cached_as_tensors:
        raw = load_raw(dataset, raw_root)
        counts = {split: len(raw[split]["labels"]) for split in SPLITS}
        shape = _dims(raw["train"]["images"].shape[1:])
    else:
        raw = imagenet_index(raw_root)
        counts = {"train": len(raw["train"]["labels"]), "test": len(raw["val"]["labels"])}
        first = load_image_files(raw["val"]["paths"][:1], spec.image_size, train_crop=False)
        shape = _dims(first.shape[1:])
    return (f"{dataset} in {raw_root}: {counts['train']} training and {counts['test']} test images, "
            f"{len(raw['class_names'])} classes, images {shape}: ready for prepare-data")


def _split_meta(spec: DatasetSpec, split: str, class_names: list[str], raw_root, **extra) -> dict:
    return provenance(
        "prepare_data", dataset=spec.name, split=split, class_names=list(class_names),
        mean=list(spec.mean), std=list(spec.std), num_classes=len(class_names),
        raw_root=str(raw_root), **extra,
    )


# The tensors of a whitened split that hold its whitening, one per field of `Zca`.
_ZCA_KEYS = tuple(f"zca_{field}" for field in Zca._fields)


def _whitened(split: dict, whitening: Zca) -> dict:
    """A split's uint8 images as pixels in [0, 1] (no mean/std normalisation, docs/method.md §2.2), whitened,
    in float32, stored with the whitening itself (float32) so that later stages can undo it."""
    return {"images": whiten(split["images"].float() / 255, whitening), "labels": split["labels"],
            **{key: tensor.float() for key, tensor in zip(_ZCA_KEYS, whitening)}}


def validation_slice(labels: torch.Tensor, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, validation indices), both increasing: `per_class` images of each class,
    drawn with `seed`, held out of the training set.

    Property (tests): the two are disjoint and together every index; each class gives exactly
    `per_class`; the same seed gives the same slice."""
    generator = torch.Generator().manual_seed(seed)
    held = []
    for label in labels.unique(sorted=True).tolist():
        members = (labels == label).nonzero().flatten()
        if len(members) <= per_class:
            raise LabelworthError(f"validation_images_per_class: {per_class} leaves no training image of class "
                                  f"{label} ({len(members)} in all)")
        held.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    validation = torch.cat(held).sort().values
    kept = torch.ones(len(labels), dtype=torch.bool)
    kept[validation] = False
    return kept.nonzero().flatten(), validation


def prepare_data(dataset: str, raw_root: str | os.PathLike, out_dir: str | os.PathLike,
                 zca: bool = False, validation_per_class: int = 0, validation_seed: int = 0) -> None:
    """Write out_dir/train.pt and out_dir/test.pt; nothing is written unless all the input is valid.
    With `validation_per_class` (datasets cached as tensors), that many training images of each class
    (`validation_slice`, seeded) go to out_dir/validation.pt instead of train.pt, so that nothing that
    trains or draws images sees them; a ZCA is then fitted on the rest.

    Cached datasets store {"images": uint8, "labels": int64}; ImageNet stores {"labels"} with the file
    paths in meta["paths"] (its test split is val/), so a selection decodes only the files it picks.
    With `zca`, both splits store float32 images whitened by the ZCA of the whole training set
    (eps `ZCA_EPSILON`) and the whitening as `zca_mean`, `zca_transform`, `zca_inverse`; meta["zca"]
    says which.
    """
    spec, out_dir = dataset_spec(dataset), Path(out_dir)
    if zca and not spec.cached_as_tensors:
        raise LabelworthError(f"{dataset}: ZCA whitening needs the training images in memory; "
                              "it is offered for datasets cached as tensors only")
    if validation_per_class and not spec.cached_as_tensors:
        raise LabelworthError(f"{dataset}: a validation split is offered for datasets cached as tensors only")
    if spec.cached_as_tensors:
        raw = load_raw(dataset, raw_root)  # validates everything before the first write
        if validation_per_class:
            kept, held = validation_slice(raw["train"]["labels"], validation_per_class, validation_seed)
            train = raw["train"]
            raw[VALIDATION] = {"images": train["images"][held], "labels": train["labels"][held]}
            raw["train"] = {"images": train["images"][kept], "labels": train["labels"][kept]}
        whitening = fit_zca(raw["train"]["images"].float() / 255) if zca else None
        details = {"zca": True, "zca_epsilon": ZCA_EPSILON} if zca else {"zca": False}
        for split in SPLITS + ((VALIDATION,) if validation_per_class else ()):
            tensors = raw[split] if whitening is None else _whitened(raw[split], whitening)
            save_tensors(out_dir / f"{split}.pt", tensors,
                         _split_meta(spec, split, raw["class_names"], raw_root, **details))
        return
    index = imagenet_index(raw_root)
    for split, source in (("train", "train"), ("test", "val")):
        save_tensors(out_dir / f"{split}.pt", {"labels": index[source]["labels"]},
                     _split_meta(spec, split, index["class_names"], raw_root, paths=index[source]["paths"]))


# --------------------------------------------------------------------------------------------------
# Cached tensors -> normalised split on the device


def _channel_constants(images: torch.Tensor, spec: DatasetSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """spec.mean and spec.std shaped C x 1 x 1, which broadcasts over C x H x W and N x C x H x W."""
    if images.ndim < 3 or images.shape[-3] != len(spec.mean):
        raise LabelworthError(
            f"images of shape {_dims(images.shape)} do not have the {len(spec.mean)} channel(s) of {spec.name}"
        )
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    return mean, std


def normalize(images_uint8: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    """float32 (x / 255 - spec.mean[c]) / spec.std[c] per channel c; a pixel at the mean maps to 0."""
    if images_uint8.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images_uint8.dtype}")
    mean, std = _channel_constants(images_uint8, spec)
    return (images_uint8.float() / 255 - mean) / std


def denormalize(images_float: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    """The inverse of `normalize` divided by 255, clamped to [0, 1] (distilled pixels may leave the range)."""
    mean, std = _channel_constants(images_float, spec)
    return (images_float * std + mean).clamp(0, 1)


@dataclass
class Split:
    """One split on a device: normalised (or, with `zca`, whitened) float32 images and int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    spec: DatasetSpec
    # The whitening of a split prepared with zca on (float32, on the CPU); None for normalised images.
    zca: Zca | None = None

    @property
    def num_classes(self) -> int:
        # The classes actually present in the files; equal to spec.num_classes for full datasets, fewer
        # for the small Tiny ImageNet trees that tests build.
        return len(self.class_names)


def stored_zca(content: dict, path: str | os.PathLike) -> Zca | None:
    """The whitening a split file from `prepare_data` was prepared with (meta["zca"]), None if none."""
    if not content["meta"].get("zca"):
        return None
    missing = [key for key in _ZCA_KEYS if key not in content]
    if missing:
        raise LabelworthError(f"{path}: meta says zca but the file lacks {', '.join(missing)}")
    return Zca(*(content[key] for key in _ZCA_KEYS))


def load_split(data_dir: str | os.PathLike, split: str, device: str | torch.device = "cpu") -> Split:
    """`_read_split`, its CPU counted as data loading."""
    with phase(DATA):
        return _read_split(data_dir, split, device)


def _read_split(data_dir: str | os.PathLike, split: str, device: str | torch.device = "cpu") -> Split:
    """data_dir/{split}.pt from `prepare_data` on `device`: normalised with its dataset's constants,
    or as stored when it was whitened (`Split.zca` then holds the whitening, on the CPU).

    ImageNet's files hold no images but their paths (see `prepare_data`): those are decoded with the
    eval preset, all of them at once, which suits the test split students are tested on (the full
    validation set needs about 30 GB as float32; training reads its files batch by batch instead).
    """
    if split not in SPLITS + (VALIDATION,):
        raise LabelworthError(f"unknown split {split!r}; expected one of {', '.join(SPLITS + (VALIDATION,))}")
    path = Path(data_dir) / f"{split}.pt"
    header = load_tensors(path, required=("labels",))
    if "paths" in header["meta"] and "images" not in header:
        spec = dataset_spec(header["meta"]["dataset"])
        pixels = load_image_files(header["meta"]["paths"], spec.image_size, train_crop=False)
        header = {**header, "images": pixels}
    content = header
    meta = content["meta"]
    if "dataset" not in meta or "class_names" not in meta:
        raise LabelworthError(f"{path}: not written by prepare_data (meta lacks dataset or class_names)")
    spec = dataset_spec(meta["dataset"])
    images, labels, whitening = content["images"], content["labels"], stored_zca(content, path)
    expected_dtype = torch.uint8 if whitening is None else torch.float32
    if images.dtype != expected_dtype:
        raise LabelworthError(f"{path}: images are {images.dtype}, expected {expected_dtype}")
    _check_image_shape(images, spec, path)
    _check_labels(labels, len(images), len(meta["class_names"]), path)
    # Move the uint8 bytes, not four times as many float bytes, then normalise on the device.
    return Split(
        images=normalize(images.to(device), spec) if whitening is None else images.to(device),
        labels=labels.to(device=device, dtype=torch.int64),
        class_names=list(meta["class_names"]),
        spec=spec,
        zca=whitening,
    )


@dataclass(frozen=True)
class InputSpace:
    """What the workflow's students take as input: the dataset, its class names and its whitening (a
    split's header, read without its images, so ImageNet's index-only splits have one too)."""

    spec: DatasetSpec
    class_names: tuple[str, ...]
    zca: Zca | None

    @property
    def num_classes(self) -> int:
        """The classes the split holds (fewer than the dataset's in the small trees tests write)."""
        return len(self.class_names)

    def from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels (uint8, or floats in [0, 1]) as the workflow's input. Property (tests): uint8 pixels
        give exactly what the dataset's prepared split gives for the same pixels."""
        if self.zca is not None:
            unit = pixels.float() / 255 if pixels.dtype == torch.uint8 else pixels.float()
            return whiten(unit, self.zca)
        if pixels.dtype == torch.uint8:
            return normalize(pixels, self.spec)
        mean = torch.tensor(self.spec.mean).view(-1, 1, 1)
        std = torch.tensor(self.spec.std).view(-1, 1, 1)
        return (pixels.float() - mean) / std


def input_space(data_dir: str | os.PathLike) -> InputSpace:
    """The input space of the prepared training split in `data_dir` (train.pt of prepare_data)."""
    path = Path(data_dir) / "train.pt"
    content = load_tensors(path, required=("labels",))
    meta = content["meta"]
    return InputSpace(dataset_spec(meta["dataset"]), tuple(meta["class_names"]), stored_zca(content, path))
