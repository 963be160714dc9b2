"""The job server of a local run: it imports what every job needs once, then forks a worker per job.

    python -m labelworth.job_server --socket PATH --parent PID   (started by labelworth/job_client.py)

A worker runs the same `run_job` as a `labelworth` process would, so its files, its log, its one-line
errors and its exit status are those of an in-process job (tests/test_job_server.py). Forking is
safe only from a process that never started a thread pool or CUDA: the server imports, but never runs
a torch operation, and serves from one thread; should an import have initialised CUDA, it serves nothing. What a fresh process would take from its start, a
worker takes from its client: the folder, umask, environment, standard streams, the intra-op thread
count torch reads from OMP_NUM_THREADS, default signal handlers and a fresh cost meter.

The server stops on SIGTERM (JobServer.stop) or when its parent, the Snakemake that started it, is
gone. It reaps its workers and sends each client its worker's exit status; a worker whose client
has gone away (killed) terminates, as a job of its own would have been.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import pkgutil
import select
import signal
import socket
import sys
import threading
import time
import traceback

from labelworth import cli
from labelworth.costs import METER, cost_line
from labelworth.job_client import STANDARD_STREAMS, receive_message, send_message

POLL_SECONDS = 0.2  # how soon a stopped server or a dead parent is noticed, and a worker reaped
REQUEST_TIMEOUT_S = 10  # a client sends its request at once; one that does not may not stall the rest
# Imported on a job's first optimiser step (torch.optim's grad-mode decorator): 0.8 s of CPU a job.
LAZY_IMPORTS = ("torch._dynamo",)
NOT_PRELOADED = ("labelworth.__main__", "labelworth.job_server")


def preload() -> list[str]:
    """Import every labelworth module (and so torch, torchvision, matplotlib) and what a job imports
    lazily; returns the module names. Runs no torch operation."""
    import labelworth

    names = [module.name for module in pkgutil.walk_packages(labelworth.__path__, "labelworth.")
             if module.name not in NOT_PRELOADED]
    for name in (*names, *LAZY_IMPORTS):
        importlib.import_module(name)
    return names


def fresh_thread_count(environ, default: int | None) -> int | None:
    """The intra-op thread count torch would start with in a fresh process with `environ`: its
    OMP_NUM_THREADS when that is a positive integer, else `default` (the server's own, when the
    server's environment had none), else None (keep what there is)."""
    value = environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else default


class Server:
    def __init__(self, path: str, parent: int) -> None:
        self.path, self.parent = path, parent
        self.stopping = False
        self.clients: dict[int, socket.socket] = {}  # worker pid -> its client's connection
        import torch

        self.default_threads = None if "OMP_NUM_THREADS" in os.environ else torch.get_num_threads()

    def serve(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(64)
        signal.signal(signal.SIGTERM, self._stop)
        print(f"job server {os.getpid()}: listening on {self.path}", flush=True)
        try:
            while not self.stopping and os.getppid() == self.parent:
                readable, _, _ = select.select([listener], [], [], POLL_SECONDS)
                if readable:
                    connection, _ = listener.accept()
                    self._start_worker(listener, connection)
                self._reap()
        finally:
            listener.close()
            os.unlink(self.path)
            self._reap()

    def _stop(self, number, frame) -> None:
        self.stopping = True

    def _start_worker(self, listener: socket.socket, connection: socket.socket) -> None:
        connection.settimeout(REQUEST_TIMEOUT_S)
        try:
            request, fds = receive_message(connection, max_fds=len(STANDARD_STREAMS))
        except OSError as error:
            print(f"job server: a request failed: {error}", flush=True)
            connection.close()
            return
        if request is None or len(fds) != len(STANDARD_STREAMS):
            for fd in fds:
                os.close(fd)
            connection.close()
            return
        connection.settimeout(None)
        sys.stdout.flush()
        sys.stderr.flush()
        worker = os.fork()
        if worker == 0:  # the worker: never returns into the server's loop
            listener.close()
            for other in self.clients.values():
                other.close()
            os._exit(self._work(connection, request, fds))
        for fd in fds:
            os.close(fd)
        self.clients[worker] = connection
        print(f"job server: worker {worker}: labelworth {' '.join(request['argv'][:1])}", flush=True)

    def _reap(self) -> None:
        while self.clients:
            try:
                worker, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if worker == 0:
                return
            returncode = os.waitstatus_to_exitcode(status)
            connection = self.clients.pop(worker, None)
            if connection is not None:
                # The worker reported its own status unless a signal ended it; a second report is
                # ignored by the client, which may have gone already.
                try:
                    send_message(connection, {"returncode": returncode})
                except OSError:
                    pass
                connection.close()
            if returncode != 0:
                print(f"job server: worker {worker} ended with status {returncode}", flush=True)

    def _work(self, connection: socket.socket, request: dict, fds: list[int]) -> int:
        """In the worker: become the client's job, run it, report its status; returns it."""
        for target, fd in zip(STANDARD_STREAMS, fds):
            os.dup2(fd, target)
            os.close(fd)
        for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["environ"])
        sys.argv = [request["argv0"], *request["argv"]]
        sys.stdout.reconfigure(line_buffering=os.isatty(1))
        threads = fresh_thread_count(os.environ, self.default_threads)
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        METER.restart()
        send_message(connection, {"pid": os.getpid()})
        finished = threading.Event()
        threading.Thread(target=_end_when_client_leaves, args=(connection, finished), daemon=True).start()
        returncode = _run(request["argv"])
        finished.set()
        try:
            send_message(connection, {"returncode": returncode})
        except OSError:
            pass
        return returncode


def _run(argv: list[str]) -> int:
    """`cli.run_job(argv)` with what the interpreter does around a script: SystemExit's code, a
    traceback and status 1 for an uncaught exception, exit handlers and flushed streams."""
    try:
        returncode = cli.run_job(argv)
    except SystemExit as exit_:
        code = exit_.code
        if code is None or isinstance(code, int):
            returncode = code or 0
        else:
            print(code, file=sys.stderr)
            returncode = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        returncode = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        returncode = 1
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    if returncode < 0:  # as the interpreter ends on an uncaught KeyboardInterrupt: by the signal
        signal.signal(-returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -returncode)
    return returncode


def _end_when_client_leaves(connection: socket.socket, finished: threading.Event) -> None:
    """A worker's watch: the client never sends after its request, so a read returns only when it is
    gone; then a job still running ends as a SIGTERM would end it."""
    try:
        connection.recv(1)
    except OSError:
        pass
    if not finished.is_set():
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labelworth.job_server", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="the Unix socket to listen on")
    parser.add_argument("--parent", type=int, required=True, help="stop when this process is gone")
    args = parser.parse_args(argv)
    cli.keep_freed_memory()  # before torch allocates anything; workers inherit it
    started = time.perf_counter()
    modules = preload()
    import torch

    if torch.cuda.is_initialized():  # a forked worker could not use CUDA: jobs run in their own processes
        print("job server: CUDA was initialised while importing, so no job is forked (each runs in its own "
              "process)", flush=True)
        return
    server = Server(args.socket, args.parent)
    gc.freeze()  # what the server imported stays shared with its workers: no collection touches it
    METER.begin_work()
    print(f"job server {os.getpid()}: imported {len(modules)} modules in {time.perf_counter() - started:.1f} s",
          flush=True)
    try:
        server.serve()
    finally:
        print(cost_line(), flush=True)


if __name__ == "__main__":
    main()
