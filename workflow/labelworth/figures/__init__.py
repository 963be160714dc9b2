"""One module per figure (and its table). Figures read results files only; nothing here trains.

Every module has one `draw(files, settings)` function: `files` names its input and output files by
role (`FigureFiles`), `settings` is what it draws beyond them (labelworth/settings.py
FIGURE_SETTINGS; None for a figure without any). `draw_figure` looks the module up by the figure's
name, which is also its file name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import matplotlib.pyplot as plt

from labelworth.errors import LabelworthError
from labelworth.figures.style import STYLE
from labelworth.settings import FIGURE_SETTINGS, from_options

FIGURE_NAMES = (
    "soft_vs_hard", "benchmark_images", "expert_training", "expert_epoch_sweep", "temperature_grid", "soft_label_bars",
    "class_similarity", "label_swap", "zero_shot", "scaling_law", "pareto", "ensembles",
    "image_selection", "generated_labels", "label_robustness",
    "accuracy_vs_storage", "pass_inflation", "rank_stability", "label_budget",
)


@dataclass(frozen=True)
class FigureFiles:
    """A figure's files by role: what it draws (`inputs`: student results, metrics, images or labels),
    the expert metrics it reads beside them, the zero-shot control's label and image files (its label
    mass), and what it writes (its table only where it has one)."""

    inputs: tuple[str, ...]
    png: str
    pdf: str
    table_csv: str | None = None
    table_md: str | None = None
    expert_metrics: tuple[str, ...] = ()
    mass_labels: str | None = None
    mass_images: str | None = None


def draw_figure(name: str, files: FigureFiles, options: list[str] = ()) -> None:
    """Draw figure `name` from `files`, with its settings read from `key=value` options."""
    if name not in FIGURE_NAMES:
        raise LabelworthError(f"unknown figure {name!r}; known figures: {', '.join(FIGURE_NAMES)}")
    settings_class = FIGURE_SETTINGS.get(name)
    if settings_class is None and options:
        raise LabelworthError(f"figure {name} takes no --options")
    settings = from_options(settings_class, list(options)) if settings_class else None
    module = importlib.import_module(f"labelworth.figures.{name}")
    # The style must cover the whole drawing: legends, texts and colour bars made after the axes
    # would otherwise take matplotlib's defaults.
    with plt.rc_context(STYLE):
        try:
            module.draw(files, settings)
        except (KeyError, IndexError, ValueError) as error:  # the inputs lack what this figure compares
            first = files.inputs[0] if files.inputs else "none"
            raise LabelworthError(
                f"figure {name}: its inputs ({len(files.inputs)} file(s), first {first}) are not "
                f"the results this figure compares ({type(error).__name__}: {error}); give it the files its rule "
                "lists (labelworth.plan.WorkflowPlan.figure_inputs)") from None
