"""`cotrain plan --seed S --out plan.npz [--show [PNG]]`: plan one start pose with the GCS planner."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from harness.core.errors import UserError
from harness.core.locks import check_output_file



def add_arguments(parser) -> None:
    parser.add_argument("--seed", type=int, help="start pose sample_initial_pose(SEED)")
    parser.add_argument("--start", type=float, nargs=3, metavar=("X", "Y", "THETA"),
                        help="explicit start slider pose instead of --seed (theta in rad)")
    parser.add_argument("--out", default="plan.npz", help="plan file to write (default plan.npz)")
    parser.add_argument("--show", nargs="?", const="", default=None, metavar="PNG",
                        help="draw the plan: into PNG if given, else next to --out as .png")
    parser.add_argument("--config", help="planner config YAML (gcs_planner.config.PlannerConfig)")
    parser.add_argument("overrides", nargs="*", help="planner config overrides key=value")


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from gcs_planner.config import PlannerConfig
    from gcs_planner.planner import Planner
    from gcs_planner.show import plot_plan
    from harness.core.configs import load_config
    from sim_envs.initial_states import sample_initial_pose

    if (args.seed is None) == (args.start is None):
        raise UserError("give exactly one of --seed S or --start X Y THETA")
    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise UserError(f"--out {out}: plan files end in .npz")
    check_output_file(out, "--out")
    if args.show:
        check_output_file(Path(args.show), "--show")
    if args.start is not None:
        _check_start(args.start)
    cfg = load_config(PlannerConfig, args.config, args.overrides)
    logging.getLogger("drake").setLevel(logging.WARNING)
    start = sample_initial_pose(args.seed) if args.seed is not None else np.array(args.start)
    result = Planner(cfg).plan(start, {"seed": -1 if args.seed is None else args.seed})
    for line in result.attempts:
        print(line)
    if not result.ok:
        print(f"no plan found for start {np.round(start, 4).tolist()}: {result.failure} "
              f"({result.solve_time:.2f} s)")
        return 1
    plan = result.plan
    plan.save(out)
    print(result.verdict.summary())
    print(f"start {np.round(start, 4).tolist()}: {len(plan.push_face)} pushes, duration {plan.duration:.1f} s, "
          f"cost {plan.info['cost']:.3f}, solved in {result.solve_time:.2f} s -> {out}")
    if args.show is not None:
        png = Path(args.show) if args.show else out.with_suffix(".png")
        plot_plan(plan, png, title=f"seed {args.seed}" if args.seed is not None else "")
        print(f"figure -> {png}")
    return 0


def _check_start(start) -> None:
    """--start must be finite and put the whole T inside the workspace (what the planner plans in)."""
    # imported when the command runs: its --help loads this module for the flags alone
    from sim_envs.geometry import T_SLIDER, TASK, in_workspace, to_world
    if not all(math.isfinite(v) for v in start):
        raise UserError(f"--start: X Y THETA must be finite numbers, got {' '.join(str(v) for v in start)}")
    corners = to_world(np.asarray(start, float), T_SLIDER.outline())
    if not all(in_workspace((cx, cy, 0.0)) for cx, cy in corners):
        x0, x1, y0, y1 = TASK.workspace
        raise UserError(f"--start {start[0]:g} {start[1]:g} {start[2]:g}: the T must lie inside the workspace "
                        f"x {x0:g}..{x1:g}, y {y0:g}..{y1:g} m")

