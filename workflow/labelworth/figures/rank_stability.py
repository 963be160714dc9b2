"""Does the label regime decide which image set ranks first? The benchmark's image sets ranked by final
accuracy under each label regime, at each IPC, with Kendall's tau between regimes.

The regimes: hard labels; fixed soft labels (the first soft-label source's expert); the set's own
labels (its method's learned or relabelled ones where it makes any, else the hard labels it ships
with); and online labels (an expert relabelling every augmented batch), where the benchmark has
online rows. A pair of regimes is compared on the sets ranked under both; with fewer than two
such sets there is no tau to take, and the table says so.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from labelworth.figures.results import student_results
from labelworth.figures.soft_vs_hard import benchmark_protocols, label_kinds, method_title, ordered_methods
from labelworth.figures.style import (
    REGIME_MARKERS, method_colors, method_regime_legend, new_figure, save_figure, save_table,
)
from labelworth.figures import FigureFiles

REGIMES = ("hard", "fixed soft", "own", "online")
# Each regime drawn with its label kind's marker (REGIME_MARKERS), as in every benchmark figure.
MARKED_AS = {"hard": "hard", "fixed soft": "expert", "own": "learned", "online": "online"}


def kendall_tau(first: dict, second: dict) -> float:
    """Kendall's tau-b between two scorings of the same items (item -> score, higher is better), over
    the items both score; NaN with fewer than two, or when one scoring ties every pair.

    Property (tests): 1 for the same order, -1 for the reversed one, and a hand-counted value for a
    mixed one; tau-b's tie correction where scores tie."""
    items = sorted(set(first) & set(second))
    concordant = discordant = tied_first = tied_second = 0
    for a, b in itertools.combinations(items, 2):
        x, y = np.sign(first[a] - first[b]), np.sign(second[a] - second[b])
        if x == 0 and y == 0:
            continue
        if x == 0:
            tied_first += 1
        elif y == 0:
            tied_second += 1
        elif x == y:
            concordant += 1
        else:
            discordant += 1
    denominator = math.sqrt((concordant + discordant + tied_first) * (concordant + discordant + tied_second))
    return (concordant - discordant) / denominator if denominator else math.nan


def fixed_protocols(results: pd.DataFrame) -> list[str]:
    """The benchmark's fixed-label student protocols, in order of appearance."""
    return list(dict.fromkeys(results.loc[~results["online"], "student"]))


def regime_scores(results: pd.DataFrame, protocol: str | None = None) -> dict[tuple[int, str], dict[str, float]]:
    """(IPC, regime) -> image set (method) -> its mean final accuracy under that regime: hard, fixed
    soft and own under `protocol` (default: the benchmark's first), online under the online protocol
    of most sets."""
    if protocol is not None:
        results = results[(results["student"] == protocol) | results["online"]]
    shown = benchmark_protocols(results.assign(kind=label_kinds(results)))
    main, online = shown[~shown["online"]], shown[shown["online"]]
    sources = list(dict.fromkeys(main.loc[main["kind"] == "expert", "expert_run"]))
    scores: dict[tuple[int, str], dict[str, float]] = {}

    def put(ipc, regime: str, method: str, rows: pd.DataFrame | None) -> None:
        if rows is not None and len(rows):
            scores.setdefault((int(ipc), regime), {})[method] = float(rows["final_mean"].iloc[0])

    for (ipc, method), group in main.groupby(["images_per_class", "method"], sort=False):
        by_kind = {kind: rows for kind, rows in group.groupby("kind")}
        put(ipc, "hard", method, by_kind.get("hard"))
        put(ipc, "own", method, by_kind.get("learned", by_kind.get("hard")))
        if "expert" in by_kind and sources:
            put(ipc, "fixed soft", method, by_kind["expert"][by_kind["expert"]["expert_run"] == sources[0]])
    for (ipc, method), group in online.groupby(["images_per_class", "method"], sort=False):
        put(ipc, "online", method, group)
    return scores


def stability_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per fixed-label protocol and IPC: each regime's ranking (best first) and Kendall's tau
    for every pair of regimes with the number of sets it compares.

    Property (tests): a protocol under which the sets rank otherwise gets rows of its own."""
    rows = []
    for protocol in fixed_protocols(results):
        rows += _protocol_rows(protocol, regime_scores(results, protocol))
    return pd.DataFrame(rows)


def _protocol_rows(protocol: str, scores: dict) -> list[dict]:
    rows = []
    for ipc in sorted({ipc for ipc, _ in scores}):
        row = {"student": protocol, "images_per_class": ipc}
        for regime in REGIMES:
            ranked = sorted(scores.get((ipc, regime), {}).items(), key=lambda item: -item[1])
            row[f"{regime} ranking"] = " > ".join(method_title(method) for method, _ in ranked)
        for first, second in itertools.combinations(REGIMES, 2):
            one, other = scores.get((ipc, first), {}), scores.get((ipc, second), {})
            row[f"tau {first} / {second}"] = kendall_tau(one, other)
            row[f"n {first} / {second}"] = len(set(one) & set(other))
        rows.append(row)
    return rows


def draw(files: FigureFiles, settings) -> None:
    """Inputs: the benchmark's student JSONs (as soft_vs_hard). The figure: each set's rank per regime,
    one panel per IPC, a line per image set."""
    results = student_results(files.inputs)
    scores = regime_scores(results)  # the figure: the benchmark's first protocol, as soft_vs_hard draws it
    table = stability_table(results)
    ipcs = sorted({ipc for ipc, _ in scores})
    methods = ordered_methods(results["method"])
    colors = method_colors(methods)
    figure, axes_row = new_figure(width=2.3 * len(ipcs) + 1.2, height=2.6, ncols=len(ipcs), squeeze=False,
                                  sharey=True)
    for axes, ipc in zip(axes_row[0], ipcs):
        regimes = [regime for regime in REGIMES if scores.get((ipc, regime))]
        for method in methods:
            ranks = []
            for regime in regimes:
                ordered = sorted(scores[(ipc, regime)].items(), key=lambda item: -item[1])
                names = [name for name, _ in ordered]
                ranks.append(names.index(method) + 1 if method in names else np.nan)
            axes.plot(range(len(regimes)), ranks, color=colors[method], linewidth=1)
            for position, (regime, rank) in enumerate(zip(regimes, ranks)):
                axes.plot(position, rank, marker=REGIME_MARKERS[MARKED_AS[regime]], markersize=4, color=colors[method])
        axes.set_xticks(range(len(regimes)), regimes, rotation=30, ha="right")
        axes.set_title(f"IPC {ipc}")
    axes_row[0][0].invert_yaxis()
    axes_row[0][0].set_ylabel("rank (1 = best)")
    drawn = {MARKED_AS[regime] for (_, regime) in scores}
    method_regime_legend(axes_row[0][-1], {method_title(method): colors[method] for method in methods}, drawn,
                         linestyles=False)
    save_figure(figure, files.png, files.pdf)
    display = table.copy()
    for column in [column for column in table.columns if column.startswith("tau ")]:
        display[column] = ["no tau (fewer than 2 sets)" if pd.isna(value) else f"{value:+.2f}" for value in table[column]]
    save_table(table, files.table_csv, files.table_md, md_frame=display,
               title="Rank stability: the benchmark's image sets ranked by mean final accuracy under each label "
                     "regime (hard; fixed soft labels of the first source's expert; own: the method's own labels, "
                     "else its hard ones; all three under each fixed-label protocol (student); online: the online "
                     "protocol of most sets), per protocol and IPC (the figure: the first protocol), and Kendall's tau-b between regimes over the sets both "
                     "rank (n: how many). With so few sets a tau is a description, not a test.")
