"""The cost meter every job ends its log with (labelworth/costs.py), read by benchmarks/cost_table.py."""

import subprocess
import sys
import time

import pytest

from labelworth import cli
from labelworth.costs import COMPUTE, DATA, PHASES, STARTUP, TEST_PASSES, CostMeter, parse_cost_line


def spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_phases_add_up_to_the_process_cpu_and_each_block_counts_to_its_phase():
    meter = CostMeter()
    meter.begin_work()
    spin(0.05)
    with meter.phase(DATA):
        spin(0.1)
        with meter.phase(DATA):  # nested in itself: counted once
            spin(0.05)
    with meter.phase(TEST_PASSES):
        spin(0.1)
    record = meter.record()
    cpu = record["cpu"]
    assert set(cpu) == set(PHASES)
    assert sum(cpu.values()) == pytest.approx(time.process_time(), abs=0.01)
    assert cpu[DATA] == pytest.approx(0.15, abs=0.02)
    assert cpu[TEST_PASSES] == pytest.approx(0.1, abs=0.02)
    assert cpu[COMPUTE] >= 0.05
    assert record["started"] <= record["ended"]


def test_an_unknown_phase_is_refused():
    with pytest.raises(ValueError, match="unknown phase 'loading'"):
        with CostMeter().phase("loading"):
            pass


def test_a_job_ends_its_log_with_one_cost_line_whose_imports_count_as_start_up(tmp_path):
    """A real process: the stage imports yaml and the schema lazily, inside its work; those imports are
    start-up, not compute. Run in-process (argv given), main prints no cost line."""
    result = subprocess.run([sys.executable, "-m", "labelworth", "config-schema"], capture_output=True, text=True,
                            check=True)
    record = parse_cost_line(result.stderr.splitlines()[-1])
    assert record is not None and set(record["cpu"]) == set(PHASES)
    assert record["cpu"][STARTUP] > 0.05  # at least the interpreter and yaml
    assert parse_cost_line("labelworth config-schema: error: x") is None


def test_in_process_calls_print_no_cost_line(capsys):
    assert cli.main(["config-schema"]) == 0
    assert "labelworth-cost" not in capsys.readouterr().err


def test_the_cost_table_adds_up_the_jobs_of_a_run_and_shows_idle_cores(tmp_path, monkeypatch):
    """benchmarks/cost_table.py on two logs: one rule's row sums its jobs, and a stretch where one job
    ran on one core of the run shows as one busy core."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import cost_table

    def log(rule, name, started, ended, cpu):
        path = tmp_path / "logs" / "fashion_mnist" / rule / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"started": started, "ended": ended, "cpu": {**dict.fromkeys(PHASES, 0.0), **cpu}}
        import json

        path.write_text(f"progress\nlabelworth-cost: {json.dumps(record)}\n")

    log("make_labels", "a", 0, 60, {STARTUP: 3.0, COMPUTE: 57.0})
    log("make_labels", "b", 0, 60, {STARTUP: 3.0, DATA: 57.0})
    log(".", "prepare_data", 0, 1, {STARTUP: 1.0})  # a rule of one job logs beside the rules' folders
    log("train_expert", "convnet-lr0.01/seed0", 300, 600, {TEST_PASSES: 60.0, COMPUTE: 240.0})  # nested, as experts log
    (tmp_path / "logs" / "fashion_mnist" / "make_labels" / "failed.log").write_text("Traceback ...\n")
    jobs = cost_table.job_costs(tmp_path)
    assert sorted(job["rule"] for job in jobs) == ["make_labels", "make_labels", "prepare_data", "train_expert"]
    rows = cost_table.stage_rows(jobs, total_cpu=480.0)
    labels_row = next(row for row in rows if row.startswith("| make_labels"))
    assert labels_row.split(" | ")[1:4] == ["2", "2.0", "2.0"]  # jobs, wall minutes, CPU minutes
    assert rows[-2].split(" | ")[3] == "1.0"  # 8 CPU-minutes in all, 7 in jobs: 1 outside them (and 1 s)
    timeline = cost_table.timeline_rows(jobs)
    assert timeline[2].split(" | ")[1] == "0.40"  # minutes 0-5: two cores for one minute of five (and 1 s)
    assert timeline[3].split(" | ")[1] == "1.00"  # minutes 5-10: the expert on one core
    # the run's stamp: the longest invocation (the one that built it), not a later top-up
    from labelworth.render import record_run

    record_run(tmp_path / "logs" / "fashion_mnist", 0.0, 2185.8, [], tmp_path)
    record_run(tmp_path / "logs" / "fashion_mnist", 3000.0, 3004.0, [], tmp_path)
    assert "logs/fashion_mnist/runs.jsonl): 36 min 26 s" in cost_table.stamp_sentences(tmp_path)


@pytest.mark.parametrize("module, absent", [
    ("labelworth.labels", ("torchvision", "matplotlib", "pandas")),
    ("labelworth.students", ("torchvision", "matplotlib", "pandas")),
    ("labelworth.experts", ("torchvision", "matplotlib", "pandas")),
    ("labelworth.distill.synthesis", ("torchvision", "matplotlib", "pandas")),
    ("labelworth.figures.soft_vs_hard", ("torch", "torchvision")),
])
def test_a_stage_starts_without_the_libraries_it_does_not_use(module, absent):
    """Importing torchvision doubles a ConvNet job's start-up (torch alone is about half), and label and
    student jobs are most of the run's jobs; figure jobs need no torch."""
    probe = f"import sys, {module}; print(' '.join(sorted(set({list(absent)!r}) & set(sys.modules))))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
