"""The paper's headline comparison (its Tables 1 and 2 and Figure 1, right) on the configured dataset:
every benchmark method's images trained on with hard labels, with the method's own labels where it
makes any, and with each soft-label source's early-stopped expert labels, across images per class,
for every student protocol the benchmark names (Table 1 crosses expert and student architectures)."""

from __future__ import annotations

import pandas as pd

from labelworth.figures.published import anchors, published_accuracy, source_text
from labelworth.figures.results import (
    HEADLINE_NOTE, expert_epochs_note, final_cell, mean_std, paired_cell, student_results,
)
from labelworth.figures.style import (
    ACCURACY_LABEL, IPC_LABEL, REGIME_LINESTYLES, REGIME_MARKERS, REGIME_TITLES, dataset_title, human_bytes, log_axis,
    method_colors, method_regime_legend, new_figure, plot_mean_std, save_figure, save_table,
)
from labelworth.specs import parse_image_method
from labelworth.figures import FigureFiles

METHOD_ORDER = ("random", "dm", "mtt", "bptt", "sre2l")
METHOD_TITLES = {"random": "random real", "dm": "DM", "mtt": "MTT", "bptt": "BPTT", "sre2l": "SRe2L"}


def method_rank(method: str) -> tuple[int, str]:
    """Sort key of an image method: the workflow's own in METHOD_ORDER, then external sets by name."""
    return (METHOD_ORDER.index(method), "") if method in METHOD_ORDER else (len(METHOD_ORDER), method)


def ordered_methods(methods) -> list[str]:
    """The distinct methods among `methods`, in `method_rank` order."""
    return sorted(set(methods), key=method_rank)


def in_method_order(table: pd.DataFrame, after: list[str], before: tuple[str, ...] = ("student",)) -> pd.DataFrame:
    """`table` sorted (stably) by `before`, then its method in `method_rank` order, then `after`."""
    order = table["method"].map(ordered_methods(table["method"]).index)
    return table.assign(order=order).sort_values([*before, "order", *after], kind="stable",
                                                 ignore_index=True).drop(columns="order")


def method_title(method: str) -> str:
    """A method's name in figures and tables: a loss bin by its bin, an external set by its config
    name, marked external."""
    images = parse_image_method(method)
    if images.loss_bin is not None:
        return f"loss bin {images.loss_bin}"
    return METHOD_TITLES.get(method) or f"{images.external_name} (external)"


def label_kind(source: str) -> str:
    """hard, expert (soft labels of an expert) or learned (the method's own labels)."""
    return {"hard": "hard", "learned": "learned"}.get(source, "expert")


def label_kinds(results: pd.DataFrame) -> pd.Series:
    """Each population's label kind: `label_kind`, and online for an expert's labels made batch by
    batch (a protocol with labels: online)."""
    kinds = results["source"].map(label_kind)
    return kinds.where(~(results["online"] & (kinds == "expert")), "online")


def benchmark_protocols(results: pd.DataFrame) -> pd.DataFrame:
    """The rows a benchmark figure draws on one set of axes: the first fixed-label protocol's, and
    the online rows of the online protocol that relabels the most sets (not a method's own relabel
    protocol, such as SRe2L's)."""
    fixed, online = results[~results["online"]], results[results["online"]]
    if len(fixed):
        fixed = fixed[fixed["student"] == fixed["student"].iloc[0]]
    if len(online):
        online = online[online["student"] == online["student"].value_counts().idxmax()]
    return pd.concat([fixed, online])


def soft_label_runs(results: pd.DataFrame) -> list[str]:
    """The trained runs of the soft labels, in order of appearance ('' = the default run)."""
    return list(dict.fromkeys(results.loc[results["labels"] == "expert", "expert_run"]))


def draw(files: FigureFiles, settings) -> None:
    """Inputs: the benchmark's student JSONs: image sets `{method}-ipc{n}` with `hard`, expert labels
    (`expert[-{run}]-e{E}`, one per soft-label source) and, for methods that make labels, `learned`.
    The figure shows the first protocol's students with the first source's soft labels; the table
    shows every protocol and source."""
    results = student_results(files.inputs)
    results["labels"] = label_kinds(results)
    methods = ordered_methods(results["method"])
    dataset = results["dataset"].iloc[0]
    colors = method_colors(methods)
    runs = soft_label_runs(results)
    shown = benchmark_protocols(results)
    shown = shown[(shown["labels"] != "expert") | (shown["expert_run"] == (runs[0] if runs else ""))]

    figure, axes = new_figure(width=6.0, height=2.8)
    for method in methods:
        for kind in REGIME_MARKERS:
            rows = shown[(shown["method"] == method) & (shown["labels"] == kind)]
            if len(rows):
                plot_mean_std(axes, rows["images_per_class"], rows["final_mean"], rows["final_ci"], colors[method],
                              marker=REGIME_MARKERS[kind], linestyle=REGIME_LINESTYLES[kind])
    log_axis(axes, shown["images_per_class"])
    axes.set_xlabel(IPC_LABEL)
    axes.set_ylabel(ACCURACY_LABEL)
    axes.set_title(f"Distilled vs random images, hard vs soft labels ({dataset_title(dataset)})")
    # Two small legends instead of one entry per (method, labels) pair: colour = method, style = labels.
    method_regime_legend(axes, {method_title(method): colors[method] for method in methods}, shown["labels"])
    save_figure(figure, files.png, files.pdf)

    columns = ["student", "method", "images_per_class", "labels", "expert_run", "expert_arch", "student_arch",
               "label_spec", "final_mean", "final_std", "final_low", "final_high", "final_by_seed", "best_mean",
               "best_std", "students", "image_bytes",
               "label_bytes"]
    table = results[columns].assign(order=results["method"].map(ordered_methods(results["method"]).index),
                                    protocol=results["student"].map(list(dict.fromkeys(results["student"])).index))
    table = table.sort_values(["protocol", "order", "images_per_class", "labels", "expert_run"],
                              ignore_index=True).drop(columns=["order", "protocol"])
    table = with_published(table, dataset)
    save_table(table.drop(columns="final_by_seed"), files.table_csv, files.table_md, md_frame=_display_table(table),
               title=f"Student test accuracy (%) on {dataset} for each method's images with hard labels, the "
                     f"method's own labels (if any) and expert soft labels ({expert_epochs_note(results)}): "
                     f"{HEADLINE_NOTE}. 'best of passes' = the best of the periodic test passes, the paper's "
                     "convention (it looks at the test set once per pass). Differences are paired over the "
                     "students' seeds (the same initialisation and batches), with their 95% interval: * where "
                     "it excludes zero, 'not resolved' where it does not. 'paper' = the published number of the "
                     f"cell (best of passes, as the paper reports) and our best of passes minus it."
                     f"{anchor_note(dataset)}")


def with_published(table: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """`table` with the published number of each cell beside ours (labelworth/figures/published.yaml):
    published_mean, published_std, published_source and best_minus_published (NaN where the paper
    has no such cell)."""
    cells = [published_accuracy(dataset, row.method, int(row.images_per_class), row.labels, row.expert_arch,
                                row.student_arch) for row in table.itertuples()]
    return table.assign(
        published_mean=[cell["value"] if cell else None for cell in cells],
        published_std=[cell.get("std") if cell else None for cell in cells],
        published_source=[cell["source"] if cell else "" for cell in cells],
        best_minus_published=[row.best_mean - cell["value"] if cell else None for row, cell in zip(table.itertuples(), cells)],
    )


def anchor_note(dataset: str) -> str:
    """The hard-label anchors of methods this workflow does not run (DC, DSA), for the table's title."""
    by_method: dict[str, list[str]] = {}
    for entry in anchors(dataset):
        by_method.setdefault(entry["method"].upper(), []).append(f"{entry['value']:g} at IPC {entry['ipc']}")
    if not by_method:
        return ""
    sources = sorted({source_text(entry["source"]) for entry in anchors(dataset)})
    listed = "; ".join(f"{method} {', '.join(values)}" for method, values in by_method.items())
    return f" Published hard-label anchors not run here: {listed} ({'; '.join(sources)})."


def fixed_cells(groups: dict, student: str, method: str, ipc: int) -> dict:
    """The cells of the same images (method, IPC) under another student protocol that trained on
    fixed labels (hard or expert soft): the benchmark's own student, which an online protocol's row
    is compared with; {} if none."""
    for (other, other_method, other_ipc), cells in groups.items():
        if (other_method, other_ipc) == (method, ipc) and other != student and any(
                kind in ("hard", "expert") for kind, _ in cells):
            return cells
    return {}


def _display_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (protocol, method, IPC): per label kind (one per soft-label source) the headline
    cell and the best of passes, the paired differences soft - hard and (for a method) method - random
    images under the same labels; the protocol column only when there are several."""
    runs = soft_label_runs(table)
    kinds = [("hard", "", REGIME_TITLES["hard"])]
    kinds += [("expert", run, REGIME_TITLES["expert"] if len(runs) == 1 else f"soft, {run or 'default run'}")
              for run in runs]
    kinds += [("learned", "", REGIME_TITLES["learned"])]
    online = list(dict.fromkeys(table.loc[table["labels"] == "online", "expert_run"]))
    kinds += [("online", run, REGIME_TITLES["online"] if len(online) == 1 else f"online, {run or 'default run'}")
              for run in online]
    rows = []
    groups = {key: {(kind, run if kind in ("expert", "online") else ""): row for kind, run, (_, row)
                    in zip(group["labels"], group["expert_run"], group.iterrows())}
              for key, group in table.groupby(["student", "method", "images_per_class"], sort=False)}
    for (student, method, ipc), group in table.groupby(["student", "method", "images_per_class"], sort=False):
        cells = groups[(student, method, ipc)]
        randoms = groups.get((student, "random", ipc), {}) if method != "random" else {}
        row = {"student": student, "method": method_title(method), "IPC": ipc}
        for kind, run, title in kinds:
            cell = cells.get((kind, run))
            row[title] = final_cell(cell) if cell is not None else ""
        for kind, run, title in kinds:
            cell = cells.get((kind, run))
            row[f"{title} (best of passes)"] = mean_std(cell.best_mean, cell.best_std) if cell is not None else ""
        for kind, run, title in kinds:
            cell = cells.get((kind, run))
            published = cell is not None and not pd.isna(cell.published_mean)
            row[f"{title}: paper"] = ((f"{cell.published_mean:.1f}" if pd.isna(cell.published_std)
                                       else mean_std(cell.published_mean, cell.published_std)) if published else "")
            row[f"{title}: ours - paper"] = f"{cell.best_minus_published:+.1f}" if published else ""
        hard = cells.get(("hard", ""))
        for kind, run, title in [entry for entry in kinds if entry[0] == "expert"]:
            soft = cells.get((kind, run))
            name = "soft - hard" if len(runs) == 1 else f"{title} - hard"
            row[f"{name} (paired)"] = paired_cell(soft, hard) if hard is not None and soft is not None else ""
        # The first soft-label source is the reference a method's own labels and online labels face.
        expert_key = ("expert", runs[0]) if runs else None
        expert_title = kinds[1][2] if runs else ""
        own, expert = cells.get(("learned", "")), cells.get(expert_key)
        row[f"{REGIME_TITLES['learned']} - {expert_title} (paired)"] = (
            paired_cell(own, expert) if own is not None and expert is not None else "")
        for kind, run, title in kinds:
            ours, theirs = cells.get((kind, run)), randoms.get((kind, run))
            row[f"{title}: - random images (paired)"] = (paired_cell(ours, theirs) if ours is not None
                                                         and theirs is not None else "")
        # An online protocol's cell against the fixed labels of the same images under the benchmark's
        # own student: what relabelling every batch adds.
        fixed = fixed_cells(groups, student, method, ipc)
        for kind, run, title in [entry for entry in kinds if entry[0] == "online"]:
            ours = cells.get((kind, run))
            for base_key, base_title in ((expert_key, expert_title), (("learned", ""), REGIME_TITLES["learned"])):
                base = fixed.get(base_key)
                row[f"{title}: - {base_title}, fixed (paired)"] = (paired_cell(ours, base) if ours is not None
                                                                  and base is not None else "")
        row["students"] = int(group["students"].max())
        row["image bytes"] = human_bytes(int(group["image_bytes"].iloc[0]))
        for kind, run, title in kinds:
            cell = cells.get((kind, run))
            row[f"{title}: label bytes"] = human_bytes(int(cell.label_bytes)) if cell is not None else ""
        rows.append(row)
    display = pd.DataFrame(rows)
    if display["student"].nunique() == 1:
        display = display.drop(columns="student")
    # Methods without labels of their own leave the learned columns empty; drop them if all are.
    empty = [column for column in display.columns if (display[column] == "").all()]
    return display.drop(columns=empty)
