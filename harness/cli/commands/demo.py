"""`cotrain demo`: the small study end to end (experiments/demo.yaml), on this machine's CPU."""
from __future__ import annotations

from pathlib import Path


DEMO = Path(__file__).resolve().parents[3] / "experiments" / "demo.yaml"   # harness/cli/commands/ -> repo


def add_arguments(parser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="study overrides, e.g. eval.trials=20 (see experiments/demo.yaml)")
    parser.add_argument("--experiment", default=str(DEMO), help="experiment YAML (default experiments/demo.yaml)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.cli.commands.compare import _finish
    from harness.study import load_study, run_study

    cfg = load_study(args.experiment, args.overrides)
    return _finish(run_study(cfg, progress=not args.no_progress))
