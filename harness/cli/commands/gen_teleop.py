"""`cotrain gen-teleop --num 50 --env target --out data/target.zarr`: scripted human-like teleop demos.

Its flags read as gen-sim's: --num, --seed, --workers and --executor default to the generator config's
(GenTeleopConfig: 50 episodes, seed 0, 2 workers, local), --env sets `env` at the top of the --config file
(the teleoperator's; the store records it as teleop.env)."""
from __future__ import annotations

from pathlib import Path

from harness.core.configs import load_config
from harness.core.errors import UserError



def add_arguments(parser) -> None:
    parser.add_argument("--num", type=int, default=None,
                        help="fill the store up to this many episodes: seeds seed .. seed+num-1, as gen-sim "
                             "(default 50)")
    parser.add_argument("--env", default=None, help="physics preset (default: the config's, 'target')")
    parser.add_argument("--out", required=True,
                        help="output store (.zarr folder); re-running with the same settings resumes it, "
                             "with other settings (except --num, --workers) is refused")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default 0); seeds seed, seed+1, ...")
    parser.add_argument("--workers", type=int, default=None, help="processes (default 2)")
    parser.add_argument("--executor", choices=["local", "ray"], default=None,
                        help="ray: seeds run as Ray tasks (on RAY_ADDRESS's cluster, else a local Ray); "
                             "the store is the same as a local run's")
    parser.add_argument("--config", default=None, help="YAML teleoperator config (strategy, human traits)")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="also record top-down camera images of this size")
    parser.add_argument("--visual", default=None,
                        help="visual preset (sim_envs/visuals/: sim, target, sim_96, target_96): its look, and its "
                             "cameras recorded as data/image.<camera>")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. human.pause_prob=0 strategy.push_speed_max=0.05")


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.cli.commands.flags import flag_names
    from harness.core.configs import from_dict, to_dict
    from real_data.teleop.generate import GenTeleopConfig, fill_store
    from real_data.teleop.scripted import TeleopConfig
    from sim_envs.config import load_preset

    overrides = list(args.overrides)
    if args.env is not None:
        overrides.append(f"env={args.env}")
    if args.image_size is not None:
        overrides.append(f"image_size=[{args.image_size[0]}, {args.image_size[1]}]")
    if args.visual is not None:
        overrides.append(f"visual={args.visual}")
    flags = {"image_size": "--image-size"} if args.image_size is not None else {}
    with flag_names({**flags, **({"visual": "--visual"} if args.visual is not None else {})}):
        teleop = load_config(TeleopConfig, args.config, overrides)
    flags = {"num": args.num, "seed": args.seed, "workers": args.workers, "executor": args.executor}
    given = {k: v for k, v in flags.items() if v is not None}   # the others: GenTeleopConfig's defaults
    with flag_names({k: f"--{k}" for k in given}):
        cfg = from_dict(GenTeleopConfig, {**given, "teleop": to_dict(teleop)}, "gen-teleop")
    try:
        load_preset(cfg.env)            # unknown preset: one line, before the store is made
    except UserError as exc:
        raise UserError(f"env (--env): {exc}") from None
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out}: exists and is not a dataset store folder")
    summary = fill_store(args.out, cfg, progress=not args.no_progress)
    print("\n".join(summary.lines()))
    return 0
