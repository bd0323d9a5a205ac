"""Closed-loop rollouts of a policy in a Drake env preset, many environments in lockstep.

How a trial runs (the diffusion_policy convention):
- trial i starts from `env.reset(seed_i)` (slider pose `sample_initial_pose(seed_i)`), so every method is
  scored on the same starts;
- the policy sees the last `n_obs` observations (padded at reset by repeating the first one) and returns
  `n_action` actions, which are executed one per 0.1 s control step before it is asked again;
- the trial ends on success, timeout (75 s) or the slider leaving the workspace.

How the work is spread:
- a *wave* is `n_envs` trials stepped in lockstep by one `VectorEnv`; the policy is asked once per chunk for
  all running envs of the wave together (one batched `act` call);
- waves are handed out to `workers` processes, each holding its own policy copy and its own envs, so policy
  inference and physics both use every core and nothing crosses a process boundary per step; each
  finished trial streams back at once (a queue), for the progress bar and the resumable trial log.

Outcome of a trial depends only on its seed, never on the batch it ran in: physics is per env, and a policy
whose `act` accepts `noise=` (the diffusion policy's initial sampler noise, (B, horizon, 2)) gets per-trial
noise from `trial_rng(seed, query)`, and a stochastic sampler's per-step noise comes from the same stream
(`step_seeds=`, one per trial). That is what makes batched, unbatched and multi-worker evaluations give
the same records, and what lets `record_rollouts` replay the trial that was scored.

Bit for bit, that needs one more thing: a batched matrix product on the CPU rounds differently for different
batch sizes (1e-7 in a network's output), and closed-loop contact amplifies that to centimetres over a
trial. So with `inference_batch` K > 0 (the default of `cotrain eval` and of a study), a diffusion policy is
always queried in batches of exactly K rows, the envs that need a chunk padded with copies of the first one
(larger groups in several batches of K), with one torch thread; a row's result then depends on its own
inputs only, and a trial is a function of (checkpoint, start seed, settings), whatever n_envs, workers or a
resume did (tests/test_eval_rollouts.py). Measured on this project's CPU (oneDNN): with the MLP a row's
result does not depend on its slot in the batch for any K, with the U-Net only for K >= 8 (at K = 2 and 4
the slot changes the rounding), hence the default 32. K = 0 queries the natural batch (faster; as evaluations before
2026-12-03 did, so their folders resume with it).
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
import multiprocessing as mp
import os
import queue as _queue
import signal
import sys
from collections import deque
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

from eval.metrics import TrialRecord
from harness.core.parallel import sigterm_as_keyboard_interrupt
from sim_envs.geometry import TASK, pose_error
from sim_envs.visual import CameraSetup, VisualConfig


class Policy(Protocol):
    """What a rollout needs: the diffusion policy, or any scripted stand-in."""
    n_obs: int
    n_action: int

    def act(self, obs_history: dict) -> np.ndarray:   # {key: (B, n_obs, ...)} -> (B, n_action, 2)
        ...


def trial_rng(seed: int, query: int) -> np.random.Generator:
    """The random stream of one policy query in one trial: independent of batch and worker."""
    return np.random.default_rng([int(seed), int(query), 0xE7A1])


def policy_wants_noise(policy) -> bool:
    """True if `policy.act` takes the sampler's initial noise (so we can make it per-trial)."""
    try:
        params = inspect.signature(policy.act).parameters
    except (TypeError, ValueError):
        return False
    return "noise" in params and hasattr(policy, "horizon")


def make_record(seed: int, info: dict, dt: float = TASK.control_dt) -> TrialRecord:
    """Turn the terminal info of a trial into its record (errors are of the true, noise-free pose)."""
    outcome = str(info["outcome"])
    steps = int(info["step"])
    err = pose_error(np.asarray(info["slider_pose"], dtype=float))
    t = float(info.get("time", steps * dt))
    return TrialRecord(seed=int(seed), outcome=outcome, steps=steps,
                       time_to_success=t if outcome == "success" else math.nan,
                       final_xy_error=float(np.hypot(err[0], err[1])), final_theta_error=float(abs(err[2])))


class ObsHistory:
    """Per-env rolling window of the last n_obs observations: {key: (K, n_obs, ...)}."""

    def __init__(self, first_obs: dict, n_obs: int):
        # Pad by repeating the first observation, as diffusion_policy does at reset.
        self.buf = {k: np.repeat(np.asarray(v)[:, None], n_obs, axis=1) for k, v in first_obs.items()}

    def push(self, obs: dict) -> None:
        for k, v in obs.items():
            self.buf[k] = np.concatenate([self.buf[k][:, 1:], np.asarray(v)[:, None]], axis=1)

    def select(self, idx: Sequence[int]) -> dict:
        return {k: v[idx] for k, v in self.buf.items()}


def run_wave(policy, env, seeds: Sequence[int], max_steps: int | None = None,
             on_step: Callable[[int, dict, list], None] | None = None,
             on_trial: Callable[[TrialRecord], None] | None = None, inference_batch: int = 0) -> list[TrialRecord]:
    """Run len(seeds) trials in lockstep on a VectorEnv of that many envs; one record per seed, in order.

    max_steps: end trials as "timeout" after this many steps (default: the task's 75 s, which the env itself
    enforces; a shorter cap is for quick tests and demos). `on_step(step, obs, infos)` is called after every
    step (recording uses it); `on_trial(record)` as each trial ends. inference_batch: see the module docstring.
    An image policy reads only the last n_obs frames of each chunk query, so the cameras render only the
    steps whose observations the next query will read (2 of 8 with the defaults; benchmarks/pixel_speed.py).
    """
    seeds = [int(s) for s in seeds]
    k = len(seeds)
    cap = min(max_steps or TASK.max_steps, TASK.max_steps)
    wants_noise = policy_wants_noise(policy)
    sees_images = bool(getattr(policy, "image_shapes", None))
    obs = env.reset(seeds)
    if hasattr(policy, "start_trials"):   # a policy with state per trial (eval/lerobot_policy.py) is told they start
        policy.start_trials(seeds)
    history = ObsHistory(obs, policy.n_obs)
    queues: list[deque] = [deque() for _ in range(k)]
    queries = np.zeros(k, dtype=int)
    records: list[TrialRecord | None] = [None] * k
    last_action = np.asarray(obs["agent_pos"], dtype=float).copy()   # (K, 2); finished envs get this
    # +2: the env itself ends trials at the task's limit; the margin only guards against one that never does.
    for step in range(cap + 2):
        running = [i for i in range(k) if records[i] is None]
        if not running:
            return records  # type: ignore[return-value]
        need = [i for i in running if not queues[i]]
        if need:
            for i, chunk in zip(need, _query(policy, history.select(need), [seeds[i] for i in need],
                                             queries[need], wants_noise, inference_batch)):
                queues[i].extend(chunk)
            queries[need] += 1
        actions = last_action.copy()
        for i in running:
            actions[i] = queues[i].popleft()
        last_action = actions
        # an image policy: new frames only where the next query will read them (its last n_obs observations)
        render = [len(queues[i]) < policy.n_obs for i in range(k)] if sees_images else None
        obs, infos = env.step(actions, render=render)
        history.push(obs)
        if on_step is not None:
            on_step(step, obs, infos)
        for i in running:
            if infos[i]["outcome"] != "running":
                records[i] = make_record(seeds[i], infos[i])
            elif int(infos[i]["step"]) >= cap:
                records[i] = make_record(seeds[i], {**infos[i], "outcome": "timeout"})
            if records[i] is not None and on_trial is not None:
                on_trial(records[i])
    raise RuntimeError(f"env did not end trials {[seeds[i] for i in range(k) if records[i] is None]} "
                       f"within {cap} steps")


def _query(policy, obs_history: dict, seeds: Sequence[int], queries: np.ndarray, wants_noise: bool,
           inference_batch: int = 0) -> np.ndarray:
    """One batched policy call for the envs that need a new chunk: (B, n_action, 2)."""
    if wants_noise:
        rngs = [trial_rng(s, q) for s, q in zip(seeds, queries)]
        noise = np.stack([rng.standard_normal((policy.horizon, 2)) for rng in rngs]).astype(np.float32)
        extra = {}
        if getattr(policy, "stochastic", False):   # a sampler with fresh noise per step: from the trial's stream
            extra["step_seeds"] = [int(rng.integers(2 ** 63 - 1)) for rng in rngs]
        if inference_batch > 0:
            actions = _fixed_batches(policy, obs_history, noise, extra, inference_batch)
        else:
            actions = policy.act(obs_history, noise=noise, **extra)
    else:
        actions = policy.act(obs_history)
    actions = np.asarray(actions, dtype=float)
    b = len(seeds)
    if actions.ndim != 3 or actions.shape[0] != b or actions.shape[2] != 2:
        raise ValueError(f"policy.act returned shape {actions.shape}, expected ({b}, n_action, 2)")
    return actions[:, : policy.n_action]


def _fixed_batches(policy, obs_history: dict, noise: np.ndarray, extra: dict, k: int) -> np.ndarray:
    """policy.act on rows [0, k), [k, 2k), ... of the batch, each padded to exactly k rows."""
    b = len(noise)
    out = []
    for start in range(0, b, k):
        rows = np.arange(start, min(start + k, b))
        padded = np.concatenate([rows, np.full(k - len(rows), rows[0])])   # (k,) pads repeat the first row
        part = {key: np.asarray(v)[padded] for key, v in obs_history.items()}   # {key: (k, n_obs, ...)}
        more = {"step_seeds": [extra["step_seeds"][i] for i in padded]} if "step_seeds" in extra else {}
        out.append(np.asarray(policy.act(part, noise=noise[padded], **more))[: len(rows)])
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------------
# Spreading waves over processes.

@dataclasses.dataclass(frozen=True)
class PolicyFile:
    """A checkpoint to load in each worker, with the sampler or its step count overridden (None = its config's)."""
    path: str
    num_steps: int | None = None
    sampler: str | None = None


def _is_file(policy_or_path) -> bool:
    """A policy to load in each worker: a checkpoint, or a source with `load_policy(device)` (a LeRobot folder)."""
    return isinstance(policy_or_path, (str, Path, PolicyFile)) or hasattr(policy_or_path, "load_policy")


def _load_policy(policy_or_path, device: str):
    """A policy object, loaded from a checkpoint path if need be (an image policy knows its cameras)."""
    if not _is_file(policy_or_path):
        return policy_or_path
    if hasattr(policy_or_path, "load_policy"):
        return policy_or_path.load_policy(device)
    from harness.learning.policy import load_policy  # layer 3; imported lazily so scripted-policy runs skip torch
    if isinstance(policy_or_path, PolicyFile):
        return load_policy(policy_or_path.path, device=device, num_steps=policy_or_path.num_steps,
                           sampler=policy_or_path.sampler)
    return load_policy(policy_or_path, device=device)


_WORKER: dict = {}


def check_cameras(policy, visual: VisualConfig | None) -> CameraSetup | None:
    """The cameras the envs render for `policy`: its own (an image checkpoint's plain-camera size and its
    clean data's look), with `visual` in place of the look when given (--visual); checked against what the
    policy sees, so a wrong look is one line before any env is built."""
    own = getattr(policy, "cameras", None) or CameraSetup()
    setup = dataclasses.replace(own, visual=visual) if visual is not None else own
    wanted = getattr(policy, "image_shapes", None) or {}
    if wanted:
        setup.check_serves(wanted, "the policy")
    return setup if setup.shapes() or setup.visual else None


def _worker_init(policy_or_path, device: str, preset, visual, max_steps, threads: int, queue,
                 inference_batch: int) -> None:
    # A failing initializer would make multiprocessing.Pool restart the worker forever: keep the error
    # and raise it from the first wave instead, where the parent sees it.
    # Ctrl-C reaches the whole process group: the parent stops the pool; a worker printing its own
    # KeyboardInterrupt traceback would only bury the parent's one line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.environ["OMP_NUM_THREADS"] = str(threads)   # one thread per worker: no oversubscribed cores
        if _is_file(policy_or_path) or "torch" in sys.modules:
            from harness.learning.device import limit_threads   # layer 3, and torch: only for torch policies
            limit_threads(threads)
        policy = _load_policy(policy_or_path, device)
        _WORKER.update(policy=policy, preset=preset, max_steps=max_steps, envs={}, queue=queue,
                       inference_batch=inference_batch,
                       cameras=check_cameras(policy, visual), error=None)
    except Exception as exc:  # noqa: BLE001 - re-raised in _worker_wave
        _WORKER["error"] = exc


def _worker_wave(seeds: Sequence[int]) -> list[TrialRecord]:
    if _WORKER.get("error") is not None:
        raise _WORKER["error"]
    return _run_in(_WORKER, seeds, on_trial=_WORKER["queue"].put)


def _run_in(state: dict, seeds: Sequence[int], on_trial=None) -> list[TrialRecord]:
    """Run one wave with the state's policy, reusing a VectorEnv of the right size."""
    from sim_envs.vector_env import VectorEnv   # (imports Drake: EvalSettings, and a study's config, load without it)
    envs = state["envs"]
    k = len(seeds)
    if k not in envs:
        cameras = state["cameras"] or CameraSetup()
        envs[k] = VectorEnv(k, state["preset"], workers=1, image_size=cameras.image_size, visual=cameras.visual)
    return run_wave(state["policy"], envs[k], seeds, max_steps=state["max_steps"], on_trial=on_trial,
                    inference_batch=state["inference_batch"])


def waves(seeds: Sequence[int], n_envs: int) -> list[list[int]]:
    seeds = list(seeds)
    return [seeds[i: i + n_envs] for i in range(0, len(seeds), n_envs)]


def run_trials(policy_or_path, preset, seeds: Sequence[int], on_trial: Callable[[TrialRecord], None],
               n_envs: int = 10, workers: int = 1, device: str = "cpu", visual: VisualConfig | None = None,
               max_steps: int | None = None, inference_batch: int = 0) -> None:
    """Run every seed; `on_trial(record)` is called in this process as each trial finishes.

    policy_or_path: a checkpoint path (loaded in each worker with harness.learning.policy.load_policy) or a policy
    object (pickled to the workers when workers > 1; scripted policies must then be module-level classes).
    """
    if n_envs < 1 or workers < 1:
        raise ValueError(f"n_envs and workers must be >= 1, got {n_envs} and {workers}")
    if not _is_file(policy_or_path):
        check_cameras(policy_or_path, visual)          # a wrong look: one line here, not in a worker
    if not seeds:
        return
    if getattr(policy_or_path, "one_trial_at_a_time", False):   # its state is one trial's (eval/lerobot_policy.py)
        n_envs = 1
    # Few trials: smaller waves, so that every worker gets some.
    jobs = waves(seeds, min(n_envs, -(-len(seeds) // workers)))
    workers = min(workers, len(jobs))
    if workers == 1:
        policy = _load_policy(policy_or_path, device)
        state = {"policy": policy, "preset": preset, "max_steps": max_steps, "envs": {},
                 "inference_batch": inference_batch, "cameras": check_cameras(policy, visual)}
        try:
            with one_torch_thread(inference_batch > 0):   # as the worker processes have
                for job in jobs:
                    _run_in(state, job, on_trial)
        finally:
            _close_envs(state)
        return
    ctx = mp.get_context("spawn")  # Drake and torch are not fork-safe once initialised
    queue = ctx.Queue()            # finished trials stream back through it, one record at a time
    # SIGTERM stops the parent like Ctrl-C, so the pool is torn down (killed outright, it left the workers
    # printing BrokenPipeError tracebacks and the resource tracker warning of leaked semaphores)
    with sigterm_as_keyboard_interrupt(), ctx.Pool(workers, initializer=_worker_init,
                  initargs=(policy_or_path, device, preset, visual, max_steps, 1, queue,
                            inference_batch)) as pool:
        pending = pool.map_async(_worker_wave, jobs, chunksize=1)
        seen, total = 0, len(seeds)
        while seen < total:
            try:
                record = queue.get(timeout=0.2)
            except _queue.Empty:
                if pending.ready():
                    pending.get()              # re-raises a worker's exception here
                    record = queue.get(timeout=60)  # all waves returned: the rest is in flight
                else:
                    continue
            on_trial(record)
            seen += 1


@contextlib.contextmanager
def one_torch_thread(wanted: bool):
    """One torch thread for the block (restored after): GEMMs round alike with the same thread count."""
    torch = sys.modules.get("torch")
    if not wanted or torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _close_envs(state: dict) -> None:
    for env in state.get("envs", {}).values():
        try:
            env.close()
        except Exception:
            pass


def evaluate(policy_or_path, preset="target", seeds: Iterable[int] = range(200), n_envs: int = 10,
             workers: int = 1, device: str = "cpu", visual: VisualConfig | None = None, progress: bool = True,
             log_path: str | Path | None = None, desc: str = "eval",
             max_steps: int | None = None, inference_batch: int = 0) -> list[TrialRecord]:
    """Score a policy on `seeds`; returns one TrialRecord per seed, sorted by seed.

    log_path: a JSON-lines file that gets one line per trial as it finishes. Seeds already in it are not
    run again, so an interrupted evaluation resumes where it stopped.
    """
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct")
    wanted = set(seeds)
    done = {r.seed: r for r in read_trial_log(log_path) if r.seed in wanted} if log_path else {}
    todo = [s for s in seeds if s not in done]
    bar = _progress(len(seeds), len(done), progress, desc)
    n_success = [sum(r.success for r in done.values())]

    def on_trial(record: TrialRecord) -> None:
        if log_path:
            append_trial_log(log_path, [record])
        done[record.seed] = record
        n_success[0] += record.success
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"success {n_success[0]}/{len(done)} = {n_success[0] / len(done):.0%}")

    try:
        run_trials(policy_or_path, preset, todo, on_trial, n_envs, workers, device, visual, max_steps,
                   inference_batch)
    finally:
        if bar is not None:
            bar.close()
    return [done[s] for s in sorted(seeds)]


def _progress(total: int, initial: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit="trial", dynamic_ncols=True)


# ---------------------------------------------------------------------------------------------------
# The per-trial log (JSON lines): appended as trials finish, so a killed evaluation keeps its trials.

def append_trial_log(path, records: Iterable[TrialRecord]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(_json_safe(r.to_dict())) + "\n" for r in records)
    with open(path, "a") as f:
        f.write(lines)
        f.flush()
        os.fsync(f.fileno())


def read_trial_log(path) -> list[TrialRecord]:
    """Records in a trial log; a torn last line (killed mid-write) is ignored."""
    path = Path(path) if path else None
    if path is None or not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(TrialRecord.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _json_safe(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
