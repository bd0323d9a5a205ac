"""A study job, the one thing that crosses the boundary to an engine (harness/study/executor.py, local
processes; harness/study/ray_executor.py, Ray tasks): a module-level function (it pickles by reference, so
the engine's process imports it) and JSON-able keyword arguments, and its result."""
from __future__ import annotations

import dataclasses
import time
import traceback
from typing import Any, Callable

from harness.core.errors import os_error_line


@dataclasses.dataclass(frozen=True)
class Job:
    key: str                       # unique, human-readable id, e.g. "train+eval cotrain-alpha0.5/seed0"
    fn: Callable                   # a module-level function, called as fn(**kwargs)
    kwargs: dict                   # JSON-able keyword arguments
    resources: dict = dataclasses.field(default_factory=dict)  # what the job needs, for engines that place
                                   # jobs (Ray): {"num_cpus": 2, "num_gpus": 0.25}; the local engine ignores it


@dataclasses.dataclass
class JobResult:
    key: str
    ok: bool
    value: Any = None              # what the function returned (JSON-able by convention)
    error: str | None = None       # one line: "ExceptionType: message"
    seconds: float = 0.0
    os_error: bool = False         # failed on an error of the OS at a path (a full disk): the study stops (exit 2)


def run_job(job: Job) -> Any:
    """The one entry point an engine needs on the machine that runs a job."""
    return job.fn(**job.kwargs)


def run_caught(job: Job) -> JobResult:
    """run_job, with a raised exception turned into a failed result (Ctrl-C still stops)."""
    started = time.perf_counter()
    try:
        value = run_job(job)
        return JobResult(job.key, True, value, seconds=time.perf_counter() - started)
    except KeyboardInterrupt:
        raise
    except OSError as exc:   # the machine or a path, not a bug: one line naming the path, no traceback
        return JobResult(job.key, False, error=os_error_line(exc), seconds=time.perf_counter() - started,
                         os_error=True)
    except Exception as exc:  # noqa: BLE001 - a failed job is reported, the study goes on
        detail = traceback.format_exc(limit=-3)
        return JobResult(job.key, False, error=f"{type(exc).__name__}: {exc}".splitlines()[0] + "\n" + detail,
                         seconds=time.perf_counter() - started)
