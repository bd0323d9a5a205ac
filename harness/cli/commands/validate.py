"""`cotrain validate PATH [--repair]`: check a store against the format and print its summary."""
from __future__ import annotations

from harness.core.store import validate



def add_arguments(parser) -> None:
    parser.add_argument("path", help="dataset store (.zarr folder)")
    parser.add_argument("--repair", action="store_true",
                        help="first cut off an uncommitted tail left by an interrupted writer (steps after the "
                             "last episode), which diffusion_policy's ReplayBuffer refuses")


def run(args) -> int:
    if args.repair:
        # imported when the command runs: its --help loads this module for the flags alone
        from harness.core.writer import repair
        removed = repair(args.path)
        if removed:
            print("repaired   cut off " + ", ".join(f"{n} from {k}" for k, n in removed.items()))
        else:
            print("repaired   nothing to cut off")
    summary = validate(args.path)
    print("\n".join(summary.lines()))
    print("valid")
    return 0
