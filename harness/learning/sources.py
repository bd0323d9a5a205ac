"""The sigma-first source sampler shared by all methods.

For every sample of a batch: draw the noise level sigma first (the formulation's draw: log-normal under
EDM, sigma(t) of a uniform timestep t under DDPM), then a source among those
valid at that sigma. Clean windows are valid at every sigma. Corrupt window i is valid when
sigma > valid_above_i (the method decides: cotrain 0, truncated / ambient buffer * sigma_n_i, target_only
never; harness/learning/methods.py), or, with the locality option, when sigma < locality_sigma_max. Given sigma, the sample is clean with probability
alpha(sigma) if any corrupt window is valid there (else it is clean), and a corrupt sample is a uniformly
drawn valid corrupt window. alpha(sigma) is a constant, a table interpolated in log sigma, or the "natural"
ratio by episodes among the sources valid at sigma: E_clean / (E_clean + E_corrupt * f(sigma)), f(sigma)
the fraction of corrupt windows valid at sigma (= E_clean / (E_clean + E_corrupt) for plain cotraining).

Everything here is numpy with an explicit Generator, so the sampler state is one `bit_generator.state`
that the checkpoint saves.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np


def natural_alpha(clean_episodes: int, corrupt_episodes: int, valid_fraction=1.0):
    """Plain cotraining's clean share: clean episodes over all episodes whose windows are valid at a sigma
    (valid_fraction of the corrupt ones; 1 = every corrupt window, the dataset ratio). The one formula of it."""
    corrupt = corrupt_episodes * np.asarray(valid_fraction, float)
    return clean_episodes / np.maximum(clean_episodes + corrupt, 1e-12) if clean_episodes + corrupt_episodes else 0.0


@dataclasses.dataclass
class Mixing:
    """alpha(sigma) = P(clean | sigma, some corrupt window valid at sigma)."""
    kind: str = "constant"                  # "constant" | "table" | "natural"
    value: float = 1.0                      # constant alpha
    table_sigma: np.ndarray | None = None   # (K,) increasing sigmas of the table
    table_alpha: np.ndarray | None = None   # (K,) alpha at those sigmas (clamped outside)
    clean_episodes: int = 0                 # for "natural"
    corrupt_episodes: int = 0

    @classmethod
    def table(cls, sigma, alpha) -> "Mixing":
        sigma, alpha = np.asarray(sigma, float), np.asarray(alpha, float)
        order = np.argsort(sigma)
        if len(sigma) == 0 or np.any(sigma <= 0) or np.any((alpha < 0) | (alpha > 1)):
            raise ValueError("alpha table needs sigma > 0 and 0 <= alpha <= 1")
        return cls(kind="table", table_sigma=sigma[order], table_alpha=alpha[order])

    def __call__(self, sigma: np.ndarray, valid_fraction: np.ndarray) -> np.ndarray:
        sigma = np.asarray(sigma, float)
        if self.kind == "constant":
            return np.full(sigma.shape, float(self.value))
        if self.kind == "table":
            return np.interp(np.log(sigma), np.log(self.table_sigma), self.table_alpha)
        if self.kind == "natural":
            return natural_alpha(self.clean_episodes, self.corrupt_episodes, valid_fraction)
        raise ValueError(f"unknown mixing kind {self.kind!r}")


@dataclasses.dataclass
class Draw:
    sigma: np.ndarray       # (B,) float64
    corrupt: np.ndarray     # (B,) bool
    index: np.ndarray       # (B,) int64 row in the clean pool or in the corrupt pool


class SourceSampler:
    def __init__(self, n_clean: int, corrupt_valid_above: np.ndarray, mixing: Mixing,
                 sample_sigma: Callable[[int, np.random.Generator], np.ndarray],
                 locality_sigma_max: float | None = None):
        """n_clean: clean windows; corrupt_valid_above (N,): per corrupt window, the sigma above which it
        may be drawn (0 = at every sigma; inf = never, e.g. the classifier never stopped telling it apart);
        sample_sigma(n, rng): the formulation's training noise levels (EDM.sample_sigma, DDPM.sample_sigma)."""
        self.n_clean = int(n_clean)
        above = np.asarray(corrupt_valid_above, dtype=np.float64)
        if np.any(np.isnan(above)) or np.any(above < 0):
            raise ValueError("corrupt valid_above must be >= 0 (inf allowed)")
        self.order = np.argsort(above, kind="stable")         # corrupt rows by increasing threshold
        self.sorted_valid_above = above[self.order]
        self.mixing = mixing
        self.sample_sigma = sample_sigma
        self.locality_sigma_max = locality_sigma_max
        if self.n_clean == 0 and len(above) == 0:
            raise ValueError("no training windows at all")

    @property
    def n_corrupt(self) -> int:
        return len(self.sorted_valid_above)

    def n_valid(self, sigma: np.ndarray) -> np.ndarray:
        """Number of corrupt windows valid at each sigma: those with valid_above < sigma (+ locality band)."""
        count = np.searchsorted(self.sorted_valid_above, sigma, side="left")
        if self.locality_sigma_max is not None:
            count = np.where(sigma < self.locality_sigma_max, self.n_corrupt, count)
        return count

    def p_clean(self, sigma: np.ndarray) -> np.ndarray:
        """P(clean | sigma): alpha(sigma) where a corrupt window is valid, 1 where none is, 0 with no clean."""
        n_valid = self.n_valid(sigma)
        alpha = self.mixing(sigma, n_valid / max(self.n_corrupt, 1))
        p = np.where(n_valid > 0, np.clip(alpha, 0.0, 1.0), 1.0)
        return p if self.n_clean > 0 else np.zeros_like(p)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Draw:
        sigma = self.sample_sigma(batch_size, rng)
        if self.n_clean == 0:
            # No clean source: a sigma where no corrupt window is valid has no valid source at all, so it
            # is drawn again (rejection keeps "sigma first, then a valid source").
            for _ in range(1000):
                bad = self.n_valid(sigma) == 0
                if not bad.any():
                    break
                sigma[bad] = self.sample_sigma(int(bad.sum()), rng)
            else:
                raise ValueError("no corrupt window is valid at any sampled sigma and there is no clean data")
        return self.sources_for(sigma, rng)

    def sources_for(self, sigma: np.ndarray, rng: np.random.Generator) -> Draw:
        """Given sigmas (B,), draw the sources (the second half of `sample`; tests call it on fixed sigma)."""
        sigma = np.asarray(sigma, dtype=np.float64)
        u = rng.random(len(sigma))
        v = rng.random(len(sigma))
        corrupt = u >= self.p_clean(sigma)
        n_valid = self.n_valid(sigma)
        index = np.zeros(len(sigma), dtype=np.int64)
        clean_rows = ~corrupt
        index[clean_rows] = np.minimum((v[clean_rows] * self.n_clean).astype(np.int64), self.n_clean - 1)
        if corrupt.any():
            # valid corrupt windows are the first n_valid of the sorted order (or all, in the locality band)
            k = n_valid[corrupt]
            pos = np.minimum((v[corrupt] * k).astype(np.int64), k - 1)
            index[corrupt] = self.order[pos]
        return Draw(sigma, corrupt, index)

    # ---- state for exact resume (the sampler itself is stateless; its Generator carries the state)
    @staticmethod
    def rng_state(rng: np.random.Generator) -> dict:
        return rng.bit_generator.state

    @staticmethod
    def restore_rng(state: dict) -> np.random.Generator:
        bg = getattr(np.random, state["bit_generator"])()
        bg.state = state
        return np.random.Generator(bg)
