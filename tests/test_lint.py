"""The Snakemake files pass Snakemake's own linter on the default and every paper config, and are
formatted by snakefmt (its settings, line length included, are in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, snakemake

LINTED_CONFIGS = [ROOT / "config.yaml", ROOT / "tests" / "config.tiny.yaml"] + sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", LINTED_CONFIGS, ids=lambda path: path.stem)
def test_snakemake_lint_reports_nothing(config, tmp_path):
    result = snakemake(tmp_path, "--lint", config=config)
    output = result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in output and "Lints for" not in output, output


def test_snakemake_files_are_snakefmt_formatted():
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    snakefmt = Path(sys.executable).parent / "snakefmt"
    result = subprocess.run([str(snakefmt), "--check", "--diff", *map(str, files)], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
