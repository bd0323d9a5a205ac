"""Eval report files, the study table (pooling and pairing), spectra and plots, on synthetic records."""
import csv
import json
import math

import numpy as np
import pytest

from eval import plots
from eval.metrics import TrialRecord
from eval.report import read_trials_csv, write_eval_report
from eval.study_table import RunResult, study_table, table_csv, table_markdown, table_summary
from eval.rollouts import append_trial_log, read_trial_log
from eval.spectra import action_windows, episodes_spectrum, power_spectrum
from harness.core.writer import EpisodeWriter
from harness.study.report import read_actions


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


def test_table_summary_names_the_winner_and_only_the_differences_the_test_supports():
    """The closing sentence: the winner's discordant starts first, 'not told apart' above p = 0.01."""
    n = 60
    cotrain = [1] * 40 + [0] * 20
    target = [0] * 30 + [1] * 10 + [1] * 2 + [0] * 18        # cotrain alone solves 30, target_only alone 2
    trunc = [1] * 38 + [0] * 2 + [1] * 3 + [0] * 17          # 2 / 3: not told apart
    rows, base = study_table([RunResult("target_only", "", 0, _recs(target)),
                              RunResult("cotrain", "", 0, _recs(cotrain)),
                              RunResult("truncated", "", 0, _recs(trunc))], baseline="cotrain")
    assert len(cotrain) == len(target) == len(trunc) == n
    text = table_summary(rows, base)
    p = {r.label: r.vs_baseline.p_value for r in rows if r.vs_baseline}
    assert p["target_only"] < 1e-6 and p["truncated"] == 1.0
    assert text.startswith("cotrain solves 30 starts that target_only misses and misses 2 that it solves "
                           "(McNemar p = ")
    assert "truncated and cotrain are not told apart at p < 0.01 (3 / 2 starts solved by only one of them, " \
        "McNemar p = 1.00)" in text
    many = [RunResult("cotrain", "", 0, _recs(cotrain))] + [
        RunResult("target_only", "", 0, _recs(target), name=f"row {i}") for i in range(5)]
    assert table_summary(*study_table(many, baseline="cotrain")) == (
        "Of 5 rows paired with their baseline, 0 score above it and 5 below it at McNemar p < 0.01; "
        "the other 0 are not told apart.")
    assert table_summary(*study_table([RunResult("cotrain", "", 0, _recs(cotrain))], baseline="cotrain")) == ""


def test_study_table_counts_trials_that_pushed_the_t_out_of_the_workspace():
    recs = _recs([1, 0, 0, 0])
    recs[1].outcome = recs[3].outcome = "left_workspace"
    rows, _ = study_table([RunResult("truncated", "", 0, recs), RunResult("cotrain", "", 0, _recs([1, 0, 0, 0]))],
                          baseline="cotrain")
    by = {r.label: r for r in rows}
    assert by["truncated"].left_workspace == 0.5 and by["cotrain"].left_workspace == 0.0
    assert "| 50.0% |" in table_markdown(rows, "cotrain")
    assert [row["left_workspace"] for row in csv.DictReader(table_csv(rows).splitlines())] == ["0.500000",
                                                                                             "0.000000"]


def test_a_row_with_its_own_baseline_is_paired_with_it():
    edm = RunResult("cotrain", "", 0, _recs([1, 1, 0, 0]))
    ddpm = RunResult("cotrain", "", 0, _recs([0, 0, 0, 0]), name="cotrain ddpm")
    trunc = RunResult("truncated", "", 0, _recs([1, 1, 1, 1]), name="truncated ddpm", baseline="cotrain ddpm")
    rows, base = study_table([edm, ddpm, trunc], baseline="cotrain")
    by = {r.label: r for r in rows}
    assert base == "cotrain" and by["truncated ddpm"].vs_baseline.a_only == 4      # 4 wins against cotrain ddpm
    assert by["cotrain ddpm"].vs_baseline.b_only == 2 and by["cotrain ddpm"].baseline is None
    md = table_markdown(rows, base)
    assert "4 / 0 (vs cotrain ddpm)" in md and "0 / 2 |" in md


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


def _csv(png) -> list[dict]:
    """The rows of the CSV a plot wrote beside its PNG (the PNG must be there and be a PNG)."""
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(png.with_suffix(".csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_success_plots_write_the_table_numbers(tmp_path):
    base = [RunResult("cotrain", f"alpha={a}", s, _recs(w), alpha=a)
            for a, wins in ((0.25, ([1, 0, 1], [1, 1, 1])), (0.5, ([0, 0, 1], [0, 1, 1]))) for s, w in enumerate(wins)]
    others = [RunResult("target_only", "", 0, _recs([0, 1, 0]), alpha=1.0),   # its fixed alpha
              RunResult("truncated", "", 0, _recs([1, 1, 0]))]
    rows, _ = study_table(base + others, baseline="cotrain")
    got = _csv(plots.plot_success(rows, tmp_path / "success.png"))
    assert [g["label"] for g in got] == [r.label for r in rows]
    for g, r in zip(got, rows):
        assert float(g["rate"]) == pytest.approx(r.rate, abs=1e-6)
        assert (float(g["ci_low"]), float(g["ci_high"])) == pytest.approx((r.ci_low, r.ci_high), abs=1e-6)
        assert [float(x) for x in g["per_seed_rate"].split()] == pytest.approx(r.per_seed_rate, abs=1e-6)
        assert (int(g["trials"]), int(g["successes"])) == (r.trials, r.successes)
    by = {g["label"]: g for g in got}
    assert by["cotrain (alpha=0.25)"]["per_seed_rate"].split() == ["0.666667", "1"]
    assert float(by["cotrain (alpha=0.25)"]["rate"]) == pytest.approx(5 / 6, abs=1e-6)

    got = _csv(plots.plot_success_vs_alpha(rows, tmp_path / "success_vs_alpha.png"))
    curve = [(g["label"], float(g["alpha"]), float(g["rate"]), g["drawn_as"]) for g in got if g["alpha"]]
    assert curve == [("cotrain (alpha=0.25)", 0.25, pytest.approx(5 / 6, abs=1e-6), "curve"),
                     ("cotrain (alpha=0.5)", 0.5, pytest.approx(0.5, abs=1e-6), "curve"),
                     ("target_only", 1.0, pytest.approx(1 / 3, abs=1e-6), "fixed")]   # at its alpha = 1
    (ref,) = [g for g in got if g["drawn_as"] == "reference"]
    assert ref["label"] == "truncated" and ref["alpha"] == "" and float(ref["rate"]) == pytest.approx(2 / 3, abs=1e-6)
    only_refs, _ = study_table(others[1:], baseline="truncated")
    assert plots.plot_success_vs_alpha(only_refs, tmp_path / "none.png") is None
    assert not (tmp_path / "none.csv").exists() and not (tmp_path / "none.png").exists()


def test_sigma_n_sweep_and_clean_fraction_plots_write_the_table_numbers(tmp_path):
    """The sweep curve holds the fixed-sigma_n rows of each method in sigma order, the methods without
    sigma_n are reference lines, per-datapoint rows are neither; the clean fraction per band is the mean
    over the seeds that drew a sample there."""
    def band(low, high):
        return {"training": {"clean_fraction_by_sigma": {"0-0.05": low, "0.05-0.2": high}}}
    sweep = [RunResult("truncated", f"sigma_n={s}", 0, _recs(w), sigma_n=s, name=f"truncated {s}", **band(1.0, 0.5))
             for s, w in ((0.4, [1, 1, 0, 0]), (0.05, [1, 0, 0, 0]))]
    others = [RunResult("cotrain", "", seed, _recs([1, 1, 1, 0]), **band(low, 0.1))
              for seed, low in ((0, 0.2), (1, None))]
    others.append(RunResult("truncated", "per-datapoint", 0, _recs([0, 0, 0, 1])))
    rows, _ = study_table(sweep + others, baseline="cotrain")
    got = _csv(plots.plot_success_vs_sigma_n(rows, tmp_path / "sweep.png"))
    assert [(g["label"], float(g["sigma_n"]) if g["sigma_n"] else None, g["drawn_as"]) for g in got] == [
        ("truncated 0.05", 0.05, "curve"), ("truncated 0.4", 0.4, "curve"), ("cotrain", None, "reference")]
    assert float(got[1]["rate"]) == pytest.approx(0.5, abs=1e-6)
    got = _csv(plots.plot_clean_fraction_by_sigma(rows, tmp_path / "bands.png"))
    by = {g["label"]: g for g in got}
    assert set(by) == {"truncated 0.4", "truncated 0.05", "cotrain"}      # the row without records is left out
    assert float(by["cotrain"]["0-0.05"]) == pytest.approx(0.2) and float(by["cotrain"]["0.05-0.2"]) == pytest.approx(0.1)
    one_point, _ = study_table(sweep[:1] + others, baseline="cotrain")
    assert plots.plot_success_vs_sigma_n(one_point, tmp_path / "none.png") is None
    # a row paired with a baseline of its own (another budget) is another condition: a lone point, not a
    # third point of the curve
    longer = [RunResult("truncated", "sigma_n=0.05", 0, _recs([1, 1, 1, 1]), sigma_n=0.05, name="truncated 0.05 long",
                        baseline="cotrain long"),
              RunResult("cotrain", "", 0, _recs([1, 1, 1, 1]), name="cotrain long")]
    rows, _ = study_table(sweep + others + longer, baseline="cotrain")
    got = _csv(plots.plot_success_vs_sigma_n(rows, tmp_path / "sweep2.png"))
    assert [(g["label"], g["drawn_as"]) for g in got] == [
        ("truncated 0.05", "curve"), ("truncated 0.4", "curve"), ("truncated 0.05 long", "point"),
        ("cotrain", "reference"), ("cotrain long", "reference")]


def test_classifier_accuracy_plot_writes_balanced_and_per_class_accuracy(tmp_path):
    sigmas, clean, corrupt = [0.0, 0.01, 0.1, 1.0], [0.9, 0.9, 0.7, 0.5], [1.0, 0.96, 0.7, 0.52]
    balanced = [(a + b) / 2 for a, b in zip(clean, corrupt)]
    got = _csv(plots.plot_classifier_accuracy(sigmas, balanced, tmp_path / "acc.png", clean, corrupt, threshold=0.55))
    assert [float(g["sigma"]) for g in got] == sigmas                   # sigma = 0 kept (drawn left of 0.01)
    assert [float(g["balanced_accuracy"]) for g in got] == pytest.approx(balanced)
    assert [float(g["accuracy_clean"]) for g in got] == pytest.approx(clean)
    assert [float(g["accuracy_corrupt"]) for g in got] == pytest.approx(corrupt)
    got = _csv(plots.plot_classifier_accuracy(sigmas[1:], balanced[1:], tmp_path / "bal.png"))
    assert [g["accuracy_clean"] for g in got] == ["", "", ""]           # per-class accuracy not given
    with pytest.raises(ValueError, match="same length"):
        plots.plot_classifier_accuracy(sigmas, balanced[1:], tmp_path / "bad.png")


def test_sigma_n_hist_counts_finite_positive_windows_and_fractions(tmp_path):
    grid = np.array([0.0, 0.01, 0.02, 0.05, 0.1, 0.2])
    smin = np.array([0, 0, 0, 0.01, 0.02, 0.02, 0.05, 0.2, 0.2, 0.2, np.inf, np.inf])
    for name, kwargs in (("grid", {"grid": grid}), ("free", {})):
        got = _csv(plots.plot_sigma_n_hist(smin, tmp_path / f"{name}.png", **kwargs))
        bins = [g for g in got if g["kind"] == "bin"]
        (zero,), (never,) = [g for g in got if g["kind"] == "zero"], [g for g in got if g["kind"] == "never"]
        assert sum(int(b["count"]) for b in bins) == 7                   # finite, positive windows
        assert (int(zero["count"]), float(zero["fraction"])) == (3, pytest.approx(3 / 12, abs=1e-6))
        assert (int(never["count"]), float(never["fraction"])) == (2, pytest.approx(2 / 12, abs=1e-6))
        lows, highs = [float(b["low"]) for b in bins], [float(b["high"]) for b in bins]
        assert all(lo < hi for lo, hi in zip(lows, highs)) and lows[1:] == pytest.approx(highs[:-1])
        assert lows[0] <= 0.01 and highs[-1] >= 0.2
    # on the classifier's grid every grid sigma has its own bin
    got = _csv(plots.plot_sigma_n_hist(smin, tmp_path / "grid.png", grid=grid))
    counts = {}
    for b in (g for g in got if g["kind"] == "bin"):
        (inside,) = [s for s in grid[1:] if float(b["low"]) < s < float(b["high"])]
        counts[inside] = int(b["count"])
    assert counts == {0.01: 1, 0.02: 2, 0.05: 1, 0.1: 0, 0.2: 3}
    none = _csv(plots.plot_sigma_n_hist([0.0, np.inf], tmp_path / "none.png"))
    assert [g["kind"] for g in none] == ["zero", "never"]


def _sine_store(path, freq_hz: float, amplitude: float, n_episodes: int = 3, length: int = 64):
    t = np.arange(length) * 0.1                                       # 10 Hz control
    with EpisodeWriter(path, domain="sim", source="gcs_kinematic", env="synthetic", env_params={},
                       generator={"test": True}) as w:
        for e in range(n_episodes):
            x = 0.5 + amplitude * np.sin(2 * np.pi * freq_hz * t + e)
            action = np.column_stack([x, np.full(length, 0.1 * e)])       # axis y: constant, no power
            w.add_episode({"agent_pos": action, "slider_pose": np.zeros((length, 3)), "action": action},
                          meta={"seed": e, "success": True})
    return path


def test_spectrum_of_a_sinusoid_peaks_at_its_frequency(tmp_path):
    store = _sine_store(tmp_path / "sine.zarr", freq_hz=1.25, amplitude=0.02)   # bin 4 of a 32-step window
    f, p, n = episodes_spectrum(read_actions(store), length=32)
    assert n == 3 * ((64 - 32) // 8 + 1)                                 # stride defaults to length // 4
    assert f[np.argmax(p)] == pytest.approx(1.25)
    # a sinusoid of amplitude A on one axis of two: A^2 / 2 * length / 2 in its bin, averaged over axes
    assert p.max() == pytest.approx(0.02 ** 2 / 2 * 32 / 2 / 2, rel=1e-6)
    assert p.sum() == pytest.approx(p.max(), rel=1e-9)                   # nothing anywhere else
    _, p_scaled, _ = episodes_spectrum(read_actions(store), length=32, scale=np.array([10.0, 10.0]))
    assert p_scaled == pytest.approx(100 * p)                            # power in scaled units
    assert episodes_spectrum(read_actions(store, max_episodes=1), length=32)[2] == n // 3
    assert episodes_spectrum(read_actions(store), length=128) is None                   # episodes too short for a window
    other = _sine_store(tmp_path / "slow.zarr", freq_hz=0.625, amplitude=0.02)
    got = _csv(plots.plot_power_spectra({"fast": (f, p), "slow": episodes_spectrum(read_actions(other), length=32)[:2]},
                                        tmp_path / "action_spectra.png", sigmas=[0.01]))
    for name, peak in (("fast", 1.25), ("slow", 0.625)):
        rows = [g for g in got if g["dataset"] == name]
        assert len(rows) == len(f)
        assert float(max(rows, key=lambda g: float(g["power"]))["frequency_hz"]) == pytest.approx(peak)
