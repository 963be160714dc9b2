"""The one plotting style: paper-sized figures, colour-blind-safe colours, png + pdf saved atomically."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (clusters have no display)
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from labelworth.io import atomic_path  # noqa: E402

# Okabe-Ito: distinguishable under the common colour-vision deficiencies and in greyscale print.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
REFERENCE_GREY = "0.45"  # reference curves (e.g. the expert's own accuracy) that no legend colour may claim
HARD_COLOR = PALETTE[-1]  # hard labels next to several soft-label curves: black squares
ACCURACY_LABEL = "student final test accuracy (%)"

STYLE = {
    "figure.dpi": 150,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "pdf.fonttype": 42,  # embed TrueType so the pdf's text stays editable in journals' pipelines
}


def new_figure(width: float = 3.4, height: float = 2.6, **subplot_kwargs):
    """A figure one column of a two-column paper wide (3.4 in), in the house style."""
    with plt.rc_context(STYLE):
        return plt.subplots(figsize=(width, height), constrained_layout=True, **subplot_kwargs)


def save_figure(figure, png_path: str | os.PathLike, pdf_path: str | os.PathLike | None = None) -> None:
    """Equal figures give bitwise-equal files: the pdf's creation date, its only varying field, is
    left out (the png holds no date)."""
    metadata = {"png": {}, "pdf": {"CreationDate": None}}
    with plt.rc_context(STYLE):
        for path, fmt in ((png_path, "png"), (pdf_path, "pdf")):
            if path is not None:
                with atomic_path(path) as tmp:
                    figure.savefig(tmp, format=fmt, metadata=metadata[fmt])
    plt.close(figure)


def markdown_table(frame) -> str:
    """A GitHub-flavoured markdown table of a pandas DataFrame (index dropped)."""
    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def save_table(frame, csv_path: str | os.PathLike, md_path: str | os.PathLike, title: str = "",
               md_frame=None) -> None:
    """`md_frame`: a display version for the markdown (e.g. 'mean ± std' cells) when the csv must keep
    plain numbers for a program to read back; by default both show `frame`."""
    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False)
    with atomic_path(md_path) as tmp:
        tmp.write_text((f"{title}\n\n" if title else "") + markdown_table(frame if md_frame is None else md_frame))


# --------------------------------------------------------------------------------------------------
# Shared drawing pieces: every figure draws populations, log axes and heat maps the same way.


def group_colors(keys) -> dict:
    """A PALETTE colour per key, in the order given (so a group keeps its colour across panels)."""
    return {key: PALETTE[index % len(PALETTE)] for index, key in enumerate(keys)}


def plot_mean_std(axes, x, mean, error, color, label=None, marker="o", **kwargs):
    """One population curve: the mean with error bars (the tables' 95% interval half-widths, NaN
    drawn as none), points joined in increasing x."""
    order = np.argsort(np.asarray(x, dtype=float), kind="stable")
    error = np.nan_to_num(np.asarray(error, dtype=float)[order])
    return axes.errorbar(np.asarray(x, dtype=float)[order], np.asarray(mean)[order], yerr=error,
                         color=color, label=label, marker=marker, markersize=4, capsize=2, **kwargs)


def plot_groups(axes, frame, x: str, by: str, label, colors: dict | None = None, y: str = "final_mean",
                yerr: str = "final_ci", **kwargs) -> dict:
    """One error-bar line per value of `by`, labelled `label(value)`, in the order of `colors` when
    given (else sorted); returns the colours used, so that reference lines can match their group."""
    present = set(frame[by])
    keys = [key for key in colors if key in present] if colors else sorted(present)
    colors = colors or group_colors(keys)
    for key in keys:
        rows = frame[frame[by] == key]
        plot_mean_std(axes, rows[x], rows[y], rows[yerr], colors[key], label=label(key), **kwargs)
    return colors


def log_axis(axes, values=None, axis: str = "x", base: float = 10) -> None:
    """A log axis ticked at exactly `values` (None: a few round numbers in the data's range; a range
    within one decade has no power of ten to tick), written plainly (1, 2, 5, 10 rather than 10^0)."""
    getattr(axes, f"set_{axis}scale")("log", base=base)
    scale_axis = getattr(axes, f"{axis}axis")
    if values is None:
        scale_axis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=6))
    else:
        getattr(axes, f"set_{axis}ticks")(sorted(set(values)))
    scale_axis.set_major_formatter("{x:g}")
    scale_axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def heatmap(figure, axes, values, x_labels, y_labels, cmap: str = "viridis", cell_text=None,
            colorbar_label: str = "", x_rotation: float = 0) -> None:
    """`values` (rows x columns; NaN cells masked, drawn light grey) as coloured cells with a colour
    bar; `cell_text` (same shape, strings) is written in each cell, white on dark colours."""
    colormap = matplotlib.colormaps[cmap].with_extremes(bad="0.9")
    image = axes.imshow(np.ma.masked_invalid(np.asarray(values, dtype=float)), cmap=colormap, aspect="auto")
    # Rotated labels end at their tick (anchor mode), instead of centring on it and drifting off.
    rotated = {"ha": "right", "va": "center", "rotation_mode": "anchor"} if x_rotation else {}
    axes.set_xticks(range(len(x_labels)), x_labels, rotation=x_rotation, **rotated)
    axes.set_yticks(range(len(y_labels)), y_labels)
    axes.grid(False)
    figure.colorbar(image, ax=axes, label=colorbar_label)
    if cell_text is None:
        return
    for (row, column), text in np.ndenumerate(np.asarray(cell_text, dtype=object)):
        value = values[row][column]
        red, green, blue, _ = colormap(image.norm(value)) if np.isfinite(value) else (1, 1, 1, 1)
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        axes.text(column, row, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
