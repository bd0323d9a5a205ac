"""`cotrain export STORE --format lerobot --out DIR`: a dataset store as a LeRobot v3.0 dataset."""
from __future__ import annotations

from tqdm import tqdm

from real_data.exporters import FORMATS, export_lerobot
from real_data.exporters.lerobot import IMAGE_MODES



def add_arguments(parser) -> None:
    parser.add_argument("store", help="dataset store (.zarr folder)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="format to write")
    parser.add_argument("--out", required=True,
                        help="output folder; must not exist or be empty (an earlier export of the same store "
                             "with the same settings is left as it is)")
    parser.add_argument("--images", choices=IMAGE_MODES, default="video",
                        help="cameras as h264 video files (default, as LeRobot records) or as lossless PNG "
                             "images in the frame parquet")
    parser.add_argument("--task", default=None,
                        help="task text for every frame (default: the store's imported task texts, else a "
                             "description of the push-T task)")


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.core.locks import check_writable

    check_writable(args.out, inputs=[args.store])   # before encoding anything; never inside its store
    summary = export_lerobot(args.store, args.out, images=args.images, task=args.task, progress=tqdm)
    print("\n".join(summary.lines()))
    return 0
