"""`cotrain corrupt` and `generate: {kind: corrupt}`: each transform's spectrum, the generator contract
(identity, refusals, resume, determinism), and a study whose corrupt store holds a failed episode.

Every store here is a real one written through the real writer; the CLI cases run the real `cotrain`.
"""
import gc
import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.cli import main
from harness.core.store import EpisodeStore
from harness.core.writer import EpisodeWriter
from real_data.corruption import generate
from real_data.corruption.generate import ActionUnits, CorruptConfig, fill_store
from real_data.corruption.transforms import DEFAULT_CUTOFF_HZ
from sim_envs.geometry import TASK
from tests.helpers import tree_digest
from tests.synthetic_stores import episode, write_store

SCALE = [5.0, 4.0]     # normalized action units per metre: a level L is L / scale metres


def _source(path, n_episodes: int = 12, length: int = 64, failed=(), seed: int = 0):
    """A teleop-like store; the episodes in `failed` are marked failed (meta success false)."""
    rng = np.random.default_rng(seed)
    with EpisodeWriter(path, domain="target", source="teleop_scripted", env="synthetic", env_params={},
                       generator={"test": True}) as w:
        for e in range(n_episodes):
            w.add_episode(episode(rng, length + (e % 3), 0.0), {"seed": e, "success": e not in failed})
    return path


def _corrupt(tmp_path, transform, level, name="out.zarr", seed=0, **extra):
    src = tmp_path / "src.zarr"
    if not src.exists():
        _source(src)
    cfg = CorruptConfig(str(src), transform, level, seed=seed, units=ActionUnits([0.5, 0.0], SCALE), **extra)
    fill_store(tmp_path / name, cfg, progress=False)
    return EpisodeStore(src), EpisodeStore(tmp_path / name)


def _normalized_change(src, out) -> list[np.ndarray]:
    """Per episode (T, 2): corrupt minus source action in normalized units."""
    return [(out.episode(i)["action"].astype(float) - src.episode(i)["action"].astype(float)) * SCALE
            for i in range(out.n_episodes)]


def _band_power(changes, below_hz: float | None = None, above_hz: float | None = None) -> float:
    """Mean periodogram |rfft|^2 / T (eval/spectra.py's normalisation) of the changes over the bins in a band."""
    powers = []
    for d in changes:
        freqs = np.fft.rfftfreq(len(d), d=TASK.control_dt)
        keep = np.ones(len(freqs), bool)
        if below_hz is not None:
            keep &= freqs < below_hz
        if above_hz is not None:
            keep &= freqs >= above_hz
        powers.append((np.abs(np.fft.rfft(d, axis=0)) ** 2 / len(d))[keep].ravel())
    return float(np.mean(np.concatenate(powers)))


def _unchanged_but_actions(src, out):
    assert out.n_episodes == src.n_episodes and np.array_equal(out.episode_ends, src.episode_ends)
    for key in ("agent_pos", "slider_pose"):
        assert np.array_equal(out.data(key), src.data(key)), key      # observations are kept as they are
    for key in src.meta_keys:
        assert np.array_equal(out.meta(key), src.meta(key)), key      # a failed episode stays failed


@pytest.mark.parametrize("level", [0.05, 0.3])
def test_gaussian_adds_flat_power_at_the_requested_level(tmp_path, level):
    src, out = _corrupt(tmp_path, "gaussian", level)
    changes = _normalized_change(src, out)
    low, high = _band_power(changes, below_hz=2.5), _band_power(changes, above_hz=2.5)
    assert low == pytest.approx(level ** 2, rel=0.15) and high == pytest.approx(level ** 2, rel=0.15)
    _unchanged_but_actions(src, out)
    assert (out.domain, out.source) == ("sim", "corrupted")


def test_jitter_adds_power_only_above_its_cutoff_and_drift_only_below(tmp_path):
    level = 0.2
    for transform, cutoff in (("jitter", DEFAULT_CUTOFF_HZ["jitter"]), ("drift", DEFAULT_CUTOFF_HZ["drift"]),
                              ("jitter", 3.0)):
        src, out = _corrupt(tmp_path, transform, level, name=f"{transform}{cutoff}.zarr",
                            cutoff_hz=None if cutoff == DEFAULT_CUTOFF_HZ[transform] else cutoff)
        changes = _normalized_change(src, out)
        inside = _band_power(changes, above_hz=cutoff) if transform == "jitter" else _band_power(changes, below_hz=cutoff)
        outside = _band_power(changes, below_hz=cutoff) if transform == "jitter" else _band_power(changes, above_hz=cutoff)
        assert inside == pytest.approx(level ** 2, rel=0.25 if transform == "drift" else 0.15), transform
        assert outside < 1e-8 * level ** 2, (transform, outside)      # zero to float32 rounding
        _unchanged_but_actions(src, out)


def test_latency_shifts_the_actions_and_bias_adds_one_offset_per_episode(tmp_path):
    src, late = _corrupt(tmp_path, "latency", 3, name="late.zarr")
    _unchanged_but_actions(src, late)
    for i in range(src.n_episodes):
        a, b = src.episode(i)["action"], late.episode(i)["action"]
        assert np.array_equal(b[3:], a[:-3]) and np.array_equal(b[:3], np.repeat(a[:1], 3, axis=0))

    level = 0.4
    src, biased = _corrupt(tmp_path, "bias", level, name="bias.zarr")
    _unchanged_but_actions(src, biased)
    changes = _normalized_change(src, biased)
    offsets = np.array([d.mean(axis=0) for d in changes])             # (E, 2)
    assert max(np.abs(d - d.mean(axis=0)).max() for d in changes) < 1e-5   # constant within an episode ...
    assert 0.5 * level < offsets.std() < 1.6 * level                  # ... of std `level` across episodes
    from eval.spectra import action_windows, power_spectrum
    clean = power_spectrum(action_windows([src.episode(i)["action"] for i in range(src.n_episodes)], 16))[1]
    shifted = power_spectrum(action_windows([biased.episode(i)["action"] for i in range(src.n_episodes)], 16))[1]
    assert np.allclose(shifted, clean, rtol=1e-4, atol=1e-10)          # nothing but f = 0 changed


def test_the_store_records_its_provenance_and_is_the_same_from_the_same_seed(tmp_path):
    src, a = _corrupt(tmp_path, "gaussian", 0.1, name="a.zarr", seed=7)
    _, b = _corrupt(tmp_path, "gaussian", 0.1, name="b.zarr", seed=7)
    _, c = _corrupt(tmp_path, "gaussian", 0.1, name="c.zarr", seed=8)
    assert np.array_equal(a.data("action"), b.data("action"))
    assert not np.allclose(a.data("action"), c.data("action"))
    record = a.attrs["generator"]
    assert (record["generator"], record["transform"], record["level"], record["seed"], record["num"]) == \
        ("real_data.corruption", "gaussian", 0.1, 7, src.n_episodes)
    assert record["source_sha256"] == generate.source_sha256(src, src.n_episodes)
    assert record["units"] == {"offset": [0.5, 0.0], "scale": SCALE}


def test_an_interrupted_corrupt_resumes_to_the_uninterrupted_store(tmp_path, monkeypatch, capsys):
    src = _source(tmp_path / "src.zarr")
    whole = tmp_path / "whole.zarr"
    args = ["corrupt", str(src), "--transform", "drift", "--level", "0.2", "--seed", "3", "--no-progress"]
    assert main([*args, "--out", str(whole)]) == 0
    real = generate.corrupt_episode

    def interrupted(action, cfg, i):
        if i == 5:
            raise KeyboardInterrupt
        return real(action, cfg, i)

    out = tmp_path / "out.zarr"
    monkeypatch.setattr(generate, "corrupt_episode", interrupted)
    assert main([*args, "--out", str(out)]) == 130                   # Ctrl-C: finished episodes kept
    assert EpisodeStore(out).n_episodes == 5
    monkeypatch.setattr(generate, "corrupt_episode", real)
    assert main([*args, "--out", str(out)]) == 0
    assert "7 new, 5 already there, 12 in the store" in capsys.readouterr().out
    done, ref = EpisodeStore(out), EpisodeStore(whole)
    for key in ref.data_keys:
        assert np.array_equal(done.data(key), ref.data(key)), key
    assert done.attrs["generator"] == ref.attrs["generator"]
    # the same command again: nothing to do; another level: refused naming the key, nothing touched
    made = tree_digest(out)
    assert main([*args, "--out", str(out)]) == 0
    assert main([*args[:5], "0.3", *args[6:], "--out", str(out)]) == 2
    assert "level: was 0.2" in capsys.readouterr().err and tree_digest(out) == made


def _listing(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case, extra, needle", [
    ("clean-to-clean", ["--out", "clean.zarr", "--transform", "gaussian", "--level", "0.1"],
     "not made by `cotrain corrupt`"),
    ("onto-its-source", ["--out", "src.zarr", "--transform", "gaussian", "--level", "0.1"], "source store itself"),
    ("unknown-transform", ["--out", "new.zarr", "--transform", "blur", "--level", "0.1"], "transform"),
    ("nan-level", ["--out", "new.zarr", "--transform", "gaussian", "--level", "nan"], "level"),
    ("inf-level", ["--out", "new.zarr", "--transform", "jitter", "--level", "inf"], "level"),
    ("negative-level", ["--out", "new.zarr", "--transform", "gaussian", "--level", "-0.1"], "--level"),
    ("fractional-latency", ["--out", "new.zarr", "--transform", "latency", "--level", "1.5"], "--level"),
    ("cutoff-of-gaussian", ["--out", "new.zarr", "--transform", "gaussian", "--level", "0.1", "--cutoff-hz", "1"],
     "--cutoff-hz"),
    ("too-many-episodes", ["--out", "new.zarr", "--transform", "bias", "--level", "0.1", "--num", "99"],
     "12 episodes"),
    ("bad-normalizer", ["--out", "new.zarr", "--transform", "bias", "--level", "0.1", "--normalizer", "none.json"],
     "none.json"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, extra, needle, tmp_path, monkeypatch, capsys):
    _source(tmp_path / "src.zarr")
    write_store(tmp_path / "clean.zarr", "target", n_episodes=2, seed=1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [sys.argv[0]])
    before = _listing(tmp_path)
    capsys.readouterr()
    code = main(["corrupt", "src.zarr", *extra, "--no-progress"])
    gc.collect()
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert _listing(tmp_path) == before


def _failed_episode_study(tmp_path) -> Path:
    """A tiny study: clean demos, a pool of other demos with a failed episode, and a gaussian copy of the
    pool made by the study itself; target_only, truncated at the known level and per-datapoint, and an
    oracle (cotrain on the pool itself)."""
    from tests.test_compare import TINY_TRAIN
    write_store(tmp_path / "clean.zarr", "target", n_episodes=4, seed=1)
    _source(tmp_path / "pool.zarr", n_episodes=6, length=30, failed=(1,))
    raw = {
        "name": "tiny", "out_dir": str(tmp_path / "results"),
        "datasets": [
            {"name": "clean", "path": str(tmp_path / "clean.zarr"), "role": "clean", "episodes": 3},
            {"name": "pool", "path": str(tmp_path / "pool.zarr"), "role": "corrupt"},
            {"name": "noisy", "path": str(tmp_path / "noisy.zarr"), "role": "corrupt", "episodes": 6,
             "generate": {"kind": "corrupt", "from": "pool", "transform": "gaussian", "level": 0.1, "seed": 4}}],
        "methods": [{"method": "target_only"},
                    {"method": "truncated", "sigma_n": "known", "datasets": ["clean", "noisy"]},
                    {"method": "truncated", "sigma_n": "per_datapoint", "datasets": ["clean", "noisy"]},
                    {"method": "cotrain", "label": "oracle", "datasets": ["clean", "pool"]}],
        "seeds": [0], "train": TINY_TRAIN,
        "annotate": {"overrides": {"steps": 5, "batch_size": 16, "grid_size": 4, "k_draws": 1,
                                   "val_windows": 20, "progress": False, "device": "cpu"}},
        "eval": {"trials": 2, "time_limit": 0.5, "n_envs": 2, "workers": 1},
        "spectra_window": 16,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_study_whose_corrupt_store_holds_a_failed_episode_writes_its_table(tmp_path, capsys):
    """The whole tiny study through the real CLI. Teleop demos keep their failed episodes, and so does a
    corrupt copy of them. The classifier numbers the episodes it reads among the successful ones; the
    sigma_n = 0 profile used to number them in the store, and the report stopped ("its windows are not the
    annotated ones"), after every run, and again with --report-only. Now the profile is drawn, and a plot
    that still fails costs only itself. On the way: the copy is made after its source, in the action units
    of the study normalizer; `sigma_n: known` reads its level; a row with its own datasets has its own
    classifier of clean against its corrupt data alone."""
    from harness.core.configs import load_config
    from harness.learning.annotations import read_annotations
    from harness.learning.normalizer import Affine, load_normalizer, same_affine
    from harness.study import StudyConfig
    from harness.study.plan import plan_runs

    path = _failed_episode_study(tmp_path)
    assert main(["compare", str(path), "--no-progress"]) == 0
    assert "plot failed" not in capsys.readouterr().out
    cfg = load_config(StudyConfig, path)
    assert cfg.datasets[2].generate.from_ == "pool"
    noisy = EpisodeStore(tmp_path / "noisy.zarr")
    assert noisy.meta("success").tolist() == [True, False, True, True, True, True]
    assert same_affine(load_normalizer(cfg.normalizer_path).action, Affine.from_state(noisy.attrs["generator"]["units"]))
    table = (cfg.out / "table.md").read_text()
    assert all(row in table for row in ("target_only", "truncated (known)", "truncated (per-datapoint)", "oracle"))
    assert (cfg.out / "plots" / "sigma_n_zero_profile.png").is_file()

    plans = {p.label: p.train for p in plan_runs(cfg, cfg.annotations_path)}
    assert plans["truncated (known)"].objective.sigma_n == 0.1
    assert [d.path for d in plans["truncated (known)"].data.datasets] == [str(tmp_path / "clean.zarr"),
                                                                          str(tmp_path / "noisy.zarr")]
    assert [d.path for d in plans["oracle"].data.datasets] == [str(tmp_path / "clean.zarr"), str(tmp_path / "pool.zarr")]
    own = plans["truncated (per-datapoint)"].objective.annotations
    assert own == str(cfg.out / "annotations-datanoisy.zarr")
    assert [Path(d.path).name for d in read_annotations(own).datasets] == ["noisy.zarr"]
    assert [Path(d.path).name for d in read_annotations(cfg.annotations_path).datasets] == ["pool.zarr", "noisy.zarr"]

    # a store made again after it was annotated: that plot fails in one line, the table and the rest are written
    shutil.rmtree(tmp_path / "pool.zarr")
    _source(tmp_path / "pool.zarr", n_episodes=6, length=20, failed=(1,))
    (cfg.out / "table.md").unlink()
    assert main(["compare", str(path), "--report-only"]) == 0
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("plot failed")]
    assert len(failed) == 1 and failed[0].startswith("plot failed sigma_n_zero_profile: DatasetError"), out
    assert (cfg.out / "table.md").is_file() and "target_only" in (cfg.out / "table.md").read_text()
    assert f"written    {cfg.out / 'plots' / 'action_spectra.png'}" in out

    # a study with no shared classifier, only the rows' own (the corruption map's shape): --report-only
    # plans its runs from those stores instead of reporting "no finished runs"
    raw = yaml.safe_load(path.read_text())
    raw["annotate"]["enabled"] = False
    path.write_text(yaml.safe_dump(raw))
    assert load_config(StudyConfig, path).annotations_path is None
    assert main(["compare", str(path), "--report-only"]) == 0
    table = (cfg.out / "table.md").read_text()
    assert all(row in table for row in ("target_only", "truncated (known)", "truncated (per-datapoint)", "oracle"))


@pytest.mark.parametrize("name", ["positive_control", "corruption_map"])
def test_the_issue_34_studies_resolve_every_generator_run_and_classifier(name, tmp_path, monkeypatch):
    """Both studies load, plan every run, resolve every generator config (the corrupt copies included) and
    give every per-datapoint row a classifier of clean against its own corrupt dataset alone."""
    from harness.study import load_study
    from harness.study.plan import plan_runs
    from harness.study.report import corruption_cells
    from harness.study.runner import annotate_jobs, generation_jobs

    experiment = Path(__file__).resolve().parents[1] / "experiments" / f"{name}.yaml"
    monkeypatch.chdir(tmp_path)          # its data paths are relative: nothing of the repository is touched
    cfg = load_study(experiment)
    plans = plan_runs(cfg, cfg.annotations_path, dry=True)
    generation_jobs(cfg, progress=False, dry=True)
    assert cfg.annotations_path is None  # no shared classifier: each row's own
    by_label = {p.label: p for p in plans}
    jobs = annotate_jobs(cfg, progress=False)
    for job in jobs:
        assert len(job.kwargs["corrupt"]) == 1, job.key
    # classifiers that run max_parallel at once share the cores; a lone one gets them all
    expected = cfg.executor.threads * (cfg.executor.max_parallel if len(jobs) == 1 else 1)
    assert [job.kwargs["threads"] for job in jobs] == [expected] * len(jobs)
    assert len(jobs) == (9 if name == "corruption_map" else 1)
    known = [p for p in plans if "(known)" in p.label]
    assert known and all(p.train.objective.sigma_n in (0.05, 0.1, 0.2) for p in known)
    assert [Path(d.path).name for d in by_label["oracle"].train.data.datasets] == \
        ["target_teleop.zarr", "target_teleop_pool.zarr"]
    if name == "corruption_map":
        transforms = {d.generate.transform for d in cfg.datasets if d.generate.kind == "corrupt"}
        assert transforms == {"gaussian", "jitter", "drift", "latency"}
        assert len({p.label for p in plans if p.label.startswith("cotrain [")}) == 9   # 4 transforms x 2 levels + GCS
        # one seed of every row, then seeds 1 and 2 for cotrain and the best ambient row of the 4 cells that
        # decide, and for target_only and the oracle
        assert sum(p.seed == 0 for p in plans) == 29 and len(plans) == 29 + 2 * (2 * 4 + 2)
    # the heatmap's cells: each cotrain row that others are paired with, named by how its data were made
    cells = corruption_cells(cfg, plans)
    if name == "corruption_map":
        assert len(cells) == 9 and cells["cotrain [gaussian 0.05]"] == ("gaussian", "0.05")
        assert cells["cotrain [latency 5]"] == ("latency", "5") and cells["cotrain [gcs]"] == ("gcs", "")
    else:
        assert cells == {}      # every row is paired with the study's baseline: no map


def test_the_corruption_map_shows_each_cells_best_paired_row_against_its_cotrain_row(tmp_path):
    """plots/corruption_map.png: per (corruption, level) cell, the best of the rows paired with that cell's
    cotrain row, its difference in success points and its McNemar p; a cell with no finished pair is left out."""
    import csv
    from eval.metrics import PairedTest
    from eval.plots import plot_corruption_map
    from eval.study_table import TableRow

    def row(label, baseline=None, a_only=0, b_only=0, p=1.0):
        test = PairedTest(100, a_only, b_only, p) if baseline else None
        return TableRow(label, "truncated", "", None, [0], [0.1], 100, 10, 0.1, 0.05, 0.2, test, baseline=baseline)

    rows = [row("cotrain [gaussian 0.1]"), row("cotrain [drift 0.2]"), row("cotrain [gcs]"),
            row("truncated (known) [gaussian 0.1]", "cotrain [gaussian 0.1]", 30, 5, 1e-5),
            row("truncated (per-datapoint) [gaussian 0.1]", "cotrain [gaussian 0.1]", 12, 10, 0.8),
            row("truncated (per-datapoint) [drift 0.2]", "cotrain [drift 0.2]", 3, 9, 0.15)]
    cells = {"cotrain [gaussian 0.1]": ("gaussian", "0.1"), "cotrain [drift 0.2]": ("drift", "0.2"),
             "cotrain [gcs]": ("gcs", "")}
    path = plot_corruption_map(rows, cells, tmp_path / "corruption_map.png")
    with open(path.with_suffix(".csv")) as f:
        got = {r["corruption"]: r for r in csv.DictReader(f)}
    assert path.is_file() and set(got) == {"gaussian", "drift"}           # gcs: no row paired with it yet
    assert got["gaussian"]["best_row"] == "truncated (known) [gaussian 0.1]"
    assert float(got["gaussian"]["difference"]) == 25.0 and float(got["gaussian"]["p"]) == 1e-5
    assert float(got["drift"]["difference"]) == -6.0                      # a loss is drawn as a loss
    assert plot_corruption_map(rows[:3], cells, tmp_path / "none.png") is None
