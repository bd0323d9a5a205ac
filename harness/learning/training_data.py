"""The data pipeline shared by every method: stores -> windows -> normalized pools + the source sampler.

Datasets of one role (clean / corrupt) are concatenated into one pool; the sampler (sources.py) picks a
window row in a pool for every sample. All arrays are held in memory as numpy (low-dim data is small;
images stay uint8), and a batch is gathered with fancy indexing, so there are no loader workers whose
state would have to be checkpointed: the numpy Generator of the sampler is the whole data-order state.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from harness.learning.annotations import read_annotations, sigma_n_for_windows
from harness.core.errors import ConfigError, DatasetError, UserError
from harness.core.store import EpisodeStore, is_image_key
from harness.learning.methods import Method, make_method
from harness.learning.model import make_formulation
from harness.learning.normalizer import Affine, Normalizer, fit_normalizer, load_normalizer, same_affine
from harness.learning.sources import Mixing, SourceSampler, natural_alpha
from harness.learning.train_config import DatasetSpec, TrainConfig
from harness.learning.windows import WindowIndex, WindowSpec, make_windows, obs_features, split_episodes

CLEAN_DOMAINS = ("target", "real")


@dataclasses.dataclass
class RawDataset:
    name: str
    path: str
    role: str                      # "clean" | "corrupt"
    episode_ends: np.ndarray       # (E,)
    obs: np.ndarray                # (S, 6) float32 features, raw units
    action: np.ndarray             # (S, 2) float32 raw units
    images: dict[str, np.ndarray]  # camera key -> (S, H, W, 3) uint8 (empty for state policies)
    train_episodes: np.ndarray
    val_episodes: np.ndarray
    visual: dict | None = None     # the visual preset its cameras were rendered with (store attrs `visual`)


def kept_episodes(store: EpisodeStore, only_success: bool = True, max_episodes: int | None = None) -> np.ndarray:
    """(n,) the store's episodes a dataset uses, in order: its successful ones (only_success), the first
    max_episodes of those. Loaded datasets, and so the classifier's annotations, number their episodes
    0..n-1 in this order; whoever maps an annotated window back to the store (eval/window_profile.py) must
    use the same list, not the store's first n episodes (a failed episode shifts every later one)."""
    episodes = np.arange(store.n_episodes)
    if only_success and "success" in store.meta_keys:
        # An episode appended by another tool has no success value: kept (only known failures are skipped).
        episodes = episodes[store.meta("success", missing=True).astype(bool)]
    return episodes if max_episodes is None else episodes[:max_episodes]


def load_dataset(spec: DatasetSpec, image_keys: list[str], name: str) -> RawDataset:
    store = EpisodeStore(spec.path)
    role = spec.role
    if role == "auto":
        role = "clean" if store.domain in CLEAN_DOMAINS else "corrupt"
    episodes = kept_episodes(store, spec.only_success, spec.max_episodes)
    if len(episodes) == 0:
        raise DatasetError(spec.path, "meta/episode_ends",
                           "no episodes to use" + (" (none has meta/success true)" if store.n_episodes else ""))
    # The kept episodes, renumbered 0..n-1 and concatenated: their steps in the store, in order.
    bounds = [store.episode_slice(int(i)) for i in episodes]
    steps = np.concatenate([np.arange(b.start, b.stop) for b in bounds])        # (S,)
    ends = np.cumsum([b.stop - b.start for b in bounds]).astype(np.int64)      # (n,)
    stop = bounds[-1].stop

    def load(key):
        return store.data(key, stop)[steps]

    obs = obs_features(load("agent_pos"), load("slider_pose"))
    action = load("action").astype(np.float32)
    images = {}
    for key in image_keys:
        if key not in store.data_keys:
            cameras = [k for k in store.data_keys if is_image_key(k)]
            raise DatasetError(spec.path, f"data/{key}", "the policy sees this camera but the store has no such "
                               f"array (its cameras: {', '.join(cameras) or 'none'})")
        images[key] = load(key)
    return RawDataset(name, str(spec.path), role, ends, obs, action, images, np.arange(len(episodes)),
                      np.zeros(0, np.int64), store.attrs.get("visual") if images else None)


def check_image_shapes(raws: list[RawDataset]) -> dict[str, tuple]:
    """{camera key: (H, W, 3)}, the same in every dataset; a store whose camera has another shape is refused
    in one line (a policy has one input size per camera)."""
    shapes = {}
    for raw in raws:
        for key, value in raw.images.items():
            shape = tuple(int(s) for s in value.shape[1:])
            first = shapes.setdefault(key, (shape, raw.path))
            if first[0] != shape:
                raise DatasetError(raw.path, f"data/{key}", f"frames are {shape}, but {first[1]} has {first[0]}: "
                                   "every store must render a camera at one size")
    return {key: shape for key, (shape, _) in shapes.items()}


@dataclasses.dataclass
class Pool:
    """All datasets of one role, concatenated; rows index `windows`."""
    role: str
    obs: np.ndarray               # (S, 6) normalized
    action: np.ndarray            # (S, 2) normalized
    images: dict[str, np.ndarray]  # camera key -> (S, H, W, 3) uint8
    windows: WindowIndex
    train_rows: np.ndarray        # (N,) window rows used for training
    sigma_n: np.ndarray           # (N,) noise level of each training window (0 for clean, and for corrupt
                                  # windows of methods that do not use one)
    dataset: np.ndarray           # (len(windows),) index into `names`
    names: list[str]
    train_episodes: int

    def gather(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Windows `rows` -> obs (n, n_obs, 6), action (n, horizon, 2), images {key: (n, n_obs, H, W, 3)}."""
        steps = self.windows.steps(rows)                   # (n, horizon)
        obs_steps = steps[:, : self.windows.spec.n_obs]    # (n, n_obs)
        return {"obs": self.obs[obs_steps], "action": self.action[steps],
                "images": {key: frames[obs_steps] for key, frames in self.images.items()}}


@dataclasses.dataclass
class TrainingData:
    spec: WindowSpec
    normalizer: Normalizer
    sigma_data: float
    pools: dict[str, Pool]               # "clean", "corrupt" (either may be empty -> absent)
    sampler: SourceSampler
    val: dict[str, tuple[str, np.ndarray]]  # dataset name -> (pool role, window rows)
    image_shapes: dict[str, tuple]       # camera key -> (H, W, 3); empty for a state policy
    method: Method                       # the objective's method (harness/learning/methods.py), made once here
    alpha_natural: float = 1.0           # clean / (clean + corrupt) training episodes (after the validation
                                         # split and the success filter): the natural alpha of plain cotraining
    alpha_target: float | None = None    # the constant alpha the mixing aims at where every corrupt window
                                         # is valid (configured, or alpha_natural); None for an alpha(sigma) table
    visual: dict | None = None           # the look of the clean data's cameras: an image policy is evaluated
                                         # in it unless told otherwise (its checkpoint records it)

    @property
    def max_abs_action(self) -> float:
        """The largest |normalized action| over every source's windows: what a DDPM sampler must reach."""
        return max(float(np.abs(pool.action).max(initial=0.0)) for pool in self.pools.values())

    def mixing_summary(self) -> dict:
        """For train_summary.json: the alphas this run aimed at, next to the clean fraction it realised."""
        return {"alpha_natural": round(self.alpha_natural, 6),
                "alpha_target": None if self.alpha_target is None else round(self.alpha_target, 6)}

    def gather(self, role: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        return self.pools[role].gather(rows)

    def describe(self) -> list[str]:
        """A few lines for the start of a run: pools, validity, mixing at a few sigmas."""
        lines = []
        for role, pool in self.pools.items():
            sn = pool.sigma_n
            extra = ""
            if role == "corrupt" and len(sn):
                extra = (f", sigma_n: {np.mean(sn == 0):.0%} at 0, median {np.median(sn):.3g}, "
                         f"{np.mean(np.isinf(sn)):.0%} never")
            lines.append(f"{role:<8} {', '.join(pool.names)}: {pool.train_episodes} episodes, "
                         f"{len(pool.train_rows)} training windows{extra}")
        sig = np.array([0.01, 0.1, 0.3, 1.0, 3.0])
        lines.append("P(clean | sigma) " + "  ".join(f"{s:g}: {p:.2f}" for s, p in zip(sig, self.sampler.p_clean(sig))))
        lines.append(f"sigma_data {self.sigma_data:.4f} (normalized actions); validation sets: "
                     f"{', '.join(self.val) or 'none'}")
        return lines


def _names(specs: list[DatasetSpec]) -> list[str]:
    names = []
    for spec in specs:
        base = Path(spec.path).name.removesuffix(".zip").removesuffix(".zarr") or "data"
        name, k = base, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


def build(cfg: TrainConfig) -> TrainingData:
    """Everything the training loop needs from the data, for one config."""
    dcfg, ocfg = cfg.data, cfg.objective
    if not dcfg.datasets:
        raise ConfigError("config", "data.datasets", "no datasets listed")
    spec = WindowSpec(dcfg.n_obs, dcfg.horizon, dcfg.n_action)
    raws = [load_dataset(s, dcfg.image_keys, n) for s, n in zip(dcfg.datasets, _names(dcfg.datasets))]
    image_shapes = check_image_shapes(raws)
    for i, raw in enumerate(raws):
        raw.train_episodes, raw.val_episodes = split_episodes(len(raw.episode_ends), dcfg.val_fraction,
                                                              cfg.seed * 1000 + i)
    method = make_method(ocfg)
    if not any(r.role == "clean" for r in raws) and method.fixed_alpha == 1.0:  # a clean-only method
        raise ConfigError("config", "data.datasets", f"{ocfg.method} needs a clean dataset")

    annotations = read_annotations(ocfg.annotations) if ocfg.annotations else None
    if annotations is not None and annotations.spec != spec:
        raise ConfigError("config", "objective.annotations",
                          f"{ocfg.annotations} was made for windows {annotations.spec}, this config uses {spec}")

    normalizer = _run_normalizer(cfg, raws, annotations)
    sigma_data = cfg.diffusion.sigma_data or _measured_sigma_data(raws, normalizer)

    pools, val = {}, {}
    for role in ("clean", "corrupt"):
        members = [r for r in raws if r.role == role]
        if not members:
            continue
        pools[role] = _make_pool(role, members, spec, normalizer, cfg, method, annotations)
        for j, raw in enumerate(members):
            rows = pools[role].windows.select_episodes(
                raw.val_episodes + _episode_offset(members, j))
            if len(rows):
                rng = np.random.default_rng([cfg.seed, 0x7A1, j, role == "clean"])
                rows = np.sort(rng.choice(rows, size=min(cfg.run.val_windows, len(rows)), replace=False))
                val[raw.name] = (role, rows)

    n_clean = len(pools["clean"].train_rows) if "clean" in pools else 0
    corrupt_sigma_n = pools["corrupt"].sigma_n if "corrupt" in pools else np.zeros(0)
    natural, configured = _mixings(cfg, pools, annotations)
    mixing = method.mixing(natural, configured)
    formulation = make_formulation(cfg.diffusion, sigma_data)
    sampler = SourceSampler(n_clean, method.valid_above(corrupt_sigma_n), mixing, formulation.sample_sigma,
                            method.locality_sigma_max)
    alpha_natural = float(natural(np.ones(1), np.ones(1))[0])   # every corrupt window valid: plain cotraining
    alpha_target = mixing.value if mixing.kind == "constant" else alpha_natural if mixing.kind == "natural" else None
    visual = next((r.visual for r in raws if r.role == "clean" and r.visual), None)
    return TrainingData(spec, normalizer, sigma_data, pools, sampler, val, image_shapes, method, alpha_natural,
                        alpha_target, visual)


def fit_dataset_normalizer(raws: list[RawDataset], mode: str = "percentile") -> Normalizer:
    """harness.learning.normalizer.fit_normalizer on the training episodes of `raws` (all episodes of a freshly
    loaded dataset). percentile: observations of every dataset, actions of the clean ones (all when none is
    clean); limits: both over every dataset."""
    steps = [_episode_steps(raw.episode_ends, raw.train_episodes) for raw in raws]
    clean = [raw.action[s] for raw, s in zip(raws, steps) if raw.role == "clean"]
    return fit_normalizer(np.concatenate([raw.obs[s] for raw, s in zip(raws, steps)]),
                          np.concatenate(clean) if clean else None,
                          np.concatenate([raw.action[s] for raw, s in zip(raws, steps)]), mode)


def _measured_sigma_data(raws: list[RawDataset], normalizer: Normalizer) -> float:
    """EDM's sigma_data: the std of the normalized training actions of the distribution the policy must
    imitate, the clean data (all data when there are none), like the normalizer's action fit. Corrupt
    actions can lie far outside the clean range and would inflate it."""
    clean = [raw for raw in raws if raw.role == "clean"] or raws
    actions = np.concatenate([raw.action[_episode_steps(raw.episode_ends, raw.train_episodes)] for raw in clean])
    sigma_data = float(np.std(normalizer.action.normalize(actions)))
    if not sigma_data > 1e-6:   # a diffusion model of a constant has nothing to learn, and EDM divides by it
        raise UserError(f"{clean[0].name}: the training actions are constant (sigma_data {sigma_data:.3g}); "
                        "a policy needs demonstrations that move (or set diffusion.sigma_data)")
    return sigma_data


def _run_normalizer(cfg: TrainConfig, raws: list[RawDataset], annotations) -> Normalizer:
    """The given one (data.normalizer: a study's shared file), else fitted on this run's training episodes.

    Annotation sigmas are in the action units of the normalizer the classifier used: with a given file the
    two must agree (else every sigma_n would mean another noise); without one, the annotations' action part
    replaces the fitted one.
    """
    path, mode = cfg.data.normalizer, cfg.data.normalizer_mode
    if path:
        normalizer = load_normalizer(path)
        if normalizer.mode != mode:   # a file fitted one way, recorded as the other: the config would lie
            raise ConfigError("config", "data.normalizer_mode",
                              f"is {mode}, but {path} was fitted with mode {normalizer.mode}")
        if annotations is not None and not same_affine(normalizer.action,
                                                       Affine.from_state(annotations.action_normalizer)):
            raise ConfigError("config", "data.normalizer",
                              f"{path} and the annotations {cfg.objective.annotations} normalize actions "
                              "differently, so their sigma_n would be in other units; annotate with this normalizer")
        return normalizer
    normalizer = fit_dataset_normalizer(raws, mode)
    if annotations is not None:
        normalizer.action = Affine.from_state(annotations.action_normalizer)
    return normalizer


def _episode_steps(ends: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    starts = np.concatenate([[0], ends[:-1]])
    if len(episodes) == 0:
        return np.zeros(0, np.int64)
    return np.concatenate([np.arange(starts[e], ends[e]) for e in episodes])


def _episode_offset(members: list[RawDataset], j: int) -> int:
    return int(sum(len(m.episode_ends) for m in members[:j]))


def _make_pool(role, members, spec, normalizer, cfg, method: Method, annotations) -> Pool:
    ends, obs, act, img, names, dataset_of_window = [], [], [], [], [], []
    step_offset, ep_offset = 0, 0
    train_rows, sigma_n = [], []
    window_count = 0
    all_episode, all_t0 = [], []
    for raw in members:
        w = make_windows(raw.episode_ends, spec)
        rows = w.select_episodes(raw.train_episodes)
        if role == "corrupt" and method.needs_sigma_n:
            sigma_n.append(_corrupt_sigma_n(raw, w, rows, cfg, annotations))
        else:
            sigma_n.append(np.zeros(len(rows)))
        train_rows.append(rows + window_count)
        all_episode.append(w.episode + ep_offset)
        all_t0.append(w.t0)
        dataset_of_window.append(np.full(len(w), len(names)))
        ends.append(raw.episode_ends + step_offset)
        obs.append(normalizer.obs.normalize(raw.obs).astype(np.float32))
        act.append(normalizer.action.normalize(raw.action).astype(np.float32))
        img.append(raw.images)
        names.append(raw.name)
        step_offset += len(raw.obs)
        ep_offset += len(raw.episode_ends)
        window_count += len(w)
    windows = WindowIndex(spec, np.concatenate(ends), np.concatenate(all_episode), np.concatenate(all_t0))
    images = {key: np.concatenate([i[key] for i in img]) for key in img[0]}    # {camera key: (S, H, W, 3)}
    return Pool(role, np.concatenate(obs), np.concatenate(act), images, windows,
                np.concatenate(train_rows), np.concatenate(sigma_n), np.concatenate(dataset_of_window), names,
                sum(len(r.train_episodes) for r in members))


def _corrupt_sigma_n(raw: RawDataset, w: WindowIndex, rows: np.ndarray, cfg: TrainConfig, annotations):
    """sigma_n of the corrupt training windows `rows` of one dataset. One rule, no priorities: from
    objective.sigma_n when it is set (a number, or "annotations": per window), else from the dataset's own
    data.datasets[].sigma_n; setting both is an error."""
    ocfg = cfg.objective
    spec = next(s for s in cfg.data.datasets if s.path == raw.path)
    if ocfg.sigma_n is not None and spec.sigma_n is not None:
        raise ConfigError("config", "objective.sigma_n", f"and data.datasets[{raw.path}].sigma_n both set "
                          "the noise level of that dataset; set one")
    if ocfg.sigma_n == "annotations":
        ds = annotations.find(raw.path)
        if ds is None:
            raise ConfigError("config", "objective.annotations",
                              f"{ocfg.annotations} has no annotations for corrupt dataset {raw.path}")
        per_window = sigma_n_for_windows(ds, w.episode[rows], w.t0[rows], ocfg.annotations)
        return coarsened_sigma_n(per_window * ocfg.sigma_n_scale, ocfg.sigma_n_floor, ocfg.sigma_n_buckets)
    for name in ocfg.per_window_reshaping():
        raise ConfigError("config", f"objective.{name}", "sigma_n_scale, sigma_n_floor and sigma_n_buckets "
                          "reshape per-window sigma_n; they need objective.sigma_n: annotations")
    value = ocfg.sigma_n if ocfg.sigma_n is not None else spec.sigma_n
    if value is None:
        raise ConfigError("config", "objective.sigma_n",
                          f"method {ocfg.method} needs the noise level of corrupt dataset {raw.path}: a number, "
                          "'annotations' (per window), or data.datasets[].sigma_n")
    return np.full(len(rows), float(value))


def coarsened_sigma_n(sigma_n: np.ndarray, floor: float | None, buckets: int | None) -> np.ndarray:
    """Per-window sigma_n (N,) with the low-noise variants of docs/objectives.md section 15 applied.

    floor: no window below this level (per-datapoint sigma_n with a per-dataset minimum). buckets: the
    finite values sorted into K groups of (nearly) equal count, every window taking the largest value of its
    group, so a window is never used below its own level and the sigma_n = 0 windows share a positive
    level unless they fill a whole group. 'never' (inf) stays never."""
    out = np.asarray(sigma_n, np.float64).copy()
    finite = np.flatnonzero(np.isfinite(out))
    if buckets is not None and len(finite):
        order = finite[np.argsort(out[finite], kind="stable")]
        for group in np.array_split(order, min(buckets, len(order))):
            out[group] = out[group].max()
    if floor is not None:
        out = np.maximum(out, floor)
    return out


def _mixings(cfg: TrainConfig, pools: dict, annotations) -> tuple[Mixing, Mixing | None]:
    """(the natural alpha(sigma), the configured one or None); the method picks (methods.Method.mixing)."""
    ocfg = cfg.objective
    clean_eps = pools["clean"].train_episodes if "clean" in pools else 0
    corrupt_eps = pools["corrupt"].train_episodes if "corrupt" in pools else 0
    natural = Mixing(kind="natural", clean_episodes=clean_eps, corrupt_episodes=corrupt_eps)
    return natural, _configured_mixing(ocfg, annotations, clean_eps, corrupt_eps)


def _configured_mixing(ocfg, annotations, clean_eps: int, corrupt_eps: int) -> Mixing | None:
    if isinstance(ocfg.alpha_table, list):
        rows = np.asarray(ocfg.alpha_table, float)
        try:
            return Mixing.table(rows[:, 0], rows[:, 1])
        except ValueError as exc:
            raise ConfigError("config", "objective.alpha_table", str(exc)) from None
    if ocfg.alpha_table == "classifier":
        # Where the classifier still tells sim from clean (accuracy -> 1), use clean data only; where it
        # cannot (accuracy -> 0.5), fall back to the base mixing ratio.
        grid, acc = annotations.sigma_grid, annotations.accuracy
        keep = grid > 0
        base = ocfg.alpha if not isinstance(ocfg.alpha, str) else float(natural_alpha(clean_eps, corrupt_eps))
        distinguish = np.clip(2 * acc[keep] - 1, 0, 1)
        return Mixing.table(grid[keep], base + (1 - base) * distinguish)
    if ocfg.alpha == "natural_all":   # plain cotraining's ratio, held at every sigma
        return Mixing(kind="constant", value=float(natural_alpha(clean_eps, corrupt_eps)))
    if isinstance(ocfg.alpha, str):
        return None
    return Mixing(kind="constant", value=float(ocfg.alpha))
