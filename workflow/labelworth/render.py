"""docs/results.md, rendered from one run's files: its figures, their tables and captions, and the run's
stamp (commit, date, config, machine, wall time), so that no number in the docs is typed by hand.

Each finished workflow run appends its stamp to logs/{run}/runs.jsonl (Snakemake's onsuccess, in
common.smk), beside the run's job logs and outside results/, whose files repeat bitwise; `labelworth
render-results` reads the run's folders and writes the page. Plain Python (no
torch): it runs in Snakemake's main process.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

from labelworth.errors import LabelworthError

RUNS_FILE = "runs.jsonl"

# Each figure of the workflow: what of the paper it reproduces (or that it goes beyond it).
PAPER_MAP = {
    "soft_vs_hard": "Fig. 1 (right) and Tables 1-2: hard against soft labels for every method's images",
    "benchmark_images": "Fig. 1 (left): the image sets themselves",
    "expert_training": "Fig. 2: the expert's test accuracy and the entropy of its labels over training",
    "expert_epoch_sweep": "Fig. 2 and Table 7: the best expert epoch grows with IPC",
    "temperature_grid": "the official code's temperature x expert-epoch grid",
    "soft_label_bars": "Fig. 3: one image's soft label as the expert trains",
    "class_similarity": "the structure of expert knowledge: mean soft label per class",
    "label_swap": "Fig. 4: swapping the i-th largest label value with the smallest",
    "zero_shot": "Figs. 6-7: learning a class from labels alone (its images removed)",
    "scaling_law": "the data-knowledge scaling law: accuracy against IPC for each kind of label",
    "pareto": "the Pareto frontier of data-efficient learning over expert epochs",
    "ensembles": "expert ensembles as the labeller",
    "image_selection": "the appendix's image selection by expert loss",
    "generated_labels": "the reproduction report's generated labels (true-class mass, boosted entropy)",
    "label_robustness": "beyond the paper: DD-Ranking's label-robustness scores (HLR, IOR, LRS)",
    "accuracy_vs_storage": "beyond the paper: accuracy against the bytes a set takes",
    "pass_inflation": "beyond the paper: how much best-of-test-passes inflates the final accuracy",
    "rank_stability": "beyond the paper: method rankings under each label regime, Kendall's tau",
    "label_budget": "beyond the paper: soft labels stored smaller, and hard labels at equal bytes",
}


def machine() -> str:
    """This machine in words: processor model, core count and GPUs (where nvidia-smi lists any)."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    words = f"{os.cpu_count()}-core {model}"
    try:
        gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        gpus = []
    return words + (f", {len(gpus)} GPU(s): {gpus[0].split('(')[0].split(':', 1)[1].strip()}" if gpus else ", no GPU")


def git_commit(repository: Path) -> str:
    """The checkout's commit (short), `+changes` when tracked files differ from it; `unknown` outside git."""
    def git(*args):
        return subprocess.run(["git", "-C", str(repository), *args], capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def record_run(logs: str | Path, started: float, finished: float, config_files: list[str],
               repository: Path, overrides: dict | None = None) -> dict:
    """Append one finished run's stamp to {logs}/runs.jsonl (the run's log folder) and return it;
    `overrides`: the run's `--config KEY=VALUE` settings, which change what ran as much as a file."""
    stamp = {"commit": git_commit(repository), "started": started, "finished": finished,
             "wall_seconds": round(finished - started, 1), "config": [str(path) for path in config_files],
             "overrides": {str(key): value for key, value in (overrides or {}).items()}, "machine": machine()}
    path = Path(logs) / RUNS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as stream:
        stream.write(json.dumps(stamp, default=str) + "\n")
    return stamp


def run_stamps(logs: Path) -> list[dict]:
    """The stamps of every recorded invocation of the run, in order; one line for a missing or empty file."""
    path = logs / RUNS_FILE
    if not path.exists():
        raise LabelworthError(f"{path}: no run stamp; it is written when a workflow run of this folder finishes "
                              "(snakemake), so render after one")
    stamps = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not stamps:
        raise LabelworthError(f"{path}: empty; render after a finished workflow run")
    return stamps


def longest_stamp(stamps: list[dict]) -> dict:
    """The stamp of the run that built the folder: its longest invocation, not a later top-up."""
    return max(stamps, key=lambda stamp: stamp["wall_seconds"])


def duration_text(seconds: float) -> str:
    """`42 min 06 s` (or `1 h 02 min 06 s`): the wall times the docs quote."""
    minutes, second = divmod(int(round(seconds)), 60)
    hours, minute = divmod(minutes, 60)
    return (f"{hours} h {minute:02d} min" if hours else f"{minute} min") + f" {second:02d} s"


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under `folder`, a file hard-linked twice counted once (as `du` does)."""
    seen, total = set(), 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            status = path.stat()
            if (status.st_dev, status.st_ino) not in seen:
                seen.add((status.st_dev, status.st_ino))
                total += status.st_size
    return total


def config_text(stamp: dict) -> str:
    """The config files of a stamp and its `--config` overrides (stamps before overrides were
    recorded have none)."""
    files = ", ".join(stamp["config"]) or "config.yaml"
    overrides = stamp.get("overrides") or {}
    return files + (" --config " + " ".join(f"{key}={value}" for key, value in overrides.items()) if overrides else "")


def stamp_text(stamps: list[dict]) -> str:
    """The run's one-paragraph stamp: the longest recorded invocation (the run that built the folder,
    not a later top-up), and each later invocation at another commit, which may have redrawn files.

    Property (tests): every commit that ran in the folder after the longest run is named."""
    stamp = longest_stamp(stamps)
    day = datetime.datetime.fromtimestamp(stamp["started"], datetime.timezone.utc)
    config = config_text(stamp)
    later = [other for other in stamps[stamps.index(stamp) + 1:] if other["commit"] != stamp["commit"]]
    return (f"Run: commit `{stamp['commit']}`, config `{config}`, started {day:%Y-%m-%d %H:%M} UTC, "
            f"**{duration_text(stamp['wall_seconds'])}** of Snakemake wall time, on a {stamp['machine']}"
            + (f" (the longest of {len(stamps)} recorded runs of this folder)." if len(stamps) > 1 else ".")
            + "".join(f" Then commit `{other['commit']}` ran in it for {duration_text(other['wall_seconds'])}, "
                      f"redrawing what its changes touched (config `{config_text(other)}`)."
                      for other in later))


def _caption(report_dir: Path, name: str) -> str:
    path = report_dir / f"{name}.rst"
    return " ".join(path.read_text().split()) if path.exists() else ""


def render_results(layout, docs: str | Path, report_dir: str | Path) -> Path:
    """Write {docs}/results.md from the run of `layout` (labelworth.layout.Layout: its results and
    logs folders) and copy its figures (png) into {docs}/figures/; returns the page's path.

    Property (tests): every table cell of the run appears in the page verbatim, each figure present
    in the run is copied and linked, and the stamp names the longest recorded run."""
    results_root, logs, docs, report_dir = Path(layout.root), Path(layout.logs), Path(docs), Path(report_dir)
    stamps = run_stamps(logs)
    figures = [name for name in PAPER_MAP if (results_root / "figures" / f"{name}.png").exists()]
    if not figures:
        raise LabelworthError(f"{results_root}/figures: no figure; render a finished run's folder")
    (docs / "figures").mkdir(parents=True, exist_ok=True)
    lines = ["# Results", "",
             f"Rendered by `labelworth render-results` from the files of one run ({results_root}); "
             "do not edit by hand.", "", stamp_text(stamps),
             f"Its results folder holds **{folder_bytes(results_root) / 1e6:.0f} MB**.", "",
             "Accuracies are in percent: mean ± std over students [95% t-interval of the mean]. A paired "
             "difference carries * where its 95% interval excludes zero and 'not resolved' where it does not.",
             "", "| figure | reproduces |", "|---|---|"]
    lines += [f"| [{name}](#{name.replace('_', '-')}) | {PAPER_MAP[name]} |" for name in figures]
    for name in figures:
        shutil.copyfile(results_root / "figures" / f"{name}.png", docs / "figures" / f"{name}.png")
        lines += ["", f"## {name.replace('_', '-')}", "", f"*{PAPER_MAP[name]}.*", "",
                  f"![{name}](figures/{name}.png)", ""]
        caption = _caption(report_dir, name)
        lines += [caption, ""] if caption else []
        table = results_root / "tables" / f"{name}.md"
        if table.exists():
            lines += [table.read_text().rstrip(), ""]
    page = docs / "results.md"
    page.write_text("\n".join(lines).rstrip() + "\n")
    return page
