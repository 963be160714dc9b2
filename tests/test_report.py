"""`snakemake --report` (what `make report` runs) on the finished tiny run: one self-contained HTML
file that carries every figure and table the run drew, byte for byte."""

from __future__ import annotations

import base64

import pytest

from conftest import snakemake

# The eleven student experiments', expert training, benchmark images, soft-label bars, class
# similarity, and the benchmark's label robustness, accuracy against storage, pass inflation and rank
# stability.
FIGURES = 19
TABLES = 15  # one per student experiment and per benchmark figure


@pytest.mark.e2e
def test_report_embeds_every_figure_and_table_of_the_run(finished_run, tmp_path):
    """Figures are in the report as PNG and tables as markdown (their PDF and CSV twins hold the same
    content); the report embeds each file as a base64 data URI, so its bytes must be in the page."""
    report = tmp_path / "report.html"
    snakemake(finished_run, "--report", str(report))
    page = report.read_text()
    results = finished_run / "results" / "fashion_mnist"
    drawn = sorted((results / "figures").glob("*.png")) + sorted((results / "tables").glob("*.md"))
    assert len(drawn) == FIGURES + TABLES
    assert [path.name for path in drawn if base64.b64encode(path.read_bytes()).decode() not in page] == []
