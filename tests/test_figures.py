"""Every figure drawn from fabricated results files in their real formats; the tables' numbers that a
wrong selection, tie rule or fit would change are checked. Each figure is drawn once (matplotlib is
slow), so each draw test checks all of that figure's table. Every draw also passes save_figure's
legend check (no legend over data, ticks or labels) and this file's marker check (every marker drawn
is explained in a legend, and nothing is explained that is not drawn)."""

from __future__ import annotations

import importlib
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from matplotlib.legend import Legend
from matplotlib.lines import Line2D

from labelworth.errors import LabelworthError
from labelworth.figures import FIGURE_NAMES, FigureFiles, draw_figure
from labelworth.figures.expert_epoch_sweep import expert_at_epochs
from labelworth.figures.scaling_law import PowerLaw, exchange_rate, fit_power_law
from labelworth.figures.soft_label_bars import labels_by_epoch
from labelworth.io import save_tensors, write_json
from labelworth.specs import dataset_spec, parse_image_set

CLASS_NAMES = list(dataset_spec("fashion_mnist").class_names)
NUM_CLASSES = len(CLASS_NAMES)


def write_result(folder, image_set: str, label_spec: str, final: float, per_class=None, student="convnet-d3-w32",
                 dataset="fashion_mnist", expert_run="", online=False, finals=None) -> str:
    """A student-result JSON as students.run_evaluate_students writes it: three students whose final
    accuracies (the headline) average exactly `final` (a fraction), 0.01 apart (or are `finals`, one
    per student seed 0, 1, ...), each with a best of its two test passes 0.02 above its final, and
    `per_class` (fractions, the same for every student; default: final for every class) as per-class
    final accuracies; `online`: a protocol whose expert labels every batch (labels: online)."""
    best = final + 0.02
    per_class = per_class if per_class is not None else [final] * NUM_CLASSES
    finals = finals or [final - 0.01, final, final + 0.01]
    students = [{"seed": seed, "final_accuracy": f, "best_accuracy": f + 0.02, "best_epoch": 100,
                 "per_class_final_accuracy": list(per_class), "curve": [[100, f + 0.02], [200, f]]}
                for seed, f in enumerate(finals)]
    bests = [f + 0.02 for f in finals]
    images = parse_image_set(image_set)
    path = folder / f"{image_set}__{label_spec}__{student}.json"
    write_json(path, {
        "students": students,
        "final_accuracy": {"mean": final, "std": float(np.std(bests))},
        "best_accuracy": {"mean": best, "std": float(np.std(bests))},
        "meta": {"dataset": dataset, "image_set": image_set, "method": images.method, "expert_run": expert_run,
                 "images_per_class": images.images_per_class, "label_spec": label_spec,
                 "student": student, "class_names": CLASS_NAMES,
                 "settings": {"arch": student} | ({"labels": "online"} if online else {})},
    })
    return str(path)


def draw(tmp_path, name: str, inputs, table: bool = True, options=(), **roles) -> pd.DataFrame | None:
    """Draw `name` through the registry, with its other files by role (expert_metrics, mass_labels,
    mass_images) and its settings as options; check the png and pdf are real, non-trivial files and
    the markdown has its title; return the table csv (None for figures without a table)."""
    out = tmp_path / "out"
    files = {"png": out / f"{name}.png", "pdf": out / f"{name}.pdf"}
    if table:
        files |= {"table_csv": out / f"{name}.csv", "table_md": out / f"{name}.md"}
    roles = {role: tuple(paths) if isinstance(paths, list) else paths for role, paths in roles.items()}
    draw_figure(name, FigureFiles(tuple(inputs), **{key: str(path) for key, path in files.items()}, **roles),
                list(options))
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and files["png"].stat().st_size > 10_000
    assert files["pdf"].read_bytes()[:5] == b"%PDF-" and files["pdf"].stat().st_size > 5_000
    if not table:
        return None
    markdown = files["table_md"].read_text().splitlines()
    assert markdown[0] and markdown[2].startswith("| ")  # one-line title, blank line, the table
    return pd.read_csv(files["table_csv"])


NO_MARKER = (None, "None", "none", "", " ", "_", "|")  # plain lines, and error-bar caps


def markers_drawn_and_explained(figure) -> tuple[set, set]:
    """The markers of the figure's data lines, and those of its legends' handles."""
    drawn = {line.get_marker() for axes in figure.axes for line in axes.lines
             if line.get_marker() not in NO_MARKER and len(line.get_xdata())}
    explained = {handle.get_marker() for legend in figure.findobj(Legend) for handle in legend.findobj(Line2D)
                 if handle.get_marker() not in NO_MARKER}
    return drawn, explained


@pytest.fixture(autouse=True)
def every_marker_explained(monkeypatch):
    """Each figure module's save_figure, wrapped: a figure with a legend must explain exactly the
    markers it draws."""
    for name in FIGURE_NAMES:
        module = importlib.import_module(f"labelworth.figures.{name}")
        save = module.save_figure

        def checked(figure, *paths, save=save, name=name):
            drawn, explained = markers_drawn_and_explained(figure)
            if figure.findobj(Legend):
                assert drawn == explained, f"{name}: markers drawn {drawn}, explained {explained}"
            save(figure, *paths)

        monkeypatch.setattr(module, "save_figure", checked)


def test_every_figure_module_has_a_draw_function():
    for name in FIGURE_NAMES:
        assert callable(importlib.import_module(f"labelworth.figures.{name}").draw), name


def test_every_figure_is_drawn_by_a_test_here():
    """So that save_figure's legend check and the marker check above cover every figure."""
    drawn = set(re.findall(r'draw\(tmp_path, "(\w+)"', Path(__file__).read_text()))
    assert set(FIGURE_NAMES) - drawn == set()


# --------------------------------------------------------------------------------------------------
# E4, E11: best expert epochs


def test_expert_epoch_sweep_table_picks_the_best_epoch_per_ipc_ties_to_the_earlier(tmp_path):
    accuracy = {1: {1: 0.30, 2: 0.42, 4: 0.42, 8: 0.35}, 10: {1: 0.50, 2: 0.60, 4: 0.66, 8: 0.70}}
    hard = {1: 0.25, 10: 0.55}
    inputs = [write_result(tmp_path, f"random-ipc{ipc}", f"expert-e{epoch}", acc)
              for ipc, by_epoch in accuracy.items() for epoch, acc in by_epoch.items()]
    inputs += [write_result(tmp_path, f"random-ipc{ipc}", "hard", acc) for ipc, acc in hard.items()]
    metrics = pd.DataFrame({"epoch": range(9), "train_loss": np.linspace(2.3, 0.3, 9),
                            "train_accuracy": np.linspace(0.1, 0.9, 9), "test_accuracy": np.linspace(0.1, 0.86, 9),
                            "train_label_entropy": np.linspace(2.3, 0.2, 9)})
    metrics.to_csv(tmp_path / "metrics.csv", index=False)

    table = draw(tmp_path, "expert_epoch_sweep", inputs, expert_metrics=[str(tmp_path / "metrics.csv")])

    # The workflow reads this csv back to resolve `expert_epoch: auto`: the columns are an interface.
    assert list(table.columns) == ["images_per_class", "best_expert_epoch", "best_accuracy", "best_std", "best_low",
                                   "best_high", "hard_accuracy", "selected_on", "validation_accuracy",
                                   "test_chosen_epoch", "test_chosen_accuracy", "expert_test_accuracy",
                                   "expert_label_entropy", "grid_edge"]
    assert set(table["selected_on"]) == {"test"}  # no validation split: chosen on the test set
    table = table.set_index("images_per_class")
    assert table["best_expert_epoch"].to_dict() == {1: 2, 10: 8}  # IPC 1: epochs 2 and 4 tie -> 2
    assert table.loc[1, "best_accuracy"] == pytest.approx(42.0)  # the best epoch's final accuracy
    # three students 1 point apart: sample std 1, 95% interval 42 +- 4.303 / sqrt(3)
    assert table.loc[1, "best_std"] == pytest.approx(1.0)
    assert table.loc[1, "best_high"] - 42.0 == pytest.approx(4.303 / math.sqrt(3))
    assert table["hard_accuracy"].to_dict() == pytest.approx({1: 25.0, 10: 55.0})
    assert table.loc[10, "expert_test_accuracy"] == pytest.approx(100 * metrics.loc[8, "test_accuracy"])
    assert table.loc[1, "expert_label_entropy"] == pytest.approx(metrics.loc[2, "train_label_entropy"])
    # IPC 10's best is the last swept epoch: only a lower bound, and the markdown says so
    assert table["grid_edge"].fillna("").to_dict() == {1: "", 10: "last"}
    assert "| 10 | >= 8 (the grid's last) |" in (tmp_path / "out" / "expert_epoch_sweep.md").read_text()


def test_expert_metrics_missing_a_swept_epoch_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "metrics.csv"
    pd.DataFrame({"epoch": [0, 1], "test_accuracy": [0.1, 0.5], "train_label_entropy": [2.3, 1.0]}).to_csv(path)
    with pytest.raises(LabelworthError, match=r"metrics\.csv.*epoch\(s\) \[4\]"):
        expert_at_epochs(str(path), [1, 4])


def test_expert_epochs_note_names_the_default_experts_epochs_not_a_protocols_own_teacher(tmp_path):
    from labelworth.figures.results import expert_epochs_note, student_results

    paths = [write_result(tmp_path, "random-ipc1", "expert-e2", 0.5),
             write_result(tmp_path, "random-ipc10", "expert-e20", 0.7),
             write_result(tmp_path, "sre2l-ipc10", "expert-convnet-d3-w32-batchnorm-lr0.01-e2", 0.6,
                          student="sre2l-relabel")]
    assert expert_epochs_note(student_results(paths)) == "expert epoch 2 at IPC 1, 20 at IPC 10"
    assert expert_epochs_note(student_results(paths[2:])) == "expert epoch 2"  # only a named run: its epoch


def test_pareto_table_gives_the_best_epoch_per_ipc(tmp_path):
    accuracy = {1: {2: 0.45, 4: 0.40, 15: 0.30}, 10: {2: 0.60, 4: 0.68, 15: 0.66}, 50: {2: 0.70, 4: 0.78, 15: 0.82}}
    inputs = [write_result(tmp_path, f"random-ipc{ipc}", f"expert-e{epoch}", acc)
              for ipc, by_epoch in accuracy.items() for epoch, acc in by_epoch.items()]
    inputs += [write_result(tmp_path, f"random-ipc{ipc}", "hard", 0.2 + 0.01 * ipc) for ipc in accuracy]

    table = draw(tmp_path, "pareto", inputs).set_index("IPC")

    assert table["best expert epoch"].to_dict() == {1: 2, 10: 4, 50: 15}
    assert table.loc[50, "best soft labels"] == "82.0 ± 1.0 [79.5, 84.5]"
    assert table.loc[10, "hard labels"] == "30.0 ± 1.0 [27.5, 32.5]"


# --------------------------------------------------------------------------------------------------
# E6, E9: label swap and zero-shot


def test_label_swap_table_gives_each_variant_minus_the_unswapped_label_paired_over_seeds(tmp_path):
    accuracy = {"expert-e4": 0.60, "expert-e4-swap1": 0.30, "expert-e4-swap2": 0.45, "expert-e4-swap9": 0.57,
                "expert-e4-shuffle": 0.50, "expert-e4-smooth": 0.48}
    inputs = [write_result(tmp_path, f"random-ipc{ipc}", spec, acc + ipc / 100)
              for ipc in (1, 10) for spec, acc in accuracy.items()]
    # IPC 1's unswapped students score 60, 61, 62; by hand, swap 1 at 30, 33, 30 differs by -30, -28,
    # -32: mean -30, sample std 2, half-width t(2) 4.303 x 2 / sqrt(3) = 4.97. Swap 9 at 59, 62, 60:
    # -1, +1, -2, mean -0.67, std 1.53, half-width 3.80, an interval holding zero.
    inputs += [write_result(tmp_path, "random-ipc1", "expert-e4-swap1", 0.31, finals=[0.30, 0.33, 0.30]),
               write_result(tmp_path, "random-ipc1", "expert-e4-swap9", 0.6033, finals=[0.59, 0.62, 0.60])]
    inputs = list(dict.fromkeys(inputs))  # the two rewrote their files

    table = draw(tmp_path, "label_swap", inputs).set_index("IPC")

    assert list(table.columns) == ["unswapped", "swap 1", "swap 2", "swap 9", "shuffle", "smooth"]
    assert table.loc[1, "unswapped"] == "61.0 ± 1.0 [58.5, 63.5]"
    assert table.loc[1, "swap 1"] == "-30.0 [-35.0, -25.0] *"
    assert table.loc[1, "swap 9"] == "-0.7 [-4.5, +3.1] not resolved"
    assert table.loc[10, "swap 2"] == "-15.0 [-15.0, -15.0] *"  # every seed 15 points down: no spread
    assert table.loc[10, "smooth"] == "-12.0 [-12.0, -12.0] *"


def test_zero_shot_uses_the_subject_class_own_final_accuracy(tmp_path):
    def per_class(subject_scores):
        scores = [0.7] * NUM_CLASSES
        for subject, score in subject_scores.items():
            scores[subject] = score
        return scores

    # Overall accuracies (0.8) differ from every subject-class score: using them would show.
    inputs = [write_result(tmp_path, "random-ipc10", "expert-e4", 0.8, per_class({1: 0.95, 6: 0.40}))]
    for subject, image_arm, label_arm in ((1, 0.55, 0.05), (6, 0.12, 0.02)):
        inputs += [write_result(tmp_path, f"random-ipc10-without{subject}", "expert-e4", 0.8,
                                per_class({subject: image_arm})),
                   write_result(tmp_path, "random-ipc10", f"expert-e4-zeroclass{subject}", 0.8,
                                per_class({subject: label_arm}))]

    # The control's labels: 2 images per class; every image puts 0.06 on Trouser and 0.01 on Shirt.
    from labelworth import io

    classes = torch.arange(NUM_CLASSES).repeat_interleave(2)
    labels = torch.full((len(classes), NUM_CLASSES), 0.01)
    labels[:, 1] = 0.06
    labels[torch.arange(len(classes)), classes] += 1 - labels.sum(1)
    io.save_tensors(tmp_path / "labels.pt", {"labels": labels}, {"label_spec": "expert-e4"})
    io.save_tensors(tmp_path / "images.pt", {"images": torch.zeros(len(classes), 1, 2, 2), "labels": classes}, {})
    # Shirt without its images scores 5, 12, 19 over the three student seeds: by hand, mean 12, sample
    # std 7, half-width t(2) 4.303 x 7 / sqrt(3) = 17.4, so [-5.4, 29.4] holds chance (10%).
    shirt_image_arm = inputs[3]
    content = io.read_json(shirt_image_arm)
    for student, score in zip(content["students"], (0.05, 0.12, 0.19)):
        student["per_class_final_accuracy"][6] = score
    write_json(shirt_image_arm, content)
    table = draw(tmp_path, "zero_shot", inputs, mass_labels=str(tmp_path / "labels.pt"),
                 mass_images=str(tmp_path / "images.pt")).set_index("subject")

    assert list(table.columns) == ["control", "treat image", "treat label", "treat image - control",
                                   "treat label - control", "label mass (%)", "treat image against chance"]
    assert table.loc["Trouser"].tolist() == [
        "95.0 ± 0.0 [95.0, 95.0]", "55.0 ± 0.0 [55.0, 55.0]", "5.0 ± 0.0 [5.0, 5.0]", "-40.0 [-40.0, -40.0] *",
        "-90.0 [-90.0, -90.0] *", 6.0, "above"]
    assert table.loc["Shirt"].tolist() == [
        "40.0 ± 0.0 [40.0, 40.0]", "12.0 ± 7.0 [-5.4, 29.4]", "2.0 ± 0.0 [2.0, 2.0]", "-28.0 [-45.4, -10.6] *",
        "-38.0 [-38.0, -38.0] *", 1.0, "not resolved"]


def test_label_mass_is_zero_for_hard_labels_and_one_over_c_for_uniform_ones():
    from labelworth.figures.zero_shot import label_mass

    classes = np.arange(10).repeat(3)
    assert label_mass(np.eye(10)[classes], classes, 4) == 0.0
    assert label_mass(np.full((30, 10), 0.1), classes, 4) == pytest.approx(10.0)


# --------------------------------------------------------------------------------------------------
# E10: power laws


def test_power_law_fit_recovers_a_and_b_exactly_from_noiseless_data():
    ipc = np.array([1, 2, 5, 10, 20])
    fit = fit_power_law(ipc, 31.5 * ipc ** 0.27)
    assert fit.a == pytest.approx(31.5, rel=1e-12) and fit.b == pytest.approx(0.27, rel=1e-12)
    assert fit.se_log_a == pytest.approx(0, abs=1e-9) and fit.se_b == pytest.approx(0, abs=1e-9)


def test_power_law_standard_errors_are_the_ordinary_regression_ones():
    ipc = np.array([1, 2, 5, 10, 20, 50])
    accuracy = 30 * ipc ** 0.3 * np.exp(np.array([0.02, -0.03, 0.01, 0.04, -0.02, 0.0]))
    fit = fit_power_law(ipc, accuracy)
    (b, log_a), covariance = np.polyfit(np.log(ipc), np.log(accuracy), 1, cov=True)  # scaled by RSS / (n - 2)
    assert (fit.b, np.log(fit.a)) == pytest.approx((b, log_a))
    assert (fit.se_b, fit.se_log_a) == pytest.approx(tuple(np.sqrt(np.diag(covariance))))
    two = fit_power_law([1, 10], [20, 40])
    assert two.b == pytest.approx(np.log10(2)) and np.isnan(two.se_b) and np.isnan(two.se_log_a)


def test_exchange_rate_is_the_image_multiple_to_match_the_reference():
    soft, hard = PowerLaw(40, 0.15, 0, 0), PowerLaw(20, 0.3, 0, 0)
    assert exchange_rate(hard, soft, 1) == pytest.approx(2 ** (1 / 0.3))  # 20 x^0.3 = 40
    assert exchange_rate(soft, soft, 5) == pytest.approx(1)
    assert np.isnan(exchange_rate(PowerLaw(20, -0.1, 0, 0), soft, 1))  # accuracy never grows


def test_label_swap_gives_an_external_set_its_own_row_against_its_own_unswapped_labels(tmp_path):
    accuracy = {"expert-e4": 0.60, "expert-e4-swap1": 0.30, "expert-e4-shuffle": 0.50, "expert-e4-smooth": 0.48}
    inputs = [write_result(tmp_path, image_set, spec, acc * scale) for image_set, scale in
              (("random-ipc1", 1.0), ("external-mine-ipc1", 1.2)) for spec, acc in accuracy.items()]
    table = draw(tmp_path, "label_swap", inputs)
    assert table["images"].tolist() == ["random", "mine (external)"] and table["IPC"].tolist() == [1, 1]
    assert table["swap 1"].tolist() == ["-30.0 [-30.0, -30.0] *", "-36.0 [-36.0, -36.0] *"]
    assert table["unswapped"].iloc[1].startswith("72.0 ± ")


def test_scaling_law_gives_an_external_set_its_worth_in_random_images(tmp_path):
    laws = {"hard": (20, 0.3), "expert-e4": (40, 0.15)}
    inputs = [write_result(tmp_path, f"random-ipc{ipc}", spec, a * ipc ** b / 100)
              for ipc in (1, 2, 5, 10) for spec, (a, b) in laws.items()]
    inputs.append(write_result(tmp_path, "external-mine-ipc1", "hard", 20 * 4 ** 0.3 / 100))  # = random IPC 4
    table = draw(tmp_path, "scaling_law", inputs).set_index("labels")
    assert list(table.index)[:2] == ["hard", "full soft"]  # the fits use random images only
    assert table.loc["hard", "b"] == pytest.approx(0.3)
    assert table.loc["hard, mine (external) at IPC 1", "worth in random images per class"] == pytest.approx(4, abs=0.01)


def test_scaling_law_table_fits_each_label_kind(tmp_path):
    laws = {"hard": (20, 0.3), "expert-e4": (40, 0.15), "expert-e4-top1": (25, 0.28), "expert-e4-top2": (33, 0.2)}
    inputs = [write_result(tmp_path, f"random-ipc{ipc}", spec, a * ipc ** b / 100)
              for ipc in (1, 2, 5, 10, 20) for spec, (a, b) in laws.items()]

    table = draw(tmp_path, "scaling_law", inputs).set_index("labels")

    assert list(table.index) == ["hard", "top1", "top2", "full soft"]
    assert table.loc["top2", ["a", "b"]].tolist() == pytest.approx([33, 0.2])
    assert table.loc["hard", "image exchange rate"] == pytest.approx(2 ** (1 / 0.3), abs=0.01)
    assert table.loc["full soft", "image exchange rate"] == pytest.approx(1)


# --------------------------------------------------------------------------------------------------
# E7, E12, E14, E16: grids of populations


def test_temperature_grid_table_sets_each_cell_against_its_unsmoothed_and_its_early_expert(tmp_path):
    inputs = [write_result(tmp_path, "random-ipc10", spec, acc) for spec, acc in
              {"expert-e2": 0.70, "expert-e2-t2": 0.66, "expert-e8": 0.60, "expert-e8-t2": 0.68}.items()]
    table = draw(tmp_path, "temperature_grid", inputs).fillna("")
    assert list(table.columns) == ["IPC", "expert epoch", "T", "accuracy", "- same epoch at T=1",
                                   "- earliest epoch at T=1"]
    assert table[["expert epoch", "T"]].values.tolist() == [[2, 1], [2, 2], [8, 1], [8, 2]]
    assert table["accuracy"].iloc[3] == "68.0 ± 1.0 [65.5, 70.5]"
    # the transform against its base (same epoch, T = 1), and the smoothed late expert against the early one
    assert table["- same epoch at T=1"].tolist() == ["", "-4.0 [-4.0, -4.0] *", "", "+8.0 [+8.0, +8.0] *"]
    assert table["- earliest epoch at T=1"].tolist() == ["", "-4.0 [-4.0, -4.0] *", "-10.0 [-10.0, -10.0] *",
                                                         "-2.0 [-2.0, -2.0] *"]


def test_ensemble_table_is_ipcs_by_number_of_experts(tmp_path):
    inputs = [write_result(tmp_path, f"random-ipc{ipc}", spec, acc + ipc / 100) for ipc in (1, 10)
              for spec, acc in {"expert-e4": 0.5, "ensemble2-e4": 0.52, "ensemble3-e4": 0.53}.items()]
    table = draw(tmp_path, "ensembles", inputs)
    assert list(table.columns) == ["IPC", "1 expert", "2 experts", "3 experts"]
    assert table.loc[1, "3 experts"].startswith("63.0 ± ")


def test_image_selection_table_lists_random_then_loss_bins(tmp_path):
    inputs = [write_result(tmp_path, images, labels, 0.5 + 0.01 * index + (0.1 if labels == "hard" else 0.2))
              for index, images in enumerate(["random-ipc10", "lossbin0-ipc10", "lossbin3-ipc10", "lossbin9-ipc10"])
              for labels in ("hard", "expert-e4")]
    table = draw(tmp_path, "image_selection", inputs)
    assert table["images"].tolist() == ["random", "loss bin 0", "loss bin 3", "loss bin 9"]
    assert list(table.columns) == ["images", "hard labels", "soft labels"]
    assert table.loc[3, "soft labels"].startswith("73.0 ± ") and table.loc[0, "hard labels"].startswith("60.0 ± ")


def test_generated_labels_table_orders_hard_noise_expert_boost(tmp_path):
    specs = ["hard", "noise0.8", "noise1", "expert-e4", "expert-e4-boost0.1a0.05", "expert-e4-boost0.3a0.05"]
    inputs = [write_result(tmp_path, f"random-ipc{ipc}", spec, 0.4 + 0.02 * index + ipc / 100)
              for ipc in (1, 10) for index, spec in enumerate(specs)]
    table = draw(tmp_path, "generated_labels", inputs)
    assert list(table.columns) == ["IPC", "hard", "noise p=0.8", "noise p=1", "expert", "boost q=0.1 α=0.05",
                                   "boost q=0.3 α=0.05"]
    assert table.loc[1, "noise p=1"].startswith("54.0 ± ")


# --------------------------------------------------------------------------------------------------
# E5, E8: pictures of labels


def test_soft_label_bars_draws_one_image_and_its_labels_in_epoch_order(tmp_path):
    images = torch.randn(NUM_CLASSES, 1, 28, 28)
    save_tensors(tmp_path / "images.pt", {"images": images, "labels": torch.arange(NUM_CLASSES)},
                 {"dataset": "fashion_mnist", "class_names": CLASS_NAMES, "image_set": "random-ipc1",
                  "num_classes": NUM_CLASSES})
    label_paths = []
    for epoch in (15, 0, 1, 4):  # the default config's epochs, not in order: the figure sorts
        path = tmp_path / f"expert-e{epoch}.pt"
        labels = (torch.randn(NUM_CLASSES, NUM_CLASSES) * epoch / 4).softmax(1)
        save_tensors(path, {"labels": labels}, {"label_spec": f"expert-e{epoch}"})
        label_paths.append(str(path))

    assert [epoch for epoch, _ in labels_by_epoch(label_paths, 3)] == [0, 1, 4, 15]
    draw(tmp_path, "soft_label_bars", [str(tmp_path / "images.pt"), *label_paths], table=False, options=["image=3"])


def test_class_similarity_draws_the_expert_csv(tmp_path):
    matrix = np.full((NUM_CLASSES, NUM_CLASSES), 0.02) + np.eye(NUM_CLASSES) * 0.8
    path = tmp_path / "class_similarity-expert-e4.csv"  # the format labels.expert_class_similarity writes
    lines = ["class," + ",".join(f'"{name}"' for name in CLASS_NAMES)]
    lines += [f'"{name}",' + ",".join(f"{value:.6g}" for value in row) for name, row in zip(CLASS_NAMES, matrix)]
    path.write_text("\n".join(lines) + "\n")

    draw(tmp_path, "class_similarity", [str(path)], table=False, options=["expert_epoch=4"])


# --------------------------------------------------------------------------------------------------
# E1-E3: the benchmark across methods


def test_benchmark_table_has_every_method_ipc_and_label_kind_with_best_and_final(tmp_path):
    accuracy = {("random", 1): (0.46, 0.53), ("dm", 1): (0.62, 0.64), ("random", 10): (0.72, 0.75),
                ("dm", 10): (0.78, 0.79), ("bptt", 1): (0.60, 0.66)}
    inputs = []
    for (method, ipc), (hard, soft) in accuracy.items():
        inputs += [write_result(tmp_path, f"{method}-ipc{ipc}", "hard", hard),
                   write_result(tmp_path, f"{method}-ipc{ipc}", "expert-e2", soft)]
    inputs.append(write_result(tmp_path, "bptt-ipc1", "learned", 0.70))

    table = draw(tmp_path, "soft_vs_hard", inputs)
    # methods in the paper's order (random first), then IPC, then label kind
    assert list(table["method"]) == ["random"] * 4 + ["dm"] * 4 + ["bptt"] * 3
    bptt = table[table["method"] == "bptt"].set_index("labels")
    assert bptt.loc["learned", "final_mean"] == pytest.approx(70.0)
    assert bptt.loc["expert", "best_mean"] == pytest.approx(68.0)  # best of passes = final + 2 points in write_result
    markdown = (tmp_path / "out" / "soft_vs_hard.md").read_text()
    # final (headline) hard, expert soft, no learned; then the best of passes, marked
    assert "| DM | 10 | 78.0 ± 1.0 [75.5, 80.5] | 79.0 ± 1.0 [76.5, 81.5] |  | 80.0 ± 1.0 | 81.0 ± 1.0 |  |" in markdown
    assert "own learned (best of passes)" in markdown
    # random IPC 1, soft - hard paired over seeds: every seed +7.0, an interval of width 0 excluding zero
    assert "| +7.0 [+7.0, +7.0] * |" in markdown and "soft - hard (paired)" in markdown
    # BPTT's own labels against the expert's on the same images: every seed +4.0
    bptt_row = next(line for line in markdown.splitlines() if line.startswith("| BPTT | 1 |"))
    assert "own learned - expert soft (paired)" in markdown and "| +4.0 [+4.0, +4.0] * |" in bptt_row


def test_benchmark_table_crosses_soft_label_sources_and_student_protocols(tmp_path):
    """Table 1's shape: two experts' labels (the default run and a named one) on two protocols."""
    inputs = []
    for student, shift in (("resnet18", 0.0), ("resnet50", 0.05)):
        for ipc in (1, 10):
            inputs += [write_result(tmp_path, f"random-ipc{ipc}", "hard", 0.10 + shift, student=student),
                       write_result(tmp_path, f"random-ipc{ipc}", "expert-e12", 0.30 + shift, student=student),
                       write_result(tmp_path, f"random-ipc{ipc}", "expert-resnet50-lr0.1-e31", 0.40 + shift,
                                    student=student)]
    table = draw(tmp_path, "soft_vs_hard", inputs)
    assert list(dict.fromkeys(table["student"])) == ["resnet18", "resnet50"] and len(table) == 12
    assert set(table["expert_run"].fillna("")) == {"", "resnet50-lr0.1"}  # csv: empty = the default run
    markdown = (tmp_path / "out" / "soft_vs_hard.md").read_text()
    assert "soft, default run (best of passes)" in markdown and "soft, resnet50-lr0.1 - hard (paired)" in markdown
    assert ("| resnet50 | random real | 10 | 15.0 ± 1.0 [12.5, 17.5] | 35.0 ± 1.0 [32.5, 37.5] | "
            "45.0 ± 1.0 [42.5, 47.5] |") in markdown


def test_benchmark_tables_show_the_published_number_of_each_cell_and_our_difference(tmp_path):
    """Table 1's cells matched by expert and student architecture; Fashion-MNIST's random baseline
    and the DC/DSA anchors (docs/method.md §10.1, §10.5; labelworth/figures/published.yaml)."""
    inputs = [write_result(tmp_path, "random-ipc10", "hard", 0.05, student="resnet18", dataset="imagenet"),
              write_result(tmp_path, "random-ipc10", "expert-e44", 0.25, student="resnet50", dataset="imagenet",
                           expert_run="resnet18-lr0.0005"),
              write_result(tmp_path, "random-ipc10", "expert-resnet50-lr0.0005-e25", 0.22, student="resnet50",
                           dataset="imagenet", expert_run="resnet50-lr0.0005")]
    table = draw(tmp_path, "soft_vs_hard", inputs).set_index("label_spec")
    assert table.loc["hard", "published_mean"] == 3.9 and table.loc["expert-e44", "published_mean"] == 24.0
    # ours in the paper's convention, best of passes (write_result: final + 2 points) minus theirs
    assert table.loc["expert-resnet50-lr0.0005-e25", "best_minus_published"] == pytest.approx(24.0 - 23.9)
    markdown = (tmp_path / "out" / "soft_vs_hard.md").read_text()
    assert "soft, default run: paper" in markdown and "| 24.0 ± 0.4 | +3.0 |" in markdown

    fashion = [write_result(tmp_path, "random-ipc1", "hard", 0.459)]
    table = draw(tmp_path, "soft_vs_hard", fashion)
    assert table["published_mean"].tolist() == [51.4] and table["best_minus_published"].round(1).tolist() == [-3.5]
    markdown = (tmp_path / "out" / "soft_vs_hard.md").read_text()
    assert "DC 70.5 at IPC 1, 82.3 at IPC 10, 83.6 at IPC 50; DSA 70.6 at IPC 1" in markdown
    # plain citations: no internal provenance tags, a recalled std said in words
    assert "DC/DSA repository README" in markdown and "std approximate" in markdown
    assert not re.search(r"METHOD\.md|V-img|V-3p|V-code|\bMEM\b", markdown)


def test_benchmark_figure_draws_the_online_rows_its_legend_lists(tmp_path):
    """Online rows (their own protocol) are drawn beside the first fixed protocol's, with the online
    marker the legend lists (the marker check); an external set's long name keeps the legend outside."""
    from labelworth.figures.results import student_results
    from labelworth.figures.soft_vs_hard import benchmark_protocols

    inputs = []
    for images in ("random-ipc1", "random-ipc10", "external-mtt_export-ipc1"):
        inputs += [write_result(tmp_path, images, "hard", 0.40), write_result(tmp_path, images, "expert-e2", 0.50),
                   write_result(tmp_path, images, "expert-e2", 0.55, student="convnet-online", online=True)]
    inputs.append(write_result(tmp_path, "external-mtt_export-ipc1", "expert-e2", 0.52, student="sre2l-relabel",
                               online=True))  # a method's own relabel protocol: one set only
    shown = benchmark_protocols(student_results(inputs))
    assert set(shown["student"]) == {"convnet-d3-w32", "convnet-online"} and shown["online"].sum() == 3
    inputs.append(write_result(tmp_path, "random-ipc1", "expert-e2", 0.60, student="convnet-online", online=True,
                               finals=[0.55, 0.61, 0.64]))
    table = draw(tmp_path, "soft_vs_hard", inputs)
    assert "online" in set(table["labels"])
    # online labels against the benchmark student's fixed soft labels on the same images, paired over
    # seeds: random IPC 1 scores 55, 61, 64 online and 49, 50, 51 fixed, so +6, +11, +13: mean 10, std
    # 3.61, half-width 4.303 x 3.61 / sqrt(3) = 8.96
    markdown = (tmp_path / "out" / "soft_vs_hard.md").read_text()
    online_row = next(line for line in markdown.splitlines() if line.startswith("| convnet-online | random real | 1 |"))
    assert "online soft: - expert soft, fixed (paired)" in markdown and "| +10.0 [+1.0, +19.0] * |" in online_row


def test_label_robustness_scores_match_a_hand_computation(tmp_path):
    """DD-Ranking's scores (docs/method.md §14.2) for DM at IPC 1 (expert soft labels are its labels) and
    BPTT (its own labels), from the benchmark's students and the expert's last test accuracy."""
    from labelworth.figures.label_robustness import label_robustness_score

    accuracy = {("random", "hard"): 0.46, ("random", "expert-e2"): 0.53, ("dm", "hard"): 0.71,
                ("dm", "expert-e2"): 0.70, ("bptt", "hard"): 0.53, ("bptt", "expert-e2"): 0.57,
                ("bptt", "learned"): 0.61}
    inputs = [write_result(tmp_path, f"{method}-ipc1", labels, best) for (method, labels), best in accuracy.items()]
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,test_accuracy\n0,0.1\n12,0.868\n")
    table = draw(tmp_path, "label_robustness", inputs, expert_metrics=[str(metrics)]).set_index("method")
    # DM: HLR = 0.868 - 0.71 = 0.158, IOR = 0.70 - 0.53 = 0.17, alpha = (0.17 - 0.158) / 2 = 0.006
    alpha = (0.17 - 0.158) / 2
    by_hand = (math.exp(alpha) - math.exp(-1)) / (math.e - math.exp(-1))
    assert table.loc["dm", "LRS"] == pytest.approx(by_hand, abs=1e-9) and by_hand == pytest.approx(0.2715, abs=1e-4)
    assert table.loc["dm", "HLR"] == pytest.approx(0.158) and table.loc["dm", "IOR"] == pytest.approx(0.17)
    # BPTT scores its own labels; soft share = (0.53 - 0.46) / (0.61 - 0.46)
    assert table.loc["bptt", "its_labels"] == "own" and table.loc["bptt", "IOR"] == pytest.approx(0.08)
    assert table.loc["bptt", "soft_share"] == pytest.approx(0.07 / 0.15)
    assert label_robustness_score(1.0, -1.0) == pytest.approx(0.0) and label_robustness_score(-1.0, 1.0) == pytest.approx(1.0)
    configured = draw(tmp_path, "label_robustness", inputs, options=["full_data_accuracy=93.5"]).set_index("method")
    assert configured.loc["dm", "full_data"] == pytest.approx(0.935)


def test_storage_counts_images_as_stored_and_labels_by_kind(tmp_path):
    """Fashion-MNIST, 10 classes of 28 x 28 pixels: IPC 1 random images are 7,840 uint8 bytes, DM's
    float32 four times that; hard labels 10 bytes, soft 400, top-2 10 x 2 x (1 + 4) = 100."""
    inputs = [write_result(tmp_path, "random-ipc1", "hard", 0.46), write_result(tmp_path, "random-ipc1", "expert-e2", 0.53),
              write_result(tmp_path, "random-ipc1", "expert-e2-top2", 0.50), write_result(tmp_path, "dm-ipc1", "hard", 0.71)]
    table = draw(tmp_path, "accuracy_vs_storage", inputs).set_index("label_spec")
    assert set(table.loc["hard", "image_bytes"]) == {7840, 4 * 7840}
    assert table.loc["expert-e2", "label_bytes"] == 400 and table.loc["expert-e2-top2", "label_bytes"] == 100
    from labelworth.specs import parse_label_spec
    from labelworth.storage import label_bytes

    spec, ipc1 = dataset_spec("fashion_mnist"), parse_image_set("random-ipc1")
    stored = {text: label_bytes(parse_label_spec(text), ipc1, spec) for text in
              ("expert-e2-fp16", "expert-e2-int8", "expert-e2-top2-fp16", "expert-e2-top2-int8")}
    # 10 rows: fp16 10 x 2; int8 10 x 1 + a 4-byte scale; top-2 pairs of a 1-byte index and the value
    assert stored == {"expert-e2-fp16": 200, "expert-e2-int8": 140, "expert-e2-top2-fp16": 60,
                      "expert-e2-top2-int8": 80}
    assert set(table.loc["hard", "label_bytes"]) == {10}


def test_benchmark_images_shows_one_row_per_method_in_paper_order(tmp_path):
    from labelworth.figures.benchmark_images import first_image_per_class

    paths = []
    for method in ("mtt", "random", "dm"):  # not in order: the figure sorts
        images = torch.randn(NUM_CLASSES * 2, 1, 28, 28)
        path = tmp_path / f"{method}.pt"
        save_tensors(path, {"images": images, "labels": torch.arange(NUM_CLASSES).repeat_interleave(2)},
                     {"dataset": "fashion_mnist", "class_names": CLASS_NAMES, "image_set": f"{method}-ipc2",
                      "method": method, "images_per_class": 2, "num_classes": NUM_CLASSES})
        paths.append(str(path))
    classes = torch.tensor([0, 0, 2])
    tiles = first_image_per_class(torch.arange(3.0), classes, 3)
    assert tiles[0] == 0.0 and tiles[1] is None and tiles[2] == 2.0
    draw(tmp_path, "benchmark_images", paths, table=False)


def test_expert_training_marks_the_soft_label_epochs_only_when_there_are_some(tmp_path):
    paths = []
    for seed in range(3):
        path = tmp_path / f"metrics{seed}.csv"
        pd.DataFrame({"epoch": range(6), "test_accuracy": np.linspace(0.1, 0.8 + seed / 100, 6),
                      "train_label_entropy": np.linspace(2.3, 0.3, 6)}).to_csv(path, index=False)
        paths.append(str(path))
    draw(tmp_path, "expert_training", paths, table=False, options=["marked_epochs=2,4"])
    draw(tmp_path, "expert_training", paths[:1], table=False)  # `auto` epochs only: nothing to mark


def test_pass_inflation_is_best_of_passes_minus_final_paired_over_students(tmp_path):
    """write_result's students: best = final + 2 points each, over 2 passes; a population tested once
    (the curve's one point) has best = final."""
    inputs = [write_result(tmp_path, "random-ipc1", "hard", 0.46), write_result(tmp_path, "dm-ipc1", "hard", 0.71)]
    once = tmp_path / "once.json"
    from labelworth.io import read_json

    content = read_json(inputs[0])
    for student in content["students"]:
        student["best_accuracy"] = student["final_accuracy"]
        student["curve"] = student["curve"][-1:]
    content["meta"]["image_set"] = "random-ipc2"
    write_json(once, content)
    table = draw(tmp_path, "pass_inflation", inputs + [str(once)]).set_index(["method", "images_per_class"])
    assert table.loc[("dm", 1), "inflation"] == pytest.approx(2.0) and table.loc[("dm", 1), "passes"] == 2
    assert table.loc[("random", 2), "inflation"] == 0.0 and table.loc[("random", 2), "passes"] == 1
    assert (table["inflation"] >= 0).all()
    markdown = (tmp_path / "out" / "pass_inflation.md").read_text()
    assert "1 pass: 1 population, mean inflation +0.00" in markdown and "2 passes: 2 populations" in markdown


def test_kendall_tau_counts_concordant_pairs_with_the_tie_correction():
    from labelworth.figures.rank_stability import kendall_tau

    first = {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}
    assert kendall_tau(first, first) == 1.0
    assert kendall_tau(first, {key: -value for key, value in first.items()}) == -1.0
    # one swapped neighbour pair: 5 concordant, 1 discordant of 6 -> 4 / 6
    assert kendall_tau(first, {"a": 4.0, "b": 3.0, "c": 1.0, "d": 2.0}) == pytest.approx(4 / 6)
    # a tie in the second: pairs (a,b),(a,c),(b,c) untied there... c and d tie: n1 = 6, n2 = 5, S = 5
    assert kendall_tau(first, {"a": 4.0, "b": 3.0, "c": 1.0, "d": 1.0}) == pytest.approx(5 / math.sqrt(6 * 5))
    assert math.isnan(kendall_tau({"a": 1.0}, {"a": 2.0, "b": 1.0}))  # one common item


def test_rank_stability_ranks_sets_per_regime_and_compares_regimes(tmp_path):
    """Hard labels rank DM over MTT over random; soft labels MTT over DM over random; BPTT's own labels
    stand in its `own` ranking where the others' are their hard ones."""
    accuracy = {("random", "hard"): 0.40, ("dm", "hard"): 0.60, ("mtt", "hard"): 0.50,
                ("random", "expert-e2"): 0.55, ("dm", "expert-e2"): 0.62, ("mtt", "expert-e2"): 0.65}
    inputs = [write_result(tmp_path, f"{method}-ipc1", labels, best) for (method, labels), best in accuracy.items()]
    table = draw(tmp_path, "rank_stability", inputs).set_index("images_per_class")
    assert table.loc[1, "hard ranking"] == "DM > MTT > random real"
    assert table.loc[1, "fixed soft ranking"] == "MTT > DM > random real"
    assert table.loc[1, "tau hard / fixed soft"] == pytest.approx(1 / 3) and table.loc[1, "n hard / fixed soft"] == 3
    assert table.loc[1, "tau hard / own"] == pytest.approx(1.0)  # no own labels: own = hard
    assert math.isnan(table.loc[1, "tau hard / online"]) and table.loc[1, "n hard / online"] == 0
    assert "no tau (fewer than 2 sets)" in (tmp_path / "out" / "rank_stability.md").read_text()


def test_a_share_of_the_gain_is_a_number_only_inside_zero_to_one():
    from labelworth.figures.label_robustness import soft_share

    assert soft_share(0.46, 0.53, 0.61) == (pytest.approx(0.07 / 0.15), "")
    share, note = soft_share(0.46, 0.80, 0.61)  # soft labels alone beat the method: 2.27, no share
    assert math.isnan(share) and note.startswith("none: random images with soft labels beat the method (ratio 2.27)")
    share, note = soft_share(0.46, 0.50, 0.40)
    assert math.isnan(share) and note.startswith("undefined: the method gains nothing")
    share, note = soft_share(0.46, 0.40, 0.61)
    assert math.isnan(share) and note.startswith("none: soft labels lose to hard ones")


def test_label_budget_sets_soft_labels_against_hard_ones_on_the_same_bytes(tmp_path):
    """Fashion-MNIST: an IPC is 7,840 image bytes and 10 hard-label bytes; full soft labels at IPC 1 add
    400 bytes (8,240 in all: hard labels there have IPC 8,240 / 7,850 = 1.0497), int8 labels 140."""
    from labelworth.figures.label_budget import hard_accuracy_at

    accuracy = {("random-ipc1", "hard"): 0.40, ("random-ipc2", "hard"): 0.50, ("random-ipc1", "expert-e2"): 0.55,
                ("random-ipc1", "expert-e2-int8"): 0.54, ("random-ipc2", "expert-e2"): 0.60}
    inputs = [write_result(tmp_path, images, labels, best) for (images, labels), best in accuracy.items()]
    table = draw(tmp_path, "label_budget", inputs).set_index(["images_per_class", "stored_as"])
    full = table.loc[(1, "float32")]
    assert full["total_bytes"] == 8240 and full["hard_images_per_class"] == pytest.approx(8240 / 7850)
    # hard final accuracies 40 and 50 at IPC 1 and 2, linear in log IPC
    expected = 40 + 10 * math.log(8240 / 7850) / math.log(2)
    assert full["hard_at_budget"] == pytest.approx(expected) and full["soft_minus_hard"] == pytest.approx(55 - expected)
    assert table.loc[(1, "int8"), "label_bytes"] == 140
    assert math.isnan(table.loc[(2, "float32"), "hard_at_budget"])  # beyond IPC 2: not guessed
    assert "beyond the hard-label populations" in (tmp_path / "out" / "label_budget.md").read_text()
    hard = pd.DataFrame({"images_per_class": [1, 4], "final_mean": [40.0, 60.0]})
    assert hard_accuracy_at(hard, 1) == 40.0 and hard_accuracy_at(hard, 4) == 60.0
    assert hard_accuracy_at(hard, 2) == pytest.approx(50.0) and math.isnan(hard_accuracy_at(hard, 0.5))
    markdown = (tmp_path / "out" / "label_budget.md").read_text()
    assert "| -1.0 [-1.0, -1.0] * |" in markdown  # int8 minus float32 at IPC 1, every seed 1 point down


def test_label_budget_pairs_soft_labels_with_hard_ones_interpolated_per_seed(tmp_path):
    """Hard labels at IPC 1 score 39, 40, 41 and at IPC 2 50, 52, 48 over seeds 0-2; full soft labels
    at IPC 1 (8,240 bytes, hard IPC 8,240 / 7,850) score 54, 55, 56. Each seed's hard accuracy is
    interpolated linearly in log IPC, and soft - hard is the t-interval of the per-seed differences."""
    inputs = [write_result(tmp_path, "random-ipc1", "hard", 0.40),
              write_result(tmp_path, "random-ipc2", "hard", 0.50, finals=[0.50, 0.52, 0.48]),
              write_result(tmp_path, "random-ipc1", "expert-e2", 0.55)]
    table = draw(tmp_path, "label_budget", inputs).set_index(["images_per_class", "stored_as"])
    weight = math.log(8240 / 7850) / math.log(2)
    hard = [39 + weight * 11, 40 + weight * 12, 41 + weight * 7]
    differences = np.array([54, 55, 56]) - np.array(hard)
    half = 4.303 * differences.std(ddof=1) / math.sqrt(3)
    full = table.loc[(1, "float32")]
    assert full["soft_minus_hard"] == pytest.approx(differences.mean())
    assert (full["soft_minus_hard_low"], full["soft_minus_hard_high"]) == pytest.approx(
        (differences.mean() - half, differences.mean() + half))
    from labelworth.figures.label_budget import hard_by_seed_at
    points = pd.DataFrame({"images_per_class": [1, 2], "final_by_seed": [{0: 40.0, 1: 41.0}, {1: 52.0, 2: 50.0}]})
    assert hard_by_seed_at(points, 2) == {1: 52.0, 2: 50.0}  # measured there: that population's seeds
    assert hard_by_seed_at(points, math.sqrt(2)) == pytest.approx({1: 46.5})  # between: the seeds both have
    assert hard_by_seed_at(points, 3) == {}


def test_the_sweep_chooses_on_validation_where_the_students_have_it(tmp_path):
    """With validation accuracies the best epoch is theirs, not the test set's: here epoch 4 tests
    best and epoch 2 validates best."""
    from labelworth.io import read_json

    inputs = []
    for epoch, test, validation in ((2, 0.50, 0.60), (4, 0.55, 0.52)):
        path = write_result(tmp_path, "random-ipc1", f"expert-e{epoch}", test)
        content = read_json(path)
        content["final_validation_accuracy"] = {"mean": validation, "std": 0.0}
        write_json(path, content)
        inputs.append(path)
    inputs.append(write_result(tmp_path, "random-ipc1", "hard", 0.40))
    metrics = pd.DataFrame({"epoch": range(5), "train_loss": 1.0, "train_accuracy": 0.5, "test_accuracy": 0.6,
                            "train_label_entropy": 1.0})
    metrics.to_csv(tmp_path / "metrics.csv", index=False)
    table = draw(tmp_path, "expert_epoch_sweep", inputs, expert_metrics=[str(tmp_path / "metrics.csv")])
    assert table["best_expert_epoch"].tolist() == [2] and table["selected_on"].tolist() == ["validation"]
    assert table["best_accuracy"].tolist() == pytest.approx([50.0]) and table["validation_accuracy"].tolist() == [60.0]
    # choosing on the test set would have taken epoch 4 at 55%: 5 points of optimism
    assert table["test_chosen_epoch"].tolist() == [4] and table["test_chosen_accuracy"].tolist() == pytest.approx([55.0])
    page = (tmp_path / "out" / "expert_epoch_sweep.md").read_text()  # with its interval, and paired over seeds
    assert "| 4: 55.0 ± 1.0 [52.5, 57.5] | +5.0 [+5.0, +5.0] * |" in page


def test_rank_stability_ranks_the_sets_under_each_protocol(tmp_path):
    """Two fixed-label protocols that rank the sets in opposite orders: a row for each, and each
    protocol's tau between hard and soft labels from its own students."""
    accuracy = {("wide", "dm", "hard"): 0.60, ("wide", "random", "hard"): 0.40,
                ("wide", "dm", "expert-e2"): 0.62, ("wide", "random", "expert-e2"): 0.55,
                ("narrow", "dm", "hard"): 0.30, ("narrow", "random", "hard"): 0.45,
                ("narrow", "dm", "expert-e2"): 0.50, ("narrow", "random", "expert-e2"): 0.52}
    inputs = [write_result(tmp_path, f"{method}-ipc1", labels, best, student=student)
              for (student, method, labels), best in accuracy.items()]
    table = draw(tmp_path, "rank_stability", inputs).set_index("student")
    assert table.loc["wide", "hard ranking"] == "DM > random real" and table.loc["wide", "tau hard / fixed soft"] == 1
    assert table.loc["narrow", "hard ranking"] == "random real > DM"
    assert table.loc["narrow", "tau hard / fixed soft"] == 1 and len(table) == 2
