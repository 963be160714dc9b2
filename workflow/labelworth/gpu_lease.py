"""One GPU per job on a machine with several: a lease held as an flock on one file per device.

Snakemake's `--resources gpu=N` (profiles/gpu) bounds how many GPU jobs run at once but never says
which device a job gets, so without a lease every job would start on device 0. A job takes the first
device whose lock file it can lock, sets CUDA_VISIBLE_DEVICES to it before torch starts, and keeps
the lock until it exits; the kernel drops an flock when its holder dies, even by SIGKILL, so a
crashed job never strands a device. Lock files live under `.snakemake/gpu-locks` of the job's
working directory (Snakemake runs jobs in the workflow's directory), so only jobs of one workflow
folder on one machine coordinate.

Plain Python, no torch: the lease must be taken before torch is imported.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path

LOCK_DIR = Path(".snakemake/gpu-locks")
LEASE_ENV = "LABELWORTH_GPU_LEASE"  # "1": the gpu profile asks every job to lease a device
LEASED_DEVICES = ("auto", "cuda")  # an explicit cuda:<i> is the user's choice and is left alone
_UNSAFE_IN_NAMES = re.compile(r"[^\w.-]")


def gpu_pool(environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """The devices this process may use, as CUDA_VISIBLE_DEVICES entries.

    CUDA_VISIBLE_DEVICES when it is set (SLURM sets it to the job's own devices; empty means none),
    else the indices `nvidia-smi -L` lists (its indented MIG lines are not devices); [] when
    neither exists."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [device.strip() for device in visible.split(",") if device.strip()]
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [match[1] for line in listing.splitlines() if (match := re.match(r"GPU (\d+):", line))]


def lock_file(lock_dir: Path, device: str) -> Path:
    """The lock file of `device`; a UUID or MIG name becomes a file name without path separators."""
    return Path(lock_dir) / f"gpu{_UNSAFE_IN_NAMES.sub('_', device)}.lock"


def try_lock(path: Path):
    """An open file holding an exclusive flock on `path`, or None when another holder has it."""
    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


@contextlib.contextmanager
def lease_gpu(lock_dir: Path = LOCK_DIR, poll_seconds: float = 1.0,
              environ: MutableMapping[str, str] = os.environ) -> Iterator[str | None]:
    """Hold one device of the pool for the duration of the block; yields it (None: no device).

    With two or more devices, the first free one is locked and CUDA_VISIBLE_DEVICES is set to it
    (restored afterwards); when all are held, it waits, polling every `poll_seconds`. With one
    device or none (a CPU machine, or a SLURM job that already got its own GPU) nothing is locked
    and the environment is left as it is."""
    pool = gpu_pool(environ)
    if len(pool) <= 1:
        yield pool[0] if pool else None
        return
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    waiting_said = False
    while True:
        for device in pool:
            handle = try_lock(lock_file(lock_dir, device))
            if handle is None:
                continue
            previous = environ.get("CUDA_VISIBLE_DEVICES")
            environ["CUDA_VISIBLE_DEVICES"] = device
            try:
                yield device
            finally:
                if previous is None:
                    environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    environ["CUDA_VISIBLE_DEVICES"] = previous
                handle.close()  # closing the last descriptor releases the flock
            return
        if not waiting_said:
            print(f"labelworth: all {len(pool)} GPUs ({','.join(pool)}) are leased; waiting for one",
                  file=sys.stderr, flush=True)
            waiting_said = True
        time.sleep(poll_seconds)


@contextlib.contextmanager
def lease_for(device: str | None, environ: MutableMapping[str, str] = os.environ) -> Iterator[None]:
    """The lease a stage running on `device` takes: one GPU when the gpu profile asked for leases
    (LABELWORTH_GPU_LEASE=1) and the device is auto or cuda; otherwise nothing happens."""
    if environ.get(LEASE_ENV) != "1" or device not in LEASED_DEVICES:
        yield
        return
    with lease_gpu(environ=environ) as leased:
        if leased is not None:
            print(f"labelworth: using GPU {leased}", file=sys.stderr, flush=True)
        yield
