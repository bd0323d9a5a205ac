"""The study's report: table.md / table.csv and the plots, from finished runs, datasets and annotations.

Kept apart from the runner so it can be re-made from the files alone (`cotrain compare --report-only`):
everything it reads is on disk (each run's eval/trials.csv, the dataset stores, the annotations store).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from eval import plots
from eval.report import read_trials_csv
from eval.spectra import episodes_spectrum
from eval.study_table import RunResult, study_table, table_csv, table_markdown, table_summary
from eval.window_profile import zero_window_profile
from harness.core.atomic import atomic_write_text
from harness.core.store import EpisodeStore
from harness.learning.annotations import AnnotatedDataset, read_annotations
from harness.learning.training_data import kept_episodes
from harness.learning.methods import method_class
from harness.study.config import StudyConfig, StudyDataset
from harness.study.run_spec import RunFolder, RunSpec


@dataclasses.dataclass
class StudyReport:
    """What a report wrote, and what the command prints of it."""
    table: str                     # the markdown table (table.md without its legend)
    summary: str                   # the table in words, one sentence (eval.study_table.table_summary)
    files: list[Path]              # table.md, table.csv and every plot written
    plots: Path                    # the folder of the plots
    failed_plots: list[str] = dataclasses.field(default_factory=list)  # "<plot>: <why>", one line each


def write_report(cfg: StudyConfig, plans: Sequence[RunSpec], annotations: Path | None) -> StudyReport:
    """Table and plots from whatever runs have finished (all of them after a complete study)."""
    results, missing = collect_results(plans)
    return write_study_report(cfg.out, results, cfg.datasets, annotations, cfg.baseline, cfg.spectra_window,
                              title=f"study {cfg.name}", missing=missing, cells=corruption_cells(cfg, plans))


def corruption_cells(cfg: StudyConfig, plans: Sequence[RunSpec]) -> dict[str, tuple[str, str]]:
    """{baseline row label: (corruption, level)}: the cells of a corruption map (experiments/corruption_map.yaml).

    A cell is a row that other rows are paired with (their `baseline`), trained on exactly one corrupt dataset;
    it is named by how that dataset was made: (transform, level) for a `cotrain corrupt` copy, else
    (dataset name, ""), e.g. the GCS data themselves. A study with no such rows has no cells and no map.
    """
    by_path = {Path(d.path).resolve(): d for d in cfg.datasets}
    baselines = {p.baseline for p in plans if p.baseline}
    cells = {}
    for plan in plans:
        if plan.label not in baselines or plan.label in cells:
            continue
        corrupt = [by_path.get(Path(d.path).resolve()) for d in plan.train.data.datasets if d.role == "corrupt"]
        if len(corrupt) == 1 and corrupt[0] is not None:
            made = corrupt[0].generate
            cells[plan.label] = ((made.transform, f"{made.level:g}") if made is not None and made.kind == "corrupt"
                                 else (corrupt[0].name, ""))
    return cells


def collect_results(plans: Sequence[RunSpec]) -> tuple[list[RunResult], list[str]]:
    """RunResults of the finished runs, and the labels of the missing ones."""
    results, missing = [], []
    for p in plans:
        folder = p.folder
        if not folder.finished or not folder.trials.is_file():
            missing.append(f"{p.label} seed {p.seed}")
            continue
        training = json.loads(p.train_summary.read_text()) if p.train_summary.is_file() else None
        sigma_n = p.train.objective.sigma_n
        results.append(RunResult(p.method, p.setting, p.seed, read_trials_csv(folder.trials), _run_alpha(p, training),
                                 name=p.label, training=training, baseline=p.baseline,
                                 sigma_n=float(sigma_n) if isinstance(sigma_n, (int, float)) else None))
        selected = selected_result(folder, results[-1])   # checkpoint protocol: a row of its own
        if selected is not None:
            results.append(selected)
    _mean_alpha_per_row(results)
    return results, missing


def selected_result(folder: RunFolder, final: RunResult) -> RunResult | None:
    """The run's checkpoint-protocol result from its selection.json (harness/study/jobs.py): the chosen
    checkpoint's trials on the held-out seeds, which are the study's eval seeds; None without a protocol."""
    if not folder.selection.is_file():
        return None
    sel = json.loads(folder.selection.read_text())
    mean = sel["mean_over_candidates"] if sel["select"] == "none" else None
    return dataclasses.replace(final, records=read_trials_csv(folder.root / sel["heldout_dir"] / "trials.csv"),
                               protocol="selected", n_checkpoints=len(sel["candidates"]), checkpoint_mean=mean)


def _protocol_legend(results: Sequence[RunResult]) -> str:
    """What a "selected" row means (empty when the study has none)."""
    selected = [r for r in results if r.protocol == "selected"]
    if not selected:
        return ""
    pruning = any(r.checkpoint_mean is None for r in selected)
    text = ("\nRows \"· selected (best of N ckpts, held-out)\": the study's checkpoint protocol "
            "(eval.checkpoints last_k / every). Per run, N checkpoints (its last policy snapshots and final.pt) "
            "were scored on selection start seeds that share none with the eval seeds, in rounds of new seeds")
    if pruning:
        text += (" (beta_pruning: after each round a checkpoint was dropped when, with Beta(1 + successes, "
                 "1 + failures) posteriors, P(its success rate > the best one's) < 0.05)")
    text += ("; the chosen checkpoint was then scored on the study's eval seeds. So a selected row shows "
             "held-out skill, not the luck of the selection, and is paired with the baseline like any other row.")
    if not pruning:
        text += (" Mean of ckpts: the mean success over all N candidates on the selection seeds (diffusion_policy's "
                 "mean over the last checkpoints; not paired, no interval).")
    return text + " Each run's choice, per-round counts and seeds: runs/<row>/seed<k>/selection.json.\n"


def _run_alpha(plan: RunSpec, training: dict | None) -> float | None:
    """A run's alpha for the plots. A natural row's is the trainer's own (its training episodes, after the
    validation split and the success filter); a matched row's is the alpha it was given (the named run's
    realised clean fraction); otherwise the configured one (None for an alpha(sigma) table)."""
    objective = plan.train.objective
    natural = method_class(plan.method).sweeps_alpha and objective.alpha == "natural" and objective.alpha_table is None
    if natural and training and training.get("alpha_natural") is not None:
        return float(training["alpha_natural"])
    return plan.alpha


def _mean_alpha_per_row(results: list[RunResult]) -> None:
    """One alpha per table row: the mean over its seeds (natural and matched alphas differ by seed)."""
    rows: dict[str, list[RunResult]] = {}
    for r in results:
        rows.setdefault(r.label, []).append(r)
    for runs in rows.values():
        if all(r.alpha is not None for r in runs):
            mean = float(np.mean([r.alpha for r in runs]))
            for r in runs:
                r.alpha = mean


def write_study_report(out, results: Sequence[RunResult], datasets: Sequence[StudyDataset],
                       annotations: Path | None, baseline: str, spectra_window: int = 32,
                       title: str = "", missing: Sequence[str] = (),
                       cells: Mapping[str, tuple[str, str]] | None = None) -> StudyReport:
    """Write table.md, table.csv and plots/*.png (each with its numbers as .csv) under out.

    cells: the corruption map's cells (corruption_cells); with any, plots/corruption_map.png is drawn."""
    out = Path(out)
    files: list[Path] = []
    rows, base_label = study_table(results, baseline)
    md = table_markdown(rows, base_label) if rows else "(no finished runs yet)\n"
    summary = table_summary(rows, base_label)
    header = f"# {title}\n\n" if title else ""
    note = ""
    if missing:
        note = f"\nNot finished (not in the table): {', '.join(missing)}\n"
    trials = sorted({len(r.records) for r in results})
    legend = ("\nSuccess: pooled over training seeds, each scored on the same start seeds "
              f"({'/'.join(map(str, trials))} trials per seed); interval: Wilson 95%. Paired test: McNemar's "
              f"exact test on (training seed, start seed) pairs against {base_label or 'the baseline'}; wins / "
              "losses count starts that only this method / only the baseline solved. Left workspace: the share "
              "of trials that ended with the T pushed out of the workspace. Clean fraction: the share "
              "of training samples that were clean, as realised by the sampler (truncation fills every noise "
              "level where no corrupt window is valid with clean data); clipped steps: the share of optimizer "
              "steps whose gradient norm was clipped (both mean over seeds, from each run's "
              "train/train_summary.json).\n") + _protocol_legend(results)
    words = f"\nIn words: {summary}\n" if summary else ""
    atomic_write_text(out / "table.md", header + md + words + legend + note)
    atomic_write_text(out / "table.csv", table_csv(rows))
    files += [out / "table.md", out / "table.csv"]

    # The table is on disk; from here on a plot that fails costs only itself (one line in failed_plots).
    pdir, failed = out / "plots", []

    def draw(name: str, make, *args):
        made = _drawn(name, failed, make, *args)
        files.extend(made if isinstance(made, list) else [made] if made else [])

    if rows:
        draw("success", plots.plot_success, rows, pdir / "success.png", title)
        draw("success_vs_alpha", plots.plot_success_vs_alpha, rows, pdir / "success_vs_alpha.png")
        draw("success_vs_sigma_n", plots.plot_success_vs_sigma_n, rows, pdir / "success_vs_sigma_n.png")
        draw("clean_fraction_by_sigma", plots.plot_clean_fraction_by_sigma, rows, pdir / "clean_fraction_by_sigma.png")
        if cells:
            draw("corruption_map", plots.plot_corruption_map, rows, cells, pdir / "corruption_map.png")
    # The data plots: the stores and the annotations are read here, the plots get numbers.
    units = None
    ann = _drawn("annotations", failed, read_annotations, annotations) \
        if annotations is not None and Path(annotations).exists() else None
    if ann is not None:
        draw("classifier_accuracy, sigma_n_hist", plots.plot_annotations, ann,
             pdir / "classifier_accuracy.png", pdir / "sigma_n_hist.png")
        draw("sigma_n_zero_profile", _zero_profile, ann, [d for d in datasets if d.role == "corrupt"],
             pdir / "sigma_n_zero_profile.png")
        units = _drawn("action_spectra (units)", failed, _spectra_units, ann)
    scale, sigmas = units if units is not None else (None, [])
    spectra = {}
    for d in datasets:
        spectrum = _drawn(f"action_spectra ({d.name})", failed, _spectrum, d.path, d.episodes,
                          spectra_window, scale) if Path(d.path).exists() else None
        if spectrum is not None:
            spectra[f"{d.name} ({d.role})"] = spectrum[:2]
    if spectra:
        draw("action_spectra", plots.plot_power_spectra, spectra, pdir / "action_spectra.png",
             sigmas if scale is not None else (), "normalized action units" if scale is not None else "m")
    return StudyReport(md, summary, files, pdir, failed)


def _drawn(name: str, failed: list[str], make, *args):
    """make(*args), or None after adding "<name>: <error>" to `failed`: a plot of a report must never cost
    the table or the other plots (a study whose every run finished would otherwise end with no report)."""
    try:
        return make(*args)
    except Exception as exc:  # noqa: BLE001 - whatever a plot meets, the rest of the report is still written
        text = str(exc).splitlines()[0] if str(exc) else ""
        failed.append(f"{name}: {type(exc).__name__}{': ' + text if text else ''}")
        return None


def _spectra_units(ann) -> tuple[np.ndarray, list[float]]:
    """(action scale (2,): actions -> the classifier's normalized units, [median finite sigma_n > 0])."""
    smin = np.concatenate([d.sigma_n for d in ann.datasets])
    finite = smin[np.isfinite(smin) & (smin > 0)]
    return np.asarray(ann.action_normalizer["scale"], float), [float(np.median(finite))] if len(finite) else []


# ---------------------------------------------------------------- the report's reads of the stores
def read_actions(path, max_episodes: int | None = None) -> list[np.ndarray]:
    """The actions of a store's first `max_episodes` episodes (all when None), one (T, 2) array each."""
    store = EpisodeStore(path)
    n = store.n_episodes if max_episodes is None else min(max_episodes, store.n_episodes)
    return [store.episode(i, ["action"])["action"] for i in range(n)]


def read_annotated_episodes(path, ds: AnnotatedDataset) -> list[dict]:
    """The episodes of a store that the classifier annotated as `ds`, in its order: the kept ones
    (successful, the first n: training_data.kept_episodes), each {action, agent_pos, slider_pose}."""
    store = EpisodeStore(path)
    kept = kept_episodes(store, only_success=True, max_episodes=ds.n_episodes)
    return [store.episode(int(i), ["action", "agent_pos", "slider_pose"]) for i in kept]


def _spectrum(path, episodes: int | None, window: int, scale):
    return episodes_spectrum(read_actions(path, episodes), window, None, scale)


def _zero_profile(ann, corrupt: Sequence[StudyDataset], path) -> Path | None:
    """The sigma_n = 0 profile of every annotated corrupt dataset that exists (eval/window_profile.py)."""
    found = {}
    for d in corrupt:
        ds = ann.find(d.path)
        if ds is not None and Path(d.path).exists():
            found[d.name] = (ds, read_annotated_episodes(d.path, ds))
    return plots.plot_zero_window_profile(*zero_window_profile(found, ann.spec), path)
