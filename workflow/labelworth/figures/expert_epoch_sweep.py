"""E4 / the paper's Table 7: which expert epoch gives the best soft labels, per images per class.

Early experts give flat (high-entropy) labels, late ones nearly one-hot labels; the paper finds the
best epoch moves later as IPC grows. The table is also the workflow's answer to `expert_epoch: auto`:
it reads `images_per_class` and `best_expert_epoch` back from the csv.
"""

from __future__ import annotations

import matplotlib.lines
import pandas as pd

from labelworth.errors import LabelworthError
from labelworth.figures.results import (
    HEADLINE_NOTE, best_rows, final_cell, hard_cells, interval_text, paired_cell, student_results,
)
from labelworth.figures.style import (
    ACCURACY_LABEL, REFERENCE_GREY, REFERENCE_LINESTYLES, new_figure, plot_groups, reference_line, save_figure,
    save_table,
)
from labelworth.figures import FigureFiles

TABLE_COLUMNS = ("images_per_class", "best_expert_epoch", "best_accuracy", "best_std", "best_low", "best_high",
                 "hard_accuracy", "selected_on", "validation_accuracy", "test_chosen_epoch", "test_chosen_accuracy",
                 "expert_test_accuracy", "expert_label_entropy", "grid_edge")


def expert_at_epochs(metrics_csv: str, epochs) -> pd.DataFrame:
    """The expert's test accuracy (percent) and mean train-label entropy (nats), indexed by epoch, for
    exactly `epochs`; an epoch the metrics do not cover is an error naming the file."""
    metrics = pd.read_csv(metrics_csv).set_index("epoch")
    missing = sorted(set(epochs) - set(metrics.index))
    if missing:
        raise LabelworthError(f"{metrics_csv}: no expert metrics for epoch(s) {missing}")
    picked = metrics.loc[sorted(set(epochs)), ["test_accuracy", "train_label_entropy"]]
    return picked.assign(test_accuracy=100 * picked["test_accuracy"])


def sweep_table(results: pd.DataFrame, expert: pd.DataFrame) -> pd.DataFrame:
    """One row per IPC with exactly TABLE_COLUMNS: the expert epoch whose soft labels maximise the mean
    final accuracy (on the held-out validation split where the students were tested on one,
    `selected_on`; a tie goes to the earlier epoch), its test accuracy, std and 95% interval, the
    epoch and test accuracy choosing on the test set would give (the same without validation), the hard-label
    accuracy, the expert's test accuracy and label entropy at that epoch, and `grid_edge`: "last"
    when the best epoch is the last one swept (the true optimum may lie later: a lower bound), "first"
    when it is the first (an upper bound), "" when the grid brackets it."""
    soft = results[results["source"] == "expert"]
    on_validation = bool(len(soft)) and soft["validation_mean"].notna().all()
    best = best_rows(soft, "images_per_class", on="validation_mean" if on_validation else "final_mean")
    on_test = best_rows(soft, "images_per_class").set_index("images_per_class")  # what test-set selection picks
    hard = results[results["source"] == "hard"].set_index("images_per_class")["final_mean"]
    epochs = best["expert_epoch"].astype(int)
    return pd.DataFrame({
        "images_per_class": best["images_per_class"],
        "best_expert_epoch": epochs,
        "best_accuracy": best["final_mean"],
        "best_std": best["final_std"],
        "best_low": best["final_low"],
        "best_high": best["final_high"],
        "hard_accuracy": hard.reindex(best["images_per_class"]).to_numpy(),
        "selected_on": "validation" if on_validation else "test",
        "validation_accuracy": best["validation_mean"],
        "test_chosen_epoch": on_test.loc[best["images_per_class"], "expert_epoch"].astype(int).to_numpy(),
        "test_chosen_accuracy": on_test.loc[best["images_per_class"], "final_mean"].to_numpy(),
        "expert_test_accuracy": expert.loc[epochs, "test_accuracy"].to_numpy(),
        "expert_label_entropy": expert.loc[epochs, "train_label_entropy"].to_numpy(),
        "grid_edge": [grid_edge(epoch, soft["expert_epoch"].astype(int)) for epoch in epochs],
    }, columns=TABLE_COLUMNS)


def grid_edge(epoch: int, swept) -> str:
    """'last' or 'first' when `epoch` is an end of the swept epochs (more than one swept), else ''."""
    swept = sorted(set(swept))
    if len(swept) < 2:
        return ""
    return "last" if epoch == swept[-1] else "first" if epoch == swept[0] else ""


def _display_table(table: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    chosen_on = {"validation": "chosen on validation", "test": "chosen on test"}
    display = pd.DataFrame({
        "IPC": table["images_per_class"],
        "best expert epoch": [f">= {epoch} (the grid's last)" if edge == "last" else
                              f"<= {epoch} (the grid's first)" if edge == "first" else str(epoch)
                              for epoch, edge in zip(table["best_expert_epoch"], table["grid_edge"])],
        "selection": table["selected_on"].map(chosen_on),
        "validation acc. (%)": table["validation_accuracy"].round(1),
        "soft labels": [interval_text(*values) for values in zip(table["best_accuracy"], table["best_std"],
                                                                table["best_low"], table["best_high"])],
        "hard labels": hard_cells(results, table["images_per_class"]),
        "expert test acc. (%)": table["expert_test_accuracy"].round(1),
        "label entropy (nats)": table["expert_label_entropy"].round(3),
    })
    if not table["validation_accuracy"].notna().any():
        return display.drop(columns="validation acc. (%)")
    soft = results[results["source"] == "expert"]

    def population(ipc, epoch):
        return soft[(soft["images_per_class"] == ipc) & (soft["expert_epoch"] == epoch)].iloc[0]

    test_chosen = [population(ipc, epoch) for ipc, epoch in zip(table["images_per_class"], table["test_chosen_epoch"])]
    chosen = [population(ipc, epoch) for ipc, epoch in zip(table["images_per_class"], table["best_expert_epoch"])]
    display["chosen on the test set instead: epoch, test acc."] = [
        f"{epoch}: {final_cell(row)}" for epoch, row in zip(table["test_chosen_epoch"], test_chosen)]
    # What choosing on the test set adds to the reported test accuracy, paired over the same students.
    display["test-set choice - validation choice"] = [
        "same epoch" if row["expert_epoch"] == pick["expert_epoch"] else paired_cell(row, pick)
        for row, pick in zip(test_chosen, chosen)]
    return display


def draw(files: FigureFiles, settings) -> None:
    """Inputs: student JSONs of random images with `hard` and `expert-e{E}` labels for several E and
    IPC. `files.expert_metrics`: [the first expert's metrics.csv] (its accuracy and entropy per epoch)."""
    if not files.expert_metrics:
        raise LabelworthError("expert_epoch_sweep needs the first expert's metrics.csv (--expert-metrics)")
    results = student_results(files.inputs)
    soft = results[results["source"] == "expert"].copy()
    expert = expert_at_epochs(files.expert_metrics[0], soft["expert_epoch"].astype(int))
    soft["entropy"] = expert.loc[soft["expert_epoch"].astype(int), "train_label_entropy"].to_numpy()
    table = sweep_table(results, expert)

    figure, (epoch_axes, entropy_axes) = new_figure(width=6.8, height=2.8, ncols=2)
    colors = plot_groups(epoch_axes, soft, "expert_epoch", "images_per_class", lambda ipc: f"IPC {ipc}")
    plot_groups(entropy_axes, soft, "entropy", "images_per_class", lambda ipc: None, colors=colors)
    for _, row in results[results["source"] == "hard"].iterrows():
        reference_line(epoch_axes, row, colors.get(row["images_per_class"]), REFERENCE_LINESTYLES["hard"])
    for _, row in table.iterrows():
        entropy_axes.plot(row["expert_label_entropy"], row["best_accuracy"], marker="*", markersize=11,
                          color=colors[row["images_per_class"]], markeredgecolor="black", linestyle="none")

    # The expert's own accuracy on a second y axis: early-stopped experts are weak classifiers.
    full = pd.read_csv(files.expert_metrics[0])
    full = full[full["epoch"] <= soft["expert_epoch"].max()]
    twin = epoch_axes.twinx()
    twin.plot(full["epoch"], 100 * full["test_accuracy"], color=REFERENCE_GREY, linewidth=1.2)
    twin.spines["right"].set_visible(True)
    twin.grid(False)
    twin.set_ylabel("expert test accuracy (%)", color=REFERENCE_GREY)
    twin.tick_params(axis="y", colors=REFERENCE_GREY)
    epoch_axes.set_zorder(twin.get_zorder() + 1)  # the students' curves over the grey reference
    epoch_axes.patch.set_visible(False)

    epoch_axes.set_xlabel("expert epoch")
    epoch_axes.set_ylabel(ACCURACY_LABEL)
    epoch_axes.set_title("soft labels by expert epoch")
    entropy_axes.set_xlabel("mean soft-label entropy (nats)")
    entropy_axes.set_ylabel(ACCURACY_LABEL)
    entropy_axes.set_title("soft labels by label entropy")
    handles, labels = epoch_axes.get_legend_handles_labels()
    handles += [matplotlib.lines.Line2D([], [], color="black", linestyle=REFERENCE_LINESTYLES["hard"], linewidth=1),
                matplotlib.lines.Line2D([], [], color="0.6", marker="*", markersize=9, markeredgecolor="black",
                                        linestyle="none"),
                matplotlib.lines.Line2D([], [], color=REFERENCE_GREY, linewidth=1.2)]
    labels += ["hard labels (same colour; band: 95% interval)", "best epoch of each IPC", "expert test accuracy"]
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3))
    save_figure(figure, files.png, files.pdf)

    save_table(table, files.table_csv, files.table_md, md_frame=_display_table(table, results),
               title=f"Best expert epoch per images per class on {results['dataset'].iloc[0]} (the analogue of "
                     f"the paper's Table 7): student accuracy (%), {HEADLINE_NOTE}; the best epoch is chosen "
                     "on the held-out validation split with selection: validation, else on the test set as the "
                     "paper does; a tie goes "
                     "to the earlier epoch; a best epoch at an end of the swept grid is only a bound (>= at "
                     "its last epoch, <= at its first).")
