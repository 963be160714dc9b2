"""A local run's jobs forked from one warm Python: the client side, and the server's start and stop.

A fresh `labelworth` process spends 0.6-2.6 s of CPU importing torch, torchvision and its stage
before it works (benchmarks/results/job_server.md), and a default run starts nearly 300 of them. On a local
run the workflow starts one job server (labelworth/job_server.py) that imports all of that once and
forks a worker per job. The `labelworth` command a rule runs then only hands the server its
arguments, working folder, umask, environment and standard streams, forwards the signals it gets to
its worker, and exits with the worker's status. Where no server answers (a command run by hand, a
SLURM job, a torchrun worker, `LABELWORTH_JOB_SERVER=off`) the command runs in its own process.

Plain Python, no torch: this is all the client imports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

SERVER_ENV = "LABELWORTH_JOB_SERVER"  # the server's socket; "off" runs every job in its own process
SERVER_OFF = "off"
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STANDARD_STREAMS = (0, 1, 2)
_LENGTH = struct.Struct("!I")


def send_message(connection: socket.socket, message: dict, fds: Sequence[int] = ()) -> None:
    """One length-prefixed JSON message, with `fds` passed along (SCM_RIGHTS) when given."""
    payload = json.dumps(message).encode()
    frame = _LENGTH.pack(len(payload)) + payload
    sent = socket.send_fds(connection, [frame], list(fds)) if fds else 0
    connection.sendall(frame[sent:])


def _receive_exactly(connection: socket.socket, size: int, first: bytes = b"") -> bytes | None:
    data = bytearray(first)
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def receive_message(connection: socket.socket, max_fds: int = 0) -> tuple[dict | None, list[int]]:
    """The next message and the descriptors that came with it; (None, []) when the peer has closed.

    Property (tests): `receive_message` returns exactly what `send_message` sent, descriptors too."""
    fds: list[int] = []
    if max_fds:
        head, fds, _, _ = socket.recv_fds(connection, _LENGTH.size, max_fds)
    else:
        head = connection.recv(_LENGTH.size)
    header = _receive_exactly(connection, _LENGTH.size, head) if head else None
    if header is None:
        return None, fds
    payload = _receive_exactly(connection, _LENGTH.unpack(header)[0])
    return (None if payload is None else json.loads(payload)), fds


def server_socket(environ: Mapping[str, str] = os.environ) -> str | None:
    """The job server's socket this process should use, or None (run in-process)."""
    path = environ.get(SERVER_ENV)
    return None if not path or path == SERVER_OFF else path


def run_in_server(path: str, argv: Sequence[str]) -> int | None:
    """Run `labelworth argv` in a worker forked by the server at `path`, as if in this process: the
    same folder, umask, environment and streams; a signal this process gets goes to the worker.
    Returns the worker's exit status, or None when no server answers there (run it in-process).
    A worker killed by a signal kills this process with the same signal, so the caller sees the
    status a job of its own would have given."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except OSError:  # no server yet (it is still importing), or none any more
        connection.close()
        return None
    umask = os.umask(0)
    os.umask(umask)
    with connection:
        send_message(connection, {"argv": list(argv), "argv0": sys.argv[0], "cwd": os.getcwd(), "umask": umask,
                                  "environ": dict(os.environ)}, STANDARD_STREAMS)
        started, _ = receive_message(connection)
        if started is None:  # the server closed without forking (it is stopping): run it here
            return None
        worker = started["pid"]
        for number in FORWARDED_SIGNALS:
            signal.signal(number, lambda received, frame: _forward(worker, received))
        finished, _ = receive_message(connection)  # a signal's handler runs, then the wait goes on
    if finished is None:
        print(f"labelworth: the job server at {path} closed before worker {worker} reported its exit "
              "status", file=sys.stderr)
        return 1
    returncode = finished["returncode"]
    if returncode < 0:
        signal.signal(-returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -returncode)
    return returncode


def _forward(worker: int, number: int) -> None:
    try:
        os.kill(worker, number)
    except ProcessLookupError:  # it has just ended; its status is on the way
        pass


class JobServer:
    """The server process of one local run: `start()` at the run's start (Snakemake's onstart), then
    `stop()` at its end (onsuccess, onerror). Jobs find it through SERVER_ENV, which `start()` sets in
    this process's environment, so every job Snakemake starts inherits it."""

    def __init__(self, log: str | Path) -> None:
        self.log = Path(log)
        self.process: subprocess.Popen | None = None
        self.folder: str | None = None

    def start(self, environ: dict = os.environ) -> bool:
        """Start the server unless SERVER_ENV is set already (to a server, or `off`); the server
        imports before it listens, and jobs that start meanwhile run in their own process."""
        if SERVER_ENV in environ:
            return False
        self.folder = tempfile.mkdtemp(prefix="labelworth-")
        path = os.path.join(self.folder, "jobs.sock")  # short: a socket's path has at most 107 bytes
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as log:
            # its own session: a Ctrl-C reaches each job's client, which forwards it to its worker
            self.process = subprocess.Popen(
                [sys.executable, "-m", "labelworth.job_server", "--socket", path, "--parent", str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        environ[SERVER_ENV] = path
        return True

    def stop(self, environ: dict = os.environ) -> None:
        """Stop the server and wait for it (so that its CPU time, and its workers', is counted as this
        process's children's); workers still running finish their jobs."""
        if self.process is None:
            return
        environ.pop(SERVER_ENV, None)
        self.process.terminate()
        self.process.wait()
        self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)
