"""`cotrain compare EXPERIMENT.yaml [key=value ...]`: run (or resume) a whole comparison study."""
from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("experiment", help="experiment YAML (see experiments/)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="study overrides, e.g. eval.trials=50 seeds=[0] train.run.steps=500")
    parser.add_argument("--report-only", action="store_true",
                        help="only rewrite the table and plots from the runs that have finished")
    parser.add_argument("--export-outcomes", metavar="DIR", type=Path,
                        help="copy every finished run's outcomes (trials, run.json; no weights) and the study's "
                             "normalizer and data fingerprint into the new folder DIR, and stop")
    parser.add_argument("--import-outcomes", metavar="DIR", type=Path,
                        help="put the outcomes exported to DIR into this study's folder, and stop: the next "
                             "`cotrain compare` trains only the runs that are missing, and reports all of them")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.core.errors import UserError, named_config_errors
    from harness.study import load_study, report_only, run_study
    from harness.study.outcomes import export_outcomes, import_outcomes

    modes = [flag for flag, on in (("--report-only", args.report_only), ("--export-outcomes", args.export_outcomes),
                                   ("--import-outcomes", args.import_outcomes)) if on]
    if len(modes) > 1:
        raise UserError(f"{' and '.join(modes)}: give one of them")
    cfg = load_study(args.experiment, args.overrides)
    if args.export_outcomes:
        runs, dest = export_outcomes(cfg, args.export_outcomes)
        print(f"exported   {runs} finished runs of {cfg.out} to {dest} (no weights)")
        return 0
    if args.import_outcomes:
        imported, kept = import_outcomes(cfg, args.import_outcomes)
        print(f"imported   {imported} finished runs into {cfg.out}" + (f"; {kept} were here already, kept" if kept else "")
              + f"\nnext: cotrain compare {args.experiment} (trains what is missing) or --report-only")
        return 0
    with named_config_errors(args.experiment, generic="experiment"):   # errors found while planning name the file
        result = report_only(cfg) if args.report_only else run_study(cfg, progress=not args.no_progress)
    return _finish(result)


def _finish(result) -> int:
    """Print the table, the files and the table in words; exit status 1 if any job failed (the others are kept)."""
    report = result.report
    if report is not None:
        print()
        print(report.table)
        for path in report.files:
            print(f"written    {path}")
        for line in report.failed_plots:   # the table and the other plots are written all the same
            print(f"plot failed {line}")
    for job in result.failed:
        print(f"failed     {job.key}: {job.error.splitlines()[0]}")
    if result.failed:
        print("re-run the same command to retry the failed jobs; finished work is kept")
        return 1
    if report is not None and report.summary:
        print(f"\n{report.summary} Table and plots: {report.plots.parent}/table.md, {report.plots}/")
    return 0
