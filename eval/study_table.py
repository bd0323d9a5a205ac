"""The study table: methods compared on the same start seeds, from their evaluations (eval/report.py).

It pools a method's training seeds (all evaluated on the same start seeds) into one success rate with a
Wilson interval, and tests each method against the baseline (the study names it) with McNemar's exact test
on pairs (training seed, start seed) that both were scored on. A checkpoint protocol (eval/selection.py)
adds a "· selected" row per method: the chosen checkpoint on the same start seeds.
"""
from __future__ import annotations

import csv
import dataclasses
import io
from typing import Sequence

import numpy as np

from eval.metrics import PairedTest, TrialRecord, paired_test, summarize, wilson_interval
from eval.report import csv_value



@dataclasses.dataclass
class RunResult:
    """The evaluation of one (method, setting, training seed) run."""
    method: str                    # a name in harness.learning.methods.METHODS
    setting: str                   # short label of the setting, e.g. "alpha=0.5"; "" if none
    seed: int                      # training seed
    records: list[TrialRecord]
    alpha: float | None = None     # the mixing ratio P(clean), for the success-versus-alpha plot
    name: str | None = None        # row name chosen by the study (default: "method (setting)")
    sigma_n: float | None = None   # one fixed sigma_n for every corrupt window (the per-dataset sweep plot)
    baseline: str | None = None    # the row label this run is paired with (None: the table's baseline)
    training: dict | None = None   # the run's train_summary.json: realised clean fraction, clipped steps
    protocol: str = "final"        # "final": the final checkpoint; "selected": the checkpoint a protocol chose
                                   # (eval/selection.py), its records from held-out start seeds
    n_checkpoints: int | None = None      # selected: how many candidates it was chosen from
    checkpoint_mean: float | None = None  # selected, select none: mean success over the candidates (selection seeds)

    @property
    def label(self) -> str:
        base = self.name or (f"{self.method} ({self.setting})" if self.setting else self.method)
        if self.protocol == "selected":
            return f"{base} · selected (best of {self.n_checkpoints} ckpts, held-out)"
        return base


@dataclasses.dataclass
class TableRow:
    label: str
    method: str
    setting: str
    alpha: float | None
    seeds: list[int]               # training seeds pooled in this row
    per_seed_rate: list[float]     # success rate of each training seed
    trials: int
    successes: int
    rate: float
    ci_low: float
    ci_high: float
    vs_baseline: PairedTest | None  # None for the baseline itself
    clean_fraction: float | None = None    # realised P(clean sample) in training, mean over seeds
    clipped_fraction: float | None = None  # fraction of optimizer steps with a clipped gradient, mean over seeds
    protocol: str = "final"                # "final" or "selected" (RunResult.protocol)
    checkpoint_mean: float | None = None   # selected rows of select none: mean over candidates and seeds
    left_workspace: float = 0.0            # fraction of trials that ended with the T pushed out of the workspace
    sigma_n: float | None = None           # the row's one fixed sigma_n (RunResult.sigma_n)
    baseline: str | None = None            # the row it is paired with, when not the table's baseline
    clean_fraction_by_sigma: dict | None = None  # sigma band -> realised clean fraction, mean over seeds

    def ci_text(self) -> str:
        return wilson_interval(self.successes, self.trials).fmt()


def study_table(results: Sequence[RunResult], baseline: str) -> tuple[list[TableRow], str | None]:
    """One row per label (method + setting), in first-seen order; returns (rows, baseline label).

    `baseline` is a label or a method name (then the first final-checkpoint label of that method is the
    baseline). Selected rows (RunResult.protocol) are rows of their own, paired with the baseline on the
    same (training seed, start seed) pairs: their held-out seeds are the study's eval seeds.
    """
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.label, []).append(r)
    base_label = baseline if baseline in groups else next(
        (label for label, rs in groups.items() if rs[0].method == baseline and rs[0].protocol == "final"), None)
    rows = []
    for label, runs in groups.items():
        runs = sorted(runs, key=lambda r: r.seed)
        k = sum(sum(t.success for t in r.records) for r in runs)
        n = sum(len(r.records) for r in runs)
        ci = wilson_interval(k, n)
        test, own = None, runs[0].baseline if runs[0].baseline in groups else None
        if own is not None and own != label:
            test = _paired(runs, groups[own])
        elif base_label is not None and label != base_label:
            test = _paired(runs, groups[base_label])
        rows.append(TableRow(
            label=label, method=runs[0].method, setting=runs[0].setting, alpha=runs[0].alpha,
            seeds=[r.seed for r in runs],
            per_seed_rate=[summarize(r.records).success.rate for r in runs],
            trials=n, successes=k, rate=ci.rate, ci_low=ci.low, ci_high=ci.high, vs_baseline=test,
            clean_fraction=_mean_training(runs, "clean_fraction"),
            clipped_fraction=_mean_training(runs, "clipped_fraction"),
            protocol=runs[0].protocol, checkpoint_mean=_mean_of(r.checkpoint_mean for r in runs),
            left_workspace=sum(t.outcome == "left_workspace" for r in runs for t in r.records) / max(n, 1),
            sigma_n=runs[0].sigma_n, clean_fraction_by_sigma=_mean_bands(runs),
            baseline=own if own != label else None,
        ))
    return rows, base_label


def _mean_of(values) -> float | None:
    """The mean when every run has the value, else None."""
    values = list(values)
    return float(np.mean(values)) if values and all(v is not None for v in values) else None


def _mean_training(runs: Sequence[RunResult], key: str) -> float | None:
    values = [r.training[key] for r in runs if r.training and r.training.get(key) is not None]
    return float(np.mean(values)) if values and len(values) == len(runs) else None


def _mean_bands(runs: Sequence[RunResult]) -> dict | None:
    """Per sigma band of train_summary.json, the realised clean fraction averaged over the seeds that drew
    a sample in that band (None where none did); None unless every run has the record."""
    bands = [r.training.get("clean_fraction_by_sigma") if r.training else None for r in runs]
    if not bands or any(b is None for b in bands):
        return None
    out = {}
    for band in bands[0]:
        values = [b[band] for b in bands if b.get(band) is not None]
        out[band] = float(np.mean(values)) if values else None
    return out


def _paired(runs: Sequence[RunResult], base_runs: Sequence[RunResult]) -> PairedTest:
    """McNemar over (training seed, start seed) pairs present in both."""
    return paired_test({(r.seed, t.seed): t.success for r in runs for t in r.records},
                       {(r.seed, t.seed): t.success for r in base_runs for t in r.records})


def table_markdown(rows: Sequence[TableRow], base_label: str | None) -> str:
    base = base_label or "baseline"
    lines = [
        f"| method | seeds | trials | success [95% Wilson CI] | per seed | vs {base}: wins / losses | p (McNemar exact) "
        "| left workspace | clean fraction | clipped steps |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    means = any(r.checkpoint_mean is not None for r in rows)   # a checkpoint protocol with select none
    if means:
        lines = [lines[0] + " mean of ckpts (selection seeds) |", lines[1] + " --- |"]
    for r in rows:
        per_seed = ", ".join(f"{100 * x:.0f}%" for x in r.per_seed_rate)
        if r.vs_baseline is None:
            versus, p = "(baseline)" if r.label == base_label else "", ""
        else:
            versus, p = f"{r.vs_baseline.a_only} / {r.vs_baseline.b_only}", _fmt_p(r.vs_baseline.p_value)
            if r.baseline is not None and r.baseline != base_label:
                versus += f" (vs {r.baseline})"
        lines.append(f"| {r.label} | {len(r.seeds)} | {r.trials} | {r.ci_text()} | {per_seed} | {versus} | {p} "
                     f"| {_percent(r.left_workspace)} | {_percent(r.clean_fraction)} | {_percent(r.clipped_fraction)} |"
                     + (f" {_percent(r.checkpoint_mean)} |" if means else ""))
    return "\n".join(lines) + "\n"


# The level at which the closing sentence calls two rows told apart (the demo's own criterion).
SUMMARY_ALPHA = 0.01
SUMMARY_MAX_ROWS = 4   # more rows than this: the sentence counts them instead of naming each


def table_summary(rows: Sequence[TableRow], base_label: str | None) -> str:
    """The table in words, one sentence: which rows the paired test tells apart from their baseline.

    Each comparison is said from the winner's side ("cotrain solves 31 starts that target_only misses and
    misses 4 that it solves"), since the discordant starts are what McNemar's test weighs; a row whose p is
    not below SUMMARY_ALPHA is "not told apart". With many rows only the counts are given.
    """
    tested = [r for r in rows if r.vs_baseline is not None]
    if not tested:
        return ""
    if len(tested) > SUMMARY_MAX_ROWS:
        above = sum(r.vs_baseline.p_value < SUMMARY_ALPHA and r.vs_baseline.a_only > r.vs_baseline.b_only
                    for r in tested)
        below = sum(r.vs_baseline.p_value < SUMMARY_ALPHA and r.vs_baseline.a_only < r.vs_baseline.b_only
                    for r in tested)
        return (f"Of {len(tested)} rows paired with their baseline, {above} score above it and {below} below it "
                f"at McNemar p < {SUMMARY_ALPHA}; the other {len(tested) - above - below} are not told apart.")
    parts = []
    for r in tested:
        t, base = r.vs_baseline, r.baseline or base_label or "the baseline"
        p = f"McNemar p = {_fmt_p(t.p_value)}"
        if t.p_value >= SUMMARY_ALPHA:
            parts.append(f"{r.label} and {base} are not told apart at p < {SUMMARY_ALPHA} ({t.a_only} / {t.b_only} "
                         f"starts solved by only one of them, {p})")
            continue
        (win, w), (lose, l) = sorted([(r.label, t.a_only), (base, t.b_only)], key=lambda x: -x[1])
        parts.append(f"{win} solves {w} starts that {lose} misses and misses {l} that it solves ({p})")
    return "; ".join(parts) + "."


def table_csv(rows: Sequence[TableRow]) -> str:
    buf = io.StringIO()
    fields = ["label", "method", "setting", "alpha", "n_seeds", "trials", "successes", "rate", "ci_low",
              "ci_high", "per_seed_rate", "pairs", "wins_vs_baseline", "losses_vs_baseline", "p_mcnemar",
              "paired_with", "clean_fraction", "clipped_fraction", "protocol", "checkpoint_mean", "left_workspace"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        t = r.vs_baseline
        writer.writerow({
            "label": r.label, "method": r.method, "setting": r.setting,
            "alpha": "" if r.alpha is None else r.alpha, "n_seeds": len(r.seeds), "trials": r.trials,
            "successes": r.successes, "rate": csv_value(r.rate), "ci_low": f"{r.ci_low:.6f}",
            "ci_high": f"{r.ci_high:.6f}", "per_seed_rate": " ".join(f"{x:.4f}" for x in r.per_seed_rate),
            "pairs": "" if t is None else t.n_pairs, "wins_vs_baseline": "" if t is None else t.a_only,
            "losses_vs_baseline": "" if t is None else t.b_only,
            "p_mcnemar": "" if t is None else f"{t.p_value:.6g}",
            "paired_with": r.baseline or "",
            "clean_fraction": "" if r.clean_fraction is None else f"{r.clean_fraction:.6f}",
            "clipped_fraction": "" if r.clipped_fraction is None else f"{r.clipped_fraction:.6f}",
            "protocol": r.protocol,
            "checkpoint_mean": "" if r.checkpoint_mean is None else f"{r.checkpoint_mean:.6f}",
            "left_workspace": f"{r.left_workspace:.6f}",
        })
    return buf.getvalue()


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _fmt_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.01 else f"{p:.2f}"
