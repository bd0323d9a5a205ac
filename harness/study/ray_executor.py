"""The study's Ray engine (`executor: {kind: ray, address: ...}`): each Job is one Ray task.

The boundary is the same as the local engine's: a task receives the Job (pickled; its function by
reference) and calls
`harness.study.job.run_job` on whatever node Ray places it; the job's `resources` (CPUs, GPUs, a GPU
fraction) tell Ray where it fits. Jobs are idempotent and resume from their checkpoints, so a task whose
worker or node dies is simply run again (`max_retries`); a job that raises is reported as failed and the
others go on. Ctrl-C or SIGTERM cancels the outstanding tasks (politely, then by force after a grace
period) and shuts down the local Ray this engine started, so nothing is left running.

Every node must see the study's results folder (and the datasets) at the same path: `check_shared_folder`
proves it with a probe file before the first job runs.

Ray is imported only here and in harness.core.parallel (the generators' seed fan-out).
"""
from __future__ import annotations

import contextlib
import os
import socket
import uuid
from pathlib import Path
from typing import Iterator, Sequence

from harness.core.errors import UserError
from harness.core.parallel import cancel_ray_tasks, sigterm_as_keyboard_interrupt, start_ray
from harness.study.job import Job, JobResult, run_caught


def _run_in(job: Job, cwd: str) -> JobResult:
    """What a Ray task runs: the Job, with failures caught into a JobResult, in the driver's working
    directory (study paths may be relative to it; on a cluster it is shared)."""
    try:
        os.chdir(cwd)
    except OSError as exc:
        return JobResult(job.key, False, error=f"cannot enter the driver's directory {cwd} on "
                                               f"{socket.gethostname()}: {type(exc).__name__}")
    return run_caught(job)


def _probe(folder: str, driver_probe: str, token: str) -> str | None:
    """On one node: None if `folder` holds the driver's probe (with its token) and is writable, else why not."""
    folder = Path(folder)
    try:
        if (folder / driver_probe).read_text() != token:
            return f"sees a different {driver_probe} (not the same folder)"
    except OSError as exc:
        return f"cannot read the driver's probe file ({type(exc).__name__})"
    mine = folder / f".ray-probe-{uuid.uuid4().hex}"
    try:
        mine.write_text(token)
        ok = mine.read_text() == token
        mine.unlink()
    except OSError as exc:
        return f"cannot write there ({type(exc).__name__}: {exc.strerror or exc})"
    return None if ok else "wrote a probe file but read back something else"


class RayExecutor:
    """Runs jobs as Ray tasks on a local Ray (address None) or a running cluster ("auto", "host:port")."""

    def __init__(self, address: str | None = None, shared_dir=None, max_retries: int = 3,
                 grace_s: float = 10.0, runtime_env: dict | None = None):
        self.address = address
        self.shared_dir = None if shared_dir is None else Path(shared_dir)
        self.max_retries = max_retries
        self.grace_s = grace_s
        self.runtime_env = runtime_env
        self._started = False      # this engine started a local Ray (and shuts it down)
        self._ready = False

    # -- life cycle
    def _start(self) -> None:
        if self._ready:
            return
        self._started = start_ray(self.address)
        self._ready = True
        if self.shared_dir is not None:
            self.check_shared_folder(self.shared_dir)

    def close(self) -> None:
        """Shut down the local Ray this engine started (a joined cluster is left running)."""
        import ray
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = self._ready = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the shared results folder
    def check_shared_folder(self, folder) -> None:
        """One task per alive node reads a probe the driver wrote in `folder` and writes and removes its
        own; a node that cannot is refused with one line naming it."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        folder = Path(folder).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        name, token = f".ray-probe-driver-{uuid.uuid4().hex}", f"{socket.gethostname()}:{uuid.uuid4().hex}"
        (folder / name).write_text(token)
        try:
            probe = ray.remote(num_cpus=0, max_retries=0)(_probe)
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                    .remote(str(folder), name, token) for n in nodes]
            for node, problem in zip(nodes, ray.get(refs)):
                if problem:
                    raise UserError(f"results folder {folder}: Ray node {node.get('NodeManagerAddress')} "
                                    f"({node['NodeID'][:12]}) {problem}; every node must see it at the same "
                                    "path (a shared file system)")
        finally:
            with contextlib.suppress(OSError):
                (folder / name).unlink()

    # -- jobs
    def _options(self, job: Job) -> dict:
        res = dict(job.resources or {})
        opts = {"num_cpus": float(res.pop("num_cpus", 1)), "num_gpus": float(res.pop("num_gpus", 0)),
                "max_retries": self.max_retries, "retry_exceptions": False}
        if res:
            opts["resources"] = {k: float(v) for k, v in res.items()}
        if self.runtime_env:
            opts["runtime_env"] = self.runtime_env
        return opts

    def _infeasible(self, job: Job, opts: dict) -> str | None:
        """On a local Ray (which cannot grow), a job no node can hold would wait forever: say so instead."""
        import ray
        if not self._started:
            return None
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        want = {"CPU": opts["num_cpus"], "GPU": opts["num_gpus"], **opts.get("resources", {})}
        if any(all(node.get(k, 0) >= v for k, v in want.items() if v) for node in nodes):
            return None
        have = ", ".join(f"{k} {max((n.get(k, 0) for n in nodes), default=0):g}" for k, v in want.items() if v)
        return (f"ResourceError: job needs {', '.join(f'{k} {v:g}' for k, v in want.items() if v)}; "
                f"this machine's Ray has {have} (lower executor.train_num_cpus / train_num_gpus or the workers)")

    def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        jobs = list(jobs)
        if not jobs:
            return
        import ray
        self._start()
        task = ray.remote(_run_in)
        keys, pending = {}, []
        try:
            with sigterm_as_keyboard_interrupt():
                for job in jobs:
                    opts = self._options(job)
                    problem = self._infeasible(job, opts)
                    if problem:
                        yield JobResult(job.key, False, error=problem)
                        continue
                    ref = task.options(**opts).remote(job, os.getcwd())
                    keys[ref] = job.key
                    pending.append(ref)
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    for ref in done:
                        try:
                            yield ray.get(ref)
                        except ray.exceptions.RayError as exc:   # the task's worker or node died, retries spent
                            line = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
                            yield JobResult(keys[ref], False, error=line)
        except BaseException:        # Ctrl-C, SIGTERM, or the caller stopped reading (GeneratorExit)
            cancel_ray_tasks(pending, self.grace_s)
            pending = []
            self.close()
            raise
