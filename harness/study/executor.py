"""Where the study's jobs run: a small interface, with local processes as the one engine for now.

A `Job` is a plain, JSON-able description: a function named "module:function" and its keyword arguments.
Nothing else crosses the boundary, so a cluster engine (Slurm, Ray, ...) can run the same jobs later by
shipping that JSON to a node and calling `run_job` there, without touching the study code. Jobs must be
idempotent: a finished job returns its stored result at once, a half-finished one resumes. That is what
makes a study resumable whatever engine runs it.

Engines yield a `JobResult` per job as jobs finish. A job that raises is reported as failed (with its
one-line error) and the others go on; Ctrl-C stops the engine and propagates.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import importlib
import json
import multiprocessing as mp
import time
import traceback
from typing import Any, Iterator, Protocol, Sequence


@dataclasses.dataclass(frozen=True)
class Job:
    key: str                       # unique, human-readable id, e.g. "train+eval cotrain-alpha0.5/seed0"
    fn: str                        # "package.module:function", called as fn(**kwargs)
    kwargs: dict                   # JSON-able keyword arguments

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


@dataclasses.dataclass
class JobResult:
    key: str
    ok: bool
    value: Any = None              # what the function returned (JSON-able by convention)
    error: str | None = None       # one line: "ExceptionType: message"
    seconds: float = 0.0


def run_job(job: Job) -> Any:
    """Resolve job.fn and call it: the one entry point an engine needs on the machine that runs a job."""
    module_name, _, fn_name = job.fn.partition(":")
    fn = getattr(importlib.import_module(module_name), fn_name)
    return fn(**job.kwargs)


def _run_caught(job: Job) -> JobResult:
    started = time.perf_counter()
    try:
        value = run_job(job)
        return JobResult(job.key, True, value, seconds=time.perf_counter() - started)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed job is reported, the study goes on
        detail = traceback.format_exc(limit=-3)
        return JobResult(job.key, False, error=f"{type(exc).__name__}: {exc}".splitlines()[0] + "\n" + detail,
                         seconds=time.perf_counter() - started)


class Executor(Protocol):
    def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        """Run the jobs (any order, any parallelism); yield one result per job as each finishes."""
        ...


class LocalExecutor:
    """Runs jobs on this machine: in this process when max_parallel is 1 (progress bars and Ctrl-C behave
    as in a plain command), else in up to max_parallel spawned processes."""

    def __init__(self, max_parallel: int = 1):
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be >= 1, got {max_parallel}")
        self.max_parallel = max_parallel

    def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        jobs = list(jobs)
        if self.max_parallel == 1 or len(jobs) <= 1:
            for job in jobs:
                yield _run_caught(job)
            return
        ctx = mp.get_context("spawn")
        with cf.ProcessPoolExecutor(min(self.max_parallel, len(jobs)), mp_context=ctx) as pool:
            futures = {pool.submit(_run_caught, job): job for job in jobs}
            try:
                for fut in cf.as_completed(futures):
                    try:
                        yield fut.result()
                    except Exception as exc:  # noqa: BLE001 - the worker process itself died
                        yield JobResult(futures[fut].key, False, error=f"{type(exc).__name__}: {exc}")
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise


def make_executor(kind: str = "local", max_parallel: int = 1) -> Executor:
    """The engine named in an experiment's `executor.kind`."""
    if kind == "local":
        return LocalExecutor(max_parallel)
    raise ValueError(f"unknown executor kind {kind!r} (available: local)")
