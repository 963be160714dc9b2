"""The job server: a `labelworth` job forked from one warm Python writes bitwise what it writes in a
process of its own, with the same log, one-line errors and exit statuses; signals reach it, a killed
client ends it, and the server ends with its parent and never starts a thread pool of its own."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from labelworth.costs import parse_cost_line
from labelworth.job_client import SERVER_ENV, SERVER_OFF, JobServer, receive_message, send_message
from labelworth.job_server import fresh_thread_count

WAIT_S = 60  # the server imports torch before it listens: seconds on a loaded 2-core machine


def wait_for(condition, what: str, seconds: float = WAIT_S):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"waited {seconds} s for {what}")


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A job server whose parent is this test process, and the environment that reaches it."""
    folder = tmp_path_factory.mktemp("job_server")
    environ: dict[str, str] = {}
    job_server = JobServer(folder / "job_server.log")
    assert job_server.start(environ)
    wait_for(lambda: "listening" in job_server.log.read_text(), "the server to listen")
    yield {"environ": {**os.environ, **environ}, "server": job_server}
    job_server.stop(environ)
    assert SERVER_ENV not in environ and not Path(job_server.folder).exists()


def labelworth(arguments: list[str], environ: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labelworth", *arguments], capture_output=True, text=True,
                          env=environ, **kwargs)


def served_workers(server) -> list[str]:
    return [line for line in server["server"].log.read_text().splitlines() if ": labelworth " in line]


def in_process(environ: dict) -> dict:
    return {**environ, SERVER_ENV: SERVER_OFF}


def without_progress_and_costs(log: str) -> list[str]:
    """A job's log without what differs between two runs of one job: its cost line (times) and
    tqdm's rates."""
    return [line.split("\r")[-1].split("[")[0] for line in log.splitlines() if parse_cost_line(line) is None]


def digests(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def expert_command(data: Path, out: Path, epochs: int) -> list[str]:
    return ["train-expert", "--data-dir", str(data), "--options", "arch=convnet-d2-w8", "lr=0.01",
            f"epochs={epochs}", "seeds=0", "batch_size=64", "--checkpoint-dir", str(out / "checkpoints"),
            "--metrics", str(out / "metrics.csv"), "--work-dir", str(out / "work"), "--device", "cpu"]


def test_a_message_and_its_descriptors_arrive_as_sent():
    left, right = socket.socketpair()
    read_end, write_end = os.pipe()
    with left, right:
        send_message(left, {"argv": ["a", "ü"], "umask": 18}, [write_end])
        message, fds = receive_message(right, max_fds=3)
        assert message == {"argv": ["a", "ü"], "umask": 18} and len(fds) == 1
        os.write(fds[0], b"through the passed descriptor")
        assert os.read(read_end, 100) == b"through the passed descriptor"
        left.close()
        assert receive_message(right) == (None, [])
    for fd in (read_end, write_end, *fds):
        os.close(fd)


def test_the_thread_count_a_fresh_torch_would_take():
    assert fresh_thread_count({"OMP_NUM_THREADS": "3"}, 2) == 3
    assert fresh_thread_count({}, 2) == 2
    assert fresh_thread_count({"OMP_NUM_THREADS": "0"}, None) is None
    assert fresh_thread_count({"OMP_NUM_THREADS": "two"}, 4) == 4


def test_a_served_job_writes_bitwise_what_its_own_process_writes(server, tmp_path, fashion_mnist_data):
    runs = {}
    for name, environ in (("served", server["environ"]), ("own", in_process(server["environ"]))):
        before = len(served_workers(server))
        result = labelworth(expert_command(fashion_mnist_data, tmp_path / name, epochs=2),
                            {**environ, "OMP_NUM_THREADS": "1"})  # as Snakemake sets it for a 1-thread job
        assert result.returncode == 0, result.stderr[-3000:]
        # the served job went through the server; the other did not
        assert len(served_workers(server)) == before + (name == "served")
        runs[name] = result
    served, own = digests(tmp_path / "served"), digests(tmp_path / "own")
    assert len(served) >= 4 and served == own
    assert without_progress_and_costs(runs["served"].stderr) == without_progress_and_costs(runs["own"].stderr)
    assert parse_cost_line(runs["served"].stderr.splitlines()[-1]) is not None  # the log still ends with its costs


@pytest.mark.parametrize("arguments, returncode", [
    (["check-config", "--configfile", "no-such-config.yaml"], 2),  # a LabelworthError: one line
    (["no-such-stage"], 2),  # argparse's error
    (["train-expert", "--help"], 0),
])
def test_errors_help_and_exit_statuses_are_those_of_an_own_process(server, tmp_path, arguments, returncode):
    before = len(served_workers(server))
    served = labelworth(arguments, server["environ"], cwd=tmp_path)
    own = labelworth(arguments, in_process(server["environ"]), cwd=tmp_path)
    assert len(served_workers(server)) == before + 1
    assert (served.returncode, served.stdout, served.stderr) == (own.returncode, own.stdout, own.stderr)
    assert served.returncode == returncode


def test_without_a_server_a_job_runs_in_its_own_process(tmp_path):
    for value in (SERVER_OFF, str(tmp_path / "no-server.sock")):
        result = labelworth(["check-config", "--configfile", "missing.yaml"], {**os.environ, SERVER_ENV: value},
                            cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "missing.yaml" in result.stderr


def long_job(server, tmp_path, fashion_mnist_data) -> tuple[subprocess.Popen, int]:
    """A served expert of many epochs, and its worker's pid once it has started."""
    before = len(served_workers(server))
    client = subprocess.Popen([sys.executable, "-m", "labelworth", *expert_command(fashion_mnist_data, tmp_path, 10_000)],
                              env=server["environ"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = wait_for(lambda: served_workers(server)[before:], "the worker to start")[0]
    worker = int(line.split("worker ")[1].split(":")[0])
    wait_for(lambda: (tmp_path / "work").exists(), "the expert to start training")
    return client, worker


def test_a_signal_to_the_client_reaches_its_worker(server, tmp_path, fashion_mnist_data):
    client, worker = long_job(server, tmp_path, fashion_mnist_data)
    client.send_signal(signal.SIGINT)  # a Ctrl-C: the stage ends as a Python of its own would
    client.wait(timeout=WAIT_S)
    assert client.returncode == -signal.SIGINT and "KeyboardInterrupt" in client.stderr.read()
    wait_for(lambda: not alive(worker), "the worker to end")


def test_a_killed_client_ends_its_worker(server, tmp_path, fashion_mnist_data):
    client, worker = long_job(server, tmp_path, fashion_mnist_data)
    client.kill()
    client.wait()
    wait_for(lambda: f"worker {worker} ended with status {-signal.SIGTERM}" in server["server"].log.read_text(),
             "the worker of a killed client to end as a SIGTERM ends it")


def test_the_server_runs_no_threads_beyond_its_imports(server, tmp_path):
    """Forking is safe because the server never runs a torch operation: after serving it has the
    threads of a process that imported the same and forked once (numpy's OpenBLAS stops its thread
    at a fork), and no OpenMP pool, which a torch operation would have started and a fork keeps."""
    imports_and_a_fork = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os
        from labelworth.job_server import preload
        preload()
        child = os.fork()
        if child == 0:
            os._exit(0)
        os.waitpid(child, 0)
        print(len(os.listdir("/proc/self/task")))""")], capture_output=True, text=True, check=True)
    assert labelworth(["check-config", "--configfile", "missing.yaml"], server["environ"], cwd=tmp_path).returncode == 2
    assert thread_count(server["server"].process.pid) == int(imports_and_a_fork.stdout)


def test_the_server_ends_with_its_parent(tmp_path):
    launcher = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from labelworth.job_client import JobServer
        server = JobServer({str(tmp_path / 'server.log')!r})
        server.start({{}})
        print(server.process.pid, flush=True)
        time.sleep(600)""")], stdout=subprocess.PIPE, text=True)
    server = int(launcher.stdout.readline())
    wait_for(lambda: "listening" in (tmp_path / "server.log").read_text(), "the server to listen")
    launcher.kill()
    launcher.wait()
    wait_for(lambda: not alive(server), "the server to end after its parent", seconds=10)


def test_a_server_that_finds_cuda_initialised_serves_nothing(tmp_path):
    """A forked worker cannot use a CUDA context its parent made: then the server does not listen,
    and every job runs in its own process."""
    script = textwrap.dedent(f"""
        import torch
        torch.cuda.is_initialized = lambda: True  # as if an import had initialised CUDA
        from labelworth import job_server
        job_server.main(["--socket", {str(tmp_path / 'jobs.sock')!r}, "--parent", "1"])""")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=WAIT_S)
    assert result.returncode == 0 and "CUDA was initialised while importing" in result.stdout
    assert not (tmp_path / "jobs.sock").exists()
