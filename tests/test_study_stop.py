"""SIGTERM on `cotrain compare` with two parallel jobs: every job stops within 30 s after saving its
checkpoint, no process is left behind, exit 130, and the next run resumes to the same table as a study
that was never interrupted.

A real tiny study (synthetic stores, a tiny network, 2 trials of 0.5 s) through the CLI in a subprocess.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_compare import TINY_TRAIN, two_run_study_yaml

STEPS = 800   # enough that both runs are still training when the signal comes


def _write_study(folder: Path) -> Path:
    train = {**TINY_TRAIN, "run": {**TINY_TRAIN["run"], "steps": STEPS, "log_every": 50, "val_every": STEPS,
                                   "checkpoint_every": STEPS}}
    return two_run_study_yaml(folder, train, {"max_parallel": 2, "threads": 1})


def _compare(study: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "compare", str(study), "--no-progress"],
                            cwd=study.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kw)


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def _descendants(root: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                parents[int(entry.name)] = st[0]
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[1] != "Z"   # a zombie has exited (its new parent may never reap it)


@pytest.mark.slow
def test_sigterm_stops_every_job_and_the_study_resumes(tmp_path):
    study = _write_study(tmp_path / "a")
    runs = [tmp_path / "a" / "results" / "runs" / name / "seed0" / "train"
            for name in ("target_only", "cotrain-alpha0.5")]
    proc = _compare(study)
    deadline = time.monotonic() + 120
    while not all((r / "config.yaml").exists() for r in runs):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the runs did not start"
        time.sleep(0.2)
    time.sleep(1.5)   # both runs are in their training loops (a signal before it: no latest.pt yet)
    assert not any((r / "done").exists() for r in runs), "training finished before the signal: raise STEPS"
    children = _descendants(proc.pid)
    assert len(children) >= 2
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - signalled < 30
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("cotrain compare: interrupted; finished work is kept, "
                                            "re-run to resume")
    deadline = time.monotonic() + 5   # the multiprocessing resource tracker exits once it sees EOF
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in children if _alive(p)]
    for r in runs:
        assert (r / "checkpoints" / "latest.pt").is_file()
        assert not (r / "done").exists()

    resumed = _compare(study)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    fresh_study = _write_study(tmp_path / "b")
    fresh = _compare(fresh_study)
    out, err = fresh.communicate(timeout=600)
    assert fresh.returncode == 0, err
    table = (tmp_path / "a" / "results" / "table.md").read_text()
    assert table == (tmp_path / "b" / "results" / "table.md").read_text()
    for name in ("target_only", "cotrain-alpha0.5"):   # the resumed training is the uninterrupted one
        a = (tmp_path / "a" / "results" / "runs" / name / "seed0" / "train" / "metrics.csv").read_text()
        b = (tmp_path / "b" / "results" / "runs" / name / "seed0" / "train" / "metrics.csv").read_text()
        assert _losses(a) == _losses(b)


def _losses(metrics_csv: str) -> list[tuple[str, str]]:
    """step and loss per row (the other columns include throughput, which differs between sessions)."""
    rows = [line.split(",") for line in metrics_csv.splitlines()]
    head = rows[0]
    return [(r[head.index("step")], r[head.index("loss")]) for r in rows[1:]]
