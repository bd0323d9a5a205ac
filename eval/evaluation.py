"""One evaluation of one checkpoint, start to finish: what `cotrain eval` and the study runner call.

An evaluation folder is keyed by what was evaluated (the checkpoint's path and content hash, env preset,
start seeds), and held (locked) while trials run, so two evaluations never append to one log. Re-running the
same evaluation resumes from its trial log; pointing a different evaluation at a folder that holds another
one is refused rather than mixing their trials, and so is a non-empty folder that is no evaluation folder
(the run-identity rule, harness.core.identity: the checkpoint and its settings' `folder_identity` are the
identity, with no free keys). `EvalSettings` is the one type of evaluation settings, for the CLI, the study
and its jobs alike.
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import ClassVar, Literal

from eval.metrics import Summary
from eval.report import write_eval_report
from eval.rollouts import PolicyFile, check_cameras, evaluate
from harness.core.configs import MAX_SEED, MAX_WORKERS, added_keys, check_bounds, key
from harness.core.errors import ConfigError, UserError
from harness.core.identity import hold_output, register_added_keys
from sim_envs.geometry import TASK
from sim_envs.visual import check_visual_name, load_visual

SPEC_FILE = "eval_spec.json"
LOG_FILE = "trials.jsonl"


# Bounds on what an evaluation is asked for (typos such as 1e15 trials, not experiments); declared on the
# keys of EvalSettings below, so `cotrain eval`, `cotrain curve` and a study's `eval:` check the same numbers.
MAX_TRIALS = 1_000_000
MAX_START_SEED = MAX_SEED - MAX_TRIALS  # start seeds seed .. seed + trials - 1 stay within MAX_SEED
MAX_N_ENVS = 4096
MAX_SELECTION_ROUNDS = 100
# A diffusion policy is queried in batches of exactly this many rows (eval/rollouts.py), so that a trial's
# result does not depend on n_envs, workers or a resume; 0 = the natural batch (evaluations before 2026-12-03).
INFERENCE_BATCH = 32
EVAL_SAMPLERS = ("heun", "heun_churn", "ddpm", "ddim")   # of the checkpoint's formulation (train_config.SAMPLERS)


@dataclasses.dataclass
class EvalSettings:
    """How a checkpoint is evaluated: on which start seeds, in which env, with which sampler, on how many
    processes, and (a study's checkpoint protocol) which of a run's checkpoints are candidates.

    The one type behind the `cotrain eval` and `cotrain curve` flags, a study's `eval:` section and the job
    that evaluates a run. The checkpoint is not part of it: an evaluation is a checkpoint scored on settings,
    `run_eval(checkpoint, settings, out)`. Its problems read `eval.<key> ...`; a command names its flag
    instead (harness/cli/commands/flags.py). `seed` defaults to a study's 100000, clear of the datasets'
    seeds; `cotrain eval --seed` defaults to 0 as it always did.
    """
    env: str = key("target", doc="physics preset the trials run in")
    trials: int = key(200, bound=(1, MAX_TRIALS), doc="trial i starts from seed + i")
    seed: int = key(100_000, doc="first start seed (keep clear of the datasets' seeds)")
    time_limit: float | None = key(None, doc="seconds per trial (null: the task's 75 s; shorter: quick tests, demos)")
    num_steps: int | None = key(None, since=11, doc="sampler steps per action chunk; null = the checkpoint's "
                                "diffusion.num_steps")
    sampler: str | None = key(None, since=20, doc="heun | heun_churn | ddpm | ddim (of the checkpoint's "
                              "formulation); null = the checkpoint's diffusion.sampler")
    inference_batch: int = key(INFERENCE_BATCH, doc="rows per policy query, padded, so trials do not depend on "
                               "n_envs, workers or a resume (0: the natural batch, as evaluations before 2026-12-03)")
    visual: str | None = key(None, since=22, doc="image policies: the visual preset rendered (sim_envs/visuals/); "
                             "null = the look its clean data were rendered in (recorded in the checkpoint)")
    n_envs: int = key(25, bound=(1, MAX_N_ENVS), doc="envs in lockstep per worker (one batched act for all)")
    workers: int = key(2, bound=(1, MAX_WORKERS), doc="evaluation worker processes")
    device: str = key("cpu", doc="torch device for inference (auto: cuda when present)")
    record: int = key(0, bound=(0, None), doc="save the first N rollouts as Meshcat HTML and videos (not in a "
                      "study: Meshcat needs the main thread of its process)")
    # Checkpoint protocol of a study (eval/selection.py, docs/objectives.md section 10). The final checkpoint
    # is always scored on the seeds above; with checkpoints last_k / every, the candidates are also scored on
    # selection seeds and the chosen one is reported again on the seeds above (held out from the choice).
    checkpoints: Literal["final", "last_k", "every"] = key("final", doc="candidates: final.pt, the last k, or all")
    last_k: int = key(5, doc="checkpoints last_k: how many (final.pt and the k - 1 snapshots before)")
    select: Literal["none", "beta_pruning"] = key("none", doc="none: score all candidates on every selection "
                                                  "round; beta_pruning: drop a candidate when P(better than the "
                                                  "best) < 0.05")
    snapshot_every: int = key(0, bound=(0, None), doc="training steps between policy snapshots (run.snapshot_every); "
                              "required >= 1 unless checkpoints is final")
    selection_trials: int = key(50, bound=(1, MAX_TRIALS), doc="start seeds per selection round")
    selection_rounds: int = key(3, bound=(1, MAX_SELECTION_ROUNDS), doc="selection rounds (beta_pruning stops "
                                "early when one candidate is left)")
    selection_seed: int = key(200_000, doc="first selection start seed; the selection range must not meet eval's")

    # A study run's identity (run.json "eval"): what changes its results. The protocol keys count only when
    # a protocol beyond final is on; the sampler keys only when set (studies before them used the checkpoint's).
    IDENTITY: ClassVar[tuple[str, ...]] = ("env", "trials", "seed", "time_limit", "inference_batch",  # results
                                           "checkpoints", "last_k", "select", "snapshot_every",
                                           "selection_trials", "selection_rounds", "selection_seed")
    PROTOCOL_KEYS: ClassVar[tuple[str, ...]] = IDENTITY[5:]   # meaningless with checkpoints: final
    SAMPLING_KEYS: ClassVar[tuple[str, ...]] = ("num_steps", "sampler", "visual")
    # An evaluation folder's identity (eval_spec.json, with the checkpoint and its sha256), in this order.
    FOLDER_IDENTITY: ClassVar[tuple[str, ...]] = ("env", "trials", "seed", "time_limit", "num_steps", "sampler",
                                                  "inference_batch", "visual")

    def __post_init__(self):
        check_bounds(self, "eval")
        for key_ in ("seed", "selection_seed"):   # two checks each (>= 0, <= MAX_START_SEED), in their own words
            if getattr(self, key_) < 0:
                raise ValueError(f"eval.{key_} must be >= 0, got {getattr(self, key_)}")
        for key_ in ("seed", "selection_seed"):
            if getattr(self, key_) > MAX_START_SEED:
                raise ValueError(f"eval.{key_} must be <= {MAX_START_SEED}, got {getattr(self, key_)}")
        if not 0 <= self.inference_batch <= MAX_N_ENVS:
            raise ValueError(f"eval.inference_batch must be in [0, {MAX_N_ENVS}] (0 = the natural batch), "
                             f"got {self.inference_batch}")
        if self.time_limit is not None and not 0 < self.time_limit < float("inf"):
            raise ValueError(f"eval.time_limit must be > 0 seconds (or null), got {self.time_limit}")
        if self.num_steps is not None and self.num_steps < 1:
            raise ValueError(f"eval.num_steps must be >= 1 (or null), got {self.num_steps}")
        if self.sampler is not None and self.sampler not in EVAL_SAMPLERS:
            raise ValueError(f"eval.sampler must be one of {', '.join(EVAL_SAMPLERS)} (or null), got {self.sampler!r}")
        if self.visual is not None:
            check_visual_name(self.visual, "eval.visual")
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

    def on_seeds(self, seed: int, trials: int) -> "EvalSettings":
        """These settings on `trials` start seeds from `seed`, as one evaluation (no protocol of its own):
        what a study's checkpoint protocol scores each candidate with."""
        return dataclasses.replace(self, seed=seed, trials=trials, checkpoints="final", select="none")

    def identity(self) -> dict:
        """A study run's `eval` identity; see IDENTITY. inference_batch 0 is left out, as recorded before the
        key existed: those run folders resume with 0."""
        keys = self.IDENTITY if self.checkpoints != "final" else \
            tuple(k for k in self.IDENTITY if k not in self.PROTOCOL_KEYS)
        if self.inference_batch == 0:
            keys = tuple(k for k in keys if k != "inference_batch")
        keys += tuple(k for k in self.SAMPLING_KEYS if getattr(self, k) is not None)
        return {k: getattr(self, k) for k in keys}

    def folder_identity(self, checkpoint: str) -> dict:
        """An evaluation folder's identity, less the checkpoint's sha256 (run_eval adds it): what its trials are
        a function of. inference_batch 0 and visual null are left out, so that folders made before those keys
        existed (which queried the natural batch, in the checkpoint's look) resume."""
        out = {"checkpoint": checkpoint, **{k: getattr(self, k) for k in self.FOLDER_IDENTITY}}
        if self.inference_batch == 0:
            del out["inference_batch"]
        if self.visual is None:
            del out["visual"]
        return out

    def look(self):
        """The VisualConfig to render instead of the checkpoint's own look, or None."""
        return None if self.visual is None else load_visual(self.visual)

    @property
    def max_steps(self) -> int | None:
        return None if self.time_limit is None else max(1, int(round(self.time_limit * TASK.control_hz)))

    @property
    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.trials))


register_added_keys(added_keys(EvalSettings))   # folders made before num_steps, sampler, visual existed resume


def check_preset(name: str, key_: str) -> None:
    """An unknown physics preset is refused when the settings are made, not when the first trial runs."""
    from sim_envs.config import load_preset   # (imports Drake's config types: only when settings are checked)
    try:
        load_preset(name)
    except UserError as exc:
        raise ValueError(f"{key_}: {exc}") from None


def check_device(name: str, key_: str) -> None:
    """A device this machine does not have is refused when the settings are made."""
    if name == "cpu":
        return
    from harness.learning.device import resolve_device   # (imports torch: not for the cpu and scripted policies)
    try:
        resolve_device(name)
    except ConfigError as exc:
        raise ValueError(f"{key_}: {exc.problem}") from None


def default_out_dir(checkpoint, settings: EvalSettings) -> Path:
    """runs/X/checkpoints/final.pt -> runs/X/eval/target-s0-n200-b32 (beside the run's other outputs)."""
    ckpt = Path(checkpoint)
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    steps = f"-h{settings.num_steps}" if settings.num_steps is not None else ""
    sampler = f"-{settings.sampler}" if settings.sampler is not None else ""
    batch = f"-b{settings.inference_batch}" if settings.inference_batch else ""   # unpadded folders keep their name
    return run_dir / "eval" / f"{settings.env}-s{settings.seed}-n{settings.trials}{steps}{sampler}{batch}"


def run_eval(checkpoint, settings: EvalSettings, out_dir, progress: bool = True, policy=None) -> Summary:
    """Evaluate `checkpoint` on `settings` into out_dir (resuming a partial run); returns the summary.

    checkpoint: a policy checkpoint (.pt), a LeRobot pretrained-policy folder (eval/lerobot_policy.py) or
    "scripted". policy: an already built policy object to use instead of loading it (tests, scripted).
    """
    from eval.lerobot_policy import is_lerobot_folder, read_lerobot_folder   # (imports pyarrow: only here)
    checkpoint = str(checkpoint)
    out_dir = Path(out_dir)
    device = _resolved_device(settings.device)
    lerobot = None
    if policy is None and checkpoint != "scripted" and is_lerobot_folder(checkpoint):
        lerobot = read_lerobot_folder(checkpoint)    # a bad folder is one line, before anything is written
        check_cameras(lerobot.load_policy(device), settings.look())
    elif policy is None and checkpoint != "scripted":
        from harness.learning.policy import load_policy   # (imports torch: `cotrain eval scripted` runs without it)
        # a bad checkpoint, or a look that lacks one of its cameras, fails here, before any output or worker exists
        check_cameras(load_policy(checkpoint, num_steps=settings.num_steps, sampler=settings.sampler), settings.look())
    # The identity: what is evaluated (the checkpoint's path and its contents) and on which starts.
    identity = {**settings.folder_identity(checkpoint), "checkpoint_sha256": (lerobot.sha256() if lerobot else
                file_sha256(checkpoint)) if policy is None and checkpoint != "scripted" else None}
    with hold_output(out_dir, SPEC_FILE, identity, free_keys=(), kind="evaluation folder"):
        source = policy if policy is not None else lerobot or _policy_source(checkpoint, settings)
        started = time.perf_counter()
        records = evaluate(source, settings.env, settings.seeds, n_envs=settings.n_envs, workers=settings.workers,
                           device=device, progress=progress, log_path=out_dir / LOG_FILE,
                           desc=f"eval {settings.env}", max_steps=settings.max_steps,
                           inference_batch=settings.inference_batch, visual=settings.look())
        elapsed = time.perf_counter() - started
        spec = {"checkpoint": checkpoint, **{k: getattr(settings, k) for k in EvalSettings.FOLDER_IDENTITY}}
        extra = {"spec": spec, "n_envs": settings.n_envs, "workers": settings.workers, "device": device,
                 "wall_seconds_last_session": round(elapsed, 2)}
        summary = write_eval_report(out_dir, records, extra)
        if settings.record > 0:
            from eval.recording import record_rollouts   # (imports Meshcat and the video writer: only to record)
            record_rollouts(source, settings.env, settings.seeds[:settings.record], out_dir / "recordings",
                            device=device, max_steps=settings.max_steps, inference_batch=settings.inference_batch,
                            visual=settings.look())
    return summary


def _resolved_device(name: str) -> str:
    """"auto" -> cuda when present, else cpu (checked already when the settings were made)."""
    if name == "cpu":
        return name
    from harness.learning.device import resolve_device   # (imports torch: not for the cpu and scripted policies)
    return str(resolve_device(name))


def file_sha256(path) -> str:
    """The content hash of a file, so a replaced checkpoint is a different evaluation."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _policy_source(checkpoint: str, settings: EvalSettings):
    if checkpoint == "scripted":
        from eval.scripted import ChunkedScriptedPolicy   # (a demo's policy: not loaded for a checkpoint)
        return ChunkedScriptedPolicy()
    if settings.num_steps is None and settings.sampler is None:
        return checkpoint
    return PolicyFile(checkpoint, settings.num_steps, settings.sampler)
