"""Checkpoint protocols: which checkpoints of a run are scored, on which start seeds, and which one is reported.

Published numbers often come from scoring several checkpoints of a run and keeping the best; reported on
the same trials that chose it, that best is biased upwards (the maximum of noisy estimates). Here the
choice and the reported score never share a start seed:

1. candidates: the run's policy checkpoints, oldest first, final.pt last (`pick_candidates`);
2. selection rounds r = 0, 1, ...: every surviving candidate is scored on the same new start seeds
   first_seed + r * round_trials ... + round_trials - 1;
3. Beta pruning (prune_below > 0): with s successes and f failures so far, a candidate's success rate has
   the posterior Beta(1 + s, 1 + f) (uniform prior); the best is the highest posterior mean, and every
   other candidate with P(its rate > the best's rate) < prune_below is dropped. Rounds stop early when one
   candidate is left. prune_below = 0: nothing is dropped (every candidate sees every round);
4. the chosen candidate (highest posterior mean over all its selection trials; ties go to the later
   checkpoint) is scored once more on the held-out seeds, which must share none with the selection seeds.

The core is pure: `evaluate(candidate, seeds, stage)` is a callable returning one success flag per seed,
so the study can pass one that runs closed-loop trials into folders and tests one that draws coin flips.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

from scipy.special import betaln

PRUNE_BELOW = 0.05                 # beta_pruning: drop a candidate when P(better than the best) < this
HELDOUT = "heldout"                # the `stage` of the held-out evaluation; selection rounds are "r0", "r1", ...
CHECKPOINT_MODES = ("final", "last_k", "every")

# evaluate(candidate name, start seeds, stage) -> one success flag per seed, in the order of `seeds`
Evaluate = Callable[[str, list[int], str], Sequence[bool]]


@dataclasses.dataclass
class Selection:
    """What a selection did, in full: selection.json of a study run."""
    candidates: list[str]            # oldest first; the last is the final checkpoint
    prune_below: float               # 0 = no pruning
    rounds: list[dict]               # per round: {"round", "seeds", "scored": {name: [successes, trials]},
                                     #             "pruned": [names dropped after it]}
    totals: dict[str, list[int]]     # name -> [successes, trials] over all its selection rounds
    pruned_at: dict[str, int]        # name -> the round after which it was dropped
    chosen: str
    selection_seeds: list[int]       # every start seed used to choose
    heldout_seeds: list[int]         # the start seeds the chosen candidate is reported on
    heldout_successes: list[bool]    # one per held-out seed
    mean_over_candidates: float | None  # mean success rate over all candidates on the rounds all of them
                                     # were scored on (every round without pruning); None if no round ran
    shared_rounds: int               # how many rounds that mean covers

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def pick_candidates(checkpoints: Sequence[str], mode: str, last_k: int) -> list[str]:
    """The candidates among a run's checkpoints (oldest first, final last): final, the last k, or every one."""
    if mode not in CHECKPOINT_MODES:
        raise ValueError(f"checkpoints must be one of {list(CHECKPOINT_MODES)}, got {mode!r}")
    if not checkpoints:
        raise ValueError("no checkpoints to pick from")
    if mode == "final":
        return [checkpoints[-1]]
    return list(checkpoints[-last_k:]) if mode == "last_k" else list(checkpoints)


def round_seeds(first_seed: int, round_trials: int, index: int) -> list[int]:
    """Start seeds of selection round `index`: a new block of round_trials seeds per round."""
    start = first_seed + index * round_trials
    return list(range(start, start + round_trials))


def prob_better(s: int, f: int, s_best: int, f_best: int) -> float:
    """P(p > p_best) for independent p ~ Beta(1 + s, 1 + f) and p_best ~ Beta(1 + s_best, 1 + f_best).

    Exact for integer parameters (Evan Miller, "Formulas for Bayesian A/B testing"):
        P = sum_{i=0}^{a-1} B(a_b + i, b_b + b) / ((b + i) B(1 + i, b) B(a_b, b_b)),
    with a = 1 + s, b = 1 + f, a_b = 1 + s_best, b_b = 1 + f_best; summed in log space (scipy's betaln).
    """
    a, b, a_b, b_b = 1 + s, 1 + f, 1 + s_best, 1 + f_best
    total = 0.0
    for i in range(a):
        total += math.exp(betaln(a_b + i, b_b + b) - math.log(b + i) - betaln(1 + i, b) - betaln(a_b, b_b))
    return min(max(total, 0.0), 1.0)


def posterior_mean(successes: int, trials: int) -> float:
    """Mean of Beta(1 + s, 1 + f): the success rate estimate that ranks candidates."""
    return (1 + successes) / (2 + trials)


def best_of(alive: Sequence[str], totals: dict[str, list[int]]) -> str:
    """The candidate with the highest posterior mean; a tie goes to the later checkpoint (alive is in order)."""
    best = alive[0]
    for name in alive[1:]:
        if posterior_mean(*totals[name]) >= posterior_mean(*totals[best]):
            best = name
    return best


def select_checkpoint(candidates: Sequence[str], evaluate: Evaluate, rounds: int, round_trials: int,
                      first_seed: int, heldout_seeds: Sequence[int], prune_below: float = 0.05) -> Selection:
    """Run the selection rounds, choose, and score the choice on the held-out seeds (module docstring)."""
    candidates = list(candidates)
    heldout_seeds = [int(s) for s in heldout_seeds]
    _check_arguments(candidates, rounds, round_trials, first_seed, heldout_seeds, prune_below)
    totals = {name: [0, 0] for name in candidates}
    alive, pruned_at, history = list(candidates), {}, []
    shared_rounds = 0
    for index in range(rounds):
        if prune_below > 0 and len(alive) == 1:
            break                                   # nothing left to compare
        seeds = round_seeds(first_seed, round_trials, index)
        scored = {name: _score(evaluate, name, seeds, f"r{index}") for name in alive}
        for name, (k, n) in scored.items():
            totals[name][0] += k
            totals[name][1] += n
        if len(alive) == len(candidates):
            shared_rounds += 1
        dropped = _prune(alive, totals, prune_below) if prune_below > 0 else []
        for name in dropped:
            pruned_at[name] = index
        alive = [name for name in alive if name not in dropped]
        history.append({"round": index, "seeds": seeds, "scored": {k: list(v) for k, v in scored.items()},
                        "pruned": dropped})
    chosen = best_of(alive, totals)
    heldout = [bool(x) for x in _call(evaluate, chosen, heldout_seeds, HELDOUT)]
    mean = None
    if shared_rounds:
        mean = sum(_shared_rate(history[:shared_rounds], name) for name in candidates) / len(candidates)
    return Selection(candidates=candidates, prune_below=prune_below, rounds=history,
                     totals={k: list(v) for k, v in totals.items()}, pruned_at=pruned_at, chosen=chosen,
                     selection_seeds=[s for r in history for s in r["seeds"]], heldout_seeds=heldout_seeds,
                     heldout_successes=heldout, mean_over_candidates=mean, shared_rounds=shared_rounds)


def _prune(alive: list[str], totals: dict[str, list[int]], prune_below: float) -> list[str]:
    """Candidates whose chance of beating the current best is below prune_below."""
    best = best_of(alive, totals)
    s_b, n_b = totals[best]
    return [name for name in alive if name != best
            and prob_better(totals[name][0], totals[name][1] - totals[name][0], s_b, n_b - s_b) < prune_below]


def _score(evaluate: Evaluate, name: str, seeds: list[int], stage: str) -> tuple[int, int]:
    flags = _call(evaluate, name, seeds, stage)
    return int(sum(bool(x) for x in flags)), len(flags)


def _call(evaluate: Evaluate, name: str, seeds: list[int], stage: str) -> list[bool]:
    flags = list(evaluate(name, list(seeds), stage))
    if len(flags) != len(seeds):
        raise ValueError(f"evaluate({name!r}, {stage}) gave {len(flags)} outcomes for {len(seeds)} seeds")
    return flags


def _shared_rate(history: list[dict], name: str) -> float:
    k = sum(r["scored"][name][0] for r in history)
    n = sum(r["scored"][name][1] for r in history)
    return k / n


def _check_arguments(candidates: list[str], rounds: int, round_trials: int, first_seed: int,
                     heldout_seeds: list[int], prune_below: float) -> None:
    if not candidates or len(set(candidates)) != len(candidates):
        raise ValueError(f"candidates must be distinct and at least one, got {candidates}")
    if rounds < 1 or round_trials < 1 or first_seed < 0:
        raise ValueError(f"need rounds >= 1, round_trials >= 1, first_seed >= 0; got {rounds}, {round_trials}, "
                         f"{first_seed}")
    if not 0 <= prune_below < 1:
        raise ValueError(f"prune_below must be in [0, 1), got {prune_below}")
    if not heldout_seeds:
        raise ValueError("the held-out round needs at least one start seed")
    selection = range(first_seed, first_seed + rounds * round_trials)
    shared = [s for s in heldout_seeds if s in selection]
    if shared:   # the very bias the protocol exists to avoid
        raise ValueError(f"held-out seed {shared[0]} is also a selection seed; the ranges must not overlap")
