"""The study's report: table.md / table.csv and the plots, from finished runs, datasets and annotations.

Kept apart from the runner (harness/experiment.py) so it can be re-made from the files alone: everything it
reads is on disk (each run's eval/trials.csv, the dataset stores, the annotations store).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from eval import plots
from eval.report import RunResult, read_trials_csv, study_table, table_csv, table_markdown
from eval.spectra import action_windows, power_spectrum
from harness.data.atomic import atomic_write_text


@dataclasses.dataclass
class DatasetUse:
    name: str
    path: str
    role: str                       # clean | corrupt
    episodes: int | None            # first N episodes used (None = all)


def collect_results(runs: Sequence[dict]) -> tuple[list[RunResult], list[str]]:
    """RunResults of the finished runs; runs: {label, method, setting, alpha, seed, dir}. Also the missing ones."""
    results, missing = [], []
    for r in runs:
        trials = Path(r["dir"]) / "eval" / "trials.csv"
        if not (Path(r["dir"]) / "done").exists() or not trials.is_file():
            missing.append(f"{r['label']} seed {r['seed']}")
            continue
        results.append(RunResult(r["method"], r["setting"], r["seed"], read_trials_csv(trials), r["alpha"],
                                 name=r["label"]))
    return results, missing


def write_study_report(out, results: Sequence[RunResult], datasets: Sequence[DatasetUse],
                       annotations: Path | None, baseline: str = "cotrain", spectra_window: int = 32,
                       title: str = "", missing: Sequence[str] = ()) -> tuple[str, list[Path]]:
    """Write table.md, table.csv and plots/*.png under out; return (markdown table, files written)."""
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
              "losses count starts that only this method / only the baseline solved.\n")
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
        ann = read_annotations(annotations)
        keep = ann.sigma_grid > 0
        files.append(plots.plot_classifier_accuracy(ann.sigma_grid[keep], ann.accuracy[keep],
                                                    pdir / "classifier_accuracy.png",
                                                    threshold=0.5 + float(ann.attrs.get("eps", 0.05))))
        smin = np.concatenate([d.sigma_min for d in ann.datasets])
        files.append(plots.plot_sigma_min_hist(smin, pdir / "sigma_min_hist.png"))
        scale = np.asarray(ann.action_normalizer["scale"], float)   # actions -> normalized units
        finite = smin[np.isfinite(smin) & (smin > 0)]
        sigmas = [float(np.median(finite))] if len(finite) else []
    spectra = dataset_spectra(datasets, spectra_window, scale)
    if spectra:
        files.append(plots.plot_power_spectra(spectra, pdir / "action_spectra.png",
                                              sigmas=sigmas if scale is not None else (),
                                              units="normalized action units" if scale is not None else "m"))
    return md, files


def dataset_spectra(datasets: Sequence[DatasetUse], length: int, scale=None) -> dict:
    """{"name (role)": (freqs, power)} of each dataset's actions, in normalized units when scale is given."""
    from harness.data.store import EpisodeStore
    out = {}
    for d in datasets:
        if not Path(d.path).exists():
            continue
        store = EpisodeStore(d.path)
        n = store.n_episodes if d.episodes is None else min(d.episodes, store.n_episodes)
        episodes = [store.episode(i, ["action"])["action"] for i in range(n)]
        if scale is not None:
            episodes = [a * scale for a in episodes]
        windows = action_windows(episodes, length=length, stride=max(1, length // 4))
        if len(windows):
            out[f"{d.name} ({d.role})"] = power_spectrum(windows)
    return out
