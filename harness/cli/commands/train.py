"""`cotrain train CONFIG [key=value ...]`: train one policy (resumes an interrupted run in out_dir)."""
from __future__ import annotations

import os



def add_arguments(parser) -> None:
    parser.add_argument("config", help="train config YAML (see configs/train_*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. run.steps=2000 objective.alpha=0.5")


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.core.configs import load_config
    from harness.core.errors import named_config_errors
    from harness.learning.train_config import TrainConfig
    from harness.learning.training import train

    cfg = load_config(TrainConfig, args.config, args.overrides)
    with named_config_errors(args.config):
        path = train(cfg)
    if os.environ.get("RANK", "0") == "0":  # one line, also under torchrun
        print(f"checkpoint {path}")
    return 0
