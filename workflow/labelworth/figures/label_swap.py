"""E6: is the knowledge in the label's ordering? Swapping each soft label's k-th largest entry with its
smallest keeps every row's values (and entropy) but breaks the ranking; the paper finds the damage
largest for small k. Controls: shuffling all but the top entry, and a one-hot label smoothed to the
same entropy (structure removed, entropy kept)."""

from __future__ import annotations

import matplotlib.lines
import numpy as np
import pandas as pd

from labelworth.figures.results import HEADLINE_NOTE, expert_epochs_note, final_cell, student_results
from labelworth.figures.soft_vs_hard import method_title
from labelworth.figures.style import (
    REFERENCE_GREY, log_axis, method_colors, new_figure, outside_legend, plot_groups,
    save_figure, save_table, sequence_colors,
)
from labelworth.specs import EXTERNAL, parse_image_set
from labelworth.figures import FigureFiles


def images_title(method: str) -> str:
    return "random" if method == "random" else method_title(method)


CONTROLS = {"shuffle": "--", "smooth": ":"}  # control label -> its line style


def relative_to_unswapped(results: pd.DataFrame) -> pd.DataFrame:
    """Each row's mean final accuracy divided by that of its image set's unswapped expert labels (`relative`),
    with the std of the ratio to first order for independent populations (`relative_std`); NaN where
    the unswapped students score 0 (no ratio to take)."""
    base = results[results["transforms"] == ""].set_index("image_set")
    mean0 = base.loc[results["image_set"], "final_mean"].to_numpy()
    std0 = base.loc[results["image_set"], "final_std"].to_numpy()
    means = results["final_mean"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(mean0 > 0, means / np.where(mean0 > 0, mean0, 1), np.nan)
        spread = relative * np.hypot(np.divide(results["final_std"].to_numpy(), means), std0 / mean0)
    return results.assign(relative=relative, relative_std=spread)


def swap_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per image set (random images by IPC, then any external set): the unswapped accuracy (`final_cell`)
    and the relative accuracy of each swap rank and control, as plain numbers (3 decimals) a reader
    can compare with 1; the images column only when an external set is there."""
    rows = []
    results = results.assign(external=results["method"] != "random")
    external = results["external"].any()
    for (_, ipc, image_set), group in results.groupby(["external", "images_per_class", "image_set"]):
        base = group[group["transforms"] == ""].iloc[0]
        row = {"images": images_title(base["method"])} if external else {}
        row |= {"IPC": ipc, "unswapped": final_cell(base)}
        swaps = group[group["transform"] == "swap"].sort_values("transform_value")
        row |= {f"swap {int(k)}": round(r, 3) for k, r in zip(swaps["transform_value"], swaps["relative"])}
        row |= {name: round(group.loc[group["transforms"] == name, "relative"].iloc[0], 3)
                for name in CONTROLS if (group["transforms"] == name).any()}
        rows.append(row)
    return pd.DataFrame(rows)


def draw(files: FigureFiles, settings) -> None:
    """Inputs per IPC: student JSONs of `expert-e{E}`, `expert-e{E}-swap{k}` for several k,
    `expert-e{E}-shuffle` and `expert-e{E}-smooth` on random images."""
    results = relative_to_unswapped(student_results(files.inputs))
    titles = {row.image_set: (f"IPC {row.images_per_class}" if row.method == "random"
                              else f"{images_title(row.method)}, IPC {row.images_per_class}")
              for row in results.itertuples()}
    swaps = results[results["transform"] == "swap"]

    figure, axes = new_figure(width=4.8, height=2.7)
    # Random images by IPC in shades of the sequence; an external set in its method's colour.
    sets = sorted(titles, key=lambda image_set: (parse_image_set(image_set).kind == EXTERNAL,
                                                 parse_image_set(image_set).images_per_class, image_set))
    randoms = sequence_colors([image_set for image_set in sets if parse_image_set(image_set).kind != EXTERNAL])
    externals = method_colors(parse_image_set(image_set).method for image_set in sets if image_set not in randoms)
    order = {image_set: randoms.get(image_set) or externals[parse_image_set(image_set).method] for image_set in sets}
    colors = plot_groups(axes, swaps, "transform_value", "image_set", titles.get, colors=order, y="relative",
                         yerr="relative_std")
    for name, linestyle in CONTROLS.items():
        for _, row in results[results["transforms"] == name].iterrows():
            axes.axhline(row["relative"], color=colors.get(row["image_set"]), linestyle=linestyle, linewidth=1)
    axes.axhline(1.0, color=REFERENCE_GREY, linewidth=0.8)
    if np.isfinite(swaps["relative"]).any():  # a log axis needs data to place
        log_axis(axes, swaps["transform_value"].astype(int), base=2)
    else:
        axes.text(0.5, 0.5, "unswapped students at 0%: no relative accuracy", transform=axes.transAxes, ha="center")
    axes.set_xlabel("swapped rank k (k-th largest ↔ smallest)")
    axes.set_ylabel("accuracy relative to unswapped")
    axes.set_title("Label swap test")
    handles, labels = axes.get_legend_handles_labels()
    handles += [matplotlib.lines.Line2D([], [], color="black", linestyle=style, linewidth=1)
                for style in CONTROLS.values()]
    handles.append(matplotlib.lines.Line2D([], [], color=REFERENCE_GREY, linewidth=0.8))
    labels += ["shuffle control (same colour)", "smoothed control (same colour)", "unswapped (= 1)"]
    outside_legend(axes, handles, labels)
    save_figure(figure, files.png, files.pdf)

    save_table(swap_table(results), files.table_csv, files.table_md,
               title=f"Label swap: unswapped student accuracy (%, {HEADLINE_NOTE}) and each variant's mean accuracy "
                     f"relative to it (1 = no loss); {expert_epochs_note(results)}.")
