"""`cotrain corrupt SRC --out DST --transform T --level L --seed S`: a corrupt copy of a store (resumable).

The level is in normalized action units: those of `--normalizer FILE` (a study's normalizer.json), else the
source's own fit, the one a study makes of clean data (its 0.5..99.5th action percentiles -> [-1, 1], over
the episodes a study would use: successful ones, the first --num). The fit needs harness.learning (layer 3),
so it is made here and handed to the generator (real_data/corruption, layer 2) as plain numbers.
"""
from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("source", metavar="SRC", help="the dataset store whose episodes are corrupted")
    parser.add_argument("--out", required=True,
                        help="output store (.zarr folder); re-running with the same settings resumes it, with "
                             "other settings (or into a store it did not make) is refused")
    parser.add_argument("--transform", required=True,
                        help="gaussian | jitter | drift | latency | bias (docs/objectives.md section 16)")
    parser.add_argument("--level", required=True,
                        help="noise level in normalized action units (latency: control steps)")
    parser.add_argument("--seed", type=int, default=0, help="episode i's noise: default_rng([seed, i]) (default 0)")
    parser.add_argument("--num", type=int, default=None, help="corrupt the first N episodes (default: all)")
    parser.add_argument("--cutoff-hz", default=None,
                        help="jitter: noise only above this frequency (default 2); drift: only below (default 0.5)")
    parser.add_argument("--normalizer", default=None,
                        help="normalizer JSON whose action units the level is in (default: the source's own fit)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.cli.commands.flags import flag_names
    from harness.core.configs import from_dict
    from harness.core.errors import UserError
    from harness.study.jobs import corruption_units
    from real_data.corruption.generate import CorruptConfig, check_out, fill_store, open_source

    settings = {"source": args.source, "transform": args.transform, "level": args.level, "seed": args.seed,
                "num": args.num, "cutoff_hz": args.cutoff_hz}
    flags = {"transform": "--transform", "level": "--level", "seed": "--seed", "num": "--num",
             "cutoff_hz": "--cutoff-hz"}
    with flag_names(flags):
        cfg = from_dict(CorruptConfig, settings, "corrupt")    # every value checked before any file is read
    out = Path(args.out)
    check_out(out, Path(cfg.source))
    _, num = open_source(cfg)
    if args.normalizer is not None:
        # imported when the command runs: its --help loads this module for the flags alone
        from harness.learning.normalizer import load_normalizer
        units = load_normalizer(args.normalizer).action.state()
    else:
        units = corruption_units([{"path": cfg.source, "max_episodes": num}])
    try:
        cfg = from_dict(CorruptConfig, {**settings, "num": num, "units": units}, "corrupt")
    except UserError as exc:
        raise UserError(f"--normalizer {args.normalizer or '(the source fit)'}: {exc}") from None
    summary = fill_store(out, cfg, progress=not args.no_progress)
    print("\n".join(summary.lines()))
    return 0
