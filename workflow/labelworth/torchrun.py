"""Starting a stage in several processes through torchrun, and telling a worker it is one.

Plain Python, no torch: the process that starts torchrun only waits for it, so it should not pay
for importing torch (which each of torchrun's workers does anyway).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

from labelworth.errors import LabelworthError


def launched_by_torchrun(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process is one of torchrun's workers (torchrun sets TORCHELASTIC_RUN_ID)."""
    return "TORCHELASTIC_RUN_ID" in environ


def torchrun_command(processes: int, stage_arguments: Sequence[str]) -> list[str]:
    """`python -m torch.distributed.run` starting `processes` copies of `labelworth <stage_arguments>`
    on this machine; --standalone rendezvous on a free local port, so jobs sharing a node do not collide."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", "labelworth", *stage_arguments]


def run_under_torchrun(processes: int, stage_arguments: Sequence[str]) -> None:
    """Run the stage in `processes` processes and wait; their output goes where this process's goes."""
    returncode = subprocess.run(torchrun_command(processes, stage_arguments)).returncode
    if returncode != 0:
        raise LabelworthError(f"{processes} training processes under torchrun failed (exit status "
                              f"{returncode}); their errors are above")
