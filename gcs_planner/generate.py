"""Generate simulated demonstrations: plan each seeded start with GCS, replay it, append it to a store.

Seeds: the k-th seed tried is `seed + k`, in order. A seed whose plan fails (or whose physics replay
misses the goal, unless keep_failed_replays) is dropped and counted; generation stops once `num`
demonstrations are kept, so the store holds the first `num` good seeds from `seed` on, in seed order.
Re-running the same command resumes: seeds already in the store are skipped, and because results are
written in seed order, an interrupted-then-resumed store equals an uninterrupted one. (Dropped seeds are
not recorded, so a resumed run plans them again; they fail again, deterministically.) The store records the
resolved GenSimConfig; a run whose config differs in anything but RESUME_FREE_KEYS is refused, naming the
first differing key, and the store is left untouched (harness.core.identity).

`generate_episode(seed, cfg)` is a plain function of (seed, config): it is what a cluster executor would run.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import time
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from gcs_planner.config import PlannerConfig
from gcs_planner.planner import Planner
from gcs_planner.replay import replay_kinematic, replay_physics
from harness.core.configs import added_keys, check_bounds, free_keys, key, MAX_EPISODES, MAX_SEED, MAX_WORKERS, to_dict
from harness.core.errors import ConfigError, DatasetError
from harness.core.identity import register_added_keys
from harness.core.parallel import check_ray_address, map_seeds
from harness.core.writer import EpisodeWriter
from sim_envs.config import load_preset
from sim_envs.initial_states import sample_initial_pose
from sim_envs.visual import check_visual_name, visual_attrs


@dataclasses.dataclass
class GenSimConfig:
    num: int = key(100, free=True, bound=(1, MAX_EPISODES), doc="demonstrations to keep (the store holds the "
                   "first num kept seeds from seed on, whatever the sessions)")
    seed: int = key(0, doc="first seed; seeds seed, seed + 1, ... are tried in order")
    env: str = key("sim", doc="physics preset the demonstrations are observed (and replayed) in")
    replay: Literal["kinematic", "physics"] = key("kinematic", doc="kinematic: the slider follows the plan; physics: "
                                                  "it moves by physics")
    workers: int = key(2, free=True, bound=(1, MAX_WORKERS), doc="processes (1 = run in this process)")
    executor: Literal["local", "ray"] = key("local", free=True,
                                            doc="ray: seeds run as Ray tasks (2 * workers in flight)")
    images: bool = key(False, doc="also record the plain top-down camera as data/image")
    image_size: tuple[int, int] = key((96, 96), doc="(H, W) of those images")
    visual: Optional[str] = key(None, since=22, doc="visual preset (sim_envs/visuals/): the look, and its cameras "
                                "recorded as data/image.<camera>; null = no such cameras")
    keep_failed_replays: bool = key(False, doc="keep physics replays that miss the goal (marked success=False)")
    stop_at_success: bool = key(True, doc="end an episode at the first step within the success tolerance")
    push_depth: float = key(0.005, doc="physics replay: command this far (m) into the face while pushing")
    settle_steps: int = key(10, bound=(0, None), doc="physics replay: control steps after each plan ends")
    max_replans: int = key(2, bound=(0, None), doc="physics replay: new plans from the true pose when a plan ends "
                           "off goal")
    max_seeds: int = key(0, free=True, doc="give up after trying this many seeds (0 = 2 * num + 20)")
    planner: PlannerConfig = key(factory=PlannerConfig, doc="the GCS planner's settings (gcs_planner/config.py)")

    def __post_init__(self):
        check_bounds(self)   # num, workers, settle_steps, max_replans
        if not 0 <= self.seed <= MAX_SEED - self.seed_budget:
            raise ValueError(f"seed must be in [0, {MAX_SEED} - the seeds tried], got {self.seed}")
        if min(self.image_size) < 8 or max(self.image_size) > 2048:
            raise ValueError(f"image_size must be [H, W] with each side 8..2048 pixels, got {list(self.image_size)}")
        if not self.env:
            raise ValueError("env must name a physics preset")
        if self.keep_failed_replays and self.replay != "physics":   # a kinematic replay never misses: it means nothing
            raise ValueError("keep_failed_replays applies to replay: physics only (a kinematic replay follows "
                             f"its plan, so none fails); got replay: {self.replay}")
        if self.visual is not None:
            check_visual_name(self.visual)
        if not 0 <= self.push_depth < 0.05:
            raise ValueError(f"push_depth must be in [0, 0.05) m, got {self.push_depth}")
        if self.max_seeds < 0:
            raise ValueError(f"max_seeds must be >= 0 (0 = 2 * num + 20), got {self.max_seeds}")
        if 0 < self.max_seeds < self.num:
            raise ValueError(f"max_seeds must be 0 or >= num ({self.num}), got {self.max_seeds}")

    @property
    def source(self) -> str:
        return f"gcs_{self.replay}"

    @property
    def seed_budget(self) -> int:
        return self.max_seeds or 2 * self.num + 20


# Settings that may differ between a run and its resumption without changing any episode (declared free).
RESUME_FREE_KEYS = free_keys(GenSimConfig)
register_added_keys(added_keys(GenSimConfig))


@dataclasses.dataclass
class EpisodeResult:
    seed: int
    status: str                  # kept / plan_failed / replay_missed
    reason: str                  # why it was dropped ("" when kept)
    data: dict | None
    meta: dict | None
    solve_time: float


_CACHE: dict = {}


def _tools(cfg: GenSimConfig):
    """Planner and env for this process, built once per config."""
    key = json.dumps(to_dict(cfg), sort_keys=True)
    if key not in _CACHE:
        from sim_envs.env import PushTEnv   # Drake scene: import only where episodes are made
        _CACHE.clear()
        env = PushTEnv(preset=cfg.env, image_size=tuple(cfg.image_size) if cfg.images else None, visual=cfg.visual)
        _CACHE[key] = (Planner(cfg.planner), env)
    return _CACHE[key]


def generate_episode(seed: int, cfg: GenSimConfig) -> EpisodeResult:
    """Plan the start pose of `seed`, replay it, and return the episode (or why it was dropped)."""
    planner, env = _tools(cfg)
    start = sample_initial_pose(seed)
    result = planner.plan(start, {"seed": seed})
    if not result.ok:
        return EpisodeResult(seed, "plan_failed", f"plan: {result.failure}", None, None, result.solve_time)
    plan = result.plan
    if cfg.replay == "kinematic":
        env.mount_cameras(seed)          # (a physics replay's reset does this)
        demo = replay_kinematic(plan, env, cfg.stop_at_success)
    else:
        def replan(pose):
            again = planner.plan(pose, {"seed": seed})
            return again.plan
        demo = replay_physics(plan, env, seed, planner.faces, cfg.push_depth, cfg.settle_steps,
                              cfg.stop_at_success, replan=replan, max_replans=cfg.max_replans)
    meta = {
        "seed": np.int64(seed), "start_x": float(start[0]), "start_y": float(start[1]),
        "start_theta": float(start[2]), "plan_cost": float(plan.info["cost"]),
        "solve_time": float(result.solve_time), "plan_duration": float(plan.duration),
        "replay": cfg.replay, "replans": np.int64(demo.replans), "success": bool(demo.reached_goal),
    }
    if not demo.reached_goal and not cfg.keep_failed_replays:
        return EpisodeResult(seed, "replay_missed", f"replay: {demo.outcome}", None, meta, result.solve_time)
    return EpisodeResult(seed, "kept", "", demo.data, meta, result.solve_time)


@dataclasses.dataclass
class Summary:
    tried: int = 0
    planned: int = 0
    kept: int = 0
    kept_before: int = 0                 # episodes already in the store when this run started
    dropped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    elapsed: float = 0.0
    plan_times: list = dataclasses.field(default_factory=list)

    def lines(self) -> list[str]:
        t = np.array(self.plan_times) if self.plan_times else np.zeros(1)
        per_min = self.tried / self.elapsed * 60 if self.elapsed > 0 else 0.0
        out = [
            f"seeds tried {self.tried}, planned {self.planned}, kept {self.kept} "
            f"(store now holds {self.kept_before + self.kept})",
            f"time {self.elapsed:.1f} s ({per_min:.1f} plans/min); plan solve time median {np.median(t):.2f} s, "
            f"p90 {np.percentile(t, 90):.2f} s",
        ]
        if self.dropped:
            out.append("dropped: " + ", ".join(f"{n} {r}" for r, n in self.dropped.most_common()))
        return out


def fill_store(out, cfg: GenSimConfig, progress: bool = True) -> Summary:
    """Fill the store at `out` up to cfg.num episodes (resuming), in parallel; Ctrl-C keeps finished work."""
    path = Path(out)
    physics = load_preset(cfg.env)
    if cfg.executor == "ray":
        check_ray_address(None)   # before the store exists: an unreachable cluster leaves nothing behind
    try:
        writer = EpisodeWriter(path, domain="sim", source=cfg.source, env=cfg.env,
                               env_params=dataclasses.asdict(physics), generator=to_dict(cfg),
                               extra_attrs=visual_attrs(cfg.visual), resume_free_keys=RESUME_FREE_KEYS)
    except ValueError as exc:
        raise DatasetError(path, None, str(exc)) from None
    with writer:  # released on any exit, so a later run (or resume) can open the store
        return _append_episodes(writer, path, cfg, progress)


def _append_episodes(writer: EpisodeWriter, path: Path, cfg: GenSimConfig, progress: bool) -> Summary:
    from tqdm import tqdm

    done = {int(s) for s in writer.meta("seed")}
    summary = Summary(kept_before=writer.n_episodes)
    todo = [s for s in range(cfg.seed, cfg.seed + cfg.seed_budget) if s not in done]
    if writer.n_episodes >= cfg.num:
        return summary
    bar = tqdm(total=cfg.num, initial=writer.n_episodes, unit="demo", disable=not progress,
               desc=f"gen-sim {cfg.replay}")
    t0 = time.perf_counter()
    try:
        with map_seeds(_Worker(cfg), todo, cfg.workers, engine=cfg.executor) as results:
            for res in results:
                summary.tried += 1
                summary.plan_times.append(res.solve_time)
                if res.status != "plan_failed":
                    summary.planned += 1
                if res.status == "kept":
                    try:
                        writer.add_episode(res.data, res.meta)   # Ctrl-C is held until the episode is committed
                    finally:
                        summary.kept = writer.n_episodes - summary.kept_before
                    bar.update(1)
                else:
                    summary.dropped[res.reason] += 1
                elapsed = time.perf_counter() - t0
                bar.set_postfix(plans_per_min=f"{summary.tried / elapsed * 60:.1f}",
                                yield_=f"{summary.kept / summary.tried:.0%}")
                if summary.kept_before + summary.kept >= cfg.num:
                    break
    except KeyboardInterrupt as exc:
        exc.summary = summary   # the caller can still report what was finished
        raise
    finally:
        summary.elapsed = time.perf_counter() - t0
        bar.close()
    return summary


class _Worker:
    """Picklable callable for Pool.imap: generate_episode with the config bound."""

    def __init__(self, cfg: GenSimConfig):
        self.cfg = cfg

    def __call__(self, seed: int) -> EpisodeResult:
        return generate_episode(seed, self.cfg)


def check_out_path(path) -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError("--out", None, f"{path} exists and is not a dataset store folder")
    return path
