"""Where a job's time goes: start-up, data loading, compute and test passes.

Every `labelworth` job is one process, so one meter per process suffices. Start-up is the CPU the
process spends before its stage begins (the interpreter, argument parsing) plus every import, also
the lazy ones a stage makes later (`metered_imports`). Once the stage begins, a phase opened with
`phase(name)` owns the CPU until it closes, and time outside every phase is compute. A successful job
ends by printing `cost_line()` to stderr, which its rule's log keeps, and benchmarks/cost_table.py
adds those lines up into the run's cost table. Plain Python, no torch: the meter must not itself add
to the start-up it measures.
"""

from __future__ import annotations

import builtins
import json
import time
from contextlib import contextmanager

COST_LINE_PREFIX = "labelworth-cost:"
STARTUP, DATA, COMPUTE, TEST_PASSES = "start-up", "data", "compute", "test passes"
PHASES = (STARTUP, DATA, COMPUTE, TEST_PASSES)


class CostMeter:
    """Process CPU seconds per phase, and the wall-clock start and end of the work.

    Property (tests): the phases' seconds add up to the process CPU time at `record()`; CPU inside a
    phase is counted to that phase only, an import inside it to start-up."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """Start afresh, as in a new process: a forked worker's CPU clock starts at zero."""
        self.started = time.time()  # the interpreter's own start lies a few milliseconds before
        self.cpu = dict.fromkeys(PHASES, 0.0)
        self._phase = STARTUP
        self._mark = 0.0  # process CPU time counts from the process's start

    def _switch(self, phase: str) -> None:
        now = time.process_time()
        self.cpu[self._phase] += now - self._mark
        self._mark, self._phase = now, phase

    def begin_work(self) -> None:
        """The stage begins: from here the CPU is compute unless a phase or an import claims it."""
        self._switch(COMPUTE)

    @contextmanager
    def phase(self, name: str):
        """Count the CPU spent inside the block to phase `name` (imports excepted)."""
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}; expected one of {PHASES}")
        previous = self._phase
        self._switch(name)
        try:
            yield
        finally:
            self._switch(previous)

    def metered_imports(self) -> None:
        """Count every import from now on to start-up, wherever it happens: a stage imports torch
        lazily, inside its work. The outermost import statement is timed; a nested one is inside it."""
        original = builtins.__import__

        def metered_import(*args, **kwargs):
            if self._phase == STARTUP:
                return original(*args, **kwargs)
            previous = self._phase
            self._switch(STARTUP)
            try:
                return original(*args, **kwargs)
            finally:
                self._switch(previous)

        builtins.__import__ = metered_import

    def record(self) -> dict:
        """{'started', 'ended' (Unix seconds), 'cpu': {phase: seconds}} up to now."""
        self._switch(self._phase)
        return {"started": self.started, "ended": time.time(), "cpu": {name: round(value, 3) for name, value in self.cpu.items()}}


METER = CostMeter()
phase = METER.phase


def cost_line() -> str:
    """The one line a job's log ends with: COST_LINE_PREFIX and its `record()` as JSON."""
    return f"{COST_LINE_PREFIX} {json.dumps(METER.record(), sort_keys=True)}"


def parse_cost_line(line: str) -> dict | None:
    """The record of a `cost_line`, or None for any other line."""
    if not line.startswith(COST_LINE_PREFIX):
        return None
    return json.loads(line[len(COST_LINE_PREFIX):])
