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
    # imported when the command runs: its --help loads this module for the flags alone
    from eval.evaluation import default_out_dir, run_eval
    from harness.core.errors import UserError

    checkpoint = args.checkpoint if args.checkpoint == "scripted" else str(Path(args.checkpoint))
    # every flag checked before anything is written (a bad device must not claim --out)
    settings = eval_settings(args, num_steps=args.num_steps, visual=args.visual, device=args.device,
                             record=args.record)
    if checkpoint == "scripted" and (args.num_steps is not None or args.sampler is not None):
        raise UserError("--num-steps and --sampler need a diffusion checkpoint")
    if Path(checkpoint).is_dir() and (args.num_steps is not None or args.sampler is not None):
        raise UserError(f"{checkpoint}: --num-steps and --sampler apply to our checkpoints; a LeRobot policy's "
                        "sampler is set in its config.json")
    out = Path(args.out) if args.out else (Path("runs/scripted/eval") / f"{args.env}-s{args.seed}-n{args.trials}"
                                           if checkpoint == "scripted" else default_out_dir(checkpoint, settings))
    versus = _versus(args.versus, args.env, settings.seeds)   # bad folders: one line, before anything is written
    summary = run_eval(checkpoint, settings, out, progress=not args.no_progress)
    print("\n".join(summary.lines()))
    print(f"written    {out}/summary.json, trials.csv")
    if versus:
        # imported when the command runs: its --help loads this module for the flags alone
        from eval.paired import paired_table, read_versus
        rows = [*versus, read_versus(out, args.env, settings.seeds)]
        print(paired_table(rows, baseline=rows[0][0]), end="")
    return 0


def _versus(folders, env: str, seeds) -> list:
    """--versus: (label, records) of each evaluation folder, checked (eval/paired.py)."""
    if not folders:
        return []
    # imported when the command runs: its --help loads this module for the flags alone
    from eval.paired import read_versus
    return [read_versus(folder, env, seeds) for folder in folders]


# EvalSettings keys -> the flags that set them (the bounds live in EvalSettings, the flags only name them)
SETTINGS_FLAGS = {f"eval.{k}": f"--{k.replace('_', '-')}" for k in (
    "env", "trials", "seed", "time_limit", "num_steps", "sampler", "inference_batch", "visual", "n_envs", "workers",
    "device", "record")}


def eval_settings(args, **fields):
    """The EvalSettings of the flags `cotrain eval` and `cotrain curve` share (env, trials, seed, time limit,
    sampler, inference batch, envs and workers), with `fields` on top; a broken bound is one line naming its
    flag, from EvalSettings' own check. Shared with `cotrain curve`."""
    # imported when the command runs: its --help loads this module for the flags alone
    from eval.evaluation import EvalSettings
    from harness.cli.commands.flags import flag_names
    from harness.core.errors import ConfigError
    values = {"env": args.env, "trials": args.trials, "seed": args.seed, "time_limit": args.time_limit,
              "sampler": args.sampler, "inference_batch": args.inference_batch, "n_envs": args.n_envs,
              "workers": args.workers, **fields}
    with flag_names(SETTINGS_FLAGS):
        try:
            return EvalSettings(**values)
        except ValueError as exc:   # (built from flags, not loaded by from_dict, which would wrap it so)
            raise ConfigError("command line", None, str(exc)) from None


def add_inference_batch(parser) -> None:
    """--inference-batch, shared with `cotrain curve`."""
    # imported when the command runs: its --help loads this module for the flags alone
    from eval.evaluation import INFERENCE_BATCH
    parser.add_argument("--inference-batch", type=int, default=INFERENCE_BATCH, metavar="K",
                        help=f"query the policy in batches of exactly K rows, padded, so that a trial's result does "
                             f"not depend on --n-envs, --workers or a resume (default {INFERENCE_BATCH}; 0: the "
                             "natural batch, faster, as evaluations before 2026-12-03)")
