"""`cotrain annotate --clean A --corrupt B --out annotations.zarr`: per-window sigma_n for corrupt data.

Beside the store: `<stem>.accuracy.png` and `<stem>.sigma_n_hist.png` with their CSVs (drawn here from the
store by eval.plots, the one home of the plots).
"""
from __future__ import annotations

from pathlib import Path



def add_arguments(parser) -> None:
    parser.add_argument("--clean", nargs="+", required=True, help="clean dataset store(s) (target / real)")
    parser.add_argument("--corrupt", nargs="+", required=True, help="corrupt dataset store(s) (sim)")
    parser.add_argument("--out", required=True, help="annotations store to write (.zarr)")
    parser.add_argument("--config", default=None, help="annotate config YAML (AnnotateConfig fields)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. steps=500 eps=0.05")


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from eval.plots import annotation_plot_paths, plot_annotations
    from harness.core.locks import check_output_file
    from harness.learning.annotations import read_annotations
    from harness.learning.classifier import AnnotateConfig, annotate, annotation_summary
    from harness.core.configs import load_config

    # `--corrupt sim.zarr steps=500`: argparse hands key=value items after a list option to the list
    listed = args.clean + args.corrupt
    overrides = [p for p in listed if "=" in p] + list(args.overrides)
    clean = [p for p in args.clean if "=" not in p]
    corrupt = [p for p in args.corrupt if "=" not in p]
    cfg = load_config(AnnotateConfig, args.config, overrides)
    if not Path(args.out).exists():   # a new store: the figure files beside it must be new too
        for png in annotation_plot_paths(args.out):
            for path in (png, png.with_suffix(".csv")):
                check_output_file(path, f"--out {args.out}: the figure beside it,")
    out = annotate(clean, corrupt, args.out, cfg)
    ann = read_annotations(out)
    figures = plot_annotations(ann, *annotation_plot_paths(out))   # the figures (+ their CSVs) beside the store
    print(f"annotations {out}")
    print("sigma      " + " ".join(f"{s:7.3g}" for s in ann.sigma_grid))
    print("accuracy   " + " ".join(f"{a:7.3f}" for a in ann.accuracy))
    for line in annotation_summary(ann):
        print(line)
    for path in figures:
        print(f"written     {path} (+ {path.with_suffix('.csv').name})")
    return 0
