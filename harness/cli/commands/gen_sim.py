"""`cotrain gen-sim --num N --out data/sim.zarr ...`: GCS plans replayed into a simulated dataset.

Its flags read as gen-teleop's: --num, --seed, --workers and --executor default to the generator config's
(GenSimConfig: 100 demonstrations, seed 0, 2 workers, local), --env sets `env` at the top of the --config file."""
from __future__ import annotations

import logging



def add_arguments(parser) -> None:
    parser.add_argument("--num", type=int, default=None, help="demonstrations to keep (default 100)")
    parser.add_argument("--out", required=True, help="dataset store (.zarr folder); re-running resumes it")
    parser.add_argument("--env", default=None, help="physics preset (default sim)")
    parser.add_argument("--replay", choices=["kinematic", "physics"], default=None,
                        help="kinematic: slider follows the plan; physics: slider moves by simulation")
    parser.add_argument("--workers", type=int, default=None, help="processes (default 2)")
    parser.add_argument("--executor", choices=["local", "ray"], default=None,
                        help="ray: seeds run as Ray tasks (on RAY_ADDRESS's cluster, else a local Ray); "
                             "the store is the same as a local run's")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default 0); seeds seed, seed+1, ...")
    parser.add_argument("--images", action="store_true", help="also record the plain top-down camera (data/image)")
    parser.add_argument("--visual", default=None,
                        help="visual preset (sim_envs/visuals/: sim, target, sim_96, target_96): its look, and its "
                             "cameras recorded as data/image.<camera>")
    parser.add_argument("--keep-failed-replays", action="store_true",
                        help="keep physics replays that miss the goal (meta success=False)")
    parser.add_argument("--config", help="generator config YAML (gcs_planner.generate.GenSimConfig)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. planner.mu=0.3")


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from gcs_planner.generate import GenSimConfig, check_out_path, fill_store
    from harness.core.configs import load_config
    from sim_envs.config import load_preset

    from harness.cli.commands.flags import flag_names
    from harness.core.errors import UserError
    flags = {"num": args.num, "env": args.env, "replay": args.replay, "workers": args.workers,
             "seed": args.seed, "executor": args.executor, "visual": args.visual}
    given = {k: v for k, v in flags.items() if v is not None}
    overrides = [f"{k}={v}" for k, v in given.items()]
    if args.images:
        overrides.append("images=true")
    if args.keep_failed_replays:
        overrides.append("keep_failed_replays=true")
    with flag_names({k: f"--{k}" for k in given}):
        cfg = load_config(GenSimConfig, args.config, [*args.overrides, *overrides])
    try:
        load_preset(cfg.env)                # unknown or bad preset -> one-line error before any work
    except UserError as exc:
        raise UserError(f"env (--env): {exc}") from None
    out = check_out_path(args.out)
    logging.getLogger("drake").setLevel(logging.WARNING)
    try:
        summary = fill_store(out, cfg, progress=not args.no_progress)
    except KeyboardInterrupt as exc:
        if hasattr(exc, "summary"):
            print("\n".join(exc.summary.lines()))
        raise
    for line in summary.lines():
        print(line)
    print(f"dataset -> {out}")
    return 0
