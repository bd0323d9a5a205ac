"""The noise-level classifier and `annotate`: at which noise level does sim stop looking like clean data?

A classifier c(x_sigma, sigma, obs) -> P(corrupt) is trained on action chunks of both kinds, noised to
every level (x_sigma = x + sigma z, sigma = 0 included), with balanced batches. Its held-out balanced
accuracy against sigma is the "how far apart are the two action distributions at this scale" curve.
Every corrupt window then gets sigma_n: the smallest grid sigma where the classifier's mean P(corrupt) over
K noise draws, calibrated on held-out windows and smoothed along the grid, falls to <= 0.5 + eps, i.e. noise
at that level has made the window look clean (the rules: harness/learning/sigma_n_rule.py). The trainer uses it as
the window's sigma_n (`objective.sigma_n: annotations`); each corrupt dataset also gets one sigma_n from its
held-out accuracy curve (`sigma_n: per_dataset` in a study).

`annotate` writes numbers only (the store); the figures and their CSVs are drawn from the store by
`eval.plots.plot_annotations` (`cotrain annotate`, the study), the one home of every plot.

Conditioning on obs (use_obs: true) is off by default: when the observations alone give the domain away,
P(corrupt) does not fall at any sigma (on 50 teleop + 500 GCS demos: 50-56% of windows "never", against
15-18% from the action chunk alone; benchmarks/annotate_k_draws.py), and a cross-fitted classifier that
can read episodes from their states anti-learns (docs/objectives.md section 6).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from harness.core.configs import added_keys, check_bounds, free_keys, key, to_dict
from harness.core.errors import ConfigError, UserError
from harness.core.identity import check_same_identity, register_added_keys
from harness.core.locks import check_writable, hold_output_lock
from harness.learning.annotations import AnnotatedDataset, Annotations, write_annotations
from harness.learning.device import resolve_device
from harness.learning.network import FiLMResBlock, NoiseEmbedding
from harness.learning.normalizer import load_normalizer, Normalizer
from harness.learning.windows import ACTION_DIM, make_windows, OBS_DIM, WindowSpec
from harness.learning.sigma_n_rule import (annotation_warnings, apply_calibration, balanced_accuracy, dataset_sigma_n,
                                  fit_calibration, identity_calibration, sigma_n_from_p, sigma_n_stats,
                                  smoothed_at)
from harness.learning.train_config import DatasetSpec
from harness.learning.training_data import fit_dataset_normalizer, load_dataset
from harness.learning.annotations import read_annotations

# Classifier input: the noise level enters as ln(max(sigma, floor)) so that sigma = 0 is a finite input.
_SIGMA_FLOOR = 1e-3


@dataclasses.dataclass
class AnnotateConfig:
    n_obs: int = key(2, doc="must match the trainer's data.n_obs")
    horizon: int = key(16, doc="must match the trainer's data.horizon")
    n_action: int = key(8, doc="must match the trainer's data.n_action")
    use_obs: bool = key(False, doc="also condition on the observation history (see the module docstring)")
    widths: list[int] = key(factory=lambda: [32, 64], doc="conv widths")
    noise_dim: int = key(32, doc="noise-level embedding width")
    steps: int = key(3000, bound=(1, None), doc="optimizer steps")
    batch_size: int = key(256, doc="half clean, half corrupt")
    lr: float = key(1e-3, doc="AdamW learning rate")
    weight_decay: float = key(1e-4, doc="AdamW weight decay")
    n_folds: int = key(2, doc="cross-fitting: each window is scored by a classifier not trained on it")
    val_windows: int = key(2000, doc="held-out windows per class for the accuracy curve")
    sigma_lo: float = key(0.005, doc="smallest nonzero grid sigma (normalized action units)")
    sigma_hi: float = key(5.0, doc="largest grid sigma")
    grid_size: int = key(32, bound=(1, None), doc="nonzero grid points (log-spaced); sigma = 0 is added in front")
    p_zero: float = key(0.1, doc="fraction of training samples at sigma = 0")
    k_draws: int = key(16, bound=(1, None), doc="noise draws per window (common to all sigmas); "
                       "benchmarks/annotate_k_draws.py")
    eps: float = key(0.05, doc="sigma_n: first grid sigma where mean P(corrupt) <= 0.5 + eps")
    smooth: int = key(3, doc="moving average of P(corrupt) over this many neighbouring grid sigmas")
    calibrate: bool = key(True, doc="per fold and sigma, calibrate P(corrupt) on held-out windows (b >= 0)")
    accuracy_tol: float = key(0.03, doc="per-dataset sigma_n: first sigma where held-out accuracy <= 0.5 + tol")
    normalizer: str | None = key(None, doc="normalizer JSON (a study's shared one); null = fit on these data")
    annotate_batch: int = key(4096, bound=(1, None), doc="windows per forward pass when annotating")
    search: Literal["bracket", "crossing", "full"] = key("bracket", since=21, was="full", doc="where each window "
                                    "is scored: full: at every grid sigma; crossing: up the grid only until its "
                                    "sigma_n is decided (the same answer); bracket: a coarse pass first, then the "
                                    "crossing scan from just below its bracket (benchmarks/annotate_speed.py)")
    bracket_stride: int = key(4, bound=(1, None), doc="bracket: the coarse pass scores every stride-th grid sigma")
    bracket_draws: int = key(4, bound=(1, None), doc="bracket: the coarse pass scores this many of the k_draws noise "
                             "draws (all if fewer)")
    bracket_margin: float = key(0.04, doc="bracket: the coarse pass stops a window where its P falls to "
                                "0.5 + eps + margin")
    seed: int = key(0, bound=(0, None), doc="everything random derives from this")
    device: str = key("auto", doc="auto | cpu | cuda")
    progress: bool = key(True, free=True, doc="tqdm progress bars")

    def __post_init__(self):
        WindowSpec(self.n_obs, self.horizon, self.n_action)
        if not 0 < self.sigma_lo < self.sigma_hi:
            raise ValueError("need 0 < sigma_lo < sigma_hi")
        if not 0 <= self.eps < 0.5:
            raise ValueError("eps must be in [0, 0.5)")
        if self.n_folds < 2:
            raise ValueError("n_folds must be >= 2 (windows are scored by a classifier that did not see them)")

        def require(ok, key, what):
            if not ok:
                raise ValueError(f"{key} must be {what}, got {getattr(self, key)!r}")
        require(len(self.widths) >= 1 and all(w >= 1 for w in self.widths), "widths",
                "a non-empty list of widths >= 1")
        require(self.noise_dim >= 2 and self.noise_dim % 2 == 0, "noise_dim", "an even number >= 2")
        check_bounds(self)   # steps, grid_size, k_draws, annotate_batch, bracket_stride, bracket_draws, seed
        require(self.batch_size >= 2, "batch_size", ">= 2 (half clean, half corrupt)")
        require(0 < self.lr < float("inf"), "lr", "> 0")
        require(0 <= self.weight_decay < float("inf"), "weight_decay", ">= 0")
        require(self.val_windows >= self.n_folds, "val_windows", f">= n_folds ({self.n_folds})")
        require(0 <= self.p_zero < 1, "p_zero", "in [0, 1)")
        require(self.smooth >= 1 and self.smooth % 2 == 1, "smooth", "an odd number >= 1 (1 = no smoothing)")
        require(0 <= self.accuracy_tol < 0.5, "accuracy_tol", "in [0, 0.5)")
        require(self.search in ("bracket", "crossing", "full"), "search", "bracket, crossing or full")
        require(0 <= self.bracket_margin < 0.5, "bracket_margin", "in [0, 0.5)")
        require(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "device",
                "auto, cpu, cuda or cuda:N")

    def sigma_grid(self) -> np.ndarray:
        return np.concatenate([[0.0], np.geomspace(self.sigma_lo, self.sigma_hi, self.grid_size)])


class NoiseLevelClassifier(nn.Module):
    """Logit of P(corrupt | x_sigma, sigma, obs); x_sigma (B, T, 2), sigma (B,), obs (B, n_obs, 6)."""

    def __init__(self, n_obs: int, sigma_data: float, widths=(32, 64), noise_dim: int = 32, use_obs: bool = True):
        super().__init__()
        self.sigma_data, self.use_obs = float(sigma_data), use_obs
        self.noise_emb = NoiseEmbedding(noise_dim)
        film = noise_dim + (n_obs * OBS_DIM if use_obs else 0)
        dims = [ACTION_DIM, *widths]
        self.blocks = nn.ModuleList(FiLMResBlock(a, b, film, 5, 8) for a, b in zip(dims[:-1], dims[1:]))
        self.head = nn.Sequential(nn.Linear(widths[-1], widths[-1]), nn.Mish(), nn.Linear(widths[-1], 1))

    def forward(self, x_sigma, sigma, obs):
        sigma = sigma.float()
        scale = (sigma ** 2 + self.sigma_data ** 2).rsqrt()[:, None, None]   # unit-variance input
        c_noise = sigma.clamp_min(_SIGMA_FLOOR).log() / 4
        cond = self.noise_emb(c_noise)
        if self.use_obs:
            cond = torch.cat([cond, obs.flatten(1)], dim=-1)
        h = (x_sigma * scale).transpose(1, 2)  # (B, 2, T)
        for block in self.blocks:
            h = block(h, cond)
        return self.head(h.mean(dim=2)).squeeze(-1)  # (B,)


@dataclasses.dataclass
class _Windows:
    """Normalized windows of one class: obs (N, n_obs, 6), action (N, T, 2)."""
    obs: np.ndarray
    action: np.ndarray


def dataset_spec(item, role: str) -> DatasetSpec:
    """A store path, or {"path", "max_episodes"} / a DatasetSpec to use only its first N episodes."""
    if isinstance(item, DatasetSpec):
        return dataclasses.replace(item, role=role)
    if isinstance(item, dict):
        return DatasetSpec(str(item["path"]), role=role, max_episodes=item.get("max_episodes"))
    return DatasetSpec(str(item), role=role)


def _load(items, role: str, cfg: AnnotateConfig) -> tuple[list, list[np.ndarray]]:
    """Datasets of one class and, per dataset, the cross-fitting fold of every episode."""
    specs = [dataset_spec(item, role) for item in items]
    raws = [load_dataset(spec, [], Path(spec.path).stem) for spec in specs]
    folds = []
    for i, raw in enumerate(raws):
        perm = np.random.default_rng([cfg.seed, i, role == "clean"]).permutation(len(raw.episode_ends))
        fold = np.empty(len(perm), np.int64)
        fold[perm] = np.arange(len(perm)) % cfg.n_folds
        folds.append(fold)
    if sum(len(f) for f in folds) < cfg.n_folds:
        raise ConfigError("annotate", "n_folds", f"the {role} data have fewer episodes than n_folds={cfg.n_folds}")
    return raws, folds


def _windows(raws, spec, normalizer, episodes: list[np.ndarray]) -> _Windows:
    """Normalized windows of the given episodes (one array of episode ids per dataset)."""
    obs, act = [np.zeros((0, spec.n_obs, OBS_DIM), np.float32)], [np.zeros((0, spec.horizon, ACTION_DIM), np.float32)]
    for raw, eps in zip(raws, episodes):
        w = make_windows(raw.episode_ends, spec)
        steps = w.steps(w.select_episodes(eps))
        obs.append(normalizer.obs.normalize(raw.obs)[steps[:, : spec.n_obs]])
        act.append(normalizer.action.normalize(raw.action)[steps])
    return _Windows(np.concatenate(obs).astype(np.float32), np.concatenate(act).astype(np.float32))


def train_classifier(clean: _Windows, corrupt: _Windows, cfg: AnnotateConfig, sigma_data: float,
                     device) -> NoiseLevelClassifier:
    """Balanced batches, sigma = 0 with prob p_zero else log-uniform on [sigma_lo, sigma_hi], BCE."""
    torch.manual_seed(cfg.seed)
    model = NoiseLevelClassifier(cfg.n_obs, sigma_data, cfg.widths, cfg.noise_dim, cfg.use_obs).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    rng = np.random.default_rng([cfg.seed, 0xC1A])
    gen = torch.Generator().manual_seed(cfg.seed)
    half = cfg.batch_size // 2
    steps = range(cfg.steps)
    if cfg.progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="classifier", dynamic_ncols=True)
    for _ in steps:
        ic = rng.integers(0, len(clean.action), half)
        ir = rng.integers(0, len(corrupt.action), half)
        x = torch.from_numpy(np.concatenate([clean.action[ic], corrupt.action[ir]])).to(device)
        obs = torch.from_numpy(np.concatenate([clean.obs[ic], corrupt.obs[ir]])).to(device)
        label = torch.cat([torch.zeros(half), torch.ones(half)]).to(device)
        sigma = np.exp(rng.uniform(np.log(cfg.sigma_lo), np.log(cfg.sigma_hi), 2 * half))
        sigma[rng.random(2 * half) < cfg.p_zero] = 0.0
        sigma_t = torch.from_numpy(sigma.astype(np.float32)).to(device)
        x_sigma = x + sigma_t[:, None, None] * torch.randn(x.shape, generator=gen).to(device)
        loss = nn.functional.binary_cross_entropy_with_logits(model(x_sigma, sigma_t, obs), label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if cfg.progress:
            steps.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


@torch.no_grad()
def mean_p_corrupt(model, w: _Windows, grid: np.ndarray, k_draws: int, batch: int, device, seed: int,
                   progress: bool = False) -> np.ndarray:
    """(N, G): mean over k_draws noise draws of P(corrupt) for every window at every grid sigma.

    Common random numbers: draw k of a window is x + sigma * z_k with the same z_k at every sigma, so each
    draw's P(sigma) is a smooth curve and the sigma_n search is not thrown early by independent dips at
    neighbouring grid points (benchmarks/annotate_k_draws.py measures the effect)."""
    return mean_p_of_rows(model, w, np.arange(len(w.action)), grid, k_draws, batch, device, seed, progress)


@torch.no_grad()
def mean_p_of_rows(model, w: _Windows, rows: np.ndarray, grid: np.ndarray, k_draws: int, batch: int, device,
                   seed: int, progress: bool = False) -> np.ndarray:
    """(len(rows), G): the rows of `mean_p_corrupt(model, w, ...)` for the windows `rows` (increasing),
    with the same noise draws (the draws of every batch are made; only those rows are scored)."""
    out = np.zeros((len(rows), len(grid)), np.float32)
    for s, draws in _batches(model, w, k_draws, batch, device, seed, progress):
        lo, hi = np.searchsorted(rows, [s, s + draws.n])
        if hi > lo:
            for j, sig in enumerate(grid):
                out[lo:hi, j] = draws.mean_p(float(sig), rows[lo:hi] - s)
    return out


@torch.no_grad()
def scan_to_crossing(model, w: _Windows, grid: np.ndarray, k_draws: int, batch: int, device, seed: int,
                     calibration: np.ndarray, eps: float, smooth: int, bracket: tuple[int, int, float] | None = None,
                     progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """sigma_n (N,) by the rule of `sigma_n_from_p`, and the calibrated mean P(corrupt) (N, G) it read
    (NaN at the sigmas it did not need), scoring each window only where the rule looks.

    The rule takes the first grid index m where the smoothed calibrated P is <= 0.5 + eps; the smoothed
    value at m reads the columns m - h .. m + h (h = smooth // 2). So a window is scored at increasing
    sigma and dropped once a value at or below the level is complete (a window that never falls is scored
    everywhere). Without `bracket` this is exactly the rule on the full matrix: the noise draws are those
    of `mean_p_corrupt` with the same seed, the numbers the same up to the float round-off of smaller
    batches. bracket (stride, draws, margin): first a coarse pass up every stride-th sigma with the first
    `draws` noise draws finds where each window's (unsmoothed) P falls to the level + margin; the exact
    scan then starts 2h columns below the last coarse sigma still above that. Faster; a crossing hidden between coarse
    sigmas below that start is missed (docs/objectives.md section 6 measures how often)."""
    level, half, n_grid = 0.5 + eps, smooth // 2, len(grid)
    p_all = np.full((len(w.action), n_grid), np.nan, np.float32)
    sigma_n = np.full(len(w.action), np.inf)

    for s, draws in _batches(model, w, k_draws, batch, device, seed, progress):
        p, out = p_all[s: s + draws.n], sigma_n[s: s + draws.n]                    # (B, G), (B,) views

        def score(j, rows, k=None):   # calibrated mean P at grid column j of the rows
            raw = draws.mean_p(float(grid[j]), rows, k)
            return apply_calibration(raw[:, None], calibration[j: j + 1])[:, 0]

        p[:, 0] = score(0, np.arange(draws.n))                                     # sigma = 0: one pass
        undecided = p[:, 0] > level
        out[~undecided] = 0.0
        first = np.ones(draws.n, np.int64)                   # the first column each window is scored at
        if bracket is not None:
            stride, k, margin = bracket
            first = _bracket_start(score, undecided.copy(), range(stride, n_grid, stride), k, level + margin,
                                   half, n_grid)
        decide_from = np.where(first > 1, first + half, 1)  # where the smoothed value is complete
        for j in range(1, n_grid):
            rows = np.flatnonzero(undecided & (first <= j))
            if len(rows):
                p[rows, j] = score(j, rows)
            for m in range(j - half, n_grid if j == n_grid - 1 else j - half + 1):   # + the end windows
                rows = np.flatnonzero(undecided & (decide_from <= m)) if m >= 1 else []
                if len(rows):
                    hit = rows[smoothed_at(p[rows], m, smooth) <= level]
                    out[hit], undecided[hit] = grid[m], False
            if not undecided.any():
                break
    return sigma_n, p_all


def _bracket_start(score, open_: np.ndarray, coarse, draws: int, level: float, half: int, n_grid: int) -> np.ndarray:
    """Per window, the column where the exact scan starts: 2 * half below the last coarse column whose
    P (from `draws` noise draws, unsmoothed) is still above the level; 1 if the first one is not."""
    last_above = np.ones(len(open_), np.int64)
    for c in coarse:
        rows = np.flatnonzero(open_)
        if not len(rows):
            break
        above = score(c, rows, draws) > level
        last_above[rows[above]] = c
        open_[rows[~above]] = False
    return np.clip(last_above - 2 * half, 1, max(n_grid - 1 - 2 * half, 1))


def _batches(model, w: _Windows, k_draws: int, batch: int, device, seed: int, progress: bool):
    """(start, _Draws) for consecutive batches of `batch` windows; the draws are a function of the seed
    and the batch size only, so every pass over `w` with them sees the same noise."""
    gen = torch.Generator().manual_seed(seed)
    starts = range(0, len(w.action), batch)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc="annotate", dynamic_ncols=True)
    for s in starts:
        yield s, _Draws(model, w, s, batch, k_draws, gen, device)


class _Draws:
    """One batch of windows and its k noise draws z_k (common to every sigma), scored on demand."""

    def __init__(self, model, w: _Windows, start: int, batch: int, k_draws: int, gen, device):
        self.model, self.device = model, device
        self.x = torch.from_numpy(w.action[start: start + batch]).to(device)             # (B, T, 2)
        self.obs = torch.from_numpy(w.obs[start: start + batch]).to(device)             # (B, n_obs, 6)
        self.n = len(self.x)
        self.z = [torch.randn(self.x.shape, generator=gen).to(device) for _ in range(k_draws)]  # k x (B, T, 2)

    def mean_p(self, sig: float, rows: np.ndarray, k: int | None = None) -> np.ndarray:
        """(R,) mean over the first k draws (all: None) of P(corrupt) of rows `rows` at noise level sig
        (one pass at sigma 0)."""
        every = len(rows) == self.n
        idx = torch.from_numpy(rows).to(self.device)
        x, obs = (self.x, self.obs) if every else (self.x[idx], self.obs[idx])
        sigma = torch.full((len(idx),), sig, device=self.device)
        if sig == 0:
            return torch.sigmoid(self.model(x, sigma, obs)).cpu().numpy()
        zs = self.z[:k]
        p = sum(torch.sigmoid(self.model(x + sig * (z if every else z[idx]), sigma, obs)) for z in zs)
        return (p / len(zs)).cpu().numpy()


def _unsort(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rows computed in the order `order` put back in the original order."""
    out = np.empty_like(values)
    out[order] = values
    return out


def annotate(clean_paths, corrupt_paths, out, cfg: AnnotateConfig | None = None) -> Path:
    """Train the classifier and write the annotations store `out` (numbers only; eval.plots draws them).

    clean_paths / corrupt_paths: store paths, or {"path", "max_episodes"} to use the first N episodes.

    Cross-fitting: episodes are split into n_folds folds; for each fold a classifier is trained on the
    other folds and scores this fold's windows (accuracy curve and sigma_n). A classifier scoring the
    windows it was trained on would recognise them (by their observations, say) at any noise level.
    Each fold's scores are then calibrated on that fold's held-out windows (harness/learning/sigma_n_rule.py).
    """
    cfg = cfg or AnnotateConfig()
    if not clean_paths or not corrupt_paths:
        raise ConfigError("annotate", "--clean/--corrupt", "need at least one clean and one corrupt store")
    out = Path(out)

    def reused() -> bool:   # only ever an annotations store made from the same data and settings: reused as is
        if out.exists():
            check_same_identity(existing_annotation_identity(out),
                                annotation_identity(clean_paths, corrupt_paths, cfg), ANNOTATE_FREE_KEYS, out)
        return out.exists()

    if reused():
        return out
    check_writable(out)   # before minutes of training, not after
    with hold_output_lock(out, "annotations store"):   # a second annotate of `out` is refused meanwhile
        return out if reused() else _annotate_new(clean_paths, corrupt_paths, out, cfg)


def _annotate_new(clean_paths, corrupt_paths, out: Path, cfg: AnnotateConfig) -> Path:
    """`annotate` for an output that does not exist yet (its lock held)."""
    data = load_annotate_data(clean_paths, corrupt_paths, cfg)
    spec, device, normalizer, sigma_data = data.spec, data.device, data.normalizer, data.sigma_data
    clean_raws, clean_folds, corrupt_raws, corrupt_folds = data.clean, data.clean_folds, data.corrupt, data.corrupt_folds
    grid = cfg.sigma_grid()
    rng = np.random.default_rng([cfg.seed, 0xAC])

    windows = [make_windows(raw.episode_ends, spec) for raw in corrupt_raws]
    fold_of = [fold[w.episode] for fold, w in zip(corrupt_folds, windows)]     # per window: its fold
    p_corrupt = [np.zeros((len(w), len(grid)), np.float32) for w in windows]  # calibrated mean P(corrupt)
    sigma_n = [np.zeros(len(w)) for w in windows]                             # the rule's answer per window
    val_clean, val_corrupt = [], [[] for _ in corrupt_raws]                   # calibrated, held out
    folds = []
    for f in range(cfg.n_folds):
        def episodes(fold_ids, in_fold):
            return [np.flatnonzero((fold == f) == in_fold) for fold in fold_ids]
        model = train_classifier(_windows(clean_raws, spec, normalizer, episodes(clean_folds, False)),
                                 _windows(corrupt_raws, spec, normalizer, episodes(corrupt_folds, False)),
                                 dataclasses.replace(cfg, seed=cfg.seed * 100 + f), sigma_data, device)
        n_val = max(cfg.val_windows // cfg.n_folds, 1)
        fold_w = [_windows([r], spec, normalizer, [np.flatnonzero(corrupt_folds[i] == f)]) for i, r in enumerate(corrupt_raws)]
        # held out for calibration and the accuracy curve: a random subset of this fold's clean windows and
        # of each corrupt dataset's windows, scored at every grid sigma (k_draws noise draws per sigma)
        clean_w = _windows(clean_raws, spec, normalizer, episodes(clean_folds, True))
        keep = rng.choice(len(clean_w.action), size=min(n_val, len(clean_w.action)), replace=False)
        raw_clean = mean_p_corrupt(model, _Windows(clean_w.obs[keep], clean_w.action[keep]), grid, cfg.k_draws,
                                   cfg.annotate_batch, device, cfg.seed + 1 + f)
        val_rows = [rng.choice(len(w.action), size=min(n_val, len(w.action)), replace=False) for w in fold_w]
        seeds = [cfg.seed + 1000 * (f + 1) + i for i in range(len(corrupt_raws))]
        if cfg.search == "full":   # every window of the fold at every sigma; the held-out ones among them
            raw = [mean_p_corrupt(model, w, grid, cfg.k_draws, cfg.annotate_batch, device, seed, cfg.progress)
                   for w, seed in zip(fold_w, seeds)]
            raw_val = [p[rows] for p, rows in zip(raw, val_rows)]
        else:                      # the held-out ones (same draws) at every sigma, the rest up to their crossing
            order = [np.argsort(rows) for rows in val_rows]   # mean_p_of_rows takes them in increasing order
            raw_val = [_unsort(mean_p_of_rows(model, w, rows[o], grid, cfg.k_draws, cfg.annotate_batch, device, seed), o)
                       for w, rows, o, seed in zip(fold_w, val_rows, order, seeds)]
        calibration = fit_calibration(raw_clean, np.concatenate(raw_val)) if cfg.calibrate \
            else identity_calibration(len(grid))
        for i, (w, seed) in enumerate(zip(fold_w, seeds)):
            rows = fold_of[i] == f
            if cfg.search == "full":
                p_corrupt[i][rows] = apply_calibration(raw[i], calibration)
                sigma_n[i][rows] = sigma_n_from_p(p_corrupt[i][rows], grid, cfg.eps, cfg.smooth)
            else:
                bracket = (cfg.bracket_stride, min(cfg.bracket_draws, cfg.k_draws), cfg.bracket_margin) if cfg.search == "bracket" else None
                sigma_n[i][rows], p_corrupt[i][rows] = scan_to_crossing(
                    model, w, grid, cfg.k_draws, cfg.annotate_batch, device, seed, calibration, cfg.eps,
                    cfg.smooth, bracket, cfg.progress)
            val_corrupt[i].append(apply_calibration(raw_val[i], calibration))
        raw_val = np.concatenate(raw_val)
        val_clean.append(apply_calibration(raw_clean, calibration))
        folds.append({"fold": f, "val_clean": int(len(raw_clean)), "val_corrupt": int(len(raw_val)),
                      "accuracy_raw": balanced_accuracy(raw_clean, raw_val)[0].tolist(),
                      "accuracy": balanced_accuracy(val_clean[-1], np.concatenate([v[-1] for v in val_corrupt]))[0]
                      .tolist(), "calibration": calibration.tolist()})

    clean_val = np.concatenate(val_clean)
    corrupt_val = [np.concatenate(v) for v in val_corrupt]
    accuracy, acc_clean, acc_corrupt = balanced_accuracy(clean_val, np.concatenate(corrupt_val))
    for record in folds:   # does every fold give the same answer?
        record.update(sigma_n_stats(np.concatenate([s[fo == record["fold"]] for s, fo in zip(sigma_n, fold_of)])))
    datasets = []
    for raw, w, p, s, fo, val in zip(corrupt_raws, windows, p_corrupt, sigma_n, fold_of, corrupt_val):
        acc = balanced_accuracy(clean_val, val)[0]
        datasets.append(AnnotatedDataset(str(Path(raw.path).resolve()), len(raw.episode_ends), w.episode, w.t0,
                                         s, p, fold=fo, accuracy=acc,
                                         sigma_n_dataset=dataset_sigma_n(acc, grid, cfg.accuracy_tol, cfg.smooth)))
    ann = Annotations(spec, grid, accuracy, datasets, normalizer.action.state(),
                      {"eps": cfg.eps, "k_draws": cfg.k_draws, "smooth": cfg.smooth, "accuracy_tol": cfg.accuracy_tol,
                       **annotation_identity(clean_paths, corrupt_paths, cfg),
                       "sigma_data": sigma_data,
                       "accuracy_clean": [float(a) for a in acc_clean],
                       "accuracy_corrupt": [float(a) for a in acc_corrupt],
                       "folds": folds})
    write_annotations(out, ann)
    return out


@dataclasses.dataclass
class AnnotateData:
    """What annotate (and its benchmarks) start from: both classes' datasets with each episode's
    cross-fitting fold, the normalizer, and sigma_data of the normalized actions."""
    spec: WindowSpec
    device: torch.device
    clean: list
    clean_folds: list[np.ndarray]
    corrupt: list
    corrupt_folds: list[np.ndarray]
    normalizer: Normalizer
    sigma_data: float


def load_annotate_data(clean_paths, corrupt_paths, cfg: AnnotateConfig) -> AnnotateData:
    clean_raws, clean_folds = _load(clean_paths, "clean", cfg)
    corrupt_raws, corrupt_folds = _load(corrupt_paths, "corrupt", cfg)
    normalizer = _normalizer(cfg, clean_raws, corrupt_raws)
    sigma_data = float(np.std(np.concatenate([normalizer.action.normalize(r.action)
                                              for r in clean_raws + corrupt_raws])))
    return AnnotateData(WindowSpec(cfg.n_obs, cfg.horizon, cfg.n_action), resolve_device(cfg.device),
                        clean_raws, clean_folds, corrupt_raws, corrupt_folds, normalizer, sigma_data)


def _normalizer(cfg: AnnotateConfig, clean_raws, corrupt_raws) -> Normalizer:
    """The study's shared normalizer when given, else one fitted on these data as the trainer fits its own."""
    if cfg.normalizer is not None:
        return load_normalizer(cfg.normalizer)
    return fit_dataset_normalizer(clean_raws + corrupt_raws)

# An annotations store records its AnnotateConfig under "config" (annotation_identity): the settings that may
# change between sessions without changing the annotations, and the keys added since stores were first made.
ANNOTATE_FREE_KEYS = free_keys(AnnotateConfig, "config")
register_added_keys(added_keys(AnnotateConfig, "config"))


def annotation_identity(clean_paths, corrupt_paths, cfg: AnnotateConfig) -> dict:
    """What makes an annotations store: its config and the data (stores and episode counts) it was made from."""
    return {"config": to_dict(cfg), "clean_paths": [dataset_identity(p, "clean") for p in clean_paths],
            "corrupt_paths": [dataset_identity(p, "corrupt") for p in corrupt_paths]}


def existing_annotation_identity(out: Path) -> dict:
    """The identity recorded in an annotations store; anything else at `out` is refused (not ours)."""
    try:
        attrs = read_annotations(out).attrs
    except UserError:
        raise UserError(f"{out}: exists and is not an annotations store; choose another --out") from None
    return {k: attrs.get(k) for k in ("config", "clean_paths", "corrupt_paths")}


def dataset_identity(item, role: str) -> dict:
    """What the annotations were made from: a store and how many of its episodes."""
    spec = dataset_spec(item, role)
    return {"path": str(Path(spec.path).resolve()), "max_episodes": spec.max_episodes}


def annotation_summary(ann) -> list[str]:
    """What `cotrain annotate` prints: sigma_n per dataset (per-window histogram and the per-dataset value),
    the per-fold agreement and calibration, and a WARNING line per reason not to trust the estimate."""
    grid = ann.sigma_grid
    lines = []
    for ds in ann.datasets:
        lines.append(f"dataset {ds.path}: per-dataset sigma_n {ds.sigma_n_dataset:.4g}"
                     if ds.sigma_n_dataset is not None else f"dataset {ds.path}")
        lines += ["  " + line for line in sigma_n_summary(ds.sigma_n, grid)]
    for f in ann.attrs.get("folds", []):
        raw = np.asarray(f["accuracy_raw"])
        lines.append(f"fold {f['fold']}: median sigma_n {f['median']:.4g}, never {f['never']:.1%}, zero {f['zero']:.1%}; "
                     f"held-out accuracy at sigma 0 {f['accuracy'][0]:.3f}, raw minimum {raw.min():.3f} "
                     f"(at sigma {grid[int(np.argmin(raw))]:.3g}; {f['val_clean']} + {f['val_corrupt']} windows)")
    lines += annotation_warnings(ann.attrs.get("folds", []), grid, ann.accuracy)
    return lines


def sigma_n_summary(sigma_n: np.ndarray, grid: np.ndarray) -> list[str]:
    """Text histogram of sigma_n over grid values (plus 'never'), and the fraction at 0."""
    lines = [f"windows {len(sigma_n)}   sigma_n = 0: {np.mean(sigma_n == 0):.1%}   "
             f"never (inf): {np.mean(np.isinf(sigma_n)):.1%}   median {np.median(sigma_n):.4g}"]
    values, counts = np.unique(sigma_n, return_counts=True)
    for v, c in zip(values, counts):
        lines.append(f"  sigma_n {v:>9.4g}  {c:>8d}  {'#' * int(round(40 * c / len(sigma_n)))}")
    return lines
