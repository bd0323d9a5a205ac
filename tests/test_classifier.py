"""The noise-level classifier, `annotate`, and the trainer reading per-window sigma_n from annotations."""
import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_stores import write_store  # noqa: E402

from eval.plots import annotation_plot_paths, plot_annotations  # noqa: E402
from harness.annotations import read_annotations  # noqa: E402
from harness.classifier import AnnotateConfig, annotate, sigma_n_from_p  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.data.configs import from_dict  # noqa: E402
from harness.data.errors import ConfigError  # noqa: E402
from harness.data.store import EpisodeStore  # noqa: E402
from harness.windows import make_windows  # noqa: E402
from harness.train_config import TrainConfig  # noqa: E402
from harness.training import Trainer  # noqa: E402

torch.set_num_threads(1)


def test_sigma_n_is_first_grid_sigma_from_which_p_stays_low():
    grid = np.array([0.0, 0.1, 0.2, 0.4, 0.8])
    p = np.array([
        [0.50, 0.50, 0.50, 0.50, 0.50],   # indistinguishable already: 0
        [0.99, 0.90, 0.54, 0.52, 0.50],   # falls to <= 0.55 at 0.2
        [0.99, 0.50, 0.90, 0.52, 0.51],   # dips early, but only stays low from 0.4
        [0.99, 0.99, 0.99, 0.90, 0.70],   # never
    ])
    out = sigma_n_from_p(p, grid, eps=0.05)
    assert out[:3].tolist() == [0.0, 0.2, 0.4] and np.isinf(out[3])


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    d = tmp_path_factory.mktemp("ann")
    # enough short episodes that the classifier learns the wiggle rather than memorising episodes
    clean = write_store(d / "target.zarr", "target", 30, length=16, seed=1)
    sim = write_store(d / "sim.zarr", "sim", 30, length=16, wiggle=0.05, seed=2)
    cfg = AnnotateConfig(steps=400, batch_size=128, grid_size=10, k_draws=2, use_obs=False, progress=False,
                         n_folds=2, seed=0)
    out = annotate([clean], [sim], d / "annotations.zarr", cfg)
    return {"clean": clean, "sim": sim, "out": out, "dir": d}


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_annotate_writes_store_and_curve_and_the_plots_show_them(annotated, tmp_path):
    ann = read_annotations(annotated["out"], with_probabilities=True)
    assert ann.sigma_grid[0] == 0 and np.all(np.diff(ann.sigma_grid) > 0)
    # the wiggle is plain to see without noise and drowned at sigma = 5 (data in [-1, 1])
    assert ann.accuracy[0] > 0.85 and ann.accuracy[-1] < 0.65, ann.accuracy
    (ds,) = ann.datasets
    w = make_windows(EpisodeStore(annotated["sim"]).episode_ends, ann.spec)
    assert np.array_equal(ds.episode, w.episode) and np.array_equal(ds.t0, w.t0)  # every corrupt window
    assert np.array_equal(ds.sigma_n, sigma_n_from_p(ds.p_corrupt.astype(np.float32), ann.sigma_grid, 0.05))
    assert np.mean(ds.sigma_n > 0) > 0.7   # the classifier tells most sim windows apart without noise
    # annotate writes numbers only (the store, with the per-class accuracies); eval.plots draws them
    assert [p.name for p in annotated["out"].parent.iterdir() if p.suffix in (".png", ".csv")] == []
    clean, corrupt = np.array(ann.attrs["accuracy_clean"]), np.array(ann.attrs["accuracy_corrupt"])
    assert np.allclose((clean + corrupt) / 2, ann.accuracy)
    acc_png, hist_png = plot_annotations(annotated["out"], tmp_path / "acc.png", tmp_path / "hist.png")
    rows = _rows(acc_png.with_suffix(".csv"))
    assert [float(r["sigma"]) for r in rows] == pytest.approx(ann.sigma_grid, rel=1e-5)
    assert [float(r["balanced_accuracy"]) for r in rows] == pytest.approx(ann.accuracy, abs=1e-6)
    assert [float(r["accuracy_clean"]) for r in rows] == pytest.approx(clean, abs=1e-6)
    assert [float(r["accuracy_corrupt"]) for r in rows] == pytest.approx(corrupt, abs=1e-6)
    hist = _rows(hist_png.with_suffix(".csv"))
    smin = ds.sigma_n
    assert sum(int(r["count"]) for r in hist if r["kind"] == "bin") == np.sum(np.isfinite(smin) & (smin > 0))
    (zero,) = [r for r in hist if r["kind"] == "zero"]
    (never,) = [r for r in hist if r["kind"] == "never"]
    assert int(zero["count"]) == np.sum(smin == 0) and int(never["count"]) == np.sum(np.isinf(smin))
    assert float(zero["fraction"]) == pytest.approx(np.mean(smin == 0), abs=1e-6)
    assert float(never["fraction"]) == pytest.approx(np.mean(np.isinf(smin)), abs=1e-6)


def test_trainer_uses_per_window_sigma_n_from_annotations(annotated, tmp_path):
    cfg = from_dict(TrainConfig, {
        "out_dir": str(tmp_path / "run"), "device": "cpu",
        "data": {"datasets": [{"path": str(annotated["clean"])}, {"path": str(annotated["sim"]), "max_episodes": 6}]},
        "policy": {"down_dims": [16, 32], "noise_dim": 16},
        "objective": {"method": "ambient", "annotations": str(annotated["out"]), "sigma_n": "annotations",
                      "alpha_table": "classifier"},
        "optim": {"batch_size": 16}, "run": {"steps": 3, "progress": False},
    }, "test")
    trainer = Trainer(cfg)
    ann = read_annotations(annotated["out"])
    pool = trainer.data.pools["corrupt"]
    rows = pool.train_rows
    lookup = {(e, t): s for e, t, s in zip(ann.datasets[0].episode, ann.datasets[0].t0, ann.datasets[0].sigma_n)}
    expected = [lookup[(e, t)] for e, t in zip(pool.windows.episode[rows], pool.windows.t0[rows])]
    assert np.array_equal(pool.sigma_n, expected)
    assert pool.windows.episode[rows].max() < 6                  # max_episodes respected
    # the action normalizer follows the annotations, so their sigmas mean the same noise
    assert np.allclose(trainer.data.normalizer.action.scale, ann.action_normalizer["scale"])
    draw = trainer.data.sampler.sample(4096, np.random.default_rng(0))
    c = draw.corrupt
    assert c.any() and np.all(draw.sigma[c] > pool.sigma_n[draw.index[c]])
    # alpha from the classifier: (almost) only clean data where the classifier tells them apart
    assert trainer.data.sampler.p_clean(np.array([ann.sigma_grid[1]]))[0] > 0.9
    trainer.fit()
    assert (tmp_path / "run" / "done").exists()


def test_cli_annotate_prints_summary(annotated, capsys):
    out = annotated["dir"] / "cli.zarr"
    code = main(["annotate", "--clean", str(annotated["clean"]), "--corrupt", str(annotated["sim"]),
                 "--out", str(out), "steps=20", "grid_size=4", "k_draws=1", "progress=false"])
    text = capsys.readouterr().out
    assert code == 0 and out.exists() and "sigma_n = 0:" in text and "accuracy" in text
    # the command draws the figures beside the store, with their numbers
    ann = read_annotations(out)
    acc_png, hist_png = annotation_plot_paths(out)
    for path in (acc_png, hist_png):
        assert str(path) in text and path.read_bytes()[:4] == b"\x89PNG"
    rows = _rows(acc_png.with_suffix(".csv"))
    assert [float(r["balanced_accuracy"]) for r in rows] == pytest.approx(ann.accuracy, abs=1e-6)
    hist = _rows(hist_png.with_suffix(".csv"))
    assert sum(int(r["count"]) for r in hist) == len(ann.datasets[0].sigma_n)   # bins + zero + never
    assert main(["annotate", "--clean", str(annotated["clean"]), "--corrupt", str(annotated["sim"]),
                 "--out", str(out), "eps=0.7"]) == 2


def test_annotations_of_another_dataset_are_refused(annotated, tmp_path):
    other = write_store(tmp_path / "other_sim.zarr", "sim", 3, length=16, seed=9)
    cfg = from_dict(TrainConfig, {
        "out_dir": str(tmp_path / "run"), "device": "cpu",
        "data": {"datasets": [{"path": str(annotated["clean"])}, {"path": str(other)}]},
        "policy": {"down_dims": [16, 32], "noise_dim": 16},
        "objective": {"method": "truncated", "annotations": str(annotated["out"]), "sigma_n": "annotations"},
        "run": {"steps": 1, "progress": False},
    }, "test")
    with pytest.raises(ConfigError, match="no annotations for corrupt dataset"):
        Trainer(cfg)


def test_annotate_uses_only_the_first_episodes_it_is_given(annotated, tmp_path):
    """A study that trains on the first N episodes must annotate exactly those (and record it)."""
    cfg = AnnotateConfig(steps=5, batch_size=32, grid_size=3, k_draws=1, use_obs=False, progress=False)
    out = annotate([{"path": annotated["clean"], "max_episodes": 6}],
                   [{"path": annotated["sim"], "max_episodes": 4}], tmp_path / "sub.zarr", cfg)
    ann = read_annotations(out)
    (ds,) = ann.datasets
    assert ds.n_episodes == 4 and set(np.unique(ds.episode)) == {0, 1, 2, 3}
    assert ann.attrs["corrupt_paths"] == [{"path": str(Path(annotated["sim"]).resolve()), "max_episodes": 4}]


def test_annotate_never_replaces_what_it_did_not_make(annotated, capsys):
    """--out on a dataset store is refused and the store is untouched; an annotations store is reused only
    by the same data and settings, and refused (naming the key) otherwise."""
    from tests.helpers import tree_digest

    args = ["annotate", "--clean", str(annotated["clean"]), "--corrupt", str(annotated["sim"])]
    before = tree_digest(annotated["sim"])
    assert main([*args, "--out", str(annotated["sim"]), "steps=5"]) == 2
    assert "is not an annotations store" in capsys.readouterr().err
    assert tree_digest(annotated["sim"]) == before
    out = annotated["dir"] / "reuse.zarr"
    tiny = ["steps=5", "grid_size=3", "k_draws=1", "progress=false"]
    assert main([*args, "--out", str(out), *tiny]) == 0
    made = tree_digest(out)
    assert main([*args, "--out", str(out), *tiny[:3], "progress=true"]) == 0     # a free key: reused
    assert tree_digest(out) == made
    assert main([*args, "--out", str(out), "steps=6", *tiny[1:]]) == 2
    assert "config.steps: was 5" in capsys.readouterr().err and tree_digest(out) == made
