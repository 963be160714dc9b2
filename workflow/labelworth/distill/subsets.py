"""Image sets cut from other image sets: `{set}-without{c}` drops class c's images (the zero-shot
experiment's "treat image" arm, docs/method.md §9 E9), keeping every other image and its order."""

from __future__ import annotations

import dataclasses
import os

from labelworth import io
from labelworth.image_sets import save_image_set
from labelworth.specs import dataset_spec, parse_image_set


def drop_class(images_path: str | os.PathLike, removed_class: int, out_path: str | os.PathLike,
               grid_path: str | os.PathLike) -> None:
    content = io.load_tensors(images_path, required=("images", "labels"))
    meta = content["meta"]
    keep = content["labels"] != removed_class
    base = parse_image_set(meta["image_set"])
    subset = dataclasses.replace(base, without_class=removed_class)
    source, learned, pixels = (content.get(key) for key in ("source_indices", "learned_labels", "pixels"))
    save_image_set(out_path, grid_path, content["images"][keep], content["labels"][keep], subset,
                   dataset_spec(meta["dataset"]), meta["class_names"],
                   source_indices=None if source is None else source[keep],
                   learned_labels=None if learned is None else learned[keep],
                   pixels=None if pixels is None else pixels[keep], cut_from=meta["image_set"])
