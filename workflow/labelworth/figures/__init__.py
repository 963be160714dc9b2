"""One module per figure (and its table). Figures read results files only; nothing here trains.

Every module has one `draw(inputs, png, pdf, table_csv, table_md, expert_metrics, marked_epochs, extra)`
function; `draw_figure` looks it up by the figure's name, which is also its file name.
"""

from __future__ import annotations

import importlib

import matplotlib.pyplot as plt

from labelworth.errors import LabelworthError
from labelworth.figures.style import STYLE

FIGURE_NAMES = (
    "soft_vs_hard", "benchmark_images", "expert_training", "expert_epoch_sweep", "temperature_grid", "soft_label_bars",
    "class_similarity", "label_swap", "zero_shot", "scaling_law", "pareto", "ensembles",
    "image_selection", "generated_labels", "label_robustness",
    "accuracy_vs_storage",
)


def draw_figure(name: str, inputs: list[str], png: str, pdf: str, table_csv: str | None = None,
                table_md: str | None = None, expert_metrics: list[str] = (), marked_epochs: list[int] = (),
                extra: list[str] = ()) -> None:
    if name not in FIGURE_NAMES:
        raise LabelworthError(f"unknown figure {name!r}; known figures: {', '.join(FIGURE_NAMES)}")
    module = importlib.import_module(f"labelworth.figures.{name}")
    # The style must cover the whole drawing: legends, texts and colour bars made after the axes
    # would otherwise take matplotlib's defaults.
    with plt.rc_context(STYLE):
        try:
            module.draw(list(inputs), png, pdf, table_csv, table_md, list(expert_metrics), list(marked_epochs),
                        list(extra))
        except (KeyError, IndexError, ValueError) as error:  # the inputs lack what this figure compares
            raise LabelworthError(
                f"figure {name}: its inputs ({len(inputs)} file(s), first {inputs[0] if inputs else 'none'}) are not "
                f"the results this figure compares ({type(error).__name__}: {error}); give it the files its rule "
                "lists (workflow/rules/figures.smk)") from None
