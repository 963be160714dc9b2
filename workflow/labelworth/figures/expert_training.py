"""How experts learn: test accuracy and the mean entropy of their soft labels on the training set,
per epoch. Soft labels from early epochs are high-entropy; the paper's best expert epoch moves later
(lower entropy) as images per class grow."""

from __future__ import annotations

import pandas as pd

from labelworth.figures.style import PALETTE, new_figure, save_figure
from labelworth.figures import FigureFiles


def draw(files: FigureFiles, settings) -> None:
    """Inputs: the experts' metrics.csv files; `settings.marked_epochs` (the epochs soft labels are taken
    from) are drawn as dotted vertical lines."""
    runs = [pd.read_csv(path) for path in files.inputs]
    figure, (accuracy_axes, entropy_axes) = new_figure(width=6.8, height=2.6, ncols=2)
    for index, run in enumerate(runs):
        label = "experts" if index == 0 else None
        accuracy_axes.plot(run["epoch"], 100 * run["test_accuracy"], color=PALETTE[0], alpha=0.8, label=label)
        entropy_axes.plot(run["epoch"], run["train_label_entropy"], color=PALETTE[1], alpha=0.8)
    for axes in (accuracy_axes, entropy_axes):
        for epoch in sorted(set(settings.marked_epochs)):
            axes.axvline(epoch, color="0.4", linestyle=":", linewidth=1)
        axes.set_xlabel("expert epoch")
    accuracy_axes.set_ylabel("expert test accuracy (%)")
    entropy_axes.set_ylabel("mean soft-label entropy (nats)")
    accuracy_axes.set_title(f"{len(runs)} expert run(s)")
    entropy_axes.set_title("dotted: epochs used for soft labels")
    save_figure(figure, files.png, files.pdf)
