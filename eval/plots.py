"""Every figure of the project, each a plain function of numbers -> PNG file (matplotlib, headless Agg).

Each plot function also writes the numbers it draws as a CSV beside the PNG (same stem, `.csv`), so a
figure can be checked, re-drawn or tabulated without reading pixels. Both files are written atomically.

- success per method with Wilson intervals                 (success.csv)
- success versus the mixing ratio alpha                     (success_vs_alpha.csv)
- classifier accuracy versus sigma (from the annotation)    (classifier_accuracy.csv)
- histogram of the per-window sigma_n                       (sigma_n_hist.csv)
- power spectra of clean versus corrupt action sequences    (action_spectra.csv)
- held-out loss versus the noise level, per run             (curve-loss.csv)
- the corruption map: best row minus cotrain per cell      (corruption_map.csv)

`plot_annotations` draws the two annotation figures from read annotations; `cotrain annotate` and the
study both use it (the classifier itself, a lower layer, writes numbers only). No plot opens a store: its
caller reads the data (the study's report: harness/study/report.py) and hands the numbers over.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from eval.metrics import wilson_interval  # noqa: E402
from eval.study_table import TableRow  # noqa: E402
from eval.window_profile import FEATURES, PROFILE_HEADER  # noqa: E402
from harness.core.atomic import atomic_path, atomic_write_text  # noqa: E402
from harness.learning.methods import method_class  # noqa: E402


def _save(fig, path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def csv_path(path) -> Path:
    """The CSV a plot writes beside its image: same stem, `.csv`."""
    return Path(path).with_suffix(".csv")


def _csv_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"        # inf -> "inf", nan -> "nan": float() reads both back
    return str(v)


def _write_csv(path, header: Sequence[str], rows) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_value(v) for v in row])
    out = csv_path(path)
    atomic_write_text(out, buf.getvalue())
    return out


def plot_success(rows: Sequence[TableRow], path, title: str = "") -> Path:
    """Horizontal bars: success rate per method with its 95% Wilson interval and per-seed dots.

    CSV: label, trials, successes, rate, ci_low, ci_high, seeds, per_seed_rate (the last two space-separated).
    """
    _write_csv(path, ["label", "trials", "successes", "rate", "ci_low", "ci_high", "seeds", "per_seed_rate"],
               [[r.label, r.trials, r.successes, float(r.rate), float(r.ci_low), float(r.ci_high),
                 " ".join(str(s) for s in r.seeds), " ".join(_csv_value(float(x)) for x in r.per_seed_rate)]
                for r in rows])
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    rates = np.array([r.rate for r in rows]) * 100
    err = np.array([[r.rate - r.ci_low for r in rows], [r.ci_high - r.rate for r in rows]]) * 100
    ax.barh(y, rates, color="#9ecae1", edgecolor="#3182bd")
    ax.errorbar(rates, y, xerr=err, fmt="none", ecolor="black", capsize=4, lw=1.2)
    for yi, r in zip(y, rows):
        ax.scatter(np.array(r.per_seed_rate) * 100, np.full(len(r.per_seed_rate), yi), s=12, color="#08519c",
                   zorder=3)
    ax.set_yticks(y, [r.label for r in rows])
    ax.set_xlim(0, 100)
    ax.set_xlabel("success rate (%)  -  bar: pooled, whisker: 95% Wilson interval, dots: training seeds")
    ax.set_title(title or "closed-loop success per method")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_success_vs_alpha(rows: Sequence[TableRow], path) -> Path | None:
    """Success against alpha = P(clean sample): the rows of methods that sweep alpha form the curve, a method
    with a fixed alpha (target_only: 1) is a marker at it, every other row a horizontal reference line.

    CSV: label, method, alpha, rate, ci_low, ci_high, drawn_as (curve | fixed | reference; a reference's
    alpha is empty). Nothing is written without a point on the alpha axis. Final-checkpoint rows only:
    the rows of a checkpoint protocol ("· selected") are in the success plot and the table.
    """
    def drawn_as(r: TableRow) -> str:
        if r.alpha is None:
            return "reference"
        return "curve" if method_class(r.method).sweeps_alpha else "fixed"

    rows = [r for r in rows if r.protocol == "final"]   # a selected row would repeat its final row's alpha
    on_axis = sorted((r for r in rows if r.alpha is not None), key=lambda r: r.alpha)
    if not on_axis:
        return None
    curve = [r for r in on_axis if drawn_as(r) == "curve"]
    fixed = [r for r in on_axis if drawn_as(r) == "fixed"]
    references = [r for r in rows if r.alpha is None]
    _write_csv(path, ["label", "method", "alpha", "rate", "ci_low", "ci_high", "drawn_as"],
               [[r.label, r.method, None if r.alpha is None else float(r.alpha), float(r.rate), float(r.ci_low),
                 float(r.ci_high), drawn_as(r)] for r in on_axis + references])
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    if curve:
        a = np.array([r.alpha for r in curve])
        ax.fill_between(a, [r.ci_low * 100 for r in curve], [r.ci_high * 100 for r in curve], alpha=0.2,
                        color="C0", label="95% Wilson interval")
        ax.plot(a, [r.rate * 100 for r in curve], "o-", color="C0", label=curve[0].method)
    for r in fixed:
        ax.errorbar([r.alpha], [r.rate * 100], yerr=[[(r.rate - r.ci_low) * 100], [(r.ci_high - r.rate) * 100]],
                    fmt="s", color="C3", capsize=3, label=r.label)
    left = min(r.alpha for r in on_axis)
    for r in references:
        ax.axhline(r.rate * 100, ls="--", lw=1, color="C2", alpha=0.7)
        ax.text(left, r.rate * 100, f" {r.label}", va="bottom", fontsize=8, color="C2")
    ax.set_xlabel("alpha = P(clean sample)")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, min(100, max(r.ci_high * 100 for r in rows) + 10))
    ax.set_title("success versus mixing ratio")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_success_vs_sigma_n(rows: Sequence[TableRow], path) -> Path | None:
    """The per-dataset sweep: success against the one fixed sigma_n of a row (log axis), one curve per
    method and paired baseline, with a Wilson band. Rows paired with a baseline of their own (another
    formulation or budget) are another condition, so they form their own curve, or stand as a lone point
    with its interval; the rows of methods without sigma_n (target_only, cotrain) are horizontal reference
    lines. CSV: label, method, sigma_n, rate, ci_low, ci_high, drawn_as (curve | point | reference).
    Nothing is written unless some method has rows at two or more sigma_n under one baseline."""
    rows = [r for r in rows if r.protocol == "final"]
    groups: dict[tuple[str, str | None], list[TableRow]] = {}
    for r in rows:
        if r.sigma_n is not None and r.sigma_n > 0:
            groups.setdefault((r.method, r.baseline), []).append(r)
    curves = {key: sorted(rs, key=lambda r: r.sigma_n) for key, rs in groups.items() if len(rs) >= 2}
    if not curves:
        return None
    lone = [rs[0] for rs in groups.values() if len(rs) == 1]
    references = [r for r in rows if not method_class(r.method).needs_sigma_n]
    points = [r for rs in curves.values() for r in rs]
    _write_csv(path, ["label", "method", "sigma_n", "rate", "ci_low", "ci_high", "drawn_as"],
               [[r.label, r.method, r.sigma_n, float(r.rate), float(r.ci_low), float(r.ci_high), "curve"]
                for r in points] +
               [[r.label, r.method, r.sigma_n, float(r.rate), float(r.ci_low), float(r.ci_high), "point"]
                for r in lone] +
               [[r.label, r.method, None, float(r.rate), float(r.ci_low), float(r.ci_high), "reference"]
                for r in references])
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, ((method, baseline), rs) in enumerate(curves.items()):
        s = np.array([r.sigma_n for r in rs])
        ax.fill_between(s, [r.ci_low * 100 for r in rs], [r.ci_high * 100 for r in rs], alpha=0.15, color=f"C{i}")
        ax.plot(s, [r.rate * 100 for r in rs], "o-", color=f"C{i}",
                label=method if baseline is None else f"{method} (vs {baseline})")
    for j, r in enumerate(lone):
        ax.errorbar([r.sigma_n], [r.rate * 100], yerr=[[(r.rate - r.ci_low) * 100], [(r.ci_high - r.rate) * 100]],
                    fmt="s", capsize=3, color=f"C{len(curves) + j}", label=r.label)
    left = min(r.sigma_n for r in points + lone)
    for j, r in enumerate(references):
        color = f"C{len(curves) + len(lone) + j}"
        ax.axhline(r.rate * 100, ls="--", lw=1, color=color, alpha=0.8)
        ax.text(left, r.rate * 100, f" {r.label}", va="bottom", fontsize=8, color=color)
    ax.set_xscale("log")
    ticks = sorted({r.sigma_n for r in points + lone})
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("sigma_n of every corrupt window (normalized action units)")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, min(100, max(r.ci_high * 100 for r in points + lone + references) + 10))
    ax.set_title("success versus a fixed sigma_n (the per-dataset sweep)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_clean_fraction_by_sigma(rows: Sequence[TableRow], path) -> Path | None:
    """The realised clean fraction in each training sigma band, one line per row: where truncation hands
    the low noise levels to the clean data. CSV: label, then one column per band. None without records."""
    rows = [r for r in rows if r.protocol == "final" and r.clean_fraction_by_sigma]
    if not rows:
        return None
    bands = list(rows[0].clean_fraction_by_sigma)
    _write_csv(path, ["label", *bands], [[r.label, *(r.clean_fraction_by_sigma.get(b) for b in bands)] for r in rows])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    x = np.arange(len(bands))
    for i, r in enumerate(rows):
        y = [np.nan if r.clean_fraction_by_sigma.get(b) is None else 100 * r.clean_fraction_by_sigma[b] for b in bands]
        ax.plot(x, y, marker="o", lw=1, ms=3, color=f"C{i % 10}", ls="-" if i < 10 else "--", label=r.label)
    ax.set_xticks(x, bands)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("training sigma band (normalized action units)")
    ax.set_ylabel("clean share of training samples (%)")
    ax.set_title("realised clean fraction per noise level")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_zero_window_profile(rows: Sequence[list], data: Mapping[str, tuple], path) -> Path | None:
    """Who the sigma_n = 0 windows are (eval/window_profile.zero_window_profile's rows and data): per feature,
    the distribution over the sigma_n = 0 windows against all windows of each corrupt dataset. CSV: the
    profile table."""
    if not data:
        return None
    _write_csv(path, PROFILE_HEADER, rows)
    units = {"phase": "phase of the episode (0 = start)", "pusher_speed": "pusher speed (m/s)",
             "in_contact": "pusher touching the T", "goal_distance": "T distance to goal (m)"}
    fig, axes = plt.subplots(1, len(FEATURES), figsize=(3.2 * len(FEATURES), 3.2))
    for ax, name in zip(axes, FEATURES):
        for i, (dataset, (features, sigma_n)) in enumerate(data.items()):
            values = features[name]
            if name == "in_contact":
                shares = [values.mean() * 100, values[sigma_n == 0].mean() * 100 if np.any(sigma_n == 0) else 0]
                ax.bar(np.arange(2) + 0.4 * i, shares, width=0.4, color=["C0", "C3"])
                ax.set_xticks(np.arange(2), ["all", "sigma_n = 0"])
                ax.set_ylabel("% of windows in contact")
                continue
            bins = np.histogram_bin_edges(values, bins=30)
            ax.hist(values, bins=bins, density=True, histtype="step", color="C0", label=f"{dataset}: all")
            ax.hist(values[sigma_n == 0], bins=bins, density=True, histtype="step", color="C3",
                    label=f"{dataset}: sigma_n = 0")
            ax.set_ylabel("density")
        ax.set_xlabel(units[name])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("the corrupt windows called clean at sigma = 0, against all corrupt windows", fontsize=9)
    return _save(fig, path)


def plot_classifier_accuracy(sigmas: Sequence[float], balanced: Sequence[float], path,
                             acc_clean: Sequence[float] | None = None, acc_corrupt: Sequence[float] | None = None,
                             threshold: float | None = None, chance: float = 0.5,
                             curves: Mapping[str, Sequence[float]] | None = None) -> Path:
    """Held-out accuracy of the clean-versus-corrupt classifier at each noise level (log sigma axis).

    Balanced accuracy, and the accuracy on each class when given; sigma = 0 is drawn half a grid step left
    of the smallest positive sigma. `threshold` (0.5 + accuracy_tol) is drawn as a line: where a dataset's
    accuracy falls under it is that dataset's sigma_n (harness/learning/sigma_n_rule.py).
    `curves` (name -> accuracy per sigma), e.g. each fold's raw held-out accuracy or each dataset's, are
    drawn as thin lines: folds that disagree, or a raw curve below chance, show at a glance.
    CSV: sigma, balanced_accuracy, accuracy_clean, accuracy_corrupt (the last two empty when not given),
    then one column per named curve.
    """
    curves = {name: np.asarray(v, dtype=float) for name, v in (curves or {}).items()}
    sig = np.asarray(sigmas, dtype=float)
    bal = np.asarray(balanced, dtype=float)
    per_class = acc_clean is not None and acc_corrupt is not None
    clean = np.asarray(acc_clean, dtype=float) if per_class else np.full(len(sig), np.nan)
    corrupt = np.asarray(acc_corrupt, dtype=float) if per_class else np.full(len(sig), np.nan)
    if not len(sig) == len(bal) == len(clean) == len(corrupt) or any(len(v) != len(sig) for v in curves.values()):
        raise ValueError("sigmas and accuracies must have the same length")
    _write_csv(path, ["sigma", "balanced_accuracy", "accuracy_clean", "accuracy_corrupt", *curves],
               [[float(s), float(b), float(c) if per_class else None, float(r) if per_class else None,
                 *(float(v[j]) for v in curves.values())]
                for j, (s, b, c, r) in enumerate(zip(sig, bal, clean, corrupt))])
    positive = sig[sig > 0]
    x = np.where(sig > 0, sig, positive.min() / 2 if len(positive) else 1.0)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.semilogx(x, bal * 100, "o-", color="C0", label="balanced")
    if per_class:
        ax.semilogx(x, clean * 100, ".--", color="C2", label="on clean")
        ax.semilogx(x, corrupt * 100, ".--", color="C1", label="on corrupt")
    for k, (name, values) in enumerate(curves.items()):
        ax.semilogx(x, values * 100, "-", lw=0.8, alpha=0.7, color=f"C{4 + k % 6}", label=name)
    ax.axhline(chance * 100, ls="--", color="gray", lw=1, label="chance")
    if threshold is not None:
        ax.axhline(threshold * 100, ls=":", color="C3", lw=1, label="0.5 + tol (per-dataset sigma_n)")
    zero = " (leftmost point: sigma = 0)" if np.any(sig <= 0) else ""
    ax.set_xlabel(f"sigma (noise level, normalized action units){zero}")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title("can a classifier tell clean from corrupt at noise level sigma?")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_sigma_n_hist(sigma_n: Sequence[float], path, grid: Sequence[float] | None = None,
                        bins: int = 30, groups: Sequence[int] | None = None) -> Path:
    """Histogram of per-window sigma_n over the finite positive values; 0 and never (inf) counted apart.

    With the classifier's `grid` every grid sigma gets its own bin (edges at the geometric midpoints);
    without it, `bins` log-spaced bins over the range.
    CSV: kind, low, high, count, fraction, one row per bin (kind "bin", edges low..high) plus a "zero" row
    (sigma_n = 0: already indistinguishable) and a "never" row (inf); fraction = count / all windows.
    `groups` (one id per window, e.g. the cross-fitting fold that scored it) adds a count_<id> column and a
    step line per group, so one sees whether the folds agree.
    """
    s = np.asarray(sigma_n, dtype=float)
    group_ids = np.asarray(groups) if groups is not None else np.zeros(len(s), int)
    names = [int(g) for g in np.unique(group_ids)] if groups is not None else []
    n = len(s)
    n_zero, n_never = int(np.sum(s <= 0)), int(np.sum(np.isinf(s)))
    pos = s[(s > 0) & np.isfinite(s)]
    edges = _hist_edges(pos, grid, bins)
    counts = np.histogram(pos, bins=edges)[0] if len(edges) > 1 else np.zeros(0, int)
    frac = (lambda k: k / n if n else 0.0)
    by_group = {g: s[group_ids == g] for g in names}

    def group_counts(kind: str, lo: float = 0.0, hi: float = 0.0) -> list[int]:
        def count(v):
            if kind == "zero":
                return int(np.sum(v <= 0))
            if kind == "never":
                return int(np.sum(np.isinf(v)))
            return int(np.sum((v >= lo) & (v < hi) & np.isfinite(v)))
        return [count(by_group[g]) for g in names]
    _write_csv(path, ["kind", "low", "high", "count", "fraction", *(f"count_{g}" for g in names)],
               [["zero", 0.0, 0.0, n_zero, frac(n_zero), *group_counts("zero")]]
               + [["bin", float(lo), float(hi), int(k), frac(int(k)), *group_counts("bin", lo, hi)]
                  for lo, hi, k in zip(edges[:-1], edges[1:], counts)]
               + [["never", math.inf, math.inf, n_never, frac(n_never), *group_counts("never")]])
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    if len(counts):
        ax.stairs(counts, edges, fill=True, color="C1", edgecolor="black", lw=0.5, label="all")
        for k, g in enumerate(names):
            v = by_group[g]
            ax.stairs(np.histogram(v[(v > 0) & np.isfinite(v)], bins=edges)[0], edges, color=f"C{4 + k % 6}",
                      lw=1.2, label=f"fold {g} (median {np.median(v):.3g}, never {np.mean(np.isinf(v)):.0%})")
        ax.set_xscale("log")
        if names:
            ax.legend(fontsize=7)
    ax.set_xlabel("sigma_n per corrupt window (sigma_n = 0 and never: in the title)")
    ax.set_ylabel("windows")
    ax.set_title(f"sigma_n of {n} corrupt windows ({frac(n_zero):.0%} at 0, {frac(n_never):.0%} never)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _hist_edges(pos: np.ndarray, grid, bins: int) -> np.ndarray:
    """Bin edges (increasing, > 0) covering every value of pos; empty when there is nothing to bin."""
    if grid is not None:
        g = np.unique(np.asarray(grid, dtype=float))
        g = g[(g > 0) & np.isfinite(g)]
        if len(g) == 1:
            return np.array([g[0] / 2, g[0] * 2])
        if len(g) > 1:
            mids = np.sqrt(g[:-1] * g[1:])
            edges = np.concatenate([[g[0] * g[0] / mids[0]], mids, [g[-1] * g[-1] / mids[-1]]])
            if not len(pos) or (pos.min() >= edges[0] and pos.max() < edges[-1]):
                return edges
    if not len(pos):
        return np.zeros(0)
    lo, hi = pos.min(), pos.max()
    if hi <= lo:
        return np.array([lo / 2, lo * 2])
    return np.geomspace(lo, hi * 1.0001, bins + 1)


def annotation_plot_paths(annotations) -> tuple[Path, Path]:
    """Beside a store `<stem>.zarr`: `<stem>.accuracy.png` and `<stem>.sigma_n_hist.png` (each + .csv)."""
    annotations = Path(annotations)
    stem = annotations.name.removesuffix(".zarr")
    return annotations.with_name(f"{stem}.accuracy.png"), annotations.with_name(f"{stem}.sigma_n_hist.png")


def plot_annotations(ann, accuracy_path, hist_path) -> list[Path]:
    """Both annotation figures from read annotations (harness.learning.annotations.read_annotations):
    classifier accuracy and the sigma_n histogram. `cotrain annotate` and the study's annotate job draw them
    beside the store (`annotation_plot_paths`); the study report at its own paths.
    """
    acc_clean, acc_corrupt = ann.attrs.get("accuracy_clean"), ann.attrs.get("accuracy_corrupt")
    curves = {f"fold {f['fold']} raw": f["accuracy_raw"] for f in ann.attrs.get("folds", [])}
    if len(ann.datasets) > 1:
        curves.update({f"{Path(d.path).name}": d.accuracy for d in ann.datasets if d.accuracy is not None})
    folds = [d.fold for d in ann.datasets]
    return [plot_classifier_accuracy(ann.sigma_grid, ann.accuracy, accuracy_path, acc_clean, acc_corrupt,
                                     threshold=0.5 + float(ann.attrs.get("accuracy_tol", 0.05)), curves=curves),
            plot_sigma_n_hist(np.concatenate([d.sigma_n for d in ann.datasets]), hist_path,
                              grid=ann.sigma_grid,
                              groups=np.concatenate(folds) if all(f is not None for f in folds) else None)]


def plot_power_spectra(spectra: Mapping[str, tuple[np.ndarray, np.ndarray]], path,
                       sigmas: Sequence[float] = (), units: str = "m") -> Path:
    """Log power per frequency for each named dataset; optional sigma^2 lines (white-noise floors).

    A sigma line is where Gaussian noise of that std puts its power in every bin: frequencies whose power
    lies below it are buried at that noise level.
    CSV: dataset, frequency_hz, power (long format: one row per dataset and frequency bin).
    """
    _write_csv(path, ["dataset", "frequency_hz", "power"],
               [[name, float(fi), float(pi)] for name, (f, p) in spectra.items() for fi, pi in zip(f, p)])
    fig, (ax, ax_ratio) = plt.subplots(2, 1, figsize=(6, 6), sharex=True, height_ratios=[2, 1])
    names = list(spectra)
    for name in names:
        f, p = spectra[name]
        ax.semilogy(f[1:], p[1:], "o-", ms=3, label=name)
    for s in sigmas:
        ax.axhline(s * s, ls=":", lw=0.8, color="gray")
        ax.text(ax.get_xlim()[0], s * s, f" noise floor sigma={s:.3g} (median sigma_n)", fontsize=7,
                color="gray", va="bottom")
    ax.set_ylabel(f"power ({units}^2 per bin)")
    ax.set_title("power spectra of action sequences (window mean removed)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    if len(names) >= 2:
        f0, p0 = spectra[names[0]]
        for name in names[1:]:
            f1, p1 = spectra[name]
            if len(f1) == len(f0):
                ax_ratio.semilogy(f0[1:], p1[1:] / np.maximum(p0[1:], 1e-30), "o-", ms=3,
                                  label=f"{name} / {names[0]}")
        ax_ratio.axhline(1.0, color="gray", lw=1)
        ax_ratio.legend(fontsize=8)
    ax_ratio.set_xlabel("frequency (Hz); control at 10 Hz")
    ax_ratio.set_ylabel("power ratio")
    ax_ratio.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_success_curve(points: Sequence[tuple[float, int, int]], path, xlabel: str, title: str,
                       log_x: bool = False) -> Path:
    """Success rate against one setting (Heun steps, training steps), with 95% Wilson intervals.

    points: (x, successes, trials). CSV: x, trials, successes, rate, ci_low, ci_high.
    """
    points = sorted(points)
    cis = [wilson_interval(s, n) for _, s, n in points]
    x = np.array([p[0] for p in points], dtype=float)
    rate = np.array([s / n for _, s, n in points])
    _write_csv(path, ["x", "trials", "successes", "rate", "ci_low", "ci_high"],
               [[float(p[0]), p[2], p[1], float(r), float(ci.low), float(ci.high)]
                for p, r, ci in zip(points, rate, cis)])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.fill_between(x, [ci.low * 100 for ci in cis], [ci.high * 100 for ci in cis], alpha=0.2, color="C0",
                    label="95% Wilson interval")
    ax.plot(x, rate * 100, "o-", color="C0", label="success rate")
    if log_x:
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [f"{v:g}" for v in x])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, min(100, max(ci.high for ci in cis) * 100 + 10))
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_loss_by_sigma(sigmas: Sequence[float], curves: Mapping[str, Mapping[str, Sequence[float]]], path) -> Path:
    """Held-out loss against the noise level, one line per run, one panel per held-out source.

    curves: {run label: {source name: loss at each sigma}} (harness/learning/held_out.py).
    CSV: run, source, sigma, loss.
    """
    sources = list(dict.fromkeys(src for by_source in curves.values() for src in by_source))
    _write_csv(path, ["run", "source", "sigma", "loss"],
               [[run, src, float(s), float(v)] for run, by_source in curves.items()
                for src, losses in by_source.items() for s, v in zip(sigmas, losses)])
    fig, axes = plt.subplots(1, len(sources), figsize=(5 * len(sources), 3.8), squeeze=False)
    for ax, src in zip(axes[0], sources):
        for i, (run, by_source) in enumerate(curves.items()):
            if src in by_source:
                ax.plot(sigmas, by_source[src], "o-", ms=3, color=f"C{i % 10}", label=run)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("noise level sigma (normalized action units)")
        ax.set_ylabel("held-out loss, lambda(sigma)-weighted")
        ax.set_title(f"held-out windows of {src}")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def plot_corruption_map(rows: Sequence[TableRow], cells: Mapping[str, tuple[str, str]], path) -> Path | None:
    """The corruption map: in each (corruption, level) cell, the best row paired with that cell's baseline
    (its cotrain row) minus the baseline, in success points, with its McNemar p.

    cells: {baseline row label: (corruption, level)} (harness/study/report.py: corruption_cells). "Best" is
    the largest paired difference among the rows whose `baseline` is that label. None when no cell has a
    finished pair. CSV: corruption, level, baseline, best_row, difference (points), wins, losses, p.
    """
    entries = []
    for base, (corruption, level) in cells.items():
        paired = [r for r in rows if r.baseline == base and r.vs_baseline is not None]
        if paired:
            best = max(paired, key=lambda r: r.vs_baseline.difference)
            entries.append((corruption, level, base, best))
    if not entries:
        return None
    _write_csv(path, ["corruption", "level", "baseline", "best_row", "difference", "wins", "losses", "p"],
               [[c, lv, b, r.label, 100 * r.vs_baseline.difference, r.vs_baseline.a_only, r.vs_baseline.b_only,
                 r.vs_baseline.p_value] for c, lv, b, r in entries])

    def level_key(level: str):
        try:
            return (0, float(level), level)
        except ValueError:
            return (1, 0.0, level)

    corruptions = list(dict.fromkeys(c for c, *_ in entries))
    levels = {c: sorted({lv for cc, lv, *_ in entries if cc == c}, key=level_key) for c in corruptions}
    grid = np.full((len(corruptions), max(len(v) for v in levels.values())), np.nan)
    fig, ax = plt.subplots(figsize=(2.2 * grid.shape[1] + 2.5, 0.9 * len(corruptions) + 1.5))
    for c, level, _, r in entries:
        grid[corruptions.index(c), levels[c].index(level)] = 100 * r.vs_baseline.difference
    span = max(1.0, float(np.nanmax(np.abs(grid))))
    for c, level, _, r in entries:
        i, j = corruptions.index(c), levels[c].index(level)
        p = r.vs_baseline.p_value
        ax.text(j, i, f"{level or c}\n{grid[i, j]:+.1f} pts\np = {p:.2g}", ha="center", va="center", fontsize=8,
                fontweight="bold" if p < 0.01 else "normal", color="white" if abs(grid[i, j]) > 0.6 * span else "black")
    image = ax.imshow(grid, cmap="RdBu", vmin=-span, vmax=span, aspect="auto")
    fig.colorbar(image, ax=ax, label="best ambient-family row minus cotrain (success points)")
    ax.set_yticks(range(len(corruptions)), corruptions)
    ax.set_xticks(range(grid.shape[1]), [f"level {k + 1}" for k in range(grid.shape[1])])
    ax.set_title("corruption map: bold where McNemar p < 0.01")
    return _save(fig, path)
