"""A study and gen-sim on a real two-node Ray cluster on this machine, driven through the real CLI as a user
would (`ray start --head`, a second `ray start --address`, then `cotrain ... executor.address=host:port`):
the results equal a local run's, and a study whose worker node is SIGKILLed mid-study still finishes with
the local table. Slow (`make test-all`): two nodes start in ~10 s, each study takes a minute or two.

What Ray 2.60 allows here, and why the cluster is set up as it is:
- Two raylets on one host need no port flags: every port Ray does not get told is picked free. Each
  node gets its own `--temp-dir`, `--num-cpus 1` (so two jobs run at once, one per node) and the worker a
  custom resource. The temp dirs are short folders in /tmp rather than under pytest's tmp_path: Ray puts
  Unix sockets inside them (`<temp-dir>/session_<date>_<pid>/sockets/plasma_store`), and a path under
  tmp_path passes the 107-byte limit of a socket address.
- The cluster cannot be kept on loopback: Ray rewrites 127.0.0.1 (in `--node-ip-address` and in every
  address) to the host's reachable IP (`services.resolve_ip_for_localhost`) and its servers listen on all
  interfaces; its loopback-only mode (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) refuses a second node. So the
  cluster uses token authentication with a fresh token given in the environment (RAY_AUTH_TOKEN; nothing
  is written to ~/.ray): no other process can use it. The driver needs RAY_AUTH_MODE=token too, because
  Ray enables tokens for an explicit address only when told.
- Stopping: `ray stop` would stop every Ray on the machine, so each node runs `ray start --block` in its
  own session; teardown ends those sessions, then any process still carrying this cluster's token.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("ray")

from harness.cli import main  # noqa: E402
from tests.test_compare import TINY_TRAIN, two_run_study_yaml  # noqa: E402
from tests.test_ray_generate import _assert_same_store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START_S = 120         # bound on a node's start and on its joining
STUDY_S = 540         # bound on one study (or gen-sim) subprocess
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_text(pid: int, name: str) -> bytes:
    try:
        return (Path("/proc") / str(pid) / name).read_bytes()
    except OSError:
        return b""


def _gone():
    """Ignore a process that has already ended."""
    return contextlib.suppress(ProcessLookupError, PermissionError, subprocess.TimeoutExpired)


def _ppid(pid: int) -> int:
    stat = _proc_text(pid, "stat").decode(errors="replace")
    return int(stat.rsplit(")", 1)[1].split()[1]) if ")" in stat else 0


class Cluster:
    """A head node and one worker node, each `ray start --block` in its own session (so its whole process
    group can be ended), sharing a fresh auth token that also marks every process they start."""

    def __init__(self):
        self.temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        self.token = uuid.uuid4().hex
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token,
                    "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        self.env.pop("RAY_ADDRESS", None)
        self.nodes: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        self._node("head", "--head", "--port", str(self.port), "--include-dashboard", "false")
        self._wait_nodes(1)
        self._node("worker", "--address", self.address, "--resources", '{"worker_node": 1}')
        self._wait_nodes(2)

    def _node(self, name: str, *args: str) -> None:
        log = open(self.temp / f"{name}.log", "wb")
        self.nodes[name] = subprocess.Popen(
            [str(BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
             "--temp-dir", str(self.temp / name), "--disable-usage-stats", *args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def _wait_nodes(self, n: int) -> None:
        """Until the cluster has n alive nodes (a short driver asks it), bounded by START_S."""
        probe = (f"import time, ray\nray.init(address={self.address!r}, logging_level='ERROR')\n"
                 f"end = time.monotonic() + {START_S}\n"
                 f"while sum(x['Alive'] for x in ray.nodes()) < {n} and time.monotonic() < end:\n"
                 "    time.sleep(0.2)\n"
                 "print(sum(x['Alive'] for x in ray.nodes()))\n")
        deadline = time.monotonic() + START_S
        while True:
            for name, proc in self.nodes.items():
                assert proc.poll() is None, f"ray start ({name}) exited: {(self.temp / f'{name}.log').read_text()[-2000:]}"
            try:
                out = subprocess.run([sys.executable, "-c", probe], env=self.env, capture_output=True,
                                     text=True, timeout=START_S + 30)
                if out.returncode == 0 and int(out.stdout.split()[-1]) >= n:
                    return
            except subprocess.TimeoutExpired:
                pass
            assert time.monotonic() < deadline, f"the cluster did not reach {n} nodes in {START_S} s"
            time.sleep(1.0)

    def worker_task_pids(self, title: str) -> list[int]:
        """Processes titled `title` (a Ray task) whose raylet belongs to the worker node's session."""
        worker = self.nodes["worker"].pid
        pids = []
        for pid in self.pids():
            if _proc_text(pid, "cmdline").startswith(title.encode()):
                with_raylet = _ppid(pid)
                try:
                    if with_raylet and os.getsid(with_raylet) == worker:
                        pids.append(pid)
                except OSError:
                    pass
        return pids

    def pids(self) -> list[int]:
        """Every live process this cluster started (they all carry its token in their environment)."""
        marker = f"RAY_AUTH_TOKEN={self.token}".encode()
        return [int(p.name) for p in Path("/proc").iterdir()
                if p.name.isdigit() and int(p.name) != os.getpid() and marker in _proc_text(int(p.name), "environ")]

    def kill_worker_node(self, task_pids: list[int]) -> None:
        """What a machine crash does: the worker node's raylet, its helpers and its task processes, SIGKILL."""
        for pid in task_pids:
            with _gone():
                os.kill(pid, signal.SIGKILL)
        with _gone():
            os.killpg(self.nodes["worker"].pid, signal.SIGKILL)
        self.nodes["worker"].wait(timeout=30)

    def stop(self) -> None:
        """Stop both nodes (politely, then by force) and anything left that they started."""
        for proc in self.nodes.values():
            if proc.poll() is None:
                with _gone():
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.nodes.values():
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                pass
            with _gone():
                os.killpg(proc.pid, signal.SIGKILL)
            with _gone():
                proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:
                with _gone():
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        shutil.rmtree(self.temp, ignore_errors=True)
        assert not self.pids(), "processes of the test cluster outlived its stop"


@pytest.fixture
def cluster():
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _cotrain(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run([str(BIN / "cotrain"), *args], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=STUDY_S)
    assert out.returncode == 0, f"cotrain {' '.join(args)}: exit {out.returncode}\n{out.stderr[-3000:]}"
    return out


def _experiment(folder: Path) -> Path:
    """The tiny two-run study of tests/test_compare.py as a YAML file in `folder`."""
    return two_run_study_yaml(folder, TINY_TRAIN, {"train_num_cpus": 1}, file="experiment.yaml")


def _table(folder: Path) -> str:
    return (folder / "results" / "table.md").read_text().replace(str(folder), "")


def test_gen_sim_on_a_two_node_cluster_makes_the_local_store(cluster, tmp_path):
    assert main(["gen-sim", "--out", str(tmp_path / "local.zarr"), "--num", "3", "--seed", "7",
                 "--workers", "2", "--no-progress"]) == 0
    _cotrain(["gen-sim", "--out", str(tmp_path / "ray.zarr"), "--num", "3", "--seed", "7", "--workers", "2",
              "--executor", "ray", "--no-progress"], {**cluster.env, "RAY_ADDRESS": cluster.address}, tmp_path)
    _assert_same_store(tmp_path / "local.zarr", tmp_path / "ray.zarr")


def test_a_study_on_a_two_node_cluster_survives_losing_its_worker_node(cluster, tmp_path):
    """Two runs, one per node; the worker node is SIGKILLed while its job runs. Ray sees the task's node
    die and runs it again on the head (executor max_retries); the job resumes, and the table is the local one."""
    local = _experiment(tmp_path / "local")
    _cotrain(["compare", str(local), "--no-progress"], cluster.env, tmp_path)

    remote = _experiment(tmp_path / "ray")
    killed, stop = [], threading.Event()

    def kill_the_worker_node_mid_job():
        seen = {}
        while not stop.is_set() and not killed:
            now = time.monotonic()
            for pid in cluster.worker_task_pids("ray::_run_in"):
                seen.setdefault(pid, now)
                if now - seen[pid] > 1.0:            # the job has been running for a second
                    killed.append(pid)
                    cluster.kill_worker_node([pid])
                    return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_the_worker_node_mid_job, daemon=True)
    watcher.start()
    try:
        _cotrain(["compare", str(remote), "executor.kind=ray", f"executor.address={cluster.address}",
                  "--no-progress"], cluster.env, tmp_path)
    finally:
        stop.set()
        watcher.join(timeout=60)
    assert killed, "no job was seen running on the worker node"
    assert cluster.nodes["worker"].poll() is not None and cluster.nodes["head"].poll() is None
    assert _table(remote.parent) == _table(local.parent)
    assert "| target_only | 1 | 2 |" in _table(remote.parent)
