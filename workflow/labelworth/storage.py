"""What an image set and its labels cost on disk, as they are stored (METHOD.md 14.4): the bytes a
reader must keep to train a student, so accuracy can be read against storage, as the
label-compression papers (LPLD, NeurIPS 2024) report it. Plain Python, no torch.

* images: real images (random, loss-ranked) are the dataset's uint8 pixels, one byte a value;
  synthesised and external images are float32 tensors (as images.pt holds them), four;
* labels: hard labels a class index each (1 byte up to 256 classes, else 2); a full soft label
  (expert, ensemble, noise, learned) num_classes float32 values; a top-k label k (index, float32
  value) pairs. Online labels, made by a teacher on every batch, cost the teacher's weights (the
  student result records them as `teacher_bytes`).
"""

from __future__ import annotations

from labelworth.specs import DatasetSpec, ImageSetSpec, LabelSpec

FLOAT32 = 4


def index_bytes(num_classes: int) -> int:
    return 1 if num_classes <= 256 else 2


def num_images(image_set: ImageSetSpec, dataset: DatasetSpec) -> int:
    classes = dataset.num_classes - (image_set.without_class is not None)
    return image_set.images_per_class * classes


def image_bytes(image_set: ImageSetSpec, dataset: DatasetSpec) -> int:
    """Bytes of the set's images as stored. Property (tests): a synthesised set costs 4x the real one."""
    values = num_images(image_set, dataset) * dataset.channels * dataset.image_size ** 2
    return values * (1 if image_set.is_real else FLOAT32)


def label_bytes(labels: LabelSpec, image_set: ImageSetSpec, dataset: DatasetSpec) -> int:
    """Bytes of the set's labels as stored: hard class indices, full soft rows, or top-k pairs (the
    smallest k of the spec's top transforms)."""
    count, classes = num_images(image_set, dataset), dataset.num_classes
    if labels.source == "hard":
        return count * index_bytes(classes)
    kept = min([int(t.value) for t in labels.transforms if t.kind == "top"], default=None)
    if kept is not None:
        return count * kept * (index_bytes(classes) + FLOAT32)
    return count * classes * FLOAT32
