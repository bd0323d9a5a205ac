"""`cotrain curve`: success rate against one setting, each point a full `cotrain eval` (resumable).

    cotrain curve steps RUN/checkpoints/final.pt --values 3 5 8 16 --trials 200 [--sampler ddim]
        success versus the sampler's steps per chunk for one checkpoint (Heun steps under EDM, DDPM/DDIM
        inference steps under DDPM): the evidence for diffusion.num_steps. `heun` is the same curve.
    cotrain curve training RUN --num-steps 8 --trials 200
        success versus training steps: every policy snapshot of a run (run.snapshot_every) and final.pt,
        a learning curve (is the budget enough?)

Every point is an evaluation folder of its own beside the checkpoint (<run>/eval/<env>-s<seed>-n<trials>
[-h<steps>][-<sampler>]), so an interrupted curve resumes and a point already evaluated is not run again.
The curve is written as a plot with its CSV (eval.plots.plot_success_curve), default
<run>/eval/curve-<kind>[-<sampler>].png.
"""
from __future__ import annotations

import os
from pathlib import Path


PLOT_SUFFIXES = (".png", ".pdf", ".svg")   # formats matplotlib writes without extra packages


def add_arguments(parser) -> None:
    parser.add_argument("kind", choices=["steps", "heun", "training"],
                        help="steps (or heun): vs sampler steps per chunk; training: vs training steps")
    parser.add_argument("target", help="steps: a checkpoint (.pt); training: a run folder with checkpoints/step_*.pt")
    parser.add_argument("--values", type=int, nargs="+", default=[3, 5, 8, 16],
                        help="steps: the step counts to evaluate (default 3 5 8 16)")
    parser.add_argument("--num-steps", type=int, default=None,
                        help="training: sampler steps for every snapshot (default: the checkpoint's)")
    parser.add_argument("--sampler", default=None, choices=["heun", "heun_churn", "ddpm", "ddim"],
                        help="sampler of every point, of the checkpoint's formulation (default: the checkpoint's)")
    parser.add_argument("--env", default="target", help="physics preset (default target)")
    parser.add_argument("--trials", type=int, default=200, help="trials per point (default 200)")
    parser.add_argument("--seed", type=int, default=100_000, help="first start seed, shared by every point")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="end trials as timeout after this long (default: the task's 75 s)")
    parser.add_argument("--n-envs", type=int, default=25, help="environments per worker (default 25)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    parser.add_argument("--out", default=None, help="plot path (default <run>/eval/curve-<kind>.png; CSV beside)")
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.cli.commands.eval import add_inference_batch
    add_inference_batch(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def points_to_run(args) -> list[tuple[int, Path, int | None]]:
    """(x, checkpoint, num_steps) per point of the curve."""
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.learning.checkpoint import list_snapshots, read_checkpoint
    from harness.core.errors import UserError
    target = Path(args.target)
    if args.kind in ("steps", "heun"):
        if not target.is_file():
            raise UserError(f"{target}: no such checkpoint")
        if any(v < 1 for v in args.values):
            raise UserError(f"--values must all be >= 1, got {args.values}")
        return [(v, target, v) for v in sorted(set(args.values))]
    folder = target / "checkpoints"
    final = folder / "final.pt"
    if not final.is_file():
        raise UserError(f"{target}: not a finished run folder (no checkpoints/final.pt)")
    if args.num_steps is not None and args.num_steps < 1:
        raise UserError(f"--num-steps must be >= 1, got {args.num_steps}")
    last = int(read_checkpoint(final)["step"])
    return [(step, path, args.num_steps) for step, path in list_snapshots(folder)] + [(last, final, args.num_steps)]


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from eval.evaluation import default_out_dir, run_eval
    from eval.plots import plot_success_curve
    from harness.cli.commands.eval import eval_settings
    from harness.core.errors import UserError
    from harness.core.locks import check_output_file
    from harness.learning.policy import load_policy

    eval_settings(args)          # every flag checked before the first evaluation runs
    if args.out:                 # the default path is curve's own file in the run's eval folder
        if Path(args.out).suffix.lower() not in PLOT_SUFFIXES:   # before the evaluations, not after them
            raise UserError(f"--out {args.out}: a plot is written as {', '.join(PLOT_SUFFIXES)}; "
                            f"got {Path(args.out).suffix or 'no suffix'}")
        check_output_file(Path(args.out), "--out")
        check_output_file(Path(args.out).with_suffix(".csv"), "--out (its CSV)")
    points = points_to_run(args)
    by_steps = args.kind in ("steps", "heun")
    settings = [eval_settings(args, num_steps=num_steps) for _, _, num_steps in points]   # one per point
    results = []
    for (x, checkpoint, _), point in zip(points, settings):
        out = default_out_dir(checkpoint, point)
        if args.kind == "training" and checkpoint.name != "final.pt":   # one folder per snapshot
            out = out.with_name(f"{out.name}-{checkpoint.stem}")
        summary = run_eval(checkpoint, point, out, progress=not args.no_progress)
        rate = summary.success
        results.append((x, rate.successes, rate.trials))
        print(f"{'steps' if by_steps else 'step':>10} {x:>7}  success {rate.fmt()}  ({out})")
    run_dir = Path(args.target).parent.parent if by_steps else Path(args.target)
    suffix = f"-{args.sampler}" if args.sampler else ""
    plot = Path(args.out) if args.out else run_dir / "eval" / f"curve-{args.kind}{suffix}.png"
    if by_steps:
        sampler = args.sampler or load_policy(points[0][1]).sampler.name
        plot_success_curve(results, plot, f"{sampler} steps per action chunk", "success versus sampler steps",
                           log_x=True)
    else:
        plot_success_curve(results, plot, "training steps", "success versus training steps")
    print(f"written    {plot} and {plot.with_suffix('.csv')}")
    return 0
