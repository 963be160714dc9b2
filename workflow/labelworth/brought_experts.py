"""Experts you bring: a trained network's file read into the workflow's architecture, stored as an
expert checkpoint so that labels, online students and SRe2L read it as they read a trained one.

SRe2L, RDED and DD-Ranking label ImageNet with torchvision's pretrained ResNet-18; nobody retrains
it, and here nobody has to. The file may be:
- a state_dict (names -> tensors), alone or under `state_dict`, `model`, `model_state_dict` or `net`
  (the layouts of torchvision's reference scripts and of most training loops), with the prefixes
  DistributedDataParallel (`module.`) and torch.compile (`_orig_mod.`) add taken off;
- TorchScript (`torch.jit.save`), whose weights are read without running its code;
- a whole pickled module (`torch.save(model)`), which runs code of the file's choosing when it is
  unpickled, so it is read only when the run says `trusted: true`.
Every other file is read with `weights_only`. The weights must fit `arch` for the dataset exactly:
a wrong key, shape or class count is one line.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from labelworth import io
from labelworth.errors import LabelworthError
from labelworth.experts import measure_epoch, measured_train, prepared_dataset
from labelworth.models import build_model
from labelworth.resume import metrics_csv
from labelworth.settings import BroughtExpertSettings
from labelworth.specs import DatasetSpec, checkpoint_name, format_brought_run
from labelworth.training import resolve_device, train_metric_indices

WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel's and torch.compile's
STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict", "net")  # where training loops keep one
TRAIN_METRIC_IMAGES = 10000  # as a trained expert's (ExpertSettings.train_metric_images)
SHOWN_KEYS = 3  # keys named in a message about keys


def is_torchscript(path: str | os.PathLike) -> bool:
    """Whether a file is a TorchScript archive (a zip with code/ and constants.pkl), not torch.save's zip."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def _without_wrappers(weights: dict) -> dict:
    """The state_dict with the prefixes wrappers add (on every key) taken off."""
    for prefix in WRAPPER_PREFIXES:
        if weights and all(key.startswith(prefix) for key in weights):
            return _without_wrappers({key[len(prefix):]: value for key, value in weights.items()})
    return weights


def _state_dict(content, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(content, torch.nn.Module):
        return _without_wrappers(dict(content.state_dict()))
    if isinstance(content, dict):
        for key in STATE_DICT_KEYS:
            if isinstance(content.get(key), (dict, torch.nn.Module)):
                return _state_dict(content[key], path)
        if content and all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in content.items()):
            return _without_wrappers(content)
    what = f"a dict with keys {', '.join(map(str, list(content)[:SHOWN_KEYS]))}" if isinstance(content, dict) \
        else f"a {type(content).__name__}"
    raise LabelworthError(f"{path}: holds {what}, not a network's weights; expected a state_dict (names -> tensors), "
                          f"a dict holding one under {', '.join(STATE_DICT_KEYS)}, TorchScript, or a pickled module "
                          "(with trusted: true)")


def read_weights(path: str | os.PathLike, trusted: bool = False) -> dict[str, torch.Tensor]:
    """The state_dict a brought file holds, on the CPU.

    Property (tests): a state_dict, one under a known key, one with wrapper prefixes, and TorchScript
    all give the network's own state_dict; a pickled module gives it only with `trusted`, and without
    it is refused in one line before any of its code runs."""
    path = Path(path)
    if not path.is_file():
        raise LabelworthError(f"{path}: not found")
    if is_torchscript(path):
        with warnings.catch_warnings():  # torch.jit is deprecated for new work, but files saved with it remain
            warnings.simplefilter("ignore", FutureWarning)
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not trusted:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "it holds Python objects"
            raise LabelworthError(
                f"{path}: refused: it holds Python objects, such as a whole pickled module, that run code when they "
                f"are unpickled ({reason[:120]}); save its state_dict() instead, or set trusted: true for a file "
                "you trust") from None
        content = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises many types for a file that is not one of its own
        raise LabelworthError(f"{path}: not a file torch.load reads ({type(error).__name__})") from None
    return _state_dict(content, path)


def _keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


def fit_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], path, arch: str, spec: DatasetSpec) -> None:
    """Load `weights` into `model` (built as `arch` for `spec`), every key and shape exactly.

    Property (tests): a state_dict of the same architecture loads and the model then computes as its
    source did; a wrong class count, a wrong shape, or keys missing or extra are one LabelworthError
    naming the file and what was expected, and leave the model as it was."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in weights]
    extra = [key for key in weights if key not in expected]
    if missing or extra:
        parts = ([f"missing {_keys(missing)}"] if missing else []) + ([f"unexpected {_keys(extra)}"] if extra else [])
        raise LabelworthError(f"{path}: its keys are not those of {arch} ({'; '.join(parts)}); bring the weights of "
                              f"a {arch} for {spec.name}, or name the arch they are")
    classifier = [key for key, value in expected.items() if value.dim() == 2][-1]  # the last linear layer
    found = weights[classifier].shape[0]
    if found != spec.num_classes:
        raise LabelworthError(f"{path}: it classifies {found} classes ({classifier}), but {spec.name} has "
                              f"{spec.num_classes}")
    for key, value in expected.items():
        if tuple(weights[key].shape) != tuple(value.shape):
            raise LabelworthError(f"{path}: {key} has shape {tuple(weights[key].shape)}, but {arch} for {spec.name} "
                                  f"needs {tuple(value.shape)}")
    model.load_state_dict(weights)


def _measure(model: torch.nn.Module, data_dir, spec: DatasetSpec, epoch: int, device: str) -> dict:
    """The metric row of a trained expert's epoch, measured the way its trainer measures it."""
    if spec.cached_as_tensors:
        from labelworth.data import load_split

        device = resolve_device(device)
        model.to(device)
        train, test = load_split(data_dir, "train", device), load_split(data_dir, "test", device)
        return measure_epoch(model, measured_train(train, TRAIN_METRIC_IMAGES), test, epoch, float("nan"))
    from labelworth.experts_distributed import joined_processes, load_image_files_split, measure_files

    train, test = load_image_files_split(data_dir, "train"), load_image_files_split(data_dir, "test")
    with joined_processes(device) as processes:
        model.to(processes.device)
        return measure_files(model, train, test, processes, train_metric_indices(len(train.labels), TRAIN_METRIC_IMAGES),
                             epoch, float("nan"))


def import_expert(data_dir: str | os.PathLike, settings: BroughtExpertSettings, checkpoint_dir: str | os.PathLike,
                  metrics_path: str | os.PathLike, device: str = "auto") -> dict:
    """Read the brought file into `settings.arch`, store it as the expert checkpoint of epoch
    `settings.epochs` and write its one metric row (clean test and train accuracy, as a trained
    expert's); returns that row."""
    spec = prepared_dataset(data_dir)
    weights = read_weights(settings.checkpoint, settings.trusted)
    model = build_model(settings.arch, spec)
    fit_weights(model, weights, settings.checkpoint, settings.arch, spec)
    model.eval()
    row = _measure(model, data_dir, spec, settings.epochs, device)
    digest = io.file_sha256(settings.checkpoint)
    meta = io.provenance("import_expert", dataset=spec.name, arch=settings.arch, epoch=settings.epochs,
                         run=format_brought_run(settings.arch, digest), source=str(settings.checkpoint),
                         source_sha256=digest)
    Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
    io.save_tensors(Path(checkpoint_dir) / checkpoint_name(settings.epochs),
                    {"state_dict": {key: value.cpu() for key, value in model.state_dict().items()}}, meta)
    io.write_text(metrics_path, metrics_csv([row]))
    print(f"{settings.checkpoint} read as {settings.arch} at epoch {settings.epochs}: test accuracy "
          f"{100 * row['test_accuracy']:.2f}%", flush=True)
    return row
