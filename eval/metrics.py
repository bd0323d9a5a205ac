"""Metrics of closed-loop trials: success rates with Wilson intervals, paired tests, outcome counts.

Every interval and p-value comes from `scipy.stats` (binomtest), never from a hand-written formula, so
the numbers in a report are the ones a reviewer gets from the same counts.

A trial's record is one row per start seed. Methods are compared on the *same* seeds, so a paired test
(McNemar's exact test on the discordant pairs) is far more sensitive than comparing two intervals.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Hashable, Iterable, Mapping, Sequence

import numpy as np
from scipy.stats import binomtest

# Terminal outcomes of a trial. "error" marks a trial whose simulation failed (it counts as a failure).
OUTCOMES = ("success", "timeout", "left_workspace", "error")


@dataclasses.dataclass
class TrialRecord:
    """One closed-loop trial, as written to trials.csv / trials.jsonl."""
    seed: int                      # start seed: sim_envs.initial_states.sample_initial_pose(seed)
    outcome: str                   # one of OUTCOMES
    steps: int                     # control steps taken (10 Hz)
    time_to_success: float         # seconds until success; NaN unless outcome == "success"
    final_xy_error: float          # metres, |(dx, dy)| of the final slider pose to the goal
    final_theta_error: float       # radians, |dtheta| of the final slider pose to the goal

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, row: Mapping) -> "TrialRecord":
        def num(v):
            return math.nan if v in (None, "", "nan") else float(v)
        return cls(seed=int(row["seed"]), outcome=str(row["outcome"]), steps=int(row["steps"]),
                   time_to_success=num(row["time_to_success"]), final_xy_error=num(row["final_xy_error"]),
                   final_theta_error=num(row["final_theta_error"]))


@dataclasses.dataclass
class Interval:
    """A proportion with its confidence interval."""
    successes: int
    trials: int
    rate: float                    # successes / trials (NaN when trials == 0)
    low: float
    high: float
    confidence: float = 0.95

    def fmt(self, digits: int = 1) -> str:
        """'62.0% [55.1, 68.4]' (percent)."""
        if self.trials == 0:
            return "n/a"
        return f"{100 * self.rate:.{digits}f}% [{100 * self.low:.{digits}f}, {100 * self.high:.{digits}f}]"


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for a binomial proportion (scipy.stats.binomtest(...).proportion_ci)."""
    successes, trials = int(successes), int(trials)
    if trials == 0:
        return Interval(0, 0, math.nan, 0.0, 1.0, confidence)
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, {trials}], got {successes}")
    ci = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(successes, trials, successes / trials, float(ci.low), float(ci.high), confidence)


@dataclasses.dataclass
class PairedTest:
    """McNemar's exact test of method A against method B on the same starts."""
    n_pairs: int                   # starts both were scored on
    a_only: int                    # A succeeded, B failed
    b_only: int                    # B succeeded, A failed
    p_value: float                 # two-sided; 1.0 when there are no discordant pairs

    @property
    def difference(self) -> float:
        """Success rate of A minus that of B on the shared starts."""
        return (self.a_only - self.b_only) / self.n_pairs if self.n_pairs else math.nan


def mcnemar_exact(success_a: Sequence[bool], success_b: Sequence[bool]) -> PairedTest:
    """Exact McNemar test: under H0 each discordant pair is A-only with probability 1/2.

    That is a two-sided binomial test of a_only out of (a_only + b_only) at p = 0.5 (scipy's binomtest).
    """
    a = np.asarray(success_a, dtype=bool)
    b = np.asarray(success_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired outcomes must be 1-D and the same length, got {a.shape} and {b.shape}")
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    discordant = a_only + b_only
    p = 1.0 if discordant == 0 else float(binomtest(a_only, discordant, 0.5, alternative="two-sided").pvalue)
    return PairedTest(n_pairs=len(a), a_only=a_only, b_only=b_only, p_value=p)


def paired_test(a: Mapping[Hashable, bool], b: Mapping[Hashable, bool]) -> PairedTest:
    """McNemar on the trials both sides share, each side {trial key: success}; the key is a start seed
    (two evaluations) or (training seed, start seed) (two study rows)."""
    shared = sorted(set(a) & set(b))
    return mcnemar_exact([a[k] for k in shared], [b[k] for k in shared])


def outcome_counts(records: Iterable[TrialRecord]) -> dict[str, int]:
    """{outcome: count} over OUTCOMES (zeros included, so tables line up), plus any unknown outcome."""
    counts = {o: 0 for o in OUTCOMES}
    for r in records:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return counts


@dataclasses.dataclass
class Summary:
    """What `cotrain eval` prints and writes to summary.json."""
    n_trials: int
    success: Interval
    outcomes: dict[str, int]
    mean_time_to_success: float    # seconds, over successful trials (NaN if none)
    median_time_to_success: float
    mean_final_xy_error: float     # metres, over all trials
    mean_final_theta_error: float  # radians, over all trials
    seeds: tuple[int, int]         # (first, last) start seed

    def to_dict(self) -> dict:
        return _finite_or_none(dataclasses.asdict(self))

    def lines(self) -> list[str]:
        counts = ", ".join(f"{k} {v}" for k, v in self.outcomes.items() if v or k in ("success", "timeout"))
        return [
            f"trials     {self.n_trials} (start seeds {self.seeds[0]}..{self.seeds[1]})",
            f"success    {self.success.fmt()}  (Wilson {int(100 * self.success.confidence)}% interval)",
            f"outcomes   {counts}",
            (f"time to success  mean {self.mean_time_to_success:.1f} s  median {self.median_time_to_success:.1f} s"
             if self.success.successes else "time to success  n/a (no success)"),
            f"final error      mean {1000 * self.mean_final_xy_error:.1f} mm, "
            f"{math.degrees(self.mean_final_theta_error):.1f} deg",
        ]


def summarize(records: Sequence[TrialRecord], confidence: float = 0.95) -> Summary:
    """Success rate with a Wilson interval, outcome counts and time to success of a list of trials."""
    records = list(records)
    n = len(records)
    k = sum(r.success for r in records)
    times = np.array([r.time_to_success for r in records if r.success], dtype=float)
    xy = np.array([r.final_xy_error for r in records], dtype=float)
    th = np.array([r.final_theta_error for r in records], dtype=float)
    seeds = [r.seed for r in records]
    return Summary(
        n_trials=n,
        success=wilson_interval(k, n, confidence),
        outcomes=outcome_counts(records),
        mean_time_to_success=float(times.mean()) if len(times) else math.nan,
        median_time_to_success=float(np.median(times)) if len(times) else math.nan,
        mean_final_xy_error=float(np.nanmean(xy)) if n else math.nan,
        mean_final_theta_error=float(np.nanmean(th)) if n else math.nan,
        seeds=(min(seeds), max(seeds)) if seeds else (0, -1),
    )


def _finite_or_none(obj):
    """JSON has no NaN: write null instead."""
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
