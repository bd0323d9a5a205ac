"""The study's figures, each a plain function of numbers -> PNG file (matplotlib, headless Agg backend).

- success per method with Wilson intervals
- success versus the cotrain mixing ratio alpha
- classifier accuracy versus sigma (from the annotation step)
- histogram of the per-datapoint sigma_min
- power spectra of clean versus corrupt action sequences
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from eval.report import TableRow  # noqa: E402
from harness.data.atomic import atomic_path  # noqa: E402


def _save(fig, path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def plot_success(rows: Sequence[TableRow], path, title: str = "") -> Path:
    """Horizontal bars: success rate per method with its 95% Wilson interval and per-seed dots."""
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
    """Success against alpha = P(clean sample) for the cotrain rows (target_only drawn at alpha = 1)."""
    points = [(r.alpha, r) for r in rows if r.alpha is not None]
    points += [(1.0, r) for r in rows if r.method == "target_only" and r.alpha is None]
    if not points:
        return None
    points.sort(key=lambda p: p[0])
    a = np.array([p[0] for p in points])
    rate = np.array([p[1].rate for p in points]) * 100
    lo = np.array([p[1].ci_low for p in points]) * 100
    hi = np.array([p[1].ci_high for p in points]) * 100
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.fill_between(a, lo, hi, alpha=0.2, color="C0", label="95% Wilson interval")
    ax.plot(a, rate, "o-", color="C0", label="cotrain")
    for p in points:
        if p[1].method == "target_only":
            ax.plot([p[0]], [p[1].rate * 100], "s", color="C3", label="target only")
    for r in rows:  # other methods as horizontal references
        if r.alpha is None and r.method not in ("target_only", "cotrain"):
            ax.axhline(r.rate * 100, ls="--", lw=1, color="C2", alpha=0.7)
            ax.text(a.min(), r.rate * 100, f" {r.label}", va="bottom", fontsize=8, color="C2")
    ax.set_xlabel("alpha = P(clean sample)")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, min(100, max(hi.max(), *(r.ci_high * 100 for r in rows)) + 10))
    ax.set_title("success versus mixing ratio")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_classifier_accuracy(sigmas: Sequence[float], accuracy: Sequence[float], path,
                             chance: float = 0.5, threshold: float | None = None) -> Path:
    """Held-out accuracy of the clean-versus-corrupt classifier at each noise level (log sigma axis)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.semilogx(sigmas, np.asarray(accuracy) * 100, "o-", color="C0")
    ax.axhline(chance * 100, ls="--", color="gray", lw=1, label="chance")
    if threshold is not None:
        ax.axhline(threshold * 100, ls=":", color="C3", lw=1, label="sigma_min threshold")
    ax.set_xlabel("sigma (noise level, normalized action units)")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title("can a classifier tell clean from corrupt at noise level sigma?")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_sigma_min_hist(sigma_min: Sequence[float], path, bins: int = 30) -> Path:
    """Histogram of per-window sigma_min; windows with sigma_min = 0 (already indistinguishable) counted apart."""
    s = np.asarray(sigma_min, dtype=float)
    zero = np.mean(s <= 0) if len(s) else 0.0
    never = np.mean(np.isinf(s)) if len(s) else 0.0   # the classifier never stopped telling them apart
    pos = s[(s > 0) & np.isfinite(s)]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    if len(pos):
        edges = np.geomspace(pos.min(), pos.max() * 1.0001, bins + 1) if pos.max() > pos.min() else bins
        ax.hist(pos, bins=edges, color="C1", edgecolor="black", lw=0.5)
        if pos.max() > pos.min():
            ax.set_xscale("log")
    ax.set_xlabel("sigma_min per corrupt window")
    ax.set_ylabel("windows")
    ax.set_title(f"sigma_min of {len(s)} corrupt windows ({zero:.0%} at 0, {never:.0%} never)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_power_spectra(spectra: Mapping[str, tuple[np.ndarray, np.ndarray]], path,
                       sigmas: Sequence[float] = (), units: str = "m") -> Path:
    """Log power per frequency for each named dataset; optional sigma^2 lines (white-noise floors).

    A sigma line is where Gaussian noise of that std puts its power in every bin: frequencies whose power
    lies below it are buried at that noise level.
    """
    fig, (ax, ax_ratio) = plt.subplots(2, 1, figsize=(6, 6), sharex=True, height_ratios=[2, 1])
    names = list(spectra)
    for name in names:
        f, p = spectra[name]
        ax.semilogy(f[1:], p[1:], "o-", ms=3, label=name)
    for s in sigmas:
        ax.axhline(s * s, ls=":", lw=0.8, color="gray")
        ax.text(ax.get_xlim()[0], s * s, f" noise floor sigma={s:.3g} (median sigma_min)", fontsize=7,
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
