"""`cotrain teleop --env target --out data/teleop.zarr`: push the T yourself from a browser (Meshcat)."""
from __future__ import annotations

import math
from pathlib import Path

from harness.core.errors import UserError



def add_arguments(parser) -> None:
    parser.add_argument("--env", default="target", help="physics preset (default target)")
    parser.add_argument("--out", required=True, help="output store (.zarr folder); new episodes are appended")
    parser.add_argument("--seed", type=int, default=0, help="first start seed; seeds already in the store are skipped")
    parser.add_argument("--port", type=int, default=None, help="Meshcat port (default: first free from 7000)")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="also record top-down camera images of this size")
    parser.add_argument("--max-speed", type=float, default=0.25, help="pusher speed limit in m/s (default 0.25)")


def run(args) -> int:
    if not (math.isfinite(args.max_speed) and args.max_speed > 0):
        raise UserError(f"--max-speed must be a positive speed in m/s, got {args.max_speed}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.port is not None and not 1 <= args.port <= 65535:
        raise UserError(f"--port must be 1..65535, got {args.port}")
    if args.image_size is not None and not all(8 <= s <= 2048 for s in args.image_size):
        raise UserError(f"--image-size: each side must be 8..2048 pixels, got {args.image_size[0]} {args.image_size[1]}")
    # imported when the command runs: its --help loads this module for the flags alone
    from sim_envs.config import load_preset
    try:
        load_preset(args.env)              # unknown preset: one line, before Meshcat starts or a store is made
    except UserError as exc:
        raise UserError(f"--env: {exc}") from None
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out}: exists and is not a dataset store folder")
    # imported when the command runs: its --help loads this module for the flags alone
    from real_data.teleop.browser import run_browser_teleop
    summary = run_browser_teleop(args.env, args.out, seed=args.seed, port=args.port,
                                 image_size=args.image_size, max_speed=args.max_speed)
    print("\n".join(summary.lines()))
    return 0
