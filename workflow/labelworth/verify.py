"""`labelworth verify`: check every checksummed file under results/, and with `--repair` remove the bad
ones so that one Snakemake command rebuilds exactly them and what depends on them.

Deleting a bad file alone is not enough: Snakemake rebuilds a missing file only when a target needs
it, and a file whose consumers are all done is needed by none, so a plain rerun has nothing to do.
So the command `repair` prints names each removed file as a target beside `all`: Snakemake rebuilds
the targets, and every job downstream of a rebuilt file reruns because its input was updated. The
stages write repeatable bytes, so the results come back identical.

An expert's checkpoints are one declared output, its checkpoints/ folder, so a bad checkpoint
removes the folder (the expert resumes from work/, or retrains from scratch when the bad epoch is
one of its finished ones, and gives the same bytes).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from labelworth import io
from labelworth.errors import LabelworthError
from labelworth.specs import is_seed_folder

CHECKED_SUFFIXES = (".pt", ".json")  # the files io writes with a checksum
FOREIGN_FOLDER = "exports"  # image sets written in other codebases' layouts (MTT's .pt files), without one


@dataclass(frozen=True)
class BadFile:
    path: Path
    reason: str  # the one-line error the file's reader gives


def checked_files(results: Path) -> list[Path]:
    """Every file under `results` that carries a checksum, in path order."""
    return sorted(path for path in Path(results).rglob("*")
                  if path.is_file() and path.suffix in CHECKED_SUFFIXES and not path.name.startswith(".")
                  and FOREIGN_FOLDER not in path.relative_to(results).parts)


def verify(results: str | Path) -> list[BadFile]:
    """The checksummed files under `results` that are unreadable or whose content no longer matches
    their checksum. Property (tests): a file written by io and left alone is never reported; one
    with a changed byte always is."""
    bad = []
    for path in checked_files(Path(results)):
        try:
            io.load_tensors(path) if path.suffix == ".pt" else io.read_json(path)
        except LabelworthError as error:
            bad.append(BadFile(path, str(error)))
    return bad


def declared_output(path: Path) -> Path:
    """The output Snakemake knows `path` as: itself, or an expert's checkpoints/ folder."""
    return path.parent if path.parent.name == "checkpoints" and is_seed_folder(path.parent.parent.name) else path


def repair(bad: list[BadFile]) -> list[Path]:
    """Remove the declared output of each bad file; returns them (the rebuild targets), each once."""
    targets = list(dict.fromkeys(declared_output(item.path) for item in bad))
    for target in targets:
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    return targets


def rebuild_command(targets: list[Path], workdir: Path) -> str:
    """The one command that rebuilds `targets` and everything downstream of them."""
    relative = []
    for target in targets:
        try:
            relative.append(str(target.resolve().relative_to(workdir.resolve())))
        except ValueError:
            relative.append(str(target))
    return "snakemake all " + " ".join(relative)


def run_verify(results: str | Path, do_repair: bool, workdir: str | Path = ".") -> int:
    """The CLI: one line per bad file; with `do_repair`, remove them and print the rebuild command.
    Returns the exit status: 0 when every file is good (or was removed for repair), 1 otherwise."""
    results = Path(results)
    if not results.is_dir():
        raise LabelworthError(f"{results}: no results folder here (run from the workflow's folder, or give --results)")
    bad = verify(results)
    checked = len(checked_files(results))
    for item in bad:
        print(f"bad: {item.reason}")
    if not bad:
        print(f"all {checked} checksummed files under {results} are good")
        return 0
    if not do_repair:
        print(f"{len(bad)} of {checked} files are bad; `labelworth verify --repair` removes them and prints the "
              "command that rebuilds them and what depends on them")
        return 1
    targets = repair(bad)
    print(f"removed {len(targets)} output(s); rebuild them and what depends on them with (add the run's "
          "--configfile, if it had one):")
    print(rebuild_command(targets, Path(workdir)))
    return 0
