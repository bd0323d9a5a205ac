"""`cotrain import SRC --format FORMAT --out data/real.zarr [--map mapping.yaml]`: real robot logs -> dataset.
Prints what became of every source key (and any warning)."""
from __future__ import annotations

from tqdm import tqdm

from real_data.importers import FORMATS, import_logs



def add_arguments(parser) -> None:
    parser.add_argument("src", help="source: a zarr ReplayBuffer folder, .zarr.zip or zip of a store folder "
                                    "(pusht.zip), or a LeRobot dataset folder (v2.0, v2.1, v3.0)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="layout of the source")
    parser.add_argument("--out", required=True, help="output store (.zarr folder); must not exist unless --overwrite")
    parser.add_argument("--map", dest="mapping", default=None,
                        help="YAML mapping: source key (columns, scale, offset) for agent_pos, slider_pose, action; "
                             "image; rate_hz; extras; drop (docs/data.md)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output store")


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.core.locks import check_writable

    check_writable(args.out, inputs=[args.src])   # before reading a possibly large source; never inside it
    summary = import_logs(args.src, args.format, args.out, mapping_path=args.mapping, overwrite=args.overwrite,
                          progress=tqdm)
    print("\n".join(summary.lines()))
    return 0
