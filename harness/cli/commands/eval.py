"""`cotrain eval CHECKPOINT --env target --trials 200 --seed 0`: closed-loop success rate in Drake."""
from __future__ import annotations

import os
from pathlib import Path



def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="policy checkpoint (.pt), a LeRobot pretrained-policy folder (config.json + "
                        "model.safetensors; needs the lerobot package), or 'scripted' for the built-in scripted policy")
    parser.add_argument("--env", default="target", help="physics preset to evaluate in (default target)")
    parser.add_argument("--trials", type=int, default=200, help="number of trials (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="trial i starts from seed + i (default 0)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="end trials as timeout after this long (default: the task's 75 s)")
    parser.add_argument("--out", default=None,
                        help="output folder (default <run>/eval/<env>-s<seed>-n<trials> beside the checkpoint)")
    parser.add_argument("--n-envs", type=int, default=25,
                        help="environments stepped in lockstep per worker, one batched act() for all (default 25)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes (default: up to 2)")
    parser.add_argument("--device", default="cpu", help="torch device for the policy (default cpu)")
    parser.add_argument("--num-steps", type=int, default=None, metavar="N",
                        help="sampler steps per action chunk: Heun steps, or DDPM/DDIM inference steps "
                             "(default: the checkpoint's diffusion.num_steps)")
    parser.add_argument("--sampler", default=None, choices=["heun", "heun_churn", "ddpm", "ddim"],
                        help="sampler of the checkpoint's formulation (edm: heun, heun_churn; ddpm: ddpm, ddim; "
                             "default: the checkpoint's diffusion.sampler)")
    add_inference_batch(parser)
    parser.add_argument("--record", type=int, default=0, metavar="N",
                        help="save the first N rollouts as Meshcat HTML and videos")
    parser.add_argument("--visual", default=None,
                        help="image policies: the visual preset to render (sim_envs/visuals/; default: the look its "
                             "clean data were rendered in, recorded in the checkpoint)")
    parser.add_argument("--versus", action="append", default=[], metavar="EVAL_FOLDER",
                        help="another evaluation's folder on the same start seeds (repeatable): print one table, "
                             "each row paired by start seed with the first one (McNemar's exact test)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from eval.evaluation import EvalSpec, default_out_dir, run_eval
    from harness.cli.commands.flags import flag_names
    from harness.core.errors import UserError

    check_counts(args, ("n_envs", "workers"))
    if args.record < 0:
        raise UserError(f"--record must be >= 0, got {args.record}")
    checkpoint = args.checkpoint if args.checkpoint == "scripted" else str(Path(args.checkpoint))
    with flag_names(SPEC_FLAGS):
        spec = EvalSpec(checkpoint=checkpoint, env=args.env, trials=args.trials, seed=args.seed,
                        time_limit=args.time_limit, num_steps=args.num_steps, sampler=args.sampler,
                        inference_batch=args.inference_batch, visual=args.visual)
    if checkpoint == "scripted" and (args.num_steps is not None or args.sampler is not None):
        raise UserError("--num-steps and --sampler need a diffusion checkpoint")
    if Path(checkpoint).is_dir() and (args.num_steps is not None or args.sampler is not None):
        raise UserError(f"{checkpoint}: --num-steps and --sampler apply to our checkpoints; a LeRobot policy's "
                        "sampler is set in its config.json")
    _check_env(args.env)
    device = _check_device(args.device)     # before anything is written: a bad device must not claim --out
    out = Path(args.out) if args.out else (Path("runs/scripted/eval") / f"{args.env}-s{args.seed}-n{args.trials}"
                                           if checkpoint == "scripted" else default_out_dir(checkpoint, spec))
    versus = _versus(args.versus, args.env, spec.seeds)   # bad folders: one line, before anything is written
    summary = run_eval(spec, out, n_envs=args.n_envs, workers=args.workers, device=device,
                       record=args.record, progress=not args.no_progress)
    print("\n".join(summary.lines()))
    print(f"written    {out}/summary.json, trials.csv")
    if versus:
        from eval.paired import paired_table, read_versus
        rows = [*versus, read_versus(out, args.env, spec.seeds)]
        print(paired_table(rows, baseline=rows[0][0]), end="")
    return 0


def _versus(folders, env: str, seeds) -> list:
    """--versus: (label, records) of each evaluation folder, checked (eval/paired.py)."""
    if not folders:
        return []
    from eval.paired import read_versus
    return [read_versus(folder, env, seeds) for folder in folders]


# EvalSpec keys -> the flags that set them (the bounds live in EvalSpec, the flags only name them)
SPEC_FLAGS = {"trials": "--trials", "seed": "--seed", "time_limit": "--time-limit", "num_steps": "--num-steps",
              "inference_batch": "--inference-batch", "visual": "--visual"}


def add_inference_batch(parser) -> None:
    """--inference-batch, shared with `cotrain curve`."""
    from eval.evaluation import INFERENCE_BATCH
    parser.add_argument("--inference-batch", type=int, default=INFERENCE_BATCH, metavar="K",
                        help=f"query the policy in batches of exactly K rows, padded, so that a trial's result does "
                             f"not depend on --n-envs, --workers or a resume (default {INFERENCE_BATCH}; 0: the "
                             "natural batch, faster, as evaluations before 2026-12-03)")


def check_counts(args, flags) -> None:
    """Every named flag must be >= 1 and within eval.evaluation's bound (one line naming the flag otherwise);
    shared with `cotrain curve`."""
    from eval.evaluation import MAX_N_ENVS, MAX_TRIALS
    from harness.core.configs import MAX_WORKERS
    from harness.core.errors import UserError
    bounds = {"trials": MAX_TRIALS, "n_envs": MAX_N_ENVS, "workers": MAX_WORKERS}
    for flag in flags:
        if not 1 <= getattr(args, flag) <= bounds.get(flag, float("inf")):
            raise UserError(f"--{flag.replace('_', '-')} must be in [1, {bounds.get(flag, 'inf')}], "
                            f"got {getattr(args, flag)}")


def _check_device(name: str) -> str:
    """--device -> a device torch can use here ("auto": cuda when present, else cpu); refused if it cannot."""
    if name == "cpu":
        return name                 # (no torch import: the scripted policy does not need it)
    from harness.core.errors import ConfigError, UserError
    from harness.learning.device import resolve_device
    try:
        return str(resolve_device(name))
    except ConfigError as exc:
        raise UserError(f"--device {name}: {exc.problem}") from None


def _check_env(name: str) -> None:
    """Fail early (before spawning workers) on an unknown preset, naming the flag."""
    from harness.core.errors import UserError
    from sim_envs.config import load_preset
    try:
        load_preset(name)
    except UserError as exc:
        raise UserError(f"--env: {exc}") from None
