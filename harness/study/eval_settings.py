"""The study's evaluation settings (`eval:` of the experiment YAML): which start seeds every run is scored
on, how, and the checkpoint protocol; `EvalSettings.spec` turns them into one checkpoint's EvalSpec."""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from harness.core.configs import MAX_WORKERS
from harness.core.errors import UserError


@dataclasses.dataclass
class EvalSettings:
    env: str = "target"              # physics preset the policies are scored in
    trials: int = 200                # start seeds seed .. seed + trials - 1, the same for every run
    seed: int = 100_000              # first start seed (keep clear of the datasets' seeds)
    time_limit: float | None = None  # seconds per trial (null: the task's 75 s)
    inference_batch: int = 32        # rows per policy query, padded, so trials do not depend on n_envs,
                                     # workers or a resume (0: the natural batch, as studies before 2026-12-03)
    n_envs: int = 25                 # envs in lockstep per worker (batched inference)
    workers: int = 2                 # evaluation worker processes
    device: str = "cpu"              # torch device for inference
    record: int = 0                  # save the first N rollouts of each run as HTML + video
    # Checkpoint protocol (eval/selection.py, docs/objectives.md section 10). The final checkpoint is always
    # scored on the seeds above; with checkpoints last_k / every, the candidates are also scored on
    # selection seeds and the chosen one is reported again on the seeds above (held out from the choice).
    checkpoints: Literal["final", "last_k", "every"] = "final"  # candidates: final.pt, the last k, or all
    last_k: int = 5                  # checkpoints last_k: how many (final.pt and the k - 1 snapshots before)
    select: Literal["none", "beta_pruning"] = "none"  # none: score all candidates on every selection round;
                                     # beta_pruning: drop a candidate when P(better than the best) < 0.05
    snapshot_every: int = 0          # training steps between policy snapshots (run.snapshot_every);
                                     # required >= 1 unless checkpoints is final
    selection_trials: int = 50       # start seeds per selection round
    selection_rounds: int = 3        # selection rounds (beta_pruning stops early when one candidate is left)
    selection_seed: int = 200_000    # first selection start seed; the selection range must not meet eval's

    IDENTITY: ClassVar[tuple[str, ...]] = ("env", "trials", "seed", "time_limit", "inference_batch",  # results
                                           "checkpoints", "last_k", "select", "snapshot_every",
                                           "selection_trials", "selection_rounds", "selection_seed")
    PROTOCOL_KEYS: ClassVar[tuple[str, ...]] = IDENTITY[5:]   # meaningless with checkpoints: final

    def __post_init__(self):
        from eval.evaluation import MAX_N_ENVS, MAX_START_SEED, MAX_TRIALS
        bounds = {"trials": MAX_TRIALS, "n_envs": MAX_N_ENVS, "workers": MAX_WORKERS,
                  "selection_trials": MAX_TRIALS, "selection_rounds": 100}
        for key, most in bounds.items():
            if not 1 <= getattr(self, key) <= most:
                raise ValueError(f"eval.{key} must be in [1, {most}], got {getattr(self, key)}")
        if not 0 <= self.inference_batch <= MAX_N_ENVS:
            raise ValueError(f"eval.inference_batch must be in [0, {MAX_N_ENVS}] (0 = the natural batch), "
                             f"got {self.inference_batch}")
        for key in ("seed", "selection_seed"):
            if getattr(self, key) > MAX_START_SEED:
                raise ValueError(f"eval.{key} must be <= {MAX_START_SEED}, got {getattr(self, key)}")
        if self.record:   # Meshcat needs the main thread of its process; a study's job runs elsewhere
            raise ValueError("eval.record: recording is not done inside a study; record a finished run with "
                             "cotrain eval runs/<row>/seed<k>/train/checkpoints/final.pt --record N")
        for key in ("seed", "snapshot_every", "selection_seed"):
            if getattr(self, key) < 0:
                raise ValueError(f"eval.{key} must be >= 0, got {getattr(self, key)}")
        if self.time_limit is not None and not 0 < self.time_limit < float("inf"):
            raise ValueError(f"eval.time_limit must be > 0 seconds (or null), got {self.time_limit}")
        check_preset(self.env, "eval.env")
        check_device(self.device, "eval.device")
        self._check_protocol()

    def _check_protocol(self) -> None:
        """The checkpoint protocol: something to select from, and selection seeds apart from eval's."""
        if self.checkpoints not in ("final", "last_k", "every"):
            raise ValueError(f"eval.checkpoints must be final, last_k or every, got {self.checkpoints!r}")
        if self.select not in ("none", "beta_pruning"):
            raise ValueError(f"eval.select must be none or beta_pruning, got {self.select!r}")
        if self.last_k < 2:
            raise ValueError(f"eval.last_k must be >= 2 (the final checkpoint alone is checkpoints: final), "
                             f"got {self.last_k}")
        if self.checkpoints == "final":
            if self.select != "none":
                raise ValueError(f"eval.select {self.select} needs eval.checkpoints last_k or every "
                                 "(checkpoints: final leaves nothing to select from)")
            return
        if self.snapshot_every < 1:
            raise ValueError(f"eval.snapshot_every must be >= 1 training steps with eval.checkpoints "
                             f"{self.checkpoints}, got {self.snapshot_every}")
        sel_end = self.selection_seed + self.selection_rounds * self.selection_trials   # exclusive
        if self.selection_seed < self.seed + self.trials and self.seed < sel_end:
            raise ValueError(f"eval.selection_seed: selection seeds {self.selection_seed}..{sel_end - 1} overlap "
                             f"the eval seeds {self.seed}..{self.seed + self.trials - 1}; move one range")

    def spec(self, checkpoint, seed: int | None = None, trials: int | None = None):
        """The EvalSpec of a checkpoint on these settings' start seeds (or `trials` seeds from `seed`)."""
        from eval.evaluation import EvalSpec
        return EvalSpec(checkpoint=str(checkpoint), env=self.env, trials=self.trials if trials is None else trials,
                        seed=self.seed if seed is None else seed, time_limit=self.time_limit,
                        inference_batch=self.inference_batch)

    def identity(self) -> dict:
        """What changes a run's results; the protocol keys only count when a protocol beyond final is on,
        so runs scored on the final checkpoint keep their identity whatever those keys say."""
        keys = self.IDENTITY if self.checkpoints != "final" else \
            tuple(k for k in self.IDENTITY if k not in self.PROTOCOL_KEYS)
        if self.inference_batch == 0:   # as recorded before the key existed: those run folders resume with 0
            keys = tuple(k for k in keys if k != "inference_batch")
        return {k: getattr(self, k) for k in keys}


def check_preset(name: str, key: str) -> None:
    """An unknown physics preset is refused when the study is loaded, not when its first job runs."""
    from sim_envs.config import load_preset
    try:
        load_preset(name)
    except UserError as exc:
        raise ValueError(f"{key}: {exc}") from None


def check_device(name: str, key: str) -> None:
    """A device this machine does not have is refused at load (cpu needs no torch import)."""
    if name == "cpu":
        return
    from harness.core.errors import ConfigError
    from harness.learning.device import resolve_device
    try:
        resolve_device(name)
    except ConfigError as exc:
        raise ValueError(f"{key}: {exc.problem}") from None
