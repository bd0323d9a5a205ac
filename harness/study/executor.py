"""Where the study's jobs run: a small interface with two engines, local processes (here) and Ray
(harness/study/ray_executor.py).

A `Job` is a module-level function and its JSON-able keyword arguments. Nothing else crosses the boundary,
and it pickles by reference, so a cluster engine runs the same jobs by shipping it to a node and calling
`run_job` there, without touching the study code. Jobs must be
idempotent: a finished job returns its stored result at once, a half-finished one resumes. That is what
makes a study resumable whatever engine runs it.

Engines yield a `JobResult` per job as jobs finish. A job that raises is reported as failed (with its
one-line error) and the others go on; Ctrl-C stops the engine and propagates.

Stopping, the contract every engine keeps: on Ctrl-C (and SIGTERM, which an engine turns into Ctrl-C while
it runs) or when its consumer stops iterating, an engine asks every job it started to stop (SIGTERM: a
training job saves latest.pt between steps), waits a grace period (`GRACE_S`), then kills what is left,
including every process a job started, and lets the KeyboardInterrupt go on. Nothing keeps running or
writing into a run folder after `run` returns; the next run of the study resumes.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import signal
import sys
import threading
import time
from typing import Iterator, Protocol, Sequence

from harness.core.parallel import sigterm_as_keyboard_interrupt
from harness.study.job import Job, JobResult, run_caught, run_job  # noqa: F401 - run_job: the engines' entry


class Executor(Protocol):
    def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        """Run the jobs (any order, any parallelism); yield one result per job as each finishes."""
        ...


GRACE_S = 25.0   # how long stopped workers may take to save (a training job: latest.pt) before they are killed
EXIT_S = 5.0     # how long a worker may take to exit once its job has returned or stopped


class LocalExecutor:
    """Runs jobs on this machine: in this process when max_parallel is 1 (progress bars and Ctrl-C behave
    as in a plain command), else each job in its own spawned worker process, up to max_parallel at once.

    Stopping. While `run` is running, SIGTERM is turned into Ctrl-C (KeyboardInterrupt). In this process
    that is all (a training job saves latest.pt between steps and stops; pools close). With workers, on
    Ctrl-C, SIGTERM or a consumer that stops iterating: every running worker gets SIGTERM (a training job
    saves latest.pt and the worker exits), they get `grace` seconds for that, then each worker's process
    group is killed (SIGKILL), so nothing it started (evaluation workers, generator pools) survives; then
    the KeyboardInterrupt goes on. Each worker leads its own process group, so a Ctrl-C typed at the
    terminal reaches only this process, which relays it; a worker whose parent dies gets SIGTERM (Linux).
    """

    def __init__(self, max_parallel: int = 1, grace: float = GRACE_S):
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be >= 1, got {max_parallel}")
        self.max_parallel = max_parallel
        self.grace = grace

    def run(self, jobs: Sequence[Job], on_status=None) -> Iterator[JobResult]:
        """Yield one result per job as each finishes. on_status(key, state, detail), with workers only:
        called here when a job starts ("running", "") and as its progress bars move ("running",
        "train cotrain 120/1500"); the workers' own bars are not drawn."""
        jobs = list(jobs)
        with sigterm_as_keyboard_interrupt():
            if self.max_parallel == 1 or len(jobs) <= 1:
                for job in jobs:
                    yield run_caught(job)
                return
            yield from self._run_workers(jobs, on_status)

    def _run_workers(self, jobs: list[Job], on_status) -> Iterator[JobResult]:
        ctx = mp.get_context("spawn")   # Drake and torch are not fork-safe
        queued, running = list(jobs), []
        finished = False
        try:
            while queued or running:
                while queued and len(running) < self.max_parallel:
                    worker = _Worker(ctx, queued.pop(0), report=on_status is not None)
                    running.append(worker)
                    if on_status is not None:
                        on_status(worker.job.key, "running", "")
                _wait(running, timeout=1.0)
                for worker in list(running):
                    for detail in worker.drain():
                        if on_status is not None:
                            on_status(worker.job.key, "running", detail)
                    if worker.result is None and not worker.exited():
                        continue
                    running.remove(worker)
                    yield worker.finish()
            finished = True
        finally:
            if not finished:
                _stop_workers(running, self.grace)


class _Worker:
    """One job in one spawned process, which leads its own process group; results and progress come back
    through a pipe."""

    def __init__(self, ctx, job: Job, report: bool):
        self.job = job
        self.result: JobResult | None = None
        self.eof = False
        self.conn, child = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_worker_main, args=(job, child, report, os.getpid()),
                                name=f"job {job.key}")
        self.proc.start()
        child.close()
        with contextlib.suppress(OSError):   # the worker does it too; whichever is first
            os.setpgid(self.proc.pid, self.proc.pid)

    def exited(self, timeout: float = 0) -> bool:
        """Without reaping it: its pid stays reserved, so killing its group cannot hit a stranger."""
        return bool(mpc.wait([self.proc.sentinel], timeout))

    def drain(self) -> list[str]:
        """Read what the worker has sent: progress details are returned, the result is kept."""
        details = []
        while not self.eof:
            try:
                if not self.conn.poll():
                    break
                kind, value = self.conn.recv()
            except (EOFError, OSError):
                self.eof = True
                break
            if kind == "result":
                self.result = value
            elif kind == "progress":
                details.append(value)
        return details

    def kill_group(self, sig=signal.SIGKILL) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:   # no such group (yet): the worker alone
            if not self.exited():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, sig)
        except PermissionError:
            pass

    def finish(self) -> JobResult:
        """The worker sent its result (it then exits at once) or ended without one."""
        if not self.exited(timeout=10):
            self.drain()
        self.drain()
        self.kill_group()            # anything it started and left behind
        self.proc.join()
        self.conn.close()
        if self.result is not None:
            return self.result
        return JobResult(self.job.key, False, error=f"WorkerDied: the job's process ended (exit code "
                                                    f"{self.proc.exitcode}) without a result")


def _wait(workers: list[_Worker], timeout: float) -> None:
    handles = [w.proc.sentinel for w in workers] + [w.conn for w in workers if not w.eof]
    if handles:
        mpc.wait(handles, timeout)


def _stop_workers(workers: list[_Worker], grace: float) -> None:
    """SIGTERM to every worker, up to `grace` seconds for them to save and exit, then kill every group."""
    try:
        for w in workers:
            if not w.exited():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            alive = [w for w in workers if not w.exited()]
            if not alive:
                break
            _wait(alive, min(0.5, max(deadline - time.monotonic(), 0)))
            for w in alive:
                w.drain()   # keep their pipes flowing, or a worker blocks in a progress report
    except KeyboardInterrupt:
        pass   # Ctrl-C again while waiting: kill now
    finally:
        for w in workers:
            w.kill_group()
        for w in workers:
            w.proc.join(5)
            w.conn.close()


def _worker_main(job: Job, conn, report: bool, parent: int) -> None:
    """A worker process: its own process group, SIGTERM = Ctrl-C, its result sent back, then gone."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    _die_with_parent(parent)
    signal.signal(signal.SIGTERM, signal.default_int_handler)   # SIGTERM as Ctrl-C in the job
    signal.signal(signal.SIGINT, signal.default_int_handler)
    lock = threading.Lock()

    def send(message) -> None:
        with lock:
            conn.send(message)

    if report:
        _report_progress_bars(send)
    code = 0
    try:
        result = run_caught(job)
        try:
            send(("result", result))
        except Exception as exc:  # noqa: BLE001 - e.g. a value that does not pickle
            send(("result", JobResult(job.key, False, error=f"cannot send the result back: {exc}",
                                      seconds=result.seconds)))
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - SystemExit and the like: the parent reports a died worker
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        # Exit normally (finalizers run: no leaked semaphores), but nothing (a non-daemon thread, a child
        # left by a library) may keep a finished or stopped worker alive: if exiting takes longer, it is
        # cut short; the parent kills whatever is left in the worker's process group.
        watchdog = threading.Timer(EXIT_S, os._exit, (code,))
        watchdog.daemon = True
        watchdog.start()
        sys.exit(code)


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM to this worker when the process that started it dies (even by SIGKILL)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:   # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def _report_progress_bars(send) -> None:
    """In a worker: every tqdm bar draws nothing and reports "desc n/total" to the parent instead (its
    status view is the one display); tqdm.write lines are dropped."""
    import tqdm

    devnull = open(os.devnull, "w")

    class ReportedBar(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["file"] = devnull
            super().__init__(*args, **kwargs)

        def display(self, msg=None, pos=None):
            desc = (self.desc or "").rstrip(": ")
            count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
            with contextlib.suppress(Exception):
                send(("progress", f"{desc} {count}".strip()))
            return True

        @classmethod
        def write(cls, s, file=None, end="\n", nolock=False):
            pass

    tqdm.tqdm = ReportedBar


def make_executor(kind: str = "local", max_parallel: int = 1, address: str | None = None,
                  shared_dir=None) -> Executor:
    """The engine named in an experiment's `executor.kind`; for ray, `address` (None: a local Ray) and the
    folder every node must share (checked before the first job)."""
    if kind == "local":
        return LocalExecutor(max_parallel)
    if kind == "ray":
        from harness.study.ray_executor import RayExecutor   # (imports Ray: only when a study asks for it)
        return RayExecutor(address, shared_dir=shared_dir)
    raise ValueError(f"unknown executor kind {kind!r} (available: local, ray)")
