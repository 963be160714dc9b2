"""The one plotting style: paper-sized figures, one colour per image-set method and one marker per
label regime in every figure, legends that never cover data, png + pdf saved atomically."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (clusters have no display)
import matplotlib.colors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from labelworth.errors import LabelworthError  # noqa: E402
from labelworth.io import atomic_path  # noqa: E402
from labelworth.specs import LOSS_BIN  # noqa: E402

# Okabe-Ito: distinguishable under the common colour-vision deficiencies and in greyscale print.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
# One colour per image-set method, the same in every figure. Random real images are black, the
# baseline every method is read against; all loss bins are one method (real images selected by loss).
METHOD_COLORS = {"random": PALETTE[7], "dm": PALETTE[4], "mtt": PALETTE[0], "bptt": PALETTE[2], "sre2l": PALETTE[3],
                 LOSS_BIN: PALETTE[1]}
# External sets and any method not named above: Okabe-Ito's sky blue, then Tol's muted colours, none
# of them a METHOD_COLORS colour (Okabe-Ito's yellow is left out: it vanishes on white paper).
EXTRA_COLORS = (PALETTE[5], "#882255", "#999933", "#44AA99", "#AA4499", "#332288")
# Groupings that are not methods (IPC, top-k, expert epoch, number of experts, ...): shades of one
# sequential map, dark to light, so an order reads as an order and never as a method. The map's
# palest end is left out: it vanishes on white paper.
SEQUENCE_COLORMAP = "viridis"
SEQUENCE_RANGE = (0.05, 0.8)
# One marker (and line style, where points are joined) per label regime, the same in every figure.
REGIME_MARKERS = {"hard": "s", "expert": "o", "learned": "^", "online": "D"}
REGIME_LINESTYLES = {"hard": "--", "expert": "-", "learned": ":", "online": "-."}
# A population drawn across the axes as a reference (`reference_line`): soft labels dotted, since a
# solid line would read as one of the curves.
REFERENCE_LINESTYLES = {"hard": REGIME_LINESTYLES["hard"], "expert": ":"}
REGIME_TITLES = {"hard": "hard", "expert": "expert soft", "learned": "own learned", "online": "online soft"}
REFERENCE_GREY = "0.45"  # the expert's own numbers and reference lines, which no legend colour may claim
ACCURACY_LABEL = "student final test accuracy (%)"
IPC_LABEL = "images per class (IPC)"
DATASET_TITLES = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                  "tinyimagenet": "Tiny ImageNet", "imagenet": "ImageNet-1K"}

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
    # Every curve names its colour (a method's, a sequence shade, the reference grey); one left without
    # gets the grey rather than a colour that means a method in other figures.
    "axes.prop_cycle": matplotlib.cycler(color=[REFERENCE_GREY]),
    "pdf.fonttype": 42,  # embed TrueType so the pdf's text stays editable in journals' pipelines
}


def new_figure(width: float = 3.4, height: float = 2.6, **subplot_kwargs):
    """A figure one column of a two-column paper wide (3.4 in), in the house style."""
    with plt.rc_context(STYLE):
        return plt.subplots(figsize=(width, height), constrained_layout=True, **subplot_kwargs)


def save_figure(figure, png_path: str | os.PathLike, pdf_path: str | os.PathLike | None = None) -> None:
    """Equal figures give bitwise-equal files: the pdf's creation date, its only varying field, is
    left out (the png holds no date). A legend that covers data, a tick label or an axis label
    (`legend_collisions`) is an error naming the figure, raised before anything is written: every
    figure drawn anywhere is checked."""
    metadata = {"png": {}, "pdf": {"CreationDate": None}}
    with plt.rc_context(STYLE):
        collisions = legend_collisions(figure)
        if collisions:
            plt.close(figure)
            raise LabelworthError(f"figure {Path(png_path).name}: " + "; ".join(collisions)
                                  + " (place the legend outside the axes)")
        for path, fmt in ((png_path, "png"), (pdf_path, "pdf")):
            if path is not None:
                with atomic_path(path) as tmp:
                    figure.savefig(tmp, format=fmt, metadata=metadata[fmt])
    plt.close(figure)


def legend_collisions(figure) -> list[str]:
    """One short description per thing a legend of `figure` (an axes' or the figure's own) covers,
    [] when none: the data of any axes (a line's points, not the box around the whole line, so a
    legend may sit in a curve's empty corner; bars and other patches; scatter and error-bar points;
    images; texts written on the axes, such as annotations), tick labels, axis labels and titles,
    and another legend. Points are widened by their marker's radius; what the axes clip away is
    not drawn and not counted. Draws the canvas (the layout places the legends).

    Property (tests): a legend placed over a line's points is reported, one outside the axes is not."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legends = figure.findobj(Legend)
    collisions = []
    for index, legend in enumerate(legends):
        box = legend.get_window_extent(renderer)
        covered = [what for axes in figure.axes for what in _covered_in(axes, box, renderer)]
        covered += [f"legend {_legend_name(other)}" for other in legends[index + 1:]
                    if _overlap(box, other.get_window_extent(renderer))]
        collisions += [f"legend {_legend_name(legend)} covers {what}" for what in covered]
    return collisions


def _covered_in(axes, box: Bbox, renderer) -> list[str]:
    """What of `axes` the legend box `box` covers (display coordinates), for `legend_collisions`."""
    where = f"axes {axes.get_title() or axes.get_label() or '(untitled)'!r}"
    dpi = axes.figure.dpi
    covered = []
    for line in axes.lines:
        radius = line.get_markersize() * dpi / 72 / 2 if line.get_marker() not in (None, "None", "", " ") else 0
        count = _points_inside(axes, line, line.get_transform().transform(line.get_xydata()), box, radius)
        covered += [f"{plural(count, 'point')} of line {_artist_name(line)} in {where}"] if count else []
    for collection in axes.collections:
        if isinstance(collection, PathCollection):  # scatter: its offsets are the points
            sizes = collection.get_sizes()
            radius = np.sqrt(sizes.max()) * dpi / 72 / 2 if len(sizes) else 0
            points = collection.get_offset_transform().transform(collection.get_offsets())
        elif isinstance(collection, LineCollection):  # error bars: their ends
            segments = [segment for segment in collection.get_segments() if len(segment)]
            radius, points = 0, collection.get_transform().transform(np.concatenate(segments)) if segments else []
        else:
            continue
        count = _points_inside(axes, collection, points, box, radius)
        covered += [f"{plural(count, 'point')} of {_artist_name(collection)} in {where}"] if count else []
    shapes = [(shape, shape.get_clip_on()) for shape in [*axes.patches, *axes.images]]
    shapes += [(text, False) for text in axes.texts if text.get_text().strip()]  # a text runs on past the edge
    for shape, clipped in shapes:
        extent = shape.get_window_extent(renderer)
        extent = Bbox.intersection(extent, axes.bbox) if clipped else extent
        if shape.get_visible() and extent is not None and _overlap(box, extent):
            covered.append(f"{type(shape).__name__.lower()} {_artist_name(shape)} in {where}")
    labels = [("label", label) for label in (axes.xaxis.label, axes.yaxis.label, axes.title)]
    labels += [("tick label", label) for axis in (axes.xaxis, axes.yaxis) for label in _drawn_tick_labels(axis)]
    covered += [f"{kind} {label.get_text()!r} of {where}" for kind, label in labels if label.get_visible()
                and label.get_text().strip() and _overlap(box, label.get_window_extent(renderer))]
    return covered


def _points_inside(axes, artist, points, box: Bbox, radius: float) -> int:
    """How many of `points` (display coordinates) lie within `radius` of `box`, among those drawn."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    points = points[np.isfinite(points).all(axis=1)]
    if not artist.get_visible() or not len(points):
        return 0
    if artist.get_clip_on():
        clip = axes.bbox.padded(0.5)
        points = points[((points >= clip.min) & (points <= clip.max)).all(axis=1)]
    near = box.padded(radius)
    return int(((points > near.min) & (points < near.max)).all(axis=1).sum())


def _drawn_tick_labels(axis) -> list:
    """The tick labels `axis` draws: those of ticks inside its view (the others are kept, not drawn)."""
    low, high = sorted(axis.get_view_interval())
    labels = []
    for locations, ticks in ((axis.get_majorticklocs(), axis.get_major_ticks),
                             (axis.get_minorticklocs(), axis.get_minor_ticks)):
        for location, tick in zip(locations, ticks(len(locations))):
            if low - 1e-9 * abs(high - low) <= location <= high + 1e-9 * abs(high - low):
                labels += [tick.label1, tick.label2]
    return labels


def _overlap(first: Bbox, second: Bbox) -> bool:
    """Whether two boxes share an area (touching edges do not count)."""
    return (min(first.x1, second.x1) > max(first.x0, second.x0)
            and min(first.y1, second.y1) > max(first.y0, second.y0))


def _artist_name(artist) -> str:
    label = artist.get_label()
    return repr(label) if label and not label.startswith("_") else "(unlabelled)"


def _legend_name(legend) -> str:
    title = legend.get_title().get_text()
    return repr(title or ", ".join(text.get_text() for text in legend.get_texts()[:2]))


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


def method_color(method: str) -> str:
    """A method's colour in every figure: METHOD_COLORS by name (every loss bin the loss-bin colour),
    else a deterministic pick among EXTRA_COLORS by the name's checksum.

    Property (tests): a name not in METHOD_COLORS never gets a METHOD_COLORS colour."""
    key = LOSS_BIN if method.startswith(LOSS_BIN) else method
    if key in METHOD_COLORS:
        return METHOD_COLORS[key]
    return EXTRA_COLORS[zlib.crc32(method.encode()) % len(EXTRA_COLORS)]


def method_colors(methods) -> dict[str, str]:
    """`method_color` of each method, except that two methods of one figure never share a colour:
    an unnamed method whose pick is taken gets the next free EXTRA_COLORS colour (in the order given)."""
    colors: dict[str, str] = {}
    for method in methods:
        color = method_color(method)
        if color in colors.values() and color in EXTRA_COLORS:
            start = EXTRA_COLORS.index(color)
            free = [EXTRA_COLORS[(start + step) % len(EXTRA_COLORS)] for step in range(len(EXTRA_COLORS))]
            color = next((candidate for candidate in free if candidate not in colors.values()), color)
        colors[method] = color
    return colors


def sequence_colors(keys) -> dict:
    """One shade of SEQUENCE_COLORMAP per key of an ordered grouping that is not a method (IPC, top-k,
    expert epoch, ...), darkest first in the order given, so that a shade reads as a place in an order.

    Property (tests): distinct keys get distinct shades, none of them a method's colour."""
    keys = list(dict.fromkeys(keys))
    colormap = matplotlib.colormaps[SEQUENCE_COLORMAP]
    shades = np.linspace(*SEQUENCE_RANGE, len(keys)) if len(keys) > 1 else [SEQUENCE_RANGE[0]]
    return {key: matplotlib.colors.to_hex(colormap(shade)) for key, shade in zip(keys, shades)}


def plural(count: int, noun: str, many: str | None = None) -> str:
    """'1 expert run', '3 expert runs' (`many`: an irregular plural, e.g. 'passes')."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def dataset_title(name: str) -> str:
    """A dataset's name as a paper writes it ('fashion_mnist' -> 'Fashion-MNIST')."""
    return DATASET_TITLES.get(name, name)


def method_handles(titles: dict[str, str]) -> list[Line2D]:
    """Legend handles for method colours: a plain line per {title: colour}, no marker (markers are regimes)."""
    return [Line2D([], [], color=color, linewidth=2, label=title) for title, color in titles.items()]


def regime_handles(regimes) -> list[Line2D]:
    """Legend handles for label regimes: each regime's marker and line style in neutral grey."""
    return [Line2D([], [], color="0.3", marker=REGIME_MARKERS[regime], linestyle=REGIME_LINESTYLES[regime],
                   markersize=4, label=REGIME_TITLES[regime]) for regime in regimes]


def outside_legend(axes, handles=None, labels=None, **kwargs):
    """A legend right of `axes`, its top level with the axes' top: clear of the data, and under the
    title's line (a figure legend in the figure's top corner runs into a title wider than its axes).
    Without `handles`, the axes' labelled artists."""
    given = {key: value for key, value in (("handles", handles), ("labels", labels)) if value is not None}
    return axes.legend(**given, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, **kwargs)


def method_regime_legend(axes, methods: dict[str, str], regimes, linestyles: bool = True):
    """The legend of a figure that colours by method and marks by label regime, right of `axes`, in
    two columns: 'images', `methods` {title: colour}; 'labels', the regimes drawn, in REGIME_MARKERS
    order (with their line styles where points are joined). One legend, not two, so that the lists
    never overlap; side by side, so that a long list of methods stays within the axes' height."""
    kinds = regime_handles([regime for regime in REGIME_MARKERS if regime in set(regimes)])
    for handle in kinds if not linestyles else []:
        handle.set_linestyle("none")
    columns = [[_heading("images"), *method_handles(methods)], [_heading("labels"), *kinds]]
    rows = max(len(column) for column in columns)
    # a legend fills column by column: pad the shorter list so that each list is one column
    handles = [handle for column in columns for handle in column + [_heading("")] * (rows - len(column))]
    return outside_legend(axes, handles=handles, ncols=2, handlelength=3 if linestyles else 1.5)


def _heading(text: str) -> Line2D:
    """A legend entry without a symbol: a list's heading, or padding."""
    return Line2D([], [], linestyle="none", label=text)


def label_points(axes, xs, ys, texts, color=None, fontsize: float = 6) -> int:
    """Write each text beside its point (data coordinates), trying a few offsets in turn until it
    stays inside the axes and overlaps no text already written; a text without a free place is left
    out, rather than printed over another or past the axes' edge. Returns how many were left out.
    Call it after everything else is drawn: it places the texts by the finished layout.

    Property (tests): no two written texts overlap."""
    figure = axes.figure
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    offsets = ((3, 2), (3, -8), (-3, 2), (-3, -8), (3, 9), (-3, -15))
    placed: list[Bbox] = []
    left_out = 0
    for x, y, text in sorted(zip(xs, ys, texts), key=lambda point: (point[0], point[1])):
        for dx, dy in offsets:
            note = axes.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                                 color=color, ha="left" if dx > 0 else "right")
            extent = note.get_window_extent(renderer)
            inside = (extent.min >= axes.bbox.min).all() and (extent.max <= axes.bbox.max).all()
            if inside and not any(_overlap(extent, other) for other in placed):
                placed.append(extent)
                break
            note.remove()
        else:
            left_out += 1
    return left_out


def plot_mean_std(axes, x, mean, error, color, label=None, marker=REGIME_MARKERS["expert"], **kwargs):
    """One population curve: the mean with error bars (the tables' 95% interval half-widths, NaN
    drawn as none), points joined in increasing x."""
    order = np.argsort(np.asarray(x, dtype=float), kind="stable")
    error = np.nan_to_num(np.asarray(error, dtype=float)[order])
    return axes.errorbar(np.asarray(x, dtype=float)[order], np.asarray(mean)[order], yerr=error,
                         color=color, label=label, marker=marker, markersize=4, capsize=2, **kwargs)


def plot_groups(axes, frame, x: str, by: str, label, colors: dict | None = None, y: str = "final_mean",
                yerr: str = "final_ci", **kwargs) -> dict:
    """One error-bar line per value of `by`, labelled `label(value)`, in the order of `colors` when
    given (else sorted, in `sequence_colors`: `by` is a grouping such as IPC, not a method); returns
    the colours used, so that reference lines can match their group."""
    present = set(frame[by])
    keys = [key for key in colors if key in present] if colors else sorted(present)
    colors = colors or sequence_colors(keys)
    for key in keys:
        rows = frame[frame[by] == key]
        plot_mean_std(axes, rows[x], rows[y], rows[yerr], colors[key], label=label(key), **kwargs)
    return colors


def reference_line(axes, row, color, linestyle: str, label=None) -> None:
    """A population drawn across the axes as a reference: a line at its mean final accuracy and a
    faint band over its 95% interval (none for one student), as its table cell gives them."""
    axes.axhline(row["final_mean"], color=color, linestyle=linestyle, linewidth=1, label=label)
    if not np.isnan(row["final_low"]):
        axes.axhspan(row["final_low"], row["final_high"], color=color, alpha=0.1, linewidth=0)


def human_bytes(count: float) -> str:
    """1234567 -> '1.2 MB' (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def bytes_axis(axes, values, axis: str = "x") -> None:
    """A log axis of byte counts (`values`: those drawn) written as bytes ('20.0 kB'): ticked at 1, 2
    and 5 times the powers of ten over two decades or less, else at the powers alone, so that
    neighbouring labels never run into each other (as 2x10^4, 3x10^4, 4x10^4 do)."""
    getattr(axes, f"set_{axis}scale")("log")
    span = np.log10(max(values) / min(values)) if min(values) > 0 else np.inf
    scale_axis = getattr(axes, f"{axis}axis")
    scale_axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0) if span <= 2 else (1.0,)))
    scale_axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: human_bytes(value)))
    scale_axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


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
