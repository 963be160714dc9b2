"""A paper config in miniature, derived by program (tests/test_paper_miniatures.py): the same keys,
structure, methods, label specs and named runs, with every grid cut to two entries and every length
(epochs, iterations, seeds) cut to the least that runs, so that a broken key in configs/*.yaml fails.

The cuts are rules on key names, not a copy of any config:
* images per class: v -> min(v, 2), repeats dropped; a list's parallel per-IPC lists (a soft-label
  source's expert_epoch and expert_run) keep the same positions; by_images_per_class entries whose IPC
  repeats one kept before are dropped;
* expert runs train min(epochs, 2) epochs on their first two seeds at most, in min(processes, 2)
  processes; every expert epoch a label names becomes min(epoch, 2), so it stays within its run;
* students train 2 epochs, tested after each, with their first seed;
* the synthesis methods run 2 iterations (MTT: 2 unrolled steps from start epoch 0 over 1 epoch);
* ensembles have at most 2 experts;
* every other list of values (ranks, top_k, temperatures, ...) keeps its first two entries; subject
  classes become 0 and 1, classes the small datasets have.
"""

from __future__ import annotations

import copy

IPC_KEYS = ("images_per_class", "synthesis_images_per_class")
EPOCH_LIST_KEYS = ("expert_epochs",)  # in experiment blocks; methods.mtt.expert_epochs is an int
CUT_LISTS = ("ranks", "top_k", "bins", "temperatures", "true_class_mass", "boost_fraction")
PER_IPC_LISTS = ("expert_epoch", "expert_run")
LONGEST_EPOCH = 2


def _ipc(value: int) -> int:
    return min(value, 2)


def _epoch(value):
    return value if value == "auto" else min(value, LONGEST_EPOCH)


def _kept_positions(ipcs: list[int]) -> list[int]:
    """Positions of a cut IPC list: the first of each new value."""
    seen, kept = set(), []
    for position, value in enumerate(ipcs):
        if _ipc(value) not in seen:
            seen.add(_ipc(value))
            kept.append(position)
    return kept


def _per_ipc(value, positions: list[int]):
    return [value[position] for position in positions] if isinstance(value, list) else value


def _cut_by_ipc(entries: list[dict]) -> list[dict]:
    kept, seen = [], set()
    for entry in entries:
        ipc = _ipc(entry["images_per_class"])
        if ipc not in seen:
            seen.add(ipc)
            kept.append({**entry, "images_per_class": ipc})
    return kept


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def _block(block: dict) -> dict:
    """An experiment block (or the benchmark) cut down."""
    block = copy.deepcopy(block)
    positions = None
    if isinstance(block.get("images_per_class"), list):
        positions = _kept_positions(block["images_per_class"])
        block["images_per_class"] = [_ipc(block["images_per_class"][p]) for p in positions]
    elif "images_per_class" in block:
        block["images_per_class"] = _ipc(block["images_per_class"])
    if "synthesis_images_per_class" in block:
        block["synthesis_images_per_class"] = _unique(_ipc(v) for v in block["synthesis_images_per_class"])
    for source in block.get("soft_labels", []) + block.get("online_students", []):
        for key in PER_IPC_LISTS:
            if key in source:
                source[key] = _per_ipc(source[key], positions)
        if "expert_epoch" in source:
            epoch = source["expert_epoch"]
            source["expert_epoch"] = [_epoch(e) for e in epoch] if isinstance(epoch, list) else _epoch(epoch)
    if "expert_epoch" in block:
        epoch = block["expert_epoch"]
        block["expert_epoch"] = _per_ipc([_epoch(e) for e in epoch], positions) if isinstance(epoch, list) \
            else _epoch(epoch)
    for key in EPOCH_LIST_KEYS:
        if key in block:
            block[key] = _unique(_epoch(e) for e in block[key])[:2]
    for key in ("similarity_epoch",):
        if key in block:
            block[key] = _epoch(block[key])
    for key in CUT_LISTS:
        if key in block:
            block[key] = block[key][:2]
    if "sizes" in block:  # ensembles of at most the two seeds a miniature run trains
        block["sizes"] = _unique(min(size, 2) for size in block["sizes"])
    if "subject_classes" in block:
        block["subject_classes"] = [0, 1]
    if "image" in block:
        block["image"] = 0
    return block


def _expert(run: dict) -> dict:
    return {**run, "epochs": min(run["epochs"], LONGEST_EPOCH), "seeds": run["seeds"][:2],
            **({"processes": min(run["processes"], 2)} if "processes" in run else {})}


def _student(protocol: dict) -> dict:
    protocol = {**protocol, "epochs": 2, "eval_every": 1, "seeds": protocol["seeds"][:1]}
    if "by_images_per_class" in protocol:
        protocol["by_images_per_class"] = _cut_by_ipc(protocol["by_images_per_class"])
    return protocol


METHOD_CUTS = {"iterations": 2, "save_every": 1, "syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 1,
               "window": 1, "total_window": 2, "min_window": 0}


def _method(block: dict) -> dict:
    block = {key: (min(value, METHOD_CUTS[key]) if key in METHOD_CUTS and isinstance(value, int) else value)
             for key, value in block.items()}
    if "teacher_epoch" in block:
        block["teacher_epoch"] = _epoch(block["teacher_epoch"])
    if "num_experts" in block:
        block["num_experts"] = min(block["num_experts"], 2)
    if "by_images_per_class" in block:
        block["by_images_per_class"] = [_method(entry) for entry in _cut_by_ipc(block["by_images_per_class"])]
    return block


def miniature(config: dict, data_root: str) -> dict:
    """`config` cut down as the module says, reading its dataset from `data_root` on the CPU."""
    config = copy.deepcopy(config)
    config.update(data_root=data_root, device="cpu")
    config["experts"] = {name: _expert(run) for name, run in config["experts"].items()}
    config["students"] = {name: _student(protocol) for name, protocol in config["students"].items()}
    config["methods"] = {name: _method(block) for name, block in config.get("methods", {}).items()}
    for key, value in list(config.items()):
        if isinstance(value, dict) and key not in ("experts", "students", "methods", "defaults",
                                                    "external_image_sets"):
            config[key] = _block(value)
    return config
