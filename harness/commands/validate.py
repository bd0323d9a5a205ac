"""`cotrain validate PATH`: check a store against the format and print its summary."""
from __future__ import annotations

from harness.data.store import validate



def add_arguments(parser) -> None:
    parser.add_argument("path", help="dataset store (.zarr folder)")


def run(args) -> int:
    summary = validate(args.path)
    print("\n".join(summary.lines()))
    print("valid")
    return 0
