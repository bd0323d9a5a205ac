"""One evaluation of one checkpoint, start to finish: what `cotrain eval` and the study runner call.

An evaluation folder is keyed by what was evaluated (the checkpoint's path and content hash, env preset,
start seeds), and held (locked) while trials run, so two evaluations never append to one log. Re-running the
same evaluation resumes from its trial log; pointing a different evaluation at a folder that holds another
one is refused rather than mixing their trials, and so is a non-empty folder that is no evaluation folder
(the run-identity rule, harness.core.identity: the spec is the identity, with no free keys).
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

from eval.metrics import Summary
from eval.report import write_eval_report
from eval.rollouts import PolicyFile, check_cameras, evaluate
from harness.core.configs import MAX_SEED
from harness.core.errors import ConfigError
from harness.core.identity import hold_output
from sim_envs.geometry import TASK
from sim_envs.visual import check_visual_name, load_visual

SPEC_FILE = "eval_spec.json"
LOG_FILE = "trials.jsonl"


# Bounds on what an evaluation is asked for (typos such as 1e15 trials, not experiments). The study's
# eval settings and the eval / curve flags check against the same numbers.
MAX_TRIALS = 1_000_000
MAX_START_SEED = MAX_SEED - MAX_TRIALS  # start seeds seed .. seed + trials - 1 stay within MAX_SEED
MAX_N_ENVS = 4096
# A diffusion policy is queried in batches of exactly this many rows (eval/rollouts.py), so that a trial's
# result does not depend on n_envs, workers or a resume; 0 = the natural batch (evaluations before 2026-12-03).
INFERENCE_BATCH = 32


@dataclasses.dataclass
class EvalSpec:
    """What is evaluated and on which starts (the identity of an evaluation folder)."""
    checkpoint: str                # policy checkpoint (.pt), a LeRobot pretrained-policy folder, or "scripted"
    env: str = "target"            # physics preset the trials run in
    trials: int = 200              # trial i starts from seed + i
    seed: int = 0                  # first start seed
    time_limit: float | None = None  # seconds per trial; None = the task's 75 s (shorter: quick tests, demos)
    num_steps: int | None = None   # sampler steps per action chunk; None = the checkpoint's diffusion.num_steps
    sampler: str | None = None     # heun | heun_churn | ddpm | ddim (of the checkpoint's formulation);
                                   # None = the checkpoint's diffusion.sampler
    inference_batch: int = INFERENCE_BATCH  # rows per policy query, padded (0: natural batch, not invariant)
    visual: str | None = None      # image policies: the visual preset rendered (sim_envs/visuals/); None = the
                                   # look its clean data were rendered in (recorded in the checkpoint)

    def __post_init__(self):
        # ConfigError, not ValueError: a spec is built from flags and study settings, not loaded by from_dict;
        # each problem starts with its key, so a command can name its flag (harness/cli/commands/flags.py)
        def refuse(problem):
            raise ConfigError("evaluation", None, problem)
        if not self.checkpoint or not self.env:
            refuse("an evaluation needs a checkpoint and an env preset")
        if not 1 <= self.trials <= MAX_TRIALS:
            refuse(f"trials must be in [1, {MAX_TRIALS}], got {self.trials}")
        if not 0 <= self.seed <= MAX_START_SEED:
            refuse(f"seed must be in [0, {MAX_START_SEED}], got {self.seed}")
        if self.time_limit is not None and not 0 < self.time_limit < float("inf"):
            refuse(f"time_limit must be > 0 seconds, got {self.time_limit}")
        if self.num_steps is not None and self.num_steps < 1:
            refuse(f"num_steps must be >= 1, got {self.num_steps}")
        if self.visual is not None:
            try:
                check_visual_name(self.visual)
            except ValueError as exc:
                refuse(str(exc))
        if not 0 <= self.inference_batch <= MAX_N_ENVS:
            refuse(f"inference_batch must be in [0, {MAX_N_ENVS}] (0 = the natural batch), got {self.inference_batch}")

    def identity(self) -> dict:
        """What the folder's trials are a function of; inference_batch 0 is left out, so that folders made
        before it existed (which queried the natural batch) resume with inference_batch 0."""
        out = dataclasses.asdict(self)
        if self.inference_batch == 0:
            del out["inference_batch"]
        if self.visual is None:       # (likewise for folders made before looks existed)
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


def default_out_dir(checkpoint, spec: EvalSpec) -> Path:
    """runs/X/checkpoints/final.pt -> runs/X/eval/target-s0-n200-b32 (beside the run's other outputs)."""
    ckpt = Path(checkpoint)
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    steps = f"-h{spec.num_steps}" if spec.num_steps is not None else ""
    sampler = f"-{spec.sampler}" if spec.sampler is not None else ""
    batch = f"-b{spec.inference_batch}" if spec.inference_batch else ""   # unpadded folders keep their old name
    return run_dir / "eval" / f"{spec.env}-s{spec.seed}-n{spec.trials}{steps}{sampler}{batch}"


def run_eval(spec: EvalSpec, out_dir, n_envs: int = 25, workers: int = 1, device: str = "cpu",
             record: int = 0, progress: bool = True, policy=None) -> Summary:
    """Evaluate `spec` into out_dir (resuming a partial run); returns the summary.

    policy: an already built policy object to use instead of loading spec.checkpoint (tests, scripted).
    spec.checkpoint may be a LeRobot pretrained-policy folder (eval/lerobot_policy.py).
    """
    from eval.lerobot_policy import is_lerobot_folder, read_lerobot_folder   # (imports pyarrow: only here)
    out_dir = Path(out_dir)
    lerobot = None
    if policy is None and spec.checkpoint != "scripted" and is_lerobot_folder(spec.checkpoint):
        lerobot = read_lerobot_folder(spec.checkpoint)    # a bad folder is one line, before anything is written
        check_cameras(lerobot.load_policy(device), spec.look())
    elif policy is None and spec.checkpoint != "scripted":
        from harness.learning.policy import load_policy
        # a bad checkpoint, or a look that lacks one of its cameras, fails here, before any output or worker exists
        check_cameras(load_policy(spec.checkpoint, num_steps=spec.num_steps, sampler=spec.sampler), spec.look())
    # The identity: what is evaluated (the checkpoint's path and its contents) and on which starts.
    identity = {**spec.identity(), "checkpoint_sha256": (lerobot.sha256() if lerobot else file_sha256(spec.checkpoint))
                if policy is None and spec.checkpoint != "scripted" else None}
    with hold_output(out_dir, SPEC_FILE, identity, free_keys=(), kind="evaluation folder"):
        source = policy if policy is not None else lerobot or _policy_source(spec)
        started = time.perf_counter()
        records = evaluate(source, spec.env, spec.seeds, n_envs=n_envs, workers=workers, device=device,
                           progress=progress, log_path=out_dir / LOG_FILE, desc=f"eval {spec.env}",
                           max_steps=spec.max_steps, inference_batch=spec.inference_batch, visual=spec.look())
        elapsed = time.perf_counter() - started
        extra = {"spec": dataclasses.asdict(spec), "n_envs": n_envs, "workers": workers, "device": device,
                 "wall_seconds_last_session": round(elapsed, 2)}
        summary = write_eval_report(out_dir, records, extra)
        if record > 0:
            from eval.recording import record_rollouts
            record_rollouts(source, spec.env, spec.seeds[:record], out_dir / "recordings", device=device,
                            max_steps=spec.max_steps, inference_batch=spec.inference_batch, visual=spec.look())
    return summary


def file_sha256(path) -> str:
    """The content hash of a file, so a replaced checkpoint is a different evaluation."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _policy_source(spec: EvalSpec):
    if spec.checkpoint == "scripted":
        from eval.scripted import ChunkedScriptedPolicy
        return ChunkedScriptedPolicy()
    if spec.num_steps is None and spec.sampler is None:
        return spec.checkpoint
    return PolicyFile(spec.checkpoint, spec.num_steps, spec.sampler)
