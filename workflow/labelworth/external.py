"""Image sets distilled elsewhere, read in as labelworth image sets (config `external_image_sets`).

Three formats are read:

* `pt`: a tensor file as MTT and DATM save it (`images_best.pt`, N x C x H x W, with `lr_best.pt`
  beside it read as the learned lr) or as DD-Ranking's demos load one (`images.pt`, `lr.pt`); a dict as DC, DSA
  and DM save their results (`res_*.pt`: `{'data': [[images, labels], ...], 'accs_all_exps': {...}}`,
  one set per experiment, `experiment` picks one, the first by default; the accuracies are numpy
  floats, read without running code); or a dict holding
  `images` (or `image_syn`) with optional `labels` (`label_syn`) and a learned `lr` (`syn_lr`). Labels
  may also come from a file of their own (`labels:`, MTT's and DATM's `labels_best.pt`, DD-Ranking's
  `labels.pt`). Integer labels are the
  images' classes; float labels (N x classes) are the set's own soft labels, which the label spec
  `learned` then trains on: rows that are distributions as given, anything else read as logits and
  softmaxed. Without integer labels the images are class-major with an equal count per class, as
  MTT and DATM order them.
* `imagefolder`: one folder per class of PNG/JPEG files, as SRe2L, RDED and most decoupled methods
  write them (DD-Ranking's writers: `00003/00000.jpg`). A folder is a class by its name: the dataset's
  class name (a '/' in it written as '_') or its index (digits, any prefix: `3`, `003`, `new003`).
* `labelworth`: an `images.pt` of this workflow (the same dataset), its own labels as `learned`.

Images come as pixels (uint8 0..255, or floats in [0, 1] or [0, 255]) or already normalised into the
workflow's input space (mean/std normalised, or ZCA-whitened where the dataset's prepared splits
are). `normalised: true|false` says which; `auto` decides from the values (uint8 or non-negative values
are pixels: a normalised natural image always has values below 0) and records the choice. Pixels
pass through the same normalisation or whitening as the dataset's real images, so a real subset
written out as PNGs reads back bit for bit.

Every defect in the files is one LabelworthError naming the file and what was expected: a wrong
channel count or image size, a class count that does not match, class folders that are not the
dataset's classes, NaN or inf values, an unreadable image, an empty class, an uneven count per class.

Integrity gates (`integrity_problems`), before any student trains: a set read well has values spread
like the real images' (a wrong `normalised`, normalisation or whitening shifts or scales them all) and
class means that match the real classes' own (a permuted class order does not). A set that fails is
refused in one line, unless `integrity_checks: false`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from labelworth import io
from labelworth.data import _IMAGE_SUFFIXES, InputSpace, input_space, load_image_files
from labelworth.errors import LabelworthError
from labelworth.image_sets import displayed_pixels, save_image_set, shown_images
from labelworth.settings import ExternalImageSetSettings
from labelworth.specs import ImageSetSpec, parse_image_set

IMAGE_KEYS, LABEL_KEYS, LR_KEYS = ("images", "image_syn"), ("labels", "label_syn"), ("lr", "syn_lr")
DISTRIBUTION_TOLERANCE = 1e-3  # how far a row's sum may be from 1 and still be a distribution
# Integrity gates, calibrated on every image set of a default Fashion-MNIST run (random, loss bins, DM,
# MTT, BPTT, SRe2L, IPC 1-50): their means lie within 0.2 real stds of the real images' and their stds
# at 0.95-1.75 times the real std; in the class-order test every one was above all 2,000 random orders,
# and the same sets with their classes shifted or shuffled above 58-92% of them.
MEAN_OFFSET_LIMIT = 0.5  # real stds between the set's mean and the real images'
STD_RATIO_RANGE = (0.5, 2.5)  # the set's std over the real images'
PERMUTATIONS = 2000
CLASS_ORDER_P_LIMIT = 0.01  # a permuted set passes with this probability
REAL_SAMPLE_PER_CLASS = {"tensors": 100, "files": 10}  # real images per class the gates compare with


@dataclass(frozen=True)
class ExternalImages:
    """An external set in the workflow's input space, class-major."""

    images: torch.Tensor  # N x C x H x W float32
    classes: torch.Tensor  # N int64
    learned_labels: torch.Tensor | None  # N x classes probabilities, the set's own labels
    learned_lr: float | None
    read_as: str  # how the values were read (recorded in the set's meta)

    @property
    def images_per_class(self) -> int:
        return len(self.images) // int(self.classes.max() + 1)

    def summary(self) -> dict:
        return {"images_per_class": self.images_per_class, "images": len(self.images),
                "learned_labels": self.learned_labels is not None, "learned_lr": self.learned_lr,
                "read_as": self.read_as}


# ---- reading each format ---------------------------------------------------------------------------


def _numpy_scalar_globals() -> list:
    """What a pickled numpy float or int needs besides torch's safe types (DC/DSA/DM save their
    accuracies as numpy floats): the scalar constructor and the dtypes, none of which runs code."""
    from numpy._core import multiarray  # numpy 2; files numpy 1 wrote name it numpy.core.multiarray

    dtypes = [type(np.dtype(name)) for name in ("float64", "float32", "int64", "int32")]
    return [multiarray.scalar, (multiarray.scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtypes]


def _load_torch(path: Path):
    if not path.exists():
        raise LabelworthError(f"{path}: file not found")
    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:
        raise LabelworthError(f"{path}: cannot be read ({error.strerror or error})") from None
    except Exception as error:  # torch raises many types for a file that is not a tensor file
        raise LabelworthError(f"{path}: not a readable torch tensor file ({type(error).__name__})") from None


def _entry(content: dict, keys: tuple[str, ...], path: Path, required: bool):
    for key in keys:
        if key in content:
            return content[key]
    if required:
        raise LabelworthError(f"{path}: a dict without {' or '.join(repr(key) for key in keys)}; "
                              f"expected the images under one of them (keys found: {', '.join(map(str, content))})")
    return None


def _tensor(value, path: Path, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise LabelworthError(f"{path}: {what} is a {type(value).__name__}, expected a tensor")
    return value.detach().cpu()


def _experiment(content: dict, experiment: int, path: Path) -> tuple:
    """(images, labels) of one experiment of a DC/DSA/DM results dict."""
    sets = content["data"]
    if not isinstance(sets, (list, tuple)) or not all(isinstance(entry, (list, tuple)) and len(entry) == 2
                                                      for entry in sets):
        raise LabelworthError(f"{path}: 'data' is not a list of [images, labels] pairs, as DC, DSA and DM save "
                              "their sets")
    if experiment >= len(sets):
        raise LabelworthError(f"{path}: experiment {experiment}, but the file holds {len(sets)} experiment(s) "
                              f"(0..{len(sets) - 1})")
    return tuple(sets[experiment])


def _read_pt(settings: ExternalImageSetSettings) -> tuple:
    path = Path(settings.path)
    content = _load_torch(path)
    labels = lr = None
    if isinstance(content, dict) and "data" in content:
        images, labels = _experiment(content, settings.experiment, path)
    elif settings.experiment:
        raise LabelworthError(f"{path}: experiment {settings.experiment} asked, but the file is not a DC/DSA/DM "
                              "results dict (no 'data' list of sets)")
    elif isinstance(content, dict):
        images = _entry(content, IMAGE_KEYS, path, required=True)
        labels, lr = _entry(content, LABEL_KEYS, path, False), _entry(content, LR_KEYS, path, False)
    else:
        images = content
    images = _tensor(images, path, "the images")
    if settings.labels:
        labels_path = Path(settings.labels)
        labels = _tensor(_load_torch(labels_path), labels_path, "the labels")
        labels = (labels, labels_path)
    elif labels is not None:
        labels = (_tensor(labels, path, "the labels"), path)
    beside = path.with_name("lr" + path.name[len("images"):])  # MTT/DATM's lr_best.pt, DD-Ranking's lr.pt
    if lr is None and path.name.startswith("images") and beside.is_file():
        lr, path = _load_torch(beside), beside
    if lr is not None:
        lr = float(_tensor(lr, path, "the lr").reshape(-1)[0]) if isinstance(lr, torch.Tensor) else float(lr)
    return images, labels, lr


def _folder_class(name: str, space: InputSpace) -> int | None:
    """The class a folder name means: a class name ('/' written '_') or a trailing index; None if neither."""
    names = {class_name.replace("/", "_"): index for index, class_name in enumerate(space.class_names)}
    names.update({class_name: index for index, class_name in enumerate(space.class_names)})
    if name in names:
        return names[name]
    match = re.fullmatch(r"\D*(\d+)", name)
    if match and int(match[1]) < len(space.class_names):
        return int(match[1])
    return None


def _read_image(path: str, space: InputSpace) -> np.ndarray:
    """One image file as C x H x W uint8; its mode must give the dataset's channels, its size the dataset's."""
    spec = space.spec
    try:
        with Image.open(path) as image:
            image.load()
            mode, size = image.mode, image.size
            expected = "L" if spec.channels == 1 else "RGB"
            if mode != expected:
                raise LabelworthError(
                    f"{path}: a {mode} image; {spec.name} has {spec.channels} channel(s), expected mode {expected} "
                    f"({'greyscale' if spec.channels == 1 else 'colour'})")
            if size != (spec.image_size, spec.image_size):
                raise LabelworthError(f"{path}: image is {size[0]}x{size[1]}, {spec.name} expects "
                                      f"{spec.image_size}x{spec.image_size}")
            pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as error:  # what PIL raises for damaged files
        raise LabelworthError(f"{path}: cannot be read as an image ({error})") from None
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _read_imagefolder(settings: ExternalImageSetSettings, space: InputSpace) -> tuple:
    root = Path(settings.path)
    if not root.is_dir():
        raise LabelworthError(f"{root}: not a folder; format imagefolder expects one folder per class")
    folders = sorted(entry for entry in root.iterdir() if entry.is_dir())
    classes = {folder: _folder_class(folder.name, space) for folder in folders}
    unknown = [folder.name for folder, index in classes.items() if index is None]
    if unknown or not folders:
        raise LabelworthError(
            f"{root}: class folders {', '.join(unknown) or '(none)'} are not classes of {space.spec.name}; "
            "expected one folder per class named by its index (0, 003, new003) or its class name")
    taken: dict[int, Path] = {}
    for folder, index in classes.items():
        if index in taken:
            raise LabelworthError(f"{root}: folders {taken[index].name} and {folder.name} both name class {index}")
        taken[index] = folder
    missing = sorted(set(range(len(space.class_names))) - set(taken))
    if missing:
        raise LabelworthError(f"{root}: no folder for class(es) {', '.join(map(str, missing))} "
                              f"(an empty class); {space.spec.name} has {len(space.class_names)} classes")
    pixels, labels = [], []
    for index in sorted(taken):
        files = sorted(entry.name for entry in taken[index].iterdir()
                       if entry.is_file() and entry.name.lower().endswith(_IMAGE_SUFFIXES))
        if not files:
            raise LabelworthError(f"{taken[index]}: no image files (an empty class)")
        pixels += [_read_image(str(taken[index] / name), space) for name in files]
        labels += [index] * len(files)
    return torch.from_numpy(np.stack(pixels)), (torch.tensor(labels), root), None


def _read_labelworth(settings: ExternalImageSetSettings, space: InputSpace) -> tuple:
    path = Path(settings.path)
    content = io.load_tensors(path, required=("images", "labels"))
    dataset = content["meta"].get("dataset")
    if dataset != space.spec.name:
        raise LabelworthError(f"{path}: an image set of {dataset}, expected one of {space.spec.name}")
    # Its classes, and the method's own labels when it made any.
    return content["images"], (content["labels"], path), None, content.get("learned_labels")


# ---- checks shared by every format ----------------------------------------------------------------


def _check_images(images: torch.Tensor, space: InputSpace, path) -> None:
    spec = space.spec
    if images.ndim != 4:
        raise LabelworthError(f"{path}: images of shape {tuple(images.shape)}, expected N x {spec.channels} x "
                              f"{spec.image_size} x {spec.image_size}")
    if images.shape[1] != spec.channels:
        raise LabelworthError(f"{path}: images have {images.shape[1]} channel(s), {spec.name} has {spec.channels}")
    if tuple(images.shape[2:]) != (spec.image_size, spec.image_size):
        raise LabelworthError(f"{path}: images are {images.shape[2]}x{images.shape[3]}, {spec.name} expects "
                              f"{spec.image_size}x{spec.image_size}")
    if images.is_floating_point() and not torch.isfinite(images).all():
        raise LabelworthError(f"{path}: images hold NaN or inf values")
    if not images.is_floating_point() and images.dtype != torch.uint8:
        raise LabelworthError(f"{path}: images are {images.dtype}, expected uint8 pixels or floats")


def _classes_and_soft_labels(labels, count: int, num_classes: int, path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(classes, soft labels or None) from the labels given, or class-major classes when none are."""
    if labels is None:
        if count % num_classes:
            raise LabelworthError(f"{path}: {count} images without labels, expected class-major images with an "
                                  f"equal count for each of the {num_classes} classes (give labels: a file of them)")
        return torch.arange(num_classes).repeat_interleave(count // num_classes), None
    labels, where = labels
    if labels.is_floating_point() and labels.ndim == 2:
        if labels.shape != (count, num_classes):
            raise LabelworthError(f"{where}: soft labels of shape {tuple(labels.shape)}, expected {count} x "
                                  f"{num_classes} (one row per image, one value per class)")
        if not torch.isfinite(labels).all():
            raise LabelworthError(f"{where}: labels hold NaN or inf values")
        soft = labels.float()
        distribution = bool((soft >= 0).all()) and bool(((soft.sum(1) - 1).abs() < DISTRIBUTION_TOLERANCE).all())
        soft = soft / soft.sum(1, keepdim=True) if distribution else soft.softmax(1)
        classes, _ = _classes_and_soft_labels(None, count, num_classes, path)
        return classes, soft
    if labels.is_floating_point() or labels.ndim != 1 or len(labels) != count:
        raise LabelworthError(f"{where}: labels of shape {tuple(labels.shape)} ({labels.dtype}), expected {count} "
                              f"class indices or {count} x {num_classes} soft labels")
    labels = labels.long()
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise LabelworthError(f"{where}: labels range {int(labels.min())}..{int(labels.max())}, but the dataset has "
                              f"{num_classes} classes (0..{num_classes - 1}): the class count does not match")
    return labels, None


def _check_counts(classes: torch.Tensor, num_classes: int, path) -> None:
    counts = torch.bincount(classes, minlength=num_classes).tolist()
    empty = [index for index, count in enumerate(counts) if count == 0]
    if empty:
        raise LabelworthError(f"{path}: class(es) {', '.join(map(str, empty))} have no images (an empty class); "
                              f"expected the same number of images for each of the {num_classes} classes")
    if len(set(counts)) > 1:
        raise LabelworthError(f"{path}: an uneven count of images per class ({', '.join(map(str, counts))}); "
                              "expected the same number for every class")


def read_as(images: torch.Tensor, normalised: str) -> str:
    """How to read the values: 'normalised', 'pixels 0-1' or 'pixels 0-255', with '(detected)' when
    `normalised` is auto. Property (tests): uint8 is always pixels; auto reads any negative value as
    normalised."""
    if images.dtype == torch.uint8:
        if normalised == "true":
            raise LabelworthError("uint8 images are pixels, but normalised: true says they are normalised")
        return "pixels 0-255"
    if normalised == "true":
        return "normalised"
    low, high = float(images.min()), float(images.max())
    if normalised == "false":
        return "pixels 0-1" if high <= 1 else "pixels 0-255"
    if low < 0:
        return "normalised (detected)"
    return f"pixels {'0-1' if high <= 1 else '0-255'} (detected)"


# ---- integrity gates ---------------------------------------------------------------------------------


def real_sample(data_dir: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """The first REAL_SAMPLE_PER_CLASS training images of each class, in the input space, and their
    classes: from the prepared tensors, or decoded from ImageNet's files (fewer: decoding is slow)."""
    path = Path(data_dir) / "train.pt"
    content = io.load_tensors(path, required=("labels",))
    labels = content["labels"].long()
    files = "images" not in content
    per_class = REAL_SAMPLE_PER_CLASS["files" if files else "tensors"]
    chosen = torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in range(int(labels.max()) + 1)])
    space = input_space(data_dir)
    if files:
        paths = [content["meta"]["paths"][index] for index in chosen.tolist()]
        images = space.from_pixels(load_image_files(paths, space.spec.image_size, train_crop=False))
    else:
        stored = content["images"][chosen]
        images = stored.float() if space.zca is not None else space.from_pixels(stored)
    return images, labels[chosen]


def _class_means(images: torch.Tensor, classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    flat = images.flatten(1).double()
    return torch.stack([flat[classes == c].mean(0) for c in range(num_classes)])


def class_order_p_value(similarity: torch.Tensor, permutations: int = PERMUTATIONS, seed: int = 0) -> float:
    """A permutation test of the class order: the share of random orders of the set's classes (rows)
    whose mean similarity to the real class of the same index is at least the given order's.

    Property (tests): near 0 when the diagonal holds each row's largest entries; for rows shuffled,
    spread evenly over 0-1 (a permuted set passes as often as the limit allows)."""
    generator = torch.Generator().manual_seed(seed)
    orders = torch.stack([torch.randperm(len(similarity), generator=generator) for _ in range(permutations)])
    given = similarity.diagonal().mean()
    shuffled = similarity[orders, torch.arange(len(similarity))].mean(1)
    return float((shuffled >= given).double().mean())


def integrity_problems(images: torch.Tensor, classes: torch.Tensor, real_images: torch.Tensor,
                       real_classes: torch.Tensor, num_classes: int) -> list[str]:
    """What looks wrong in a set read into the input space, against a sample of the real images:
    its values' spread (a wrong `normalised`, normalisation or whitening) and its class order (its
    class means no closer to the same-index real classes' than under random orders). [] when nothing.

    Property (tests): a set of real images passes; the same set with its classes permuted, or its
    pixels read as normalised values, does not."""
    problems = []
    mean, std = float(images.double().mean()), float(images.double().std())
    real_mean, real_std = float(real_images.double().mean()), float(real_images.double().std())
    if abs(mean - real_mean) > MEAN_OFFSET_LIMIT * real_std or not (
            STD_RATIO_RANGE[0] <= std / real_std <= STD_RATIO_RANGE[1]):
        problems.append(f"its values have mean {mean:.2f} and std {std:.2f}, the real images' {real_mean:.2f} and "
                        f"{real_std:.2f} (allowed: means {MEAN_OFFSET_LIMIT} stds apart, stds {STD_RATIO_RANGE[0]}-"
                        f"{STD_RATIO_RANGE[1]}x): is `normalised` right, and the set in this dataset's "
                        "normalisation or whitening?")
    centre = real_images.flatten(1).double().mean(0)
    ours = torch.nn.functional.normalize(_class_means(images, classes, num_classes) - centre, dim=1)
    theirs = torch.nn.functional.normalize(_class_means(real_images, real_classes, num_classes) - centre, dim=1)
    similarity = ours @ theirs.T
    p_value = class_order_p_value(similarity)
    if p_value > CLASS_ORDER_P_LIMIT:
        looks_like = similarity.argmax(1).tolist()
        moved = [f"{c} like {k}" for c, k in enumerate(looks_like) if c != k][:3]
        problems.append(f"its classes look permuted: its class means match the real classes of the same index no "
                        f"better than {p_value:.0%} of random class orders do (allowed: at most "
                        f"{CLASS_ORDER_P_LIMIT:.0%}; its class {', '.join(moved)})")
    return problems


def read_external_set(settings: ExternalImageSetSettings, space: InputSpace) -> ExternalImages:
    """An external set as the workflow's input, class-major (a stable sort keeps each class's order).

    Property (tests): a labelworth set written out in any format reads back as the same images and
    classes."""
    own_soft = None
    if settings.format == "pt":
        images, labels, lr = _read_pt(settings)
    elif settings.format == "imagefolder":
        images, labels, lr = _read_imagefolder(settings, space)
    else:
        images, labels, lr, own_soft = _read_labelworth(settings, space)
    where = settings.path
    _check_images(images, space, where)
    num_classes = len(space.class_names)
    if settings.format == "labelworth":
        values, how = images.float(), "normalised (a labelworth image set)"
        classes, _ = _classes_and_soft_labels(labels, len(images), num_classes, where)
        soft = own_soft.float() if own_soft is not None else None
    else:
        how = read_as(images, settings.normalised)
        if how.startswith("normalised"):
            values = images.float()
        else:
            values = space.from_pixels(images if images.dtype == torch.uint8 or "0-1" in how else images / 255)
        classes, soft = _classes_and_soft_labels(labels, len(images), num_classes, where)
    _check_counts(classes, num_classes, where)
    order = torch.argsort(classes, stable=True)
    return ExternalImages(values[order].contiguous(), classes[order], None if soft is None else soft[order],
                          lr, how)


def save_external_set(external: ExternalImages, settings: ExternalImageSetSettings, space: InputSpace,
                      image_set: str, out: str | os.PathLike, grid: str | os.PathLike) -> None:
    """Write the set as images/{image_set}/images.pt; its IPC must be what the name says."""
    spec = parse_image_set(image_set)
    if spec.images_per_class != external.images_per_class:
        raise LabelworthError(f"{settings.path}: holds {external.images_per_class} images per class, but the image "
                              f"set is {image_set}; the files changed after they were inspected: rerun")
    save_image_set(out, grid, external.images, external.classes, spec.base,
                   space.spec, list(space.class_names), learned_labels=external.learned_labels,
                   pixels=displayed_pixels(external.images, space.zca), source=settings.path,
                   format=settings.format, read_as=external.read_as, learned_lr=external.learned_lr)


# ---- writing a labelworth set in another method's layout (the default config's external set) -----


def export_image_set(images_path: str | os.PathLike, data_dir: str | os.PathLike, layout: str,
                     out_dir: str | os.PathLike) -> None:
    """Write an image set as another codebase would: `pt` as MTT saves it (images_best.pt, the images
    in the input space, and labels_best.pt, their classes), or `imagefolder` as SRe2L does (one folder
    per class index, a PNG per image, rounded to uint8 pixels). Property (tests): a real-image set
    read back from either gives the same images bit for bit."""
    content = io.load_tensors(images_path, required=("images", "labels"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if layout == "pt":
        for name, tensor in (("images_best.pt", content["images"]), ("labels_best.pt", content["labels"])):
            with io.atomic_path(out_dir / name) as tmp, open(tmp, "wb") as handle:
                torch.save(tensor.clone(), handle)
        return
    space = input_space(data_dir)
    pixels = shown_images(content["images"], space.spec, content.get("pixels")).mul(255).round().to(torch.uint8)
    for index, (image, label) in enumerate(zip(pixels, content["labels"].tolist())):
        folder = out_dir / f"{label:03d}"
        folder.mkdir(exist_ok=True)
        array = image.numpy()
        picture = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
        with io.atomic_path(folder / f"{index:05d}.png") as tmp:
            picture.save(tmp, format="png")
