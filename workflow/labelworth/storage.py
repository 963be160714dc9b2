"""What an image set and its labels cost on disk, as they are stored (docs/method.md §14.4): the bytes a
reader must keep to train a student, so accuracy can be read against storage, as the
label-compression papers (LPLD, NeurIPS 2024) report it. Plain Python, no torch.

* images: real images (random, loss-ranked) are the dataset's uint8 pixels, one byte a value;
  synthesised and external images are float32 tensors (as images.pt holds them), four;
* labels: hard labels a class index each (1 byte up to 256 classes, else 2); a full soft label
  (expert, ensemble, noise, learned) num_classes float32 values; a top-k label k (index, float32
  value) pairs. A spec ending in fp16 stores its values in 2 bytes; one ending in int8 in 1, with
  a float32 scale per row. Online labels, made by a teacher on every batch, cost the teacher's
  weights (the student result records them as `teacher_bytes`).
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


VALUE_BYTES = {"fp16": 2, "int8": 1}  # a stored value under the spec's precision transform (else float32)
ROW_SCALE_BYTES = {"int8": FLOAT32}  # what each row stores besides its values


def label_bytes(labels: LabelSpec, image_set: ImageSetSpec, dataset: DatasetSpec) -> int:
    """Bytes of the set's labels as stored: hard class indices, full soft rows, or top-k pairs (the
    smallest k of the spec's top transforms), each value in the bytes of its precision (float32,
    fp16 or int8 with a scale per row).

    Property (tests): fp16 halves a float32 row's values, int8 quarters them plus 4 bytes a row."""
    count, classes = num_images(image_set, dataset), dataset.num_classes
    if labels.source == "hard":
        return count * index_bytes(classes)
    precision = next((t.kind for t in labels.transforms if t.kind in VALUE_BYTES), None)
    value, row_extra = VALUE_BYTES.get(precision, FLOAT32), ROW_SCALE_BYTES.get(precision, 0)
    kept = min([int(t.value) for t in labels.transforms if t.kind == "top"], default=None)
    if kept is not None:
        return count * (kept * (index_bytes(classes) + value) + row_extra)
    return count * (classes * value + row_extra)
