"""The GPU lease on fake device lists (no GPU needed): which devices a job may use, that concurrent
jobs get distinct devices, that a job waits while every device is held, that a crashed holder frees
its device, that a device SLURM assigned is kept, and that `labelworth` leases before a stage runs."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labelworth import cli
from labelworth.gpu_lease import LEASE_ENV, gpu_pool, lease_gpu, lock_file, try_lock

POOL = "3,5"  # CUDA_VISIBLE_DEVICES of a two-GPU machine whose GPUs are numbered 3 and 5
# A job that leases a device and holds it until it is killed; it prints the device once it has it.
HOLDER = ("import time\nfrom labelworth.gpu_lease import lease_gpu\n"
          "with lease_gpu(poll_seconds=0.05) as device:\n    print(device, flush=True)\n    time.sleep(600)\n")
NVIDIA_SMI_LISTING = """GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-11111111-2222-3333-4444-555555555555)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-66666666-7777-8888-9999-000000000000)
  MIG 1g.10gb     Device  0: (UUID: MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee)
"""


def start_holder(workdir: Path, visible: str = POOL) -> subprocess.Popen:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": visible}
    return subprocess.Popen([sys.executable, "-c", HOLDER], cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def leased_device(holder: subprocess.Popen, timeout_s: float = 20) -> str | None:
    """The device `holder` printed, or None if it printed nothing within `timeout_s` (it is waiting)."""
    readable, _, _ = select.select([holder.stdout], [], [], timeout_s)
    if not readable:
        return None
    line = holder.stdout.readline()
    assert line, f"the holder ended without a device: {holder.stderr.read()}"
    return line.strip()


@pytest.fixture
def holders(tmp_path):
    """Start holders in tmp_path; every one still alive is killed at the end."""
    started = []

    def start(visible: str = POOL) -> subprocess.Popen:
        started.append(start_holder(tmp_path, visible))
        return started[-1]

    yield start
    for holder in started:
        if holder.poll() is None:
            holder.kill()
        holder.communicate()


# --------------------------------------------------------------------------------------------------
# The pool


def test_pool_comes_from_cuda_visible_devices_when_set():
    assert gpu_pool({"CUDA_VISIBLE_DEVICES": "3,5"}) == ["3", "5"]
    assert gpu_pool({"CUDA_VISIBLE_DEVICES": " 2 "}) == ["2"]
    assert gpu_pool({"CUDA_VISIBLE_DEVICES": ""}) == []  # set but empty: no device at all


def test_pool_comes_from_nvidia_smi_otherwise(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{NVIDIA_SMI_LISTING}EOF\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert gpu_pool({}) == ["0", "1"]  # the MIG line is a slice of GPU 1, not a third device
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert gpu_pool({}) == []  # no nvidia-smi: a CPU machine


# --------------------------------------------------------------------------------------------------
# Leases between processes


def test_two_concurrent_leases_get_distinct_devices(holders):
    assert {leased_device(holders()), leased_device(holders())} == {"3", "5"}


def test_a_third_lease_waits_until_a_crashed_holder_frees_its_device(holders):
    first, second = holders(), holders()
    devices = {leased_device(first): first, leased_device(second): second}
    assert set(devices) == {"3", "5"}
    third = holders()
    assert leased_device(third, timeout_s=1.5) is None, "the third job got a device that is in use"
    devices["5"].send_signal(signal.SIGKILL)  # a crash: no cleanup code runs, only the kernel's
    assert leased_device(third) == "5"
    assert "are leased; waiting" in third.stderr.readline()


def test_one_device_is_kept_without_locking(tmp_path):
    """A SLURM job with `--gpus=1` sees only its own device (CUDA_VISIBLE_DEVICES=<it>): keep it."""
    environ = {"CUDA_VISIBLE_DEVICES": "2"}
    with lease_gpu(tmp_path / "locks", environ=environ) as device:
        assert device == "2" and environ == {"CUDA_VISIBLE_DEVICES": "2"}
    assert not (tmp_path / "locks").exists()
    with lease_gpu(tmp_path / "locks", environ={"CUDA_VISIBLE_DEVICES": ""}) as device:
        assert device is None


def test_a_lease_sets_and_restores_cuda_visible_devices(tmp_path):
    environ = {"CUDA_VISIBLE_DEVICES": POOL}
    with lease_gpu(tmp_path, environ=environ) as device:
        assert device == "3" and environ["CUDA_VISIBLE_DEVICES"] == "3"
        assert try_lock(lock_file(tmp_path, "3")) is None  # held, even against this same process
    assert environ == {"CUDA_VISIBLE_DEVICES": POOL}
    released = try_lock(lock_file(tmp_path, "3"))
    assert released is not None
    released.close()


def test_device_names_become_safe_lock_file_names(tmp_path):
    assert lock_file(tmp_path, "MIG-GPU-1234/1/0") == tmp_path / "gpuMIG-GPU-1234_1_0.lock"


# --------------------------------------------------------------------------------------------------
# The hook in `labelworth` (cli.main)


@pytest.fixture
def stage_sees(monkeypatch, tmp_path):
    """Run `labelworth make-labels --device <device>` in tmp_path on the two-GPU pool with device 3
    already leased by another job; returns the CUDA_VISIBLE_DEVICES the stage ran with."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", POOL)
    seen = []
    monkeypatch.setattr(cli, "_make_labels", lambda args: seen.append(os.environ["CUDA_VISIBLE_DEVICES"]))
    lock_dir = tmp_path / ".snakemake" / "gpu-locks"
    lock_dir.mkdir(parents=True)
    other_job = try_lock(lock_file(lock_dir, "3"))

    def run(device: str) -> str:
        assert cli.main(["make-labels", "--images", "i.pt", "--label-spec", "hard", "--out", "o.pt",
                         "--device", device]) == 0
        assert os.environ["CUDA_VISIBLE_DEVICES"] == POOL  # the lease ends with the stage
        return seen.pop()

    yield run
    other_job.close()


@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_labelworth_leases_a_free_gpu_under_the_gpu_profile(stage_sees, monkeypatch, device):
    monkeypatch.setenv(LEASE_ENV, "1")
    assert stage_sees(device) == "5"


@pytest.mark.parametrize("device", ["cpu", "cuda:1"])
def test_labelworth_leaves_explicit_devices_alone(stage_sees, monkeypatch, device):
    monkeypatch.setenv(LEASE_ENV, "1")
    assert stage_sees(device) == POOL


def test_labelworth_does_not_lease_without_the_gpu_profile(stage_sees, monkeypatch):
    monkeypatch.delenv(LEASE_ENV, raising=False)
    assert stage_sees("auto") == POOL
