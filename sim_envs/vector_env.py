"""`VectorEnv`: K PushTEnvs stepped in lockstep, so one batched policy call serves all of them.

workers=1 keeps every env in this process (no start-up cost; best on one core). workers>1 spreads the
envs over that many processes (spawn start method: safe with Drake and torch, same on every OS); each
worker owns a contiguous block of envs and the parent exchanges one message per worker per step.

An env that has finished (success, timeout, left_workspace) ignores its action from then on and keeps
returning its final observation with the same terminal outcome, so callers can keep stepping the whole
batch until all are done (`vec.done.all()`).
"""
from __future__ import annotations

import multiprocessing as mp
from typing import Sequence

import numpy as np

from sim_envs.config import PhysicsConfig, load_preset


class _EnvBlock:
    """A block of envs plus their frozen final results; the same code runs in-process and in workers."""

    def __init__(self, n: int, preset, image_size, visual):
        from sim_envs.env import PushTEnv   # imported here so the parent of worker processes needs no Drake
        self.envs = [PushTEnv(preset, image_size=image_size, visual=visual) for _ in range(n)]
        self.last: list[tuple[dict, dict] | None] = [None] * n

    def reset(self, seeds) -> list[dict]:
        self.last = [None] * len(self.envs)
        return [env.reset(int(s)) for env, s in zip(self.envs, seeds)]

    def step(self, moves) -> list[tuple[dict, dict]]:
        out = []
        for i, (env, (action, render)) in enumerate(zip(self.envs, moves)):
            if self.last[i] is None:
                obs, info = env.step(action, render)
                if info["outcome"] != "running":
                    self.last[i] = (obs, info)
                out.append((obs, info))
            else:
                out.append(self.last[i])
        return out

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(conn, n, preset, image_size, visual) -> None:
    """Worker process loop: (command, payload) in, ("ok", result) or ("error", exception) out."""
    try:
        block = _EnvBlock(n, preset, image_size, visual)
        conn.send(("ok", None))
    except BaseException as exc:  # noqa: BLE001 - report start-up failures to the parent
        conn.send(("error", exc))
        return
    while True:
        try:
            command, payload = conn.recv()
        except (EOFError, KeyboardInterrupt):
            break
        if command == "close":
            block.close()
            conn.send(("ok", None))
            break
        try:
            conn.send(("ok", getattr(block, command)(payload)))
        except Exception as exc:  # noqa: BLE001 - re-raised in the parent
            conn.send(("error", exc))


class VectorEnv:
    def __init__(self, n_envs: int, preset: str | PhysicsConfig = "target", workers: int = 1,
                 image_size: tuple[int, int] | None = None, visual=None):
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        if not 1 <= workers <= n_envs:
            raise ValueError(f"workers must be between 1 and n_envs={n_envs}, got {workers}")
        # Resolve the preset once here, so a bad name fails in the caller, not inside a worker.
        self.config = preset if isinstance(preset, PhysicsConfig) else load_preset(preset)
        self.n_envs = n_envs
        self.workers = workers
        self._done = np.zeros(n_envs, dtype=bool)
        self._block: _EnvBlock | None = None
        self._procs: list = []
        self._conns: list = []
        if workers == 1:
            self._block = _EnvBlock(n_envs, self.config, image_size, visual)
            self._sizes = [n_envs]
            return
        self._sizes = [len(chunk) for chunk in np.array_split(np.arange(n_envs), workers)]
        ctx = mp.get_context("spawn")
        try:
            for size in self._sizes:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, size, self.config, image_size, visual), daemon=True)
                proc.start()
                child.close()
                self._procs.append(proc)
                self._conns.append(parent)
            for conn in self._conns:
                self._receive(conn)
        except BaseException:
            self.close()
            raise

    @property
    def done(self) -> np.ndarray:
        """(K,) bool: which envs have reached a terminal outcome since the last reset."""
        return self._done.copy()

    def reset(self, seeds: Sequence[int]) -> dict:
        seeds = [int(s) for s in seeds]
        if len(seeds) != self.n_envs:
            raise ValueError(f"reset needs {self.n_envs} seeds, got {len(seeds)}")
        self._done[:] = False
        return _stack(self._call("reset", self._split(seeds)))

    def step(self, actions: np.ndarray, render: Sequence[bool] | None = None) -> tuple[dict, list[dict]]:
        """Step every env; `render` (K,) bools say which envs render new camera frames (default: all; the
        others repeat their last frames, see PushTEnv.step)."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (self.n_envs, 2):
            raise ValueError(f"actions must have shape ({self.n_envs}, 2), got {actions.shape}")
        bad = ~np.all(np.isfinite(actions), axis=1) & ~self._done
        if bad.any():
            raise ValueError(f"actions must be finite; env {int(np.flatnonzero(bad)[0])} got "
                             f"{actions[bad][0].tolist()}")
        render = [True] * self.n_envs if render is None else [bool(r) for r in render]
        if len(render) != self.n_envs:
            raise ValueError(f"render must have {self.n_envs} entries, got {len(render)}")
        results = self._call("step", self._split(list(zip(actions, render))))
        infos = [info for _, info in results]
        self._done = np.array([info["outcome"] != "running" for info in infos])
        return _stack([obs for obs, _ in results]), infos

    def close(self) -> None:
        if self._block is not None:
            self._block.close()
            self._block = None
        for conn in self._conns:
            try:
                conn.send(("close", None))
                conn.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self._procs, self._conns = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # ------------------------------------------------------------------------------------------------
    def _split(self, items: list) -> list[list]:
        out, start = [], 0
        for size in self._sizes:
            out.append(items[start:start + size])
            start += size
        return out

    def _call(self, command: str, payloads: list[list]) -> list:
        if self._block is not None:
            return getattr(self._block, command)(payloads[0])
        if not self._conns:
            raise RuntimeError("VectorEnv is closed")
        for conn, payload in zip(self._conns, payloads):
            conn.send((command, payload))
        replies = [conn.recv() for conn in self._conns]     # drain every worker, even after an error
        for status, value in replies:
            if status == "error":
                raise value
        return [item for _, value in replies for item in value]

    @staticmethod
    def _receive(conn):
        status, value = conn.recv()
        if status == "error":
            raise value
        return value


def _stack(observations: list[dict]) -> dict:
    """List of per-env obs dicts -> {key: (K, ...)}."""
    return {key: np.stack([obs[key] for obs in observations]) for key in observations[0]}
