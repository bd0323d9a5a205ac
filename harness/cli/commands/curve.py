"""`cotrain curve`: success rate against one setting, each point a full `cotrain eval` (resumable).

    cotrain curve steps RUN/checkpoints/final.pt --values 3 5 8 16 --trials 200 [--sampler ddim]
        success versus the sampler's steps per chunk for one checkpoint (Heun steps under EDM, DDPM/DDIM
        inference steps under DDPM): the evidence for diffusion.num_steps. `heun` is the same curve.
    cotrain curve training RUN --num-steps 8 --trials 200
        success versus training steps: every policy snapshot of a run (run.snapshot_every) and final.pt,
        a learning curve (is the budget enough?)
    cotrain curve loss RUN [RUN ...] --out loss.png
        held-out loss versus the noise level sigma of each finished run's EMA weights, on each source's
        held-out windows (harness/learning/held_out.py): where in sigma a row is good, so a row's shortfall
        can be traced to a band of noise levels. No rollouts; seconds per run.

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
    parser.add_argument("kind", choices=["steps", "heun", "training", "loss"],
                        help="steps (or heun): vs sampler steps per chunk; training: vs training steps; "
                             "loss: held-out loss vs noise level")
    parser.add_argument("target", nargs="+",
                        help="steps: a checkpoint (.pt); training: a run folder with checkpoints/step_*.pt; "
                             "loss: one or more finished run folders (a study's runs/<row>/seed<k>, or a "
                             "training folder)")
    parser.add_argument("--values", type=int, nargs="+", default=[3, 5, 8, 16],
                        help="steps: the step counts to evaluate (default 3 5 8 16)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=None,
                        help="loss: the noise levels (default 13 from 0.003 to 3, evenly in log sigma)")
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
    parser.add_argument("--out", default=None, help="plot path (default <run>/eval/curve-<kind>.png, loss: "
                        "<run>/curve-loss.png of its one run; CSV beside)")
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.cli.commands.eval import add_inference_batch
    add_inference_batch(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def points_to_run(args) -> list[tuple[int, Path, int | None]]:
    """(x, checkpoint, num_steps) per point of the curve."""
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.learning.checkpoint import list_snapshots, read_checkpoint
    from harness.core.errors import UserError
    target = Path(args.target[0])
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


def check_plot_path(out: str) -> None:
    """--out names a new plot file (and a new CSV beside it), in a format matplotlib writes."""
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.core.errors import UserError
    from harness.core.locks import check_output_file
    if Path(out).suffix.lower() not in PLOT_SUFFIXES:
        raise UserError(f"--out {out}: a plot is written as {', '.join(PLOT_SUFFIXES)}; "
                        f"got {Path(out).suffix or 'no suffix'}")
    check_output_file(Path(out), "--out")
    check_output_file(Path(out).with_suffix(".csv"), "--out (its CSV)")


def run_label(folder: Path) -> str:
    """A run's name in the plot: a study's <row>/seed<k>, else the folder's name."""
    parts = folder.parts[:-1] if folder.name == "train" else folder.parts
    return "/".join(parts[-2:]) if parts and parts[-1].startswith("seed") else parts[-1]


def run_loss(args) -> int:
    """`cotrain curve loss`: each run's held-out loss at each sigma, printed, plotted and written as CSV."""
    # imported when the command runs: its --help loads this module for the flags alone
    from eval.plots import plot_loss_by_sigma
    from harness.core.errors import UserError
    from harness.learning.held_out import default_sigmas, losses_by_sigma, run_train_dir

    sigmas = default_sigmas() if args.sigmas is None else sorted(set(args.sigmas))
    if not all(s > 0 and s < float("inf") for s in sigmas):
        raise UserError(f"--sigmas must all be finite and > 0, got {args.sigmas}")
    folders = [Path(t) for t in args.target]
    train_dirs = [run_train_dir(f) for f in folders]     # every folder checked before the first is read
    if args.out is None and len(folders) > 1:
        raise UserError("curve loss of several runs: name the plot with --out (a CSV is written beside it)")
    out = Path(args.out) if args.out else train_dirs[0] / "curve-loss.png"
    check_plot_path(str(out))
    labels = [run_label(f.resolve()) for f in folders]
    if len(set(labels)) < len(labels):
        labels = [str(f) for f in folders]
    curves = {label: losses_by_sigma(train_dir, sigmas) for label, train_dir in zip(labels, train_dirs)}
    width = max(len(label) for label in labels) + 2
    for source in dict.fromkeys(src for by_source in curves.values() for src in by_source):
        print(f"held-out windows of {source}: loss at each sigma")
        print("sigma".ljust(width) + " ".join(f"{s:7.3g}" for s in sigmas))
        for label, by_source in curves.items():
            if source in by_source:
                print(label.ljust(width) + " ".join(f"{v:7.3f}" for v in by_source[source]))
    plot_loss_by_sigma(sigmas, curves, out)
    print(f"written    {out} and {out.with_suffix('.csv')}")
    return 0


def run(args) -> int:
    if args.kind == "loss":      # no rollouts: none of the evaluation's imports
        return run_loss(args)
    # imported when the command runs: its --help loads this module for the flags alone
    from eval.evaluation import default_out_dir, run_eval
    from eval.plots import plot_success_curve
    from harness.cli.commands.eval import eval_settings
    from harness.core.errors import UserError
    from harness.learning.policy import load_policy

    if len(args.target) != 1:
        raise UserError(f"curve {args.kind}: one target, got {len(args.target)}")

    eval_settings(args)          # every flag checked before the first evaluation runs
    if args.out:                 # the default path is curve's own file in the run's eval folder; checked
        check_plot_path(args.out)   # before the evaluations, not after them
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
    run_dir = Path(args.target[0]).parent.parent if by_steps else Path(args.target[0])
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
