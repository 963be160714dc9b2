"""E6: is the knowledge in the label's ordering? Swapping each soft label's k-th largest entry with its
smallest keeps every row's values (and entropy) but breaks the ranking; the paper finds the damage
largest for small k. Controls: shuffling all but the top entry, and a one-hot label smoothed to the
same entropy (structure removed, entropy kept)."""

from __future__ import annotations

import matplotlib.lines
import pandas as pd

from labelworth.figures.results import HEADLINE_NOTE, difference_text, expert_epochs_note, final_cell, student_results
from labelworth.figures.soft_vs_hard import method_title
from labelworth.figures.style import (
    REFERENCE_GREY, log_axis, method_colors, new_figure, outside_legend, plot_groups,
    save_figure, save_table, sequence_colors,
)
from labelworth.intervals import half_width, paired_difference
from labelworth.specs import EXTERNAL, parse_image_set
from labelworth.figures import FigureFiles


def images_title(method: str) -> str:
    return "random" if method == "random" else method_title(method)


CONTROLS = {"shuffle": "--", "smooth": ":"}  # control label -> its line style


def against_unswapped(results: pd.DataFrame) -> pd.DataFrame:
    """Each row minus its image set's unswapped expert labels, paired over the student seeds (the
    same seed gives the same initialisation and batches, so a seed's two accuracies differ only by
    the labels): `difference` (mean, points), `difference_ci` (its 95% interval's half-width, 0 for
    one student) and `difference_cell` (`difference_text`). The unswapped rows get 0.

    Property (tests): a variant whose every student scores d points below its unswapped twin gets
    difference -d with a zero-width interval."""
    base = results[results["transforms"] == ""].set_index("image_set")
    differences = [paired_difference(row["final_by_seed"], base.loc[row["image_set"], "final_by_seed"])
                   for _, row in results.iterrows()]
    return results.assign(
        difference=[d["mean"] for d in differences],
        difference_ci=[half_width(d) for d in differences],
        difference_cell=[difference_text(d) for d in differences],
    )


def swap_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per image set (random images by IPC, then any external set): the unswapped accuracy (`final_cell`)
    and each swap rank's and control's paired difference from it (`difference_cell`, points); the
    images column only when an external set is there."""
    rows = []
    results = results.assign(external=results["method"] != "random")
    external = results["external"].any()
    for (_, ipc, image_set), group in results.groupby(["external", "images_per_class", "image_set"]):
        base = group[group["transforms"] == ""].iloc[0]
        row = {"images": images_title(base["method"])} if external else {}
        row |= {"IPC": ipc, "unswapped": final_cell(base)}
        swaps = group[group["transform"] == "swap"].sort_values("transform_value")
        row |= {f"swap {int(k)}": cell for k, cell in zip(swaps["transform_value"], swaps["difference_cell"])}
        row |= {name: group.loc[group["transforms"] == name, "difference_cell"].iloc[0]
                for name in CONTROLS if (group["transforms"] == name).any()}
        rows.append(row)
    return pd.DataFrame(rows)


def draw(files: FigureFiles, settings) -> None:
    """Inputs per IPC: student JSONs of `expert-e{E}`, `expert-e{E}-swap{k}` for several k,
    `expert-e{E}-shuffle` and `expert-e{E}-smooth` on random images."""
    results = against_unswapped(student_results(files.inputs))
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
    colors = plot_groups(axes, swaps, "transform_value", "image_set", titles.get, colors=order, y="difference",
                         yerr="difference_ci")
    for name, linestyle in CONTROLS.items():
        for _, row in results[results["transforms"] == name].iterrows():
            color = colors.get(row["image_set"])
            axes.axhline(row["difference"], color=color, linestyle=linestyle, linewidth=1)
            # the control's 95% interval as a faint band around its line
            axes.axhspan(row["difference"] - row["difference_ci"], row["difference"] + row["difference_ci"],
                         color=color, alpha=0.12, linewidth=0)
    axes.axhline(0.0, color=REFERENCE_GREY, linewidth=0.8)
    if len(swaps):  # a log axis needs data to place
        log_axis(axes, swaps["transform_value"].astype(int), base=2)
    axes.set_xlabel("swapped rank k (k-th largest ↔ smallest)")
    axes.set_ylabel("accuracy − unswapped (points)")
    axes.set_title("Label swap test")
    handles, labels = axes.get_legend_handles_labels()
    handles += [matplotlib.lines.Line2D([], [], color="black", linestyle=style, linewidth=1)
                for style in CONTROLS.values()]
    handles.append(matplotlib.lines.Line2D([], [], color=REFERENCE_GREY, linewidth=0.8))
    labels += ["shuffle control (same colour)", "smoothed control (same colour)", "unswapped (= 0)"]
    outside_legend(axes, handles, labels)
    save_figure(figure, files.png, files.pdf)

    save_table(swap_table(results), files.table_csv, files.table_md,
               title=f"Label swap: unswapped student accuracy (%, {HEADLINE_NOTE}) and each variant minus it in "
                     "points, paired over the same student seeds [95% interval], * where the interval excludes "
                     f"zero; {expert_epochs_note(results)}.")
