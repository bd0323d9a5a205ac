"""The study's report: table.md / table.csv and the plots, from finished runs, datasets and annotations.

Kept apart from the runner so it can be re-made from the files alone (`cotrain compare --report-only`):
everything it reads is on disk (each run's eval/trials.csv, the dataset stores, the annotations store).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from eval import plots
from eval.report import RunResult, read_trials_csv, study_table, table_csv, table_markdown
from eval.spectra import dataset_spectrum
from harness.data.atomic import atomic_write_text
from harness.training import SUMMARY_FILE
from harness.study.config import StudyConfig, StudyDataset
from harness.study.plan import RunPlan


def write_report(cfg: StudyConfig, plans: Sequence[RunPlan], annotations: Path | None) -> tuple[str, list[Path]]:
    """Table and plots from whatever runs have finished (all of them after a complete study)."""
    results, missing = collect_results(plans)
    return write_study_report(cfg.out, results, cfg.datasets, annotations, cfg.baseline, cfg.spectra_window,
                              title=f"study {cfg.name}", missing=missing)


def collect_results(plans: Sequence[RunPlan]) -> tuple[list[RunResult], list[str]]:
    """RunResults of the finished runs, and the labels of the missing ones."""
    results, missing = [], []
    for p in plans:
        trials = Path(p.dir) / "eval" / "trials.csv"
        if not (Path(p.dir) / "done").exists() or not trials.is_file():
            missing.append(f"{p.label} seed {p.seed}")
            continue
        summary = Path(p.dir) / "train" / SUMMARY_FILE
        training = json.loads(summary.read_text()) if summary.is_file() else None
        results.append(RunResult(p.method, p.setting, p.seed, read_trials_csv(trials), p.alpha, name=p.label,
                                 training=training))
    return results, missing


def write_study_report(out, results: Sequence[RunResult], datasets: Sequence[StudyDataset],
                       annotations: Path | None, baseline: str, spectra_window: int = 32,
                       title: str = "", missing: Sequence[str] = ()) -> tuple[str, list[Path]]:
    """Write table.md, table.csv and plots/*.png (each with its numbers as .csv) under out.

    Returns (markdown table, files written: the tables and the PNGs).
    """
    out = Path(out)
    files: list[Path] = []
    rows, base_label = study_table(results, baseline)
    md = table_markdown(rows, base_label) if rows else "(no finished runs yet)\n"
    header = f"# {title}\n\n" if title else ""
    note = ""
    if missing:
        note = f"\nNot finished (not in the table): {', '.join(missing)}\n"
    trials = sorted({len(r.records) for r in results})
    legend = ("\nSuccess: pooled over training seeds, each scored on the same start seeds "
              f"({'/'.join(map(str, trials))} trials per seed); interval: Wilson 95%. Paired test: McNemar's "
              f"exact test on (training seed, start seed) pairs against {base_label or 'the baseline'}; wins / "
              "losses count starts that only this method / only the baseline solved. Clean fraction: the share "
              "of training samples that were clean, as realised by the sampler (truncation fills every noise "
              "level where no corrupt window is valid with clean data); clipped steps: the share of optimizer "
              "steps whose gradient norm was clipped (both mean over seeds, from each run's "
              "train/train_summary.json).\n")
    atomic_write_text(out / "table.md", header + md + legend + note)
    atomic_write_text(out / "table.csv", table_csv(rows))
    files += [out / "table.md", out / "table.csv"]

    pdir = out / "plots"
    if rows:
        files.append(plots.plot_success(rows, pdir / "success.png", title))
        alpha_plot = plots.plot_success_vs_alpha(rows, pdir / "success_vs_alpha.png")
        if alpha_plot:
            files.append(alpha_plot)
    scale, sigmas = None, []
    if annotations is not None and Path(annotations).exists():
        from harness.annotations import read_annotations
        files += plots.plot_annotations(annotations, pdir / "classifier_accuracy.png", pdir / "sigma_n_hist.png")
        ann = read_annotations(annotations)
        smin = np.concatenate([d.sigma_n for d in ann.datasets])
        scale = np.asarray(ann.action_normalizer["scale"], float)   # actions -> normalized units
        finite = smin[np.isfinite(smin) & (smin > 0)]
        sigmas = [float(np.median(finite))] if len(finite) else []
    spectra = {}
    for d in datasets:
        spectrum = dataset_spectrum(d.path, d.episodes, spectra_window, scale=scale) \
            if Path(d.path).exists() else None
        if spectrum is not None:
            spectra[f"{d.name} ({d.role})"] = spectrum[:2]
    if spectra:
        files.append(plots.plot_power_spectra(spectra, pdir / "action_spectra.png",
                                              sigmas=sigmas if scale is not None else (),
                                              units="normalized action units" if scale is not None else "m"))
    return md, files

