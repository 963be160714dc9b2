"""The house style's checks and palettes (labelworth/figures/style.py): a legend over data is found,
one colour per method and one marker per label regime whatever the figure, point labels that never
overlap."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from labelworth.errors import LabelworthError
from labelworth.figures.style import (
    EXTRA_COLORS, METHOD_COLORS, REGIME_MARKERS, label_points, legend_collisions, method_color, method_colors,
    new_figure, plural, save_figure, sequence_colors,
)


def line_with_legend(**legend_options):
    """A figure with one line across the axes' upper left and a legend placed by `legend_options`."""
    figure, axes = new_figure()
    axes.plot([0, 1, 2, 3], [10, 9.5, 9, 1], marker="o", label="the line")
    axes.set(xlabel="x", ylabel="y")
    axes.legend(**legend_options)
    return figure


def test_a_legend_over_a_line_points_is_reported_and_one_outside_is_not():
    over = line_with_legend(loc="upper left")
    collisions = legend_collisions(over)
    assert any("point" in collision and "'the line'" in collision for collision in collisions), collisions
    outside = line_with_legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    assert legend_collisions(outside) == []
    # in the line's empty corner: the box around the whole line would call this a collision, its points do not
    corner = line_with_legend(loc="lower left")
    assert legend_collisions(corner) == []
    plt.close("all")


def test_a_legend_over_tick_labels_or_an_axis_label_is_reported():
    figure = line_with_legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), borderaxespad=0)
    collisions = legend_collisions(figure)
    assert any("tick label" in collision for collision in collisions), collisions
    assert any("label 'x'" in collision for collision in collisions), collisions
    plt.close("all")


def test_save_figure_refuses_a_figure_whose_legend_covers_data_in_one_line_naming_it(tmp_path):
    with pytest.raises(LabelworthError, match=r"^figure over\.png: legend .* covers \d+ points of line") as error:
        save_figure(line_with_legend(loc="upper left"), tmp_path / "over.png", tmp_path / "over.pdf")
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []  # nothing written
    save_figure(line_with_legend(loc="upper left", bbox_to_anchor=(1.02, 1.0)), tmp_path / "ok.png")
    assert (tmp_path / "ok.png").stat().st_size > 0


def test_methods_keep_their_colour_and_unknown_names_never_take_a_method_colour():
    assert method_color("random") == METHOD_COLORS["random"] and method_color("mtt") == METHOD_COLORS["mtt"]
    assert method_color("lossbin3") == method_color("lossbin7") == METHOD_COLORS["lossbin"]
    for name in ("external-mtt_export", "external-mine", "external-a", "something_else"):
        assert method_color(name) == method_color(name) and method_color(name) not in METHOD_COLORS.values()
    # two external sets in one figure never share a colour, even when their picks coincide
    externals = [f"external-set{index}" for index in range(len(EXTRA_COLORS))]
    colors = method_colors(["random", "dm", *externals])
    assert len(set(colors.values())) == len(colors) and colors["dm"] == METHOD_COLORS["dm"]


def test_sequence_shades_are_distinct_and_never_a_method_colour():
    shades = sequence_colors([1, 2, 5, 10, 20, 50, 100])
    assert list(shades) == [1, 2, 5, 10, 20, 50, 100] and len(set(shades.values())) == 7
    assert not set(shades.values()) & (set(METHOD_COLORS.values()) | set(EXTRA_COLORS))
    assert len(sequence_colors(["only"])) == 1


def test_every_label_regime_has_its_own_marker():
    assert set(REGIME_MARKERS) == {"hard", "expert", "learned", "online"}
    assert len(set(REGIME_MARKERS.values())) == 4 and REGIME_MARKERS["hard"] == "s"


def test_point_labels_never_overlap_and_crowded_ones_are_left_out():
    figure, axes = new_figure()
    axes.plot([0, 10], [0, 10], linestyle="none")
    xs, ys = [5.0] * 8 + [1.0], [5.0] * 8 + [1.0]  # eight labels for one point: not all fit
    left_out = label_points(axes, xs, ys, [f"label {index}" for index in range(9)])
    renderer = figure.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in axes.texts]
    assert left_out > 0 and len(boxes) == 9 - left_out
    for index, first in enumerate(boxes):
        for second in boxes[index + 1:]:
            assert min(first.x1, second.x1) <= max(first.x0, second.x0) or \
                min(first.y1, second.y1) <= max(first.y0, second.y0)
    plt.close("all")


def test_plural_writes_the_count_with_its_noun():
    assert plural(1, "expert run") == "1 expert run" and plural(3, "expert run") == "3 expert runs"
    assert plural(2, "pass", "passes") == "2 passes" and plural(0, "image") == "0 images"
