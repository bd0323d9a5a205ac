"""`cotrain gen-teleop`: many scripted-teleoperator episodes into one dataset store, resumable.

`num` means what it means for `gen-sim`: fill the store up to `num` episodes, from seeds seed, seed + 1, ...
in order. Failed episodes are kept too (meta `success` false, so the success rate of the teleoperator is
visible in the data; training code filters on `success`), so every seed gives one episode and the finished
store holds seeds seed .. seed + num - 1. A store already holding `num` or more episodes is left as it is.
Seeds already in the store are skipped, so an interrupted run (Ctrl-C keeps every finished episode) is
resumed by running the same command again, and a larger `num` appends only the missing seeds.
Episodes run in worker processes (`workers`); the parent alone writes the store, in seed order.

`fill_store(out, cfg)` is the contract both generators keep (gcs_planner/generate.py has the other):
everything a run needs is in its config, so the study's generation job and both CLI commands call it alike.

The store records the generator identity (the whole GenTeleopConfig); a run with another identity is
refused, naming the first differing key, and the store is left untouched (harness.core.identity). Only
RESUME_FREE_KEYS may differ between a run and its resumption.
"""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Literal

import numpy as np

from harness.core.configs import added_keys, check_bounds, free_keys, key, MAX_EPISODES, MAX_SEED, MAX_WORKERS, to_dict
from harness.core.identity import register_added_keys
from harness.core.parallel import check_ray_address, map_seeds
from harness.core.writer import EpisodeWriter, FillSummary
from real_data.teleop.scripted import run_episode, TeleopConfig
from sim_envs.config import load_preset
from sim_envs.visual import visual_attrs

GENERATOR = "real_data.teleop.scripted"   # the store's generator record names the episodes' source


@dataclasses.dataclass
class GenTeleopConfig:
    num: int = key(50, free=True, bound=(1, MAX_EPISODES), doc="fill the store up to this many episodes")
    seed: int = key(0, doc="first seed; the store holds seeds seed .. seed + num - 1")
    workers: int = key(2, free=True, bound=(1, MAX_WORKERS), doc="processes (1 = run in this process; as gen-sim)")
    executor: Literal["local", "ray"] = key("local", free=True,
                                            doc="ray: seeds run as Ray tasks (2 * workers in flight)")
    teleop: TeleopConfig = key(factory=TeleopConfig, doc="the teleoperator")

    def __post_init__(self):
        check_bounds(self)
        if not 0 <= self.seed <= MAX_SEED - self.num:
            raise ValueError(f"seed must be in [0, {MAX_SEED} - num], got {self.seed}")

    @property
    def env(self) -> str:
        return self.teleop.env


# Settings that may differ between a run and its resumption without changing any episode (declared free).
RESUME_FREE_KEYS = free_keys(GenTeleopConfig)
register_added_keys(added_keys(GenTeleopConfig))


@dataclasses.dataclass
class GenerateSummary(FillSummary):
    success_rate: float          # over every episode in the store
    mean_length: float           # steps, over every episode in the store
    mean_success_length: float   # steps, over successful episodes
    failed_seeds: list[int]

    def lines(self) -> list[str]:
        return super().lines() + [
            f"success    {self.success_rate:.1%}",
            f"length     mean {self.mean_length:.1f} steps ({self.mean_length / 10:.1f} s); "
            f"successful episodes {self.mean_success_length:.1f} steps",
            f"failed     seeds {self.failed_seeds[:20]}{' ...' if len(self.failed_seeds) > 20 else ''}"
            if self.failed_seeds else "failed     none",
        ]


def fill_store(out, cfg: GenTeleopConfig, progress: bool = True) -> GenerateSummary:
    """Fill the store at `out` up to cfg.num episodes from seeds seed, seed + 1, ... (resuming)."""
    from tqdm import tqdm

    config, num = cfg.teleop, cfg.num
    env_config = load_preset(config.env)
    generator = {"generator": GENERATOR, **to_dict(cfg)}
    if cfg.executor == "ray":
        check_ray_address(None)   # before the store exists: an unreachable cluster leaves nothing behind
    writer = EpisodeWriter(out, domain="target", source="teleop_scripted", env=env_config.name,
                           env_params=dataclasses.asdict(env_config), generator=generator,
                           extra_attrs=visual_attrs(config.visual), resume_free_keys=RESUME_FREE_KEYS)
    done = {int(s) for s in writer.meta("seed")}
    skipped = writer.n_episodes
    todo = list(itertools.islice((s for s in itertools.count(cfg.seed) if s not in done), max(0, num - skipped)))
    bar = tqdm(total=max(num, skipped), initial=skipped, desc="gen-teleop", unit="ep", disable=not progress)
    successes = []
    try:
        if todo:   # (no worker processes to start for a store that is already full)
            with map_seeds(_Episode(config), todo, cfg.workers, engine=cfg.executor) as results:
                _write_all(writer, results, bar, successes)
    finally:
        bar.close()
        writer.close()   # release the store for the next run
    new = len(successes)
    return _summary(Path(out), writer, new, skipped)


class _Episode:
    """Picklable run_episode(seed, config) with the config bound, for the worker processes."""

    def __init__(self, config: TeleopConfig):
        self.config = config

    def __call__(self, seed: int):
        return run_episode(seed, self.config)


def _write_all(writer, results, bar, successes) -> None:
    for data, meta in results:
        writer.add_episode(data, meta)
        successes.append(meta["success"])
        bar.update(1)
        bar.set_postfix(success=f"{np.mean(successes):.0%}", last=f"{meta['length']} st")


def _summary(out: Path, writer: EpisodeWriter, new: int, skipped: int) -> GenerateSummary:
    success = writer.meta("success").astype(bool)
    seeds = writer.meta("seed").astype(int)
    lengths = writer.meta("length").astype(float)
    return GenerateSummary(
        out=out, new_episodes=new, skipped=skipped, total_episodes=writer.n_episodes,
        success_rate=float(success.mean()) if len(success) else 0.0,
        mean_length=float(lengths.mean()) if len(lengths) else 0.0,
        mean_success_length=float(lengths[success].mean()) if success.any() else 0.0,
        failed_seeds=sorted(seeds[~success].tolist()),
    )
