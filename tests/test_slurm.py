"""The workflow on a real SLURM cluster: tests/slurm/setup.sh builds a single-node SLURM 22.05 from
Debian's packages, and a small config runs through the official executor plugin with the CI
profile tests/slurm/profile. Evidence that jobs really ran under SLURM: each non-local job left a
SLURM log named after its SLURM job id, and SLURM itself lists that id as COMPLETED with the job's
rule; every rule wrote its log; and the results are bitwise those of a local run of the same config.
Needs root on Debian with apt and free ports 6817-6818, else it skips saying which is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, checksums, micro_config, planned_jobs, snakemake_command, write_fashion_mnist

SLURM_TESTS = ROOT / "tests" / "slurm"
SLURM_PORTS = (6817, 6818)  # slurmctld, slurmd
SETUP_TIMEOUT_S = 300  # apt-get on a fresh machine takes ~10 s; a slow mirror much longer
RUN_TIMEOUT_S = 300  # SIGINT after this (SIGTERM would leave snakemake waiting for its jobs)
APT_FAILED = 10  # setup.sh's exit status when the packages cannot be installed
# One expert epoch on 20 images per class, two 2-epoch student populations: 7 SLURM jobs in 4 levels
# (data; expert and images; labels; students), then the four figures on this machine.
SMALL = {
    "expert": {"epochs": 2, "seeds": [0]},
    "student": {"epochs": 2, "seeds": [0], "eval_every": 1},
    "benchmark": {"images_per_class": [1], "soft_labels": [{"expert_epoch": [1]}]},
}
LOCAL_RULES = {"figure_soft_vs_hard", "figure_expert_training", "figure_benchmark_images", "figure_accuracy_vs_storage",
               "figure_pass_inflation", "figure_rank_stability"}


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT socket is no owner
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def why_no_cluster() -> str | None:
    """Why this machine cannot host the test cluster, or None when it can."""
    if os.geteuid() != 0:
        return "it needs root, to install packages and start the SLURM daemons"
    if not Path("/etc/debian_version").exists():
        return "it needs Debian: the cluster is built from Debian 12's slurm-wlm packages"
    if shutil.which("apt-get") is None:
        return "it needs apt-get, to install slurmctld, slurmd, slurm-client and munge"
    busy = [port for port in SLURM_PORTS if port_in_use(port)]
    if busy:
        return f"port(s) {', '.join(map(str, busy))} are in use (another SLURM running?), and SLURM needs 6817-6818"
    return None


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node cluster (partition `debug`), stopped again at the end of the module."""
    reason = why_no_cluster()
    if reason:
        pytest.skip(f"no SLURM test cluster: {reason}")
    try:
        setup = subprocess.run(["bash", str(SLURM_TESTS / "setup.sh")], capture_output=True, text=True,
                               timeout=SETUP_TIMEOUT_S)
        output = (setup.stdout + setup.stderr)[-3000:]
        if setup.returncode == APT_FAILED:
            pytest.skip(f"no SLURM test cluster: apt-get could not install the slurm packages:\n{output}")
        assert setup.returncode == 0, f"tests/slurm/setup.sh failed:\n{output}"
        yield
    finally:
        subprocess.run(["bash", str(SLURM_TESTS / "teardown.sh")], timeout=120)
        # A slurm.conf left behind without its daemons would make every later snakemake start wait
        # ~9 s: the SLURM executor plugin asks slurmctld for its config when it is imported.
        conf = Path("/etc/slurm/slurm.conf")
        assert not conf.exists() or "written by labelworth" not in conf.read_text(), "teardown left slurm.conf"


def prepare(workdir: Path) -> Path:
    write_fashion_mnist(workdir / "raw" / "fashion_mnist", train_per_class=20, test_per_class=10)
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(micro_config(SMALL)))
    return config


def slurm_job_ids(workdir: Path) -> dict[str, list[str]]:
    """Rule -> SLURM job ids, from the plugin's per-job logs `.snakemake/slurm_logs/rule_<rule>/
    <wildcards>/<job id>.log` (kept by --slurm-keep-successful-logs)."""
    jobs = {}
    for log in (workdir / ".snakemake" / "slurm_logs").glob("rule_*/**/*.log"):
        rule = log.relative_to(workdir / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
        jobs.setdefault(rule, []).append(log.stem)
    return jobs


def slurm_job_table() -> dict[str, tuple[str, str]]:
    """Job id -> (state, comment) of every job slurmctld still remembers (MinJobAge=300 s)."""
    listing = subprocess.run(["squeue", "-t", "all", "-h", "-o", "%i %T %k"], capture_output=True, text=True,
                             check=True).stdout
    return {job_id: (state, comment) for job_id, state, comment in
            (line.split(" ", 2) for line in listing.splitlines() if line.strip())}


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """The small config through SLURM and, at the same time in another folder (the SLURM run mostly
    waits between polls), on this machine; returns both folders and the SLURM run's output."""
    folders = {name: tmp_path_factory.mktemp(name) for name in ("slurm", "local")}
    commands = {}
    for name, folder in folders.items():
        profile = ("--workflow-profile", str(SLURM_TESTS / "profile")) if name == "slurm" else ()
        commands[name], env = snakemake_command(folder, *profile, config=prepare(folder))
    commands["slurm"] = ["timeout", "-s", "INT", "-k", "30", str(RUN_TIMEOUT_S), *commands["slurm"]]
    processes = {}
    for name, folder in folders.items():  # output to files: a full pipe would stall the run not read first
        with open(folder / "snakemake.out", "w") as output:
            processes[name] = subprocess.Popen(commands[name], cwd=folder, env=env, stdout=output,
                                               stderr=subprocess.STDOUT)
    for process in processes.values():
        process.wait()
    outputs = {name: (folder / "snakemake.out").read_text() for name, folder in folders.items()}
    assert processes["local"].returncode == 0, f"the local run failed:\n{outputs['local'][-5000:]}"
    # A job that fails before its shell command runs (e.g. while parsing the workflow) leaves its rule
    # log empty; its SLURM log has the reason.
    slurm_logs = "".join(f"\n--- {log}:\n{log.read_text()[-1500:]}"
                         for log in (folders["slurm"] / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert processes["slurm"].returncode == 0, f"the SLURM run failed:\n{outputs['slurm'][-5000:]}{slurm_logs}"
    return folders | {"output": outputs["slurm"]}


def test_every_non_local_job_ran_as_a_completed_slurm_job(runs):
    planned = planned_jobs(subprocess.CompletedProcess([], 0, runs["output"], ""))
    expected = {rule: count for rule, count in planned.items() if rule not in LOCAL_RULES}
    assert sum(expected.values()) == 7 and LOCAL_RULES <= set(planned)
    jobs = slurm_job_ids(runs["slurm"])
    assert {rule: len(ids) for rule, ids in jobs.items()} == expected  # figures stayed local
    known = slurm_job_table()
    for rule, ids in jobs.items():
        for job_id in ids:
            assert job_id in known, f"SLURM has no job {job_id} ({rule})"
            state, comment = known[job_id]
            assert state == "COMPLETED" and comment.startswith(f"rule_{rule}"), (job_id, state, comment)


def test_every_rule_wrote_its_log(runs):
    """The same log files as the local run (a stage that succeeds quietly leaves its log empty), and
    the local run's job server log besides: SLURM jobs run in their own processes."""
    logs = {name: sorted(str(path.relative_to(runs[name])) for path in (runs[name] / "logs").rglob("*.log"))
            for name in ("slurm", "local")}
    server_logs = [log for log in logs["local"] if log.endswith("/job_server.log")]
    assert len(server_logs) == 1 and server_logs[0].count("/") == 2  # logs/{run}/job_server.log
    assert len(logs["slurm"]) == 13 and logs["slurm"] == [log for log in logs["local"] if log not in server_logs]


def test_slurm_results_equal_a_local_run_bit_for_bit(runs):
    """The same thread count per job on both sides (a rule's threads), so even floats repeat."""
    slurm, local = checksums(runs["slurm"] / "results"), checksums(runs["local"] / "results")
    assert {"fashion_mnist/figures/soft_vs_hard.png", "fashion_mnist/tables/soft_vs_hard.csv"} <= set(slurm)
    assert sum(name.endswith(".json") for name in slurm) == 2
    assert slurm == local
