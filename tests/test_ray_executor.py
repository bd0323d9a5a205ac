"""The Ray engine on a real local Ray (one per module, 2 CPUs): jobs run as tasks, a failing job is
reported while the others finish, the shared-folder probe, and cancelling on stop."""
import os
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from harness.core.errors import UserError  # noqa: E402
from harness.study.executor import Job, make_executor  # noqa: E402
from harness.study.ray_executor import RayExecutor  # noqa: E402
from tests import ray_helpers  # noqa: E402

ROOT = str(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": ROOT}})
    yield
    ray.shutdown()


def test_jobs_run_as_ray_tasks_and_a_failure_does_not_stop_the_others(tmp_path):
    jobs = [Job(f"double {i}", ray_helpers.double, {"x": i}, resources={"num_cpus": 1}) for i in range(3)]
    jobs.insert(1, Job("broken", ray_helpers.fail, {"message": "no luck"}))
    ex = make_executor("ray", shared_dir=tmp_path)
    assert isinstance(ex, RayExecutor)
    results = {r.key: r for r in ex.run(jobs)}
    assert set(results) == {"double 0", "double 1", "double 2", "broken"}
    assert [results[f"double {i}"].value for i in range(3)] == [0, 2, 4]
    assert all(results[f"double {i}"].ok for i in range(3))
    assert not results["broken"].ok and results["broken"].error.startswith("ValueError: no luck")
    assert not any(p.name.startswith(".ray-probe") for p in tmp_path.iterdir())   # probes cleaned up
    assert ray.is_initialized()            # a Ray it did not start is left running


def test_shared_folder_probe_names_the_node_that_cannot_see_it(tmp_path, monkeypatch):
    ex = RayExecutor()
    ex._start()
    ex.check_shared_folder(tmp_path)       # one node, same file system: passes

    import harness.study.ray_executor as rx
    monkeypatch.setattr(rx, "_probe", lambda folder, name, token: "cannot read the driver's probe file")
    with pytest.raises(UserError, match=r"Ray node .*cannot read the driver's probe"):
        ex.check_shared_folder(tmp_path)


@pytest.mark.slow
def test_stop_cancels_outstanding_tasks(tmp_path):
    pid_file = tmp_path / "pid"
    jobs = [Job("slow", ray_helpers.sleepy, {"seconds": 60, "pid_file": str(pid_file)}),
            Job("fast", ray_helpers.double, {"x": 1})]
    ex = RayExecutor(grace_s=2.0)
    it = ex.run(jobs)
    first = next(it)
    assert first.key == "fast"
    for _ in range(100):
        if pid_file.exists():
            break
        time.sleep(0.1)
    started = time.perf_counter()
    it.close()                             # what Ctrl-C does to the engine: outstanding tasks cancelled
    assert time.perf_counter() - started < 15
    time.sleep(0.5)
    beat = pid_file.stat().st_mtime_ns
    time.sleep(1.0)
    assert pid_file.stat().st_mtime_ns == beat   # the task stopped beating: it was interrupted


def test_an_infeasible_job_fails_at_once_on_a_local_ray(tmp_path):
    ex = RayExecutor()
    ex._started = True                     # pretend it started this local Ray (which cannot grow)
    ex._ready = True
    try:
        (result,) = list(ex.run([Job("huge", ray_helpers.double, {"x": 1}, resources={"num_cpus": 64})]))
    finally:
        ex._started = False
    assert not result.ok and "CPU 64" in result.error and "CPU 2" in result.error


@pytest.mark.slow
def test_a_tiny_study_on_ray_gives_the_local_table(tmp_path):   # in `make test`: CI runs a study on Ray
    from harness.study import run_study
    from tests.test_compare import _study

    methods = [{"method": "target_only"}, {"method": "cotrain", "alphas": [0.5]}]
    tables = {}
    for kind in ("local", "ray"):
        (tmp_path / kind).mkdir()
        cfg = _study(tmp_path / kind, methods, annotate={"enabled": False},
                     executor={"kind": kind, "train_num_cpus": 1})
        result = run_study(cfg, progress=False, log=lambda *_: None)
        assert not result.failed, result.failed
        tables[kind] = (tmp_path / kind / "results" / "table.md").read_text().replace(str(tmp_path / kind), "")
    assert tables["ray"] == tables["local"]
    assert "| target_only | 1 | 2 |" in tables["ray"]


def _task_pids(title: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if title.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


@pytest.mark.slow
def test_a_study_survives_a_killed_training_worker(tmp_path):
    import signal
    import threading

    from harness.study import run_study
    from tests.test_compare import _study

    methods = [{"method": "target_only"}, {"method": "cotrain", "alphas": [0.5]}]
    killed, stop = [], threading.Event()

    def kill_first_training_worker():
        while not stop.is_set() and not killed:
            pids = _task_pids("ray::_run_in")
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    tables = {}
    for kind in ("local", "ray"):
        (tmp_path / kind).mkdir()
        cfg = _study(tmp_path / kind, methods, annotate={"enabled": False}, executor={"kind": kind})
        watcher = threading.Thread(target=kill_first_training_worker, daemon=True)
        if kind == "ray":
            watcher.start()
        try:
            result = run_study(cfg, progress=False, log=lambda *_: None)
        finally:
            if kind == "ray":
                stop.set()
        assert not result.failed, result.failed
        tables[kind] = (tmp_path / kind / "results" / "table.md").read_text().replace(str(tmp_path / kind), "")
    assert killed, "no training task was seen running"
    assert tables["ray"] == tables["local"]
