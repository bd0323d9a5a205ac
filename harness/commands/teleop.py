"""`cotrain teleop --env target --out data/teleop.zarr`: push the T yourself from a browser (Meshcat)."""
from __future__ import annotations

from harness.data.errors import UserError



def add_arguments(parser) -> None:
    parser.add_argument("--env", default="target", help="physics preset (default target)")
    parser.add_argument("--out", required=True, help="output store (.zarr folder); new episodes are appended")
    parser.add_argument("--seed", type=int, default=0, help="first start seed; seeds already in the store are skipped")
    parser.add_argument("--port", type=int, default=None, help="Meshcat port (default: first free from 7000)")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="also record top-down camera images of this size")
    parser.add_argument("--max-speed", type=float, default=0.25, help="pusher speed limit in m/s (default 0.25)")


def run(args) -> int:
    from real_data.teleop.browser import run_browser_teleop

    if args.max_speed <= 0:
        raise UserError("--max-speed must be positive")
    summary = run_browser_teleop(args.env, args.out, seed=args.seed, port=args.port,
                                 image_size=args.image_size, max_speed=args.max_speed)
    print("\n".join(summary.lines()))
    return 0
