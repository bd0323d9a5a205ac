"""Eval report files, the study table (pooling and pairing), spectra and plots, on synthetic records."""
import json
import math

import numpy as np
import pytest

from eval import plots
from eval.metrics import TrialRecord
from eval.report import RunResult, read_trials_csv, study_table, table_csv, table_markdown, write_eval_report
from eval.rollouts import append_trial_log, read_trial_log
from eval.spectra import action_windows, power_spectrum


def _recs(successes, offset=0):
    return [TrialRecord(seed=offset + i, outcome="success" if s else "timeout", steps=30 if s else 750,
                        time_to_success=3.0 if s else math.nan, final_xy_error=0.01, final_theta_error=0.03)
            for i, s in enumerate(successes)]


def test_eval_report_roundtrip(tmp_path):
    recs = _recs([1, 0, 1, 1])
    summary = write_eval_report(tmp_path, recs, extra={"checkpoint": "x.pt"})
    assert summary.success.successes == 3
    back = read_trials_csv(tmp_path / "trials.csv")
    assert [r.outcome for r in back] == [r.outcome for r in recs]
    assert math.isnan(back[1].time_to_success)
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["checkpoint"] == "x.pt" and data["success"]["successes"] == 3


def test_trial_log_ignores_torn_line(tmp_path):
    log = tmp_path / "trials.jsonl"
    append_trial_log(log, _recs([1, 0]))
    with open(log, "a") as f:
        f.write('{"seed": 5, "outc')  # killed mid-write
    assert [r.seed for r in read_trial_log(log)] == [0, 1]


def test_study_table_pools_seeds_and_pairs_by_start():
    base = [RunResult("cotrain", "alpha=0.5", s, _recs([1, 1, 0, 0]), alpha=0.5) for s in (0, 1)]
    better = [RunResult("truncated", "", s, _recs([1, 1, 1, 1])) for s in (0, 1)]
    only = [RunResult("target_only", "", 0, _recs([0, 0, 0, 0]))]
    rows, base_label = study_table(base + better + only, baseline="cotrain")
    assert base_label == "cotrain (alpha=0.5)"
    by = {r.label: r for r in rows}
    assert by["truncated"].trials == 8 and by["truncated"].successes == 8
    t = by["truncated"].vs_baseline
    assert (t.n_pairs, t.a_only, t.b_only) == (8, 4, 0)
    t = by["target_only"].vs_baseline          # only training seed 0 is shared
    assert (t.n_pairs, t.a_only, t.b_only) == (4, 0, 2)
    assert by[base_label].vs_baseline is None
    md = table_markdown(rows, base_label)
    assert "(baseline)" in md and "| truncated | 2 | 8 |" in md
    assert table_csv(rows).count("\n") == 4


def test_spectrum_of_white_noise_is_flat_at_its_variance():
    rng = np.random.default_rng(0)
    windows = rng.normal(0, 0.1, size=(4000, 32, 2))
    f, p = power_spectrum(windows, dt=0.1)
    assert f[-1] == pytest.approx(5.0)
    # Mean removal zeroes the DC bin; the others sit at sigma^2 = 0.01.
    assert p[0] == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(p[1:], 0.01, rtol=0.1)
    smooth = np.cumsum(rng.normal(0, 0.01, size=(200, 64, 2)), axis=1)  # random walk: power falls with f
    _, ps = power_spectrum(action_windows(list(smooth), length=32, stride=16))
    assert ps[1] > 20 * ps[-1]


def test_plots_write_pngs(tmp_path):
    base = [RunResult("cotrain", f"alpha={a}", 0, _recs([1, 0, 1]), alpha=a) for a in (0.25, 0.5)]
    rows, base_label = study_table(base + [RunResult("target_only", "", 0, _recs([0, 1, 0]))])
    assert plots.plot_success(rows, tmp_path / "s.png").stat().st_size > 1000
    assert plots.plot_success_vs_alpha(rows, tmp_path / "a.png").stat().st_size > 1000
    assert plots.plot_classifier_accuracy([0.01, 0.1, 1.0], [0.95, 0.7, 0.5], tmp_path / "c.png").exists()
    assert plots.plot_sigma_min_hist([0, 0, 0.1, 0.2, 0.5, np.inf], tmp_path / "h.png").exists()
    f, p = power_spectrum(np.random.default_rng(1).normal(size=(10, 16, 2)))
    assert plots.plot_power_spectra({"clean": (f, p), "corrupt": (f, 2 * p)}, tmp_path / "p.png",
                                    sigmas=[0.1]).exists()
