"""The user's documentation: rendered results, the generated config reference, and numbers quoted only
from a rendered file."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from labelworth.errors import LabelworthError
from labelworth.layout import Layout
from labelworth.render import RUNS_FILE, duration_text, record_run, render_results
from labelworth.schema import config_reference, config_schema

ROOT = Path(__file__).resolve().parents[1]
# An accuracy quoted with its interval: `52.7 [52.2, 53.3]`, `45.9 ± 1.5 [42.2, 49.7]`, `+6.8 [+3.1, +10.5]`.
# A quote wrapped over two lines is still a quote (compared with its whitespace made single spaces).
QUOTED = re.compile(r"[+-]?\d+\.\d+(?:\s+±\s+\d+\.\d+)?\s+\[[+-]?\d+\.\d+,\s+[+-]?\d+\.\d+\]")
# The rendered pages: the default run's (docs/results.md), another run's (docs/<run>/results.md), summaries of
# evaluate, and the benchmark the README quotes.
RENDERED = ["docs/results.md", *sorted(str(path.relative_to(ROOT)) for path in ROOT.glob("docs/*/results.md")),
            *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "docs/evaluations").glob("*.md")),
            "benchmarks/results/pass_inflation.md"]  # the 15-pass measurement the README quotes


def test_render_copies_each_figure_and_quotes_each_table_under_the_longest_runs_stamp(tmp_path):
    layout = Layout(str(tmp_path / "results" / "fashion_mnist"), str(tmp_path / "logs" / "fashion_mnist"), "")
    results, logs = Path(layout.root), Path(layout.logs)
    (results / "figures").mkdir(parents=True)
    (results / "tables").mkdir()
    (results / "figures" / "soft_vs_hard.png").write_bytes(b"png")
    (results / "figures" / "zero_shot.png").write_bytes(b"png2")
    table = "Caption words.\n\n| method | hard |\n|---|---|\n| random real | 45.9 ± 1.5 [42.2, 49.7] |\n"
    (results / "tables" / "soft_vs_hard.md").write_text(table)
    with pytest.raises(LabelworthError, match=f"{RUNS_FILE}: no run stamp"):
        render_results(layout, tmp_path / "docs", ROOT / "workflow" / "report")
    record_run(logs, 1000.0, 1000.0 + 2526.4, ["config.yaml"], ROOT)
    record_run(logs, 9000.0, 9012.0, [], ROOT)  # a later top-up run
    stamps = [json.loads(line) for line in (logs / RUNS_FILE).read_text().splitlines()]
    assert [stamp["wall_seconds"] for stamp in stamps] == [2526.4, 12.0] and stamps[0]["machine"]
    page = render_results(layout, tmp_path / "docs", ROOT / "workflow" / "report").read_text()
    assert table.rstrip() in page and "![soft_vs_hard](figures/soft_vs_hard.png)" in page
    assert "**42 min 06 s**" in page and "the longest of 2 recorded runs" in page and "`config.yaml`" in page
    assert "Its results folder holds **0 MB**." in page
    assert "Then commit" not in page  # the top-up ran at the same commit
    top_up = {**stamps[1], "commit": "abc1234", "started": 9100.0, "wall_seconds": 61.0}
    with (logs / RUNS_FILE).open("a") as stream:
        stream.write(json.dumps(top_up) + "\n")
    page = render_results(layout, tmp_path / "docs", ROOT / "workflow" / "report").read_text()
    assert "Then commit `abc1234` ran in it for 1 min 01 s, redrawing what its changes touched" in page
    record_run(logs, 9200.0, 12000.0, ["config.yaml"], ROOT, {"run": "fashion_mnist", "selection": "validation"})
    page = render_results(layout, tmp_path / "docs", ROOT / "workflow" / "report").read_text()
    assert "config `config.yaml --config run=fashion_mnist selection=validation`, started" in page  # now the longest
    assert (tmp_path / "docs" / "figures" / "zero_shot.png").read_bytes() == b"png2"
    assert page.index("## soft-vs-hard") < page.index("## zero-shot")


def test_a_hard_linked_file_counts_once_in_a_folders_bytes(tmp_path):
    from labelworth.render import folder_bytes

    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "b").hardlink_to(tmp_path / "a")
    (tmp_path / "c").write_bytes(b"y" * 10)
    assert folder_bytes(tmp_path) == 1010


def test_durations_read_as_minutes_and_seconds():
    assert duration_text(2526.4) == "42 min 06 s" and duration_text(3726) == "1 h 02 min 06 s"


def test_the_config_reference_is_generated_from_the_model_and_covers_every_key():
    assert (ROOT / "docs" / "configuration.md").read_text() == config_reference(), \
        "docs/configuration.md differs from the config model: labelworth config-reference > docs/configuration.md"

    def keys(schema):
        found = set(schema.get("properties", {}))
        for value in schema.get("properties", {}).values():
            for option in value.get("oneOf", [value]):
                for nested in (option, option.get("additionalProperties"), option.get("items")):
                    if isinstance(nested, dict):
                        found |= keys(nested)
        return found
    reference = config_reference()
    assert all(f"{key}` |" in reference for key in keys(config_schema()))


def test_every_accuracy_the_docs_quote_is_in_a_rendered_file():
    rendered = "\n".join((ROOT / path).read_text() for path in RENDERED)
    quoting = [ROOT / "README.md", *(path for path in (ROOT / "docs").glob("*.md") if path.name != "results.md")]
    quotes = [(path, " ".join(quote.split())) for path in quoting for quote in QUOTED.findall(path.read_text())]
    missing = [f"{path.relative_to(ROOT)}: {quote}" for path, quote in quotes if quote not in rendered]
    assert not missing, "quoted but not rendered: " + "; ".join(missing)


def test_the_repository_stands_alone():
    """No file a user gets cites the developers' reference notes."""
    listed = subprocess.run(["git", "-C", str(ROOT), "grep", "-l", "-e", "METHOD" + ".md", "-e", "DESIGN" + ".md",
                             "-e", "../" + "shared", "--", ".", ":!tests", ":!.ci"],
                            capture_output=True, text=True).stdout.split()
    assert not listed, f"files citing notes users do not have: {listed}"


def test_render_results_reads_the_run_it_is_named(tmp_path, monkeypatch, capsys):
    from labelworth.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["render-results", "--run", "fashion_mnist_validation", "--docs", str(tmp_path / "docs")]) == 2
    assert "logs/fashion_mnist_validation/runs.jsonl: no run stamp" in capsys.readouterr().err
