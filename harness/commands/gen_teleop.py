"""`cotrain gen-teleop --num 50 --env target --out data/target.zarr`: scripted human-like teleop demos."""
from __future__ import annotations

from pathlib import Path

from harness.data.configs import load_config
from harness.data.errors import UserError



def add_arguments(parser) -> None:
    parser.add_argument("--num", type=int, required=True,
                        help="fill the store up to this many episodes: seeds seed .. seed+num-1 (as gen-sim)")
    parser.add_argument("--env", default=None, help="physics preset (default: the config's, 'target')")
    parser.add_argument("--out", required=True,
                        help="output store (.zarr folder); re-running with the same settings resumes it, "
                             "with other settings (except --num, --workers) is refused")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0); seeds seed, seed+1, ...")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--executor", choices=["local", "ray"], default="local",
                        help="ray: seeds run as Ray tasks (on RAY_ADDRESS's cluster, else a local Ray); "
                             "the store is the same as a local run's")
    parser.add_argument("--config", default=None, help="YAML teleoperator config (strategy, human traits)")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="also record top-down camera images of this size")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. human.pause_prob=0 strategy.push_speed_max=0.05")


def run(args) -> int:
    from harness.data.configs import MAX_EPISODES, MAX_SEED, MAX_WORKERS
    from real_data.teleop.generate import generate
    from real_data.teleop.scripted import TeleopConfig

    if not 1 <= args.num <= MAX_EPISODES:
        raise UserError(f"--num must be in [1, {MAX_EPISODES}], got {args.num}")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise UserError(f"--workers must be in [1, {MAX_WORKERS}], got {args.workers}")
    if not 0 <= args.seed <= MAX_SEED - args.num:
        raise UserError(f"--seed must be in [0, {MAX_SEED} - num], got {args.seed}")
    overrides = list(args.overrides)
    if args.env is not None:
        overrides.append(f"env={args.env}")
    if args.image_size is not None:
        if not all(8 <= s <= 2048 for s in args.image_size):
            raise UserError(f"--image-size: each side must be 8..2048 pixels, got {args.image_size[0]} {args.image_size[1]}")
        overrides.append(f"image_size=[{args.image_size[0]}, {args.image_size[1]}]")
    config = load_config(TeleopConfig, args.config, overrides)
    from sim_envs.config import load_preset
    try:
        load_preset(config.env)            # unknown preset: one line, before the store is made
    except UserError as exc:
        raise UserError(f"env (--env): {exc}") from None
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out}: exists and is not a dataset store folder")
    summary = generate(args.out, args.num, config, seed=args.seed, workers=args.workers, executor=args.executor,
                       progress=not args.no_progress)
    print("\n".join(summary.lines()))
    return 0
