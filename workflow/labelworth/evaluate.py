"""`labelworth evaluate --images my_set.pt`: one distilled set, and only what it needs, without
editing the config.

It reads and checks the set first (so bad files stop before anything runs), then writes an evaluation
config (`evaluation_config`): the dataset's config cut down to the set, its random twin (random real
images at its IPC), the teacher's labels at the epochs asked and the label regimes asked, under the
config's protocols; no experiment and no synthesis method. Snakemake runs it in the same results
folder, so what a finished run made (the expert, the twin's labels and students) is reused. At the
end it prints and writes one summary (`results/{run}/evaluations/{name}.md|csv|png`): per label
regime, the set's and its random twin's accuracy with 95% intervals over students and their paired
difference, the set's label-robustness scores, and its image and label bytes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from labelworth.config import SWEEP
from labelworth.errors import LabelworthError
from labelworth.intervals import mean_interval, paired_difference
from labelworth.io import read_json
from labelworth.settings import AUTO, ExternalImageSetSettings
from labelworth.specs import EVALUATION_REGIMES, external_method, external_set, random_set

REPOSITORY = Path(__file__).resolve().parents[2]  # workflow/labelworth/evaluate.py -> the repository


def default_config(dataset: str) -> Path:
    """The repository's config for `dataset`: config.yaml for Fashion-MNIST, else configs/{dataset}.yaml."""
    path = REPOSITORY / ("config.yaml" if dataset == "fashion_mnist" else f"configs/{dataset}.yaml")
    if not path.exists():
        known = ["fashion_mnist"] + sorted(p.stem for p in (REPOSITORY / "configs").glob("*.yaml"))
        raise LabelworthError(f"--dataset {dataset}: no config for it in this repository (known: {', '.join(known)}); "
                              "give one with --configfile")
    return path


def set_name(path: str) -> str:
    """An `external_image_sets` key from a file or folder name: lower case, runs of other characters as '_'."""
    return re.sub(r"[^a-z0-9_]+", "_", Path(path).stem.lower()).strip("_") or "external"


def guess_format(path: str) -> str:
    """imagefolder for a folder, labelworth for a file this workflow wrote (it has a meta), else pt."""
    if Path(path).is_dir():
        return "imagefolder"
    import torch

    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # unreadable here: the pt reader says why, in one line
        return "pt"
    return "labelworth" if isinstance(content, dict) and "meta" in content else "pt"


def _full_data_accuracy(config) -> float | None:
    """The label-robustness figure's full-data accuracy: the configured value, else the soft-label
    run's expert after its last epoch; None when neither exists (no soft labels were asked for)."""
    from labelworth.figures.label_robustness import full_data_accuracy
    from labelworth.plan import WorkflowPlan
    from labelworth.settings import LabelRobustnessFigure

    settings = LabelRobustnessFigure(full_data_accuracy=config.benchmark.full_data_accuracy)
    metrics = []
    if config.benchmark.soft_labels:
        run = config.benchmark.soft_labels[0].expert_run
        metrics = [path for path in [WorkflowPlan(config).main_metrics(run[0] if isinstance(run, tuple) else run)]
                   if Path(path).exists()]
    return full_data_accuracy(metrics, settings) if metrics or settings.full_data_accuracy else None


OWN_SWEEP_EPOCHS = (1, 2, 4, 8)  # a sweep of its own where the config has no sweep block
TEACHER_ACCURACY_TOLERANCE = 5.0  # points between the teacher's test accuracy and Table 7's before it is refused


def table7_entry(dataset: str, arch: str, images_per_class: int) -> dict | None:
    """The paper's Table 7 cell for this dataset, expert architecture and IPC (its expert epoch and
    the expert's test accuracy), or None."""
    from labelworth.figures.published import published

    for entry in published()["table7"]:
        if (entry["dataset"], entry["ipc"]) == (dataset, images_per_class) and arch.startswith(entry["expert"]):
            return entry
    return None


def teacher_epoch(config, layout, run: str, images_per_class: int) -> tuple[int | str, str, dict | None]:
    """The teacher's epoch for a set at `images_per_class`, where it came from, and the Table 7 cell
    it came from (else None): the sweep's table of a finished run, else the paper's Table 7, else the
    config's own number for that IPC, else `auto` (a sweep of its own) where no sweep table exists."""
    from labelworth.plan import read_best_epochs

    sweep = Path(layout.table("expert_epoch_sweep", "csv"))
    if sweep.exists() and images_per_class in (best := read_best_epochs(sweep)):
        return best[images_per_class], f"the expert-epoch sweep's table ({sweep})", None
    entry = table7_entry(config.dataset, config.experts[run].arch, images_per_class)
    if entry is not None:
        return int(entry["expert_epoch"]), "the paper's Table 7", entry
    benchmark = config.benchmark
    if images_per_class in benchmark.images_per_class and benchmark.soft_labels:
        epoch = benchmark.soft_labels[0].expert_epoch[benchmark.images_per_class.index(images_per_class)]
        if isinstance(epoch, int):
            return epoch, "the config's benchmark.soft_labels", None
    if not sweep.exists():  # a sweep of its own writes the sweep's table: only where there is none
        return AUTO, "a sweep of its own at this IPC (no sweep table, no Table 7 cell)", None
    raise LabelworthError(f"no teacher epoch for IPC {images_per_class}: the sweep's table {sweep} has no row for it, "
                          f"the paper's Table 7 has none for {config.dataset} with {config.experts[run].arch}, and "
                          "the config says auto; give --teacher-epoch")


def teacher_accuracy_problem(metrics: str | Path, epoch: int, entry: dict,
                             tolerance: float = TEACHER_ACCURACY_TOLERANCE) -> str | None:
    """What is wrong when the teacher's test accuracy at `epoch` (its metrics.csv) lies more than
    `tolerance` points from the paper's Table 7 cell `entry`, else None: the first sign of data read
    wrongly (class order, normalisation, ZCA) or of other expert settings."""
    import pandas as pd

    rows = pd.read_csv(metrics)
    rows = rows[rows["epoch"] == epoch]
    if rows.empty:
        return f"{metrics}: no epoch {epoch}"
    ours, theirs = 100 * float(rows["test_accuracy"].iloc[0]), float(entry["expert_test_accuracy"])
    if abs(ours - theirs) <= tolerance:
        return None
    return (f"{metrics}: the teacher's test accuracy at epoch {epoch} is {ours:.1f}%, the paper's Table 7 says "
            f"{theirs:.1f}% ({entry['dataset']}, {entry['expert']}, IPC {entry['ipc']}; allowed: {tolerance} points "
            "apart): check the data (class order, normalisation, ZCA) and the expert's settings")


TEACHER_RUN = "evaluation_teacher"  # the expert run a brought teacher (--teacher) is in the evaluation's config


def evaluation_config(raw: dict, name: str, settings: ExternalImageSetSettings, images_per_class: int,
                      epochs: list, regimes: list[str], students: int | None, teacher: dict | None = None,
                      finished_epochs: dict[str, int] | None = None) -> dict:
    """The config of one set's evaluation: the base's dataset, experts and protocols; the benchmark
    on random images (the twin) and the set at its IPC, with hard labels, the teacher's soft labels at
    `epochs` ("soft" in regimes) and the base's online rows ("online"); no experiment, no synthesis.
    An epoch `auto` adds the expert-epoch sweep at the set's IPC only, on the base's sweep grid (a
    sweep of its own, for a results folder that has none).
    With `students`, each protocol (the benchmark's and the online rows') whose seeds at this IPC are
    not 0..students-1 is copied under a name of its own with those seeds, so a finished run's
    populations are never overwritten.
    `teacher`: a run you bring (`experts.<name>` keys: arch, checkpoint, epochs, trusted), which then
    gives the soft labels and teaches the online rows at its epoch.
    Each trained teacher trains only as far as these labels read, or as far as `finished_epochs`
    (run folder -> epochs its expert already has in the results folder) says it went, so that a
    finished run's expert is reused as it is.

    Property (tests): its plan holds no synthesis and no experiment's job; the protocols it uses and
    the expert runs of a finished run are the base's, unchanged, so a finished run's jobs are reused."""
    import copy

    from labelworth.config import load_config
    from labelworth.plan import needed_epochs
    from labelworth.settings import BroughtExpertSettings, explicit_fields

    config = load_config(raw)
    benchmark = config.benchmark
    # The base's results folder: the evaluation reuses, and adds to, the run the base config names.
    derived = {"run": config.run} | {key: copy.deepcopy(raw[key]) for key in ("dataset", "data_root", "device", "image_seed", "zca",
                                                         "selection", "validation_images_per_class", "experts",
                                                         "defaults", "students", "student_populations",
                                                         "methods") if key in raw}
    ipcs = benchmark.images_per_class
    nearest = min(range(len(ipcs)), key=lambda position: abs(ipcs[position] - images_per_class))
    source = benchmark.soft_labels[0] if benchmark.soft_labels else None

    def counted(protocol: str) -> str:
        """The protocol, or its copy under a name of its own with `students` seeds at this IPC."""
        seeds = tuple(range(students or 0))
        if students is None or config.student(protocol, images_per_class).seeds == seeds:
            return protocol
        copied = copy.deepcopy(raw["students"][protocol])
        copied["seeds"] = list(seeds)
        for override in copied.get("by_images_per_class", []):
            override.pop("seeds", None)
        derived["students"][f"{protocol}-{students}students"] = copied
        return f"{protocol}-{students}students"

    protocols = [counted(protocol) for protocol in benchmark.students]
    if teacher is not None:
        derived["experts"][TEACHER_RUN] = dict(teacher)
        epochs = [teacher["epochs"]]
    soft = [] if source is None or "soft" not in regimes else [
        {"expert_epoch": [epoch], "expert_run": TEACHER_RUN if teacher else source.expert_run[nearest],
         "temperature": source.temperature} for epoch in epochs]
    online = []
    for row in benchmark.online_students if "online" in regimes else ():
        online.append({"student": counted(row.student), "methods": ["random", "external"],
                       "temperature": row.temperature})
        if teacher is not None:
            online[-1] |= {"expert_run": TEACHER_RUN, "expert_epoch": teacher["epochs"]}
        elif row.expert_epoch is not None:  # a teacher of its own (ImageNet's fully trained ResNet-18)
            online[-1] |= {"expert_run": row.expert_run[nearest], "expert_epoch": row.expert_epoch[nearest]}
    derived["benchmark"] = {"methods": ["random"], "images_per_class": [images_per_class],
                            "synthesis_images_per_class": [images_per_class], "students": protocols,
                            "soft_labels": soft, "online_students": online}
    if raw.get("benchmark", {}).get("full_data_accuracy") is not None:
        derived["benchmark"]["full_data_accuracy"] = raw["benchmark"]["full_data_accuracy"]
    derived["external_image_sets"] = {name: explicit_fields(settings)}
    if AUTO in epochs:
        sweep = copy.deepcopy(raw.get(SWEEP) or {"expert_epochs": list(OWN_SWEEP_EPOCHS)})
        derived[SWEEP] = sweep | {"enabled": True, "images_per_class": [images_per_class], "student": protocols[0]}
    evaluated = load_config(derived)
    needed = needed_epochs(evaluated)
    for run_name, run in evaluated.experts.items():
        if isinstance(run, BroughtExpertSettings):
            continue
        folder = evaluated.run_folder(run_name)
        first = evaluated.trained_runs[folder].seeds[0]
        if (folder, first) in needed:
            derived["experts"][run_name]["epochs"] = max(needed[(folder, first)], (finished_epochs or {}).get(folder, 0))
    return derived


def finished_epochs(config, layout) -> dict[str, int]:
    """Trained run folder -> how many epochs its first expert has in the results folder (its
    metrics.csv), for the runs that have one."""
    import pandas as pd

    found = {}
    for folder, settings in config.trained_runs.items():
        metrics = Path(layout.metrics(folder, settings.seeds[0]))
        if metrics.exists():
            found[folder] = int(pd.read_csv(metrics)["epoch"].max())
    return found


def final_accuracies(path: str | Path) -> dict[int, float]:
    """Student seed -> final test accuracy (%) of one population's result file."""
    return {int(student["seed"]): 100 * float(student["final_accuracy"]) for student in read_json(path)["students"]}


def _interval_text(interval: dict | None) -> str:
    from labelworth.figures.results import interval_cell

    return "" if interval is None else interval_cell(interval)


def summary_rows(layout, runs: list[tuple[str, str, str]], name: str, images_per_class: int) -> list[dict]:
    """One row per label regime the set was evaluated under (its populations among `runs`, each an
    (image set, label spec, protocol)): the set's and its random twin's final accuracies over
    students (mean, std, 95% interval), their paired difference over the students' common seeds, and
    the bytes; the twin is random real images at the same IPC, labels and protocol (none for the
    set's own labels)."""
    from labelworth.figures.results import student_results

    ours_set, twin_set = external_set(name, images_per_class), random_set(images_per_class)
    planned = set(runs)
    rows = []
    for images, labels, protocol in runs:
        if images != ours_set:
            continue
        path = layout.student(images, labels, protocol)
        described = student_results([path]).iloc[0]
        ours = final_accuracies(path)
        twin = (final_accuracies(layout.student(twin_set, labels, protocol))
                if (twin_set, labels, protocol) in planned else None)
        kind = "online" if described["online"] else "own" if labels == "learned" else described["source"]
        rows.append({
            "regime": f"{kind} ({labels}, {protocol})", "labels": labels, "student": protocol,
            "set": mean_interval(list(ours.values())),
            "twin": None if twin is None else mean_interval(list(twin.values())),
            "difference": None if twin is None else paired_difference(ours, twin),
            "image_bytes": int(described["image_bytes"]), "label_bytes": int(described["label_bytes"]),
        })
    return rows


def robustness_scores(layout, runs: list[tuple[str, str, str]], name: str, full_data: float) -> list[dict]:
    """The set's HLR, IOR and LRS (labelworth/figures/label_robustness.py) from the same populations;
    [] when the regimes asked leave out what they need (the twin's soft labels)."""
    from labelworth.figures.label_robustness import robustness_table
    from labelworth.figures.results import student_results

    frame = student_results([layout.student(*run) for run in runs])
    try:
        table = robustness_table(frame[~frame["online"]], full_data)
    except LabelworthError:
        return []
    return table[table["method"] == external_method(name)].to_dict("records")


STORED_CHAINS = ("fp16", "int8", "top2-int8")  # the smaller ways the summary prices the set's soft labels in


def label_budget(dataset: str, name: str, images_per_class: int) -> str:
    """The set's soft labels' bytes as stored in float32 and in each of STORED_CHAINS
    (labelworth/storage.py), e.g. 'float32 4,000 B, fp16 2,000 B, ...'."""
    from labelworth.specs import dataset_spec, parse_image_set, parse_label_spec
    from labelworth.storage import label_bytes

    image_set, spec = parse_image_set(external_set(name, images_per_class)), dataset_spec(dataset)
    stored = {"float32": "expert-e1", **{chain: f"expert-e1-{chain}" for chain in STORED_CHAINS}}
    return ", ".join(f"{title} {label_bytes(parse_label_spec(text), image_set, spec):,} B" for title, text in stored.items())


def summary_table(rows: list[dict], robustness: list[dict], budget: str = ""):
    """The summary as (csv frame of plain numbers, markdown frame of 'mean ± std [low, high]' cells);
    `budget`: a row of what its soft labels cost stored smaller (`label_budget`)."""
    import pandas as pd

    plain, shown = [], []
    for row in rows:
        numbers = {"regime": row["regime"], "image_bytes": row["image_bytes"], "label_bytes": row["label_bytes"]}
        for part in ("set", "twin", "difference"):
            interval = row[part] or {}
            numbers.update({f"{part}_{key}": interval.get(key) for key in ("mean", "std", "low", "high", "n")})
        difference = row["difference"]
        numbers["difference_excludes_zero"] = None if difference is None else difference["excludes_zero"]
        plain.append(numbers)
        mark = "" if difference is None or difference["excludes_zero"] is None else (
            " *" if difference["excludes_zero"] else " (not resolved)")
        shown.append({"regime": row["regime"], "the set": _interval_text(row["set"]),
                      "random twin": _interval_text(row["twin"]),
                      "set - twin (paired)": _interval_text(difference) + mark,
                      "image / label bytes": f"{row['image_bytes']:,} / {row['label_bytes']:,}"})
    for score in robustness:
        shown.append({"regime": f"label robustness ({score['its_labels']})",
                      "the set": ", ".join(f"{key} {float(score[key]):.3f}" for key in ("HLR", "IOR", "LRS")),
                      "random twin": "", "set - twin (paired)": "", "image / label bytes": ""})
    if budget:
        shown.append({"regime": "its soft labels stored smaller (bytes only; no students)", "the set": "",
                      "random twin": "", "set - twin (paired)": "", "image / label bytes": budget})
    return pd.DataFrame(plain), pd.DataFrame(shown)


def draw_summary(rows: list[dict], name: str, png: Path, pdf: Path) -> None:
    """The set's and its twin's accuracy per regime, with their 95% intervals."""
    from labelworth.figures.style import method_color, new_figure, save_figure

    figure, axes = new_figure(width=5.0, height=0.5 * len(rows) + 1.2)
    # The set in its method's colour (an external set's), its twin in random images' (every figure's).
    for offset, (part, label, color) in enumerate((("set", "the set", method_color(external_method(name))),
                                                   ("twin", "random real images (its twin)", method_color("random")))):
        for position, row in enumerate(rows):
            interval = row[part]
            if interval is None:
                continue
            error = None if interval["low"] is None else [[interval["mean"] - interval["low"]],
                                                          [interval["high"] - interval["mean"]]]
            axes.barh(position + 0.2 - 0.4 * offset, interval["mean"], height=0.38, xerr=error, color=color,
                      label=label if position == 0 else None, capsize=2)
    axes.set_yticks(range(len(rows)), [row["regime"] for row in rows])
    axes.invert_yaxis()
    axes.set_xlabel("student test accuracy (%), final, 95% interval")
    axes.set_title(external_method(name), loc="left")
    figure.legend(loc="outside lower center", ncols=2)
    save_figure(figure, png, pdf)


def write_summary(layout, dataset: str, runs: list[tuple[str, str, str]], name: str, images_per_class: int,
                  full_data: float | None) -> str:
    """Write evaluations/{name}.md|csv|png|pdf under the results folder; returns the markdown."""
    from labelworth.figures.style import markdown_table, save_table

    rows = summary_rows(layout, runs, name, images_per_class)
    robustness = [] if full_data is None else robustness_scores(layout, runs, name, full_data)
    plain, shown = summary_table(rows, robustness, label_budget(dataset, name, images_per_class))
    folder = Path(layout.root) / "evaluations"
    folder.mkdir(parents=True, exist_ok=True)
    title = (f"{external_set(name, images_per_class)} against random real images at the same IPC (its twin): final "
             "accuracy over students, mean ± std [95% interval]; the difference is paired over the students' "
             "seeds, * where its interval excludes zero")
    save_table(plain, folder / f"{name}.csv", folder / f"{name}.md", title=title, md_frame=shown)
    draw_summary(rows, name, folder / f"{name}.png", folder / f"{name}.pdf")
    return f"{title}\n\n{markdown_table(shown)}"


def run_evaluate(settings: ExternalImageSetSettings, name: str, config_path: Path, cores: int,
                 dry_run: bool = False, teacher_epochs: list[int] | None = None, regimes: tuple[str, ...] = EVALUATION_REGIMES,
                 students: int | None = None, profile: str | None = None, teacher: dict | None = None) -> int:
    """Check the set, evaluate it with only what it needs, print and write its summary; returns
    Snakemake's status. `teacher`: a run you bring (evaluation_config)."""
    import yaml

    from labelworth.config import load_config, read_config_file
    from labelworth.data import input_space
    from labelworth.external import read_external_set
    from labelworth.layout import Layout
    from labelworth.plan import WorkflowPlan, read_best_epochs, student_runs

    base = read_config_file(config_path)
    config = load_config(base)
    layout = Layout.of(config.run)
    snakemake = [sys.executable, "-m", "snakemake", "-s", str(REPOSITORY / "Snakefile"), "--cores", str(cores),
                 "--rerun-incomplete", "--show-failed-logs"]
    if profile:
        snakemake += ["--workflow-profile", str(REPOSITORY / "profiles" / profile)]
    # Targets before --configfile, which takes every argument after it as a config file.
    data = subprocess.run(snakemake + [layout.data("train"), "--configfile", str(config_path)])
    if data.returncode:
        return data.returncode
    external = read_external_set(settings, input_space(Path(layout.data("train")).parent))  # bad files stop here
    print(f"{external_method(name)}: {external.images_per_class} images per class, read as "
          f"{external.read_as}" + (", with its own labels" if external.learned_labels is not None else ""))
    published = None
    if teacher is not None:
        print(f"teacher: {teacher['checkpoint']} read as {teacher['arch']}, at epoch {teacher['epochs']}")
    elif teacher_epochs is None and "soft" in regimes and config.benchmark.soft_labels:
        run = config.benchmark.soft_labels[0].expert_run
        run = run[0] if isinstance(run, tuple) else run
        epoch, where, published = teacher_epoch(config, layout, run, external.images_per_class)
        print(f"teacher epoch {epoch}, from {where}")
        teacher_epochs = [epoch]
    config = evaluation_config(base, name, settings, external.images_per_class, teacher_epochs or [], list(regimes),
                               students, teacher, finished_epochs(config, layout))
    derived = Path("work") / "evaluate" / f"{name}.yaml"
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_text(yaml.safe_dump(config, sort_keys=False))
    evaluated = load_config(config)
    best = None
    if AUTO in (teacher_epochs or []):  # the sweep first: the populations at its best epoch follow from it
        table = layout.table(SWEEP, "csv")
        status = subprocess.run(snakemake + [table] + (["--dry-run"] if dry_run else [])
                                + ["--configfile", str(derived)]).returncode
        if status or dry_run:
            return status
        best = read_best_epochs(table)
        print(f"teacher epoch {best[external.images_per_class]}, from its own sweep ({table})")
    runs = student_runs(evaluated, "soft_vs_hard", best=best, external={name: external.summary()})
    if published is not None and not dry_run:  # the teacher against Table 7, before any student trains
        metrics = WorkflowPlan(evaluated).main_metrics(run)
        status = subprocess.run(snakemake + [metrics, "--configfile", str(derived)]).returncode
        if status:
            return status
        problem = teacher_accuracy_problem(metrics, teacher_epochs[0], published)
        if problem and settings.integrity_checks:
            raise LabelworthError(f"{problem}; --no-integrity-checks to go on")
        if problem:
            print(f"warning: {problem}")
    # The set's summary first (a checkpoint, one short job that a dry run runs too: Snakemake plans
    # nothing behind a checkpoint it has not run), then its and its twin's populations; no table or
    # figure of the benchmark is touched.
    for targets, plan in (([layout.external_summary(name)], []),
                          ([layout.student(*run) for run in runs], ["--dry-run"] if dry_run else [])):
        status = subprocess.run(snakemake + targets + plan + ["--configfile", str(derived)]).returncode
        if status:
            return status
    if dry_run:
        return 0
    full_data = _full_data_accuracy(evaluated)
    print(write_summary(layout, evaluated.dataset, runs, name, external.images_per_class, full_data))
    print(f"written: {Path(layout.root) / 'evaluations' / name}.md, .csv, .png, .pdf")
    return 0
