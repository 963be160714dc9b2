"""How experts learn: test accuracy and the mean entropy of their soft labels on the training set,
per epoch. Soft labels from early epochs are high-entropy; the paper's best expert epoch moves later
(lower entropy) as images per class grow."""

from __future__ import annotations

import pandas as pd
from matplotlib.lines import Line2D

from labelworth.figures.style import REFERENCE_GREY, new_figure, plural, save_figure
from labelworth.figures import FigureFiles

MARK = {"color": "0.2", "linestyle": ":", "linewidth": 1}  # the soft-label epochs' vertical lines


def draw(files: FigureFiles, settings) -> None:
    """Inputs: the experts' metrics.csv files; `settings.marked_epochs` (the fixed epochs soft labels
    are taken from) are drawn as dotted vertical lines, and the legend lists them only when there are
    some (`auto` epochs are chosen later, by the sweep). The expert's curves are grey, as the expert's
    own numbers are in every figure."""
    runs = [pd.read_csv(path) for path in files.inputs]
    marked = sorted(set(settings.marked_epochs))
    figure, (accuracy_axes, entropy_axes) = new_figure(width=6.8, height=2.8, ncols=2)
    for run in runs:
        accuracy_axes.plot(run["epoch"], 100 * run["test_accuracy"], color=REFERENCE_GREY, alpha=0.8)
        entropy_axes.plot(run["epoch"], run["train_label_entropy"], color=REFERENCE_GREY, alpha=0.8)
    for axes in (accuracy_axes, entropy_axes):
        for epoch in marked:
            axes.axvline(epoch, **MARK)
        axes.set_xlabel("expert epoch")
    accuracy_axes.set_ylabel("expert test accuracy (%)")
    entropy_axes.set_ylabel("mean soft-label entropy (nats)")
    accuracy_axes.set_title("Expert test accuracy")
    entropy_axes.set_title("Soft-label entropy on the training set")
    handles = [Line2D([], [], color=REFERENCE_GREY, label=plural(len(runs), "expert run"))]
    if marked:
        handles.append(Line2D([], [], **MARK, label="epochs of the fixed soft labels"))
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    save_figure(figure, files.png, files.pdf)
