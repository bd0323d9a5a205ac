"""`cotrain corrupt`: a corrupt copy of a store, resumable, with its provenance in the store's identity.

Episode i of the output is episode i of the source with its actions corrupted by one transform
(transforms.py; the equations and their spectra: docs/objectives.md section 16) and everything else kept
as it is: observations, images, per-episode metadata (a failed episode stays a failed one). The output's
domain is "sim" and its source "corrupted", so it can never pass for clean data.

Each episode's noise comes from its own generator, numpy default_rng([seed, i]), so an interrupted run
(Ctrl-C keeps every finished episode) resumed by the same command equals an uninterrupted one, and the
same seed gives the same store byte for byte.

The store records the generator identity: the whole CorruptConfig with `num` resolved, plus the sha256 of
the source's first `num` episodes (every data array, episode_ends, every per-episode value). A run with
another identity is refused naming the first differing key, and nothing is touched (harness.core.identity);
only the source's path may change (RESUME_FREE_KEYS: the bytes, not the place, identify the source). An
existing store that `cotrain corrupt` did not make is never written into.

`fill_store(out, cfg)` keeps the contract of both other generators (gcs_planner/generate.py,
real_data/teleop/generate.py): everything a run needs is in its config, so the study's generation job and
the CLI call it alike.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Literal

import numpy as np

from harness.core.configs import MAX_EPISODES, MAX_SEED, check_bounds, free_keys, key, to_dict
from harness.core.errors import DatasetError
from harness.core.store import EpisodeStore, open_group
from harness.core.writer import EpisodeWriter, FillSummary
from real_data.corruption.transforms import check_transform, corrupt_actions, resolved_cutoff
from sim_envs.geometry import TASK

GENERATOR = "real_data.corruption"   # the store's generator record names its maker


@dataclasses.dataclass
class ActionUnits:
    """The normalized action units a level is in: x_norm = (x - offset) * scale (harness/learning/normalizer.py's
    Affine of the actions). A study passes its normalizer's action fit; `cotrain corrupt` the source's own."""
    offset: list[float] = key(factory=lambda: [0.0, 0.0], doc="(2,): subtracted from the action (x, y)")
    scale: list[float] = key(factory=lambda: [1.0, 1.0], doc="(2,): then multiplied with it, each finite and > 0")

    def __post_init__(self):
        if len(self.offset) != 2 or len(self.scale) != 2:
            raise ValueError(f"units: offset and scale need 2 values each (x, y), got {self.offset}, {self.scale}")
        if not all(np.isfinite(s) and s > 0 for s in self.scale):
            raise ValueError(f"units: scale must be finite and > 0, got {self.scale}")


@dataclasses.dataclass
class CorruptConfig:
    source: str = key(free=True, doc="the store whose episodes are corrupted: its path may change between "
                      "sessions; its bytes (source_sha256, recorded beside) are the identity")
    transform: Literal["gaussian", "jitter", "drift", "latency", "bias"] = key(doc="the corruption "
                                                                               "(docs/objectives.md §16)")
    level: float = key(doc="normalized action units (latency: control steps)")
    seed: int = key(0, bound=(0, MAX_SEED), doc="episode i's noise: default_rng([seed, i])")
    num: int | None = key(None, doc="the source's first num episodes (null = all of them)")
    cutoff_hz: float | None = key(None, doc="jitter: noise only at f >= cutoff (default 2 Hz); drift: only below it "
                                  "(default 0.5 Hz); the others take none")
    units: ActionUnits = key(factory=ActionUnits, doc="the normalized action units the level is in")

    def __post_init__(self):
        check_transform(self.transform, self.level, self.cutoff_hz, TASK.control_dt)
        check_bounds(self)   # seed
        if self.num is not None and not 1 <= self.num <= MAX_EPISODES:
            raise ValueError(f"num must be in [1, {MAX_EPISODES}] (or null = all), got {self.num}")

    def describe(self) -> str:
        """The corruption in words, e.g. `jitter, level 0.05 (normalized action units), f >= 2 Hz`."""
        if self.transform == "latency":
            return f"latency, {int(self.level)} control steps ({self.level * TASK.control_dt:g} s)"
        cutoff = resolved_cutoff(self.transform, self.cutoff_hz)
        band = "" if cutoff is None else f", f {'>=' if self.transform == 'jitter' else '<'} {cutoff:g} Hz"
        per = ", once per episode" if self.transform == "bias" else ""
        return f"{self.transform}, level {self.level:g} (normalized action units){band}{per}"


# Settings that may differ between a run and its resumption without changing any episode (declared free).
RESUME_FREE_KEYS = free_keys(CorruptConfig)


@dataclasses.dataclass
class CorruptSummary(FillSummary):
    corruption: str              # CorruptConfig.describe()
    raw_std: list[float]         # (2,) std of the added action change over the store, metres
    source_sha256: str

    def lines(self) -> list[str]:
        return super().lines() + [
            f"corruption {self.corruption}",
            f"change     std {self.raw_std[0] * 1000:.2f} mm in x, {self.raw_std[1] * 1000:.2f} mm in y "
            "(corrupt minus source action, every step)",
            f"source     sha256 {self.source_sha256[:16]}...",
        ]


def corrupt_episode(action: np.ndarray, cfg: CorruptConfig, episode: int) -> np.ndarray:
    """Episode `episode`'s actions (T, 2) corrupted; its noise depends on (cfg.seed, episode) alone."""
    rng = np.random.default_rng([cfg.seed, episode])
    return corrupt_actions(action, cfg.transform, cfg.level, rng, np.asarray(cfg.units.scale), TASK.control_dt,
                           cfg.cutoff_hz)


def source_sha256(store: EpisodeStore, num: int) -> str:
    """sha256 of the first `num` episodes: episode_ends, every data array (name, dtype, bytes) and every
    per-episode value. Equal digests: the same episodes, whatever the store's place or chunking."""
    digest = hashlib.sha256(np.asarray(store.episode_ends[:num], np.int64).tobytes())
    for key in sorted(store.data_keys):
        digest.update(key.encode() + b"\0")
        for i in range(num):                # an episode at a time: images stay in bounded memory
            values = np.ascontiguousarray(store.episode(i, [key])[key])
            if i == 0:
                digest.update(f"{values.dtype.str}{values.shape[1:]}".encode())
            digest.update(values.tobytes())
    for key in sorted(store.meta_keys):
        values = np.ascontiguousarray(store.meta(key)[:num])
        digest.update(key.encode() + b"\0" + values.dtype.str.encode() + values.tobytes())
    return digest.hexdigest()


def open_source(cfg: CorruptConfig) -> tuple[EpisodeStore, int]:
    """The validated source store and the number of episodes to corrupt; one line if it cannot serve."""
    source = EpisodeStore(cfg.source)
    if source.summary.partial_meta:
        key, n = next(iter(source.summary.partial_meta.items()))
        raise DatasetError(cfg.source, f"meta/{key}", f"has values for {n} of {source.n_episodes} episodes; a corrupt "
                           "copy keeps every per-episode value, so it needs them all")
    num = source.n_episodes if cfg.num is None else cfg.num
    if not 1 <= num <= source.n_episodes:
        raise DatasetError(cfg.source, None, f"has {source.n_episodes} episodes, {num} are to be corrupted")
    return source, num


def check_out(out: Path, source: Path) -> None:
    """Refuse an output that is the source, or an existing store (or folder) `cotrain corrupt` did not make."""
    if out.exists() and out.resolve() == Path(source).resolve():
        raise DatasetError(out, None, "is the source store itself; a corrupt copy goes to another --out")
    if out.exists() and not out.is_dir():
        raise DatasetError(out, None, "exists and is not a dataset store folder")
    if out.is_dir():
        attrs = dict(open_group(out).attrs)
        made_by = attrs.get("generator")
        if not (isinstance(made_by, dict) and made_by.get("generator") == GENERATOR):
            raise DatasetError(out, "attrs.generator", f"this store (domain {attrs.get('domain')}, source "
                               f"{attrs.get('source')}) was not made by `cotrain corrupt`; it is never written into: "
                               "choose another --out")


def fill_store(out, cfg: CorruptConfig, progress: bool = True) -> CorruptSummary:
    """Write (or resume) the corrupt copy of cfg.source's first num episodes at `out`."""
    from tqdm import tqdm

    out = Path(out)
    check_out(out, Path(cfg.source))
    source, num = open_source(cfg)
    digest = source_sha256(source, num)
    record = {"generator": GENERATOR, **to_dict(dataclasses.replace(cfg, num=num)), "source_sha256": digest,
              "source_store": {"domain": source.domain, "source": source.source}}
    extra = {"visual": source.attrs["visual"]} if "visual" in source.attrs else {}
    writer = EpisodeWriter(out, domain="sim", source="corrupted", env=source.attrs["env"],
                           env_params=source.attrs["env_params"], generator=record, extra_attrs=extra,
                           resume_free_keys=RESUME_FREE_KEYS)
    meta = {key: source.meta(key)[:num] for key in source.meta_keys}
    skipped = writer.n_episodes
    bar = tqdm(total=num, initial=min(skipped, num), desc=f"corrupt {cfg.transform}", unit="ep",
               disable=not progress)
    try:
        for i in range(skipped, num):
            data = source.episode(i)
            data["action"] = corrupt_episode(data["action"], cfg, i)
            writer.add_episode(data, {key: values[i] for key, values in meta.items()})   # Ctrl-C waits for it
            bar.update(1)
    finally:
        bar.close()
        writer.close()   # release the store for the next run
    return CorruptSummary(out, max(0, writer.n_episodes - skipped), skipped, writer.n_episodes, cfg.describe(),
                          _change_std(source, EpisodeStore(out)), digest)


def _change_std(source: EpisodeStore, corrupt: EpisodeStore) -> list[float]:
    """(2,) std over every step of (corrupt action - source action), metres: the corruption's size in the
    units a person reads."""
    stop = corrupt.n_steps
    change = corrupt.data("action").astype(np.float64) - source.data("action", stop).astype(np.float64)
    return change.std(axis=0).tolist() if len(change) else [0.0, 0.0]
