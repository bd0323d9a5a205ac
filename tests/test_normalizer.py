"""The normalizer: the robust percentile fit, clean actions first, the JSON file a study shares, and the
trainer's use of it (data.normalizer), refused when the annotations were made in other units."""
import json

import numpy as np
import pytest

from harness.learning.annotations import Annotations, write_annotations
from harness.core.configs import from_dict
from harness.core.errors import ConfigError, DatasetError
from harness.learning.normalizer import (FIT_PERCENTILES, Affine, Normalizer, fit_normalizer, load_normalizer,
                                save_normalizer)
from harness.learning.train_config import TrainConfig
from harness.learning.training_data import build
from harness.learning.windows import WindowSpec
from tests.synthetic_stores import write_noisy_copy, write_store


def test_percentile_fit_ignores_one_percent_of_wild_outliers():
    rng = np.random.default_rng(0)
    clean = rng.uniform([0.3, -0.2], [0.8, 0.2], (9910, 2))
    # 0.45% of the data at each end (0.9% in all), up to 100x the data's range away
    wild = np.concatenate([-rng.uniform(1, 50, (45, 2)), rng.uniform(1, 50, (45, 2))])
    affine = Affine.fit(np.concatenate([clean, wild]))
    z = affine.normalize(clean)
    # the clean data still fill ~[-1, 1] (min/max would squeeze them into ~[-0.005, 0.005])
    assert np.allclose(z.min(0), -1, atol=0.03) and np.allclose(z.max(0), 1, atol=0.03)
    assert FIT_PERCENTILES == (0.5, 99.5)


def test_actions_are_fitted_on_clean_data_observations_on_all():
    rng = np.random.default_rng(1)
    clean_act = rng.uniform([0.3, -0.2], [0.8, 0.2], (2000, 2))
    corrupt_act = np.tile(clean_act, (3, 1)) + rng.normal(0, 0.5, (6000, 2))   # noisy copies, all of them
    obs = rng.uniform(-1, 1, (8000, 6))
    obs[:1000, 0] = rng.uniform(5, 6, 1000)          # observations: every datum counts
    n = fit_normalizer(obs, clean_act, np.concatenate([clean_act, corrupt_act]))
    z = n.action.normalize(clean_act)
    assert np.allclose(np.percentile(z, FIT_PERCENTILES, axis=0), [[-1, -1], [1, 1]], atol=1e-5)
    assert np.percentile(n.obs.normalize(obs)[:, 0], FIT_PERCENTILES[1]) == pytest.approx(1, abs=1e-5)
    # no clean data: the actions are fitted on all of them
    everything = np.concatenate([clean_act, corrupt_act])
    n_all = fit_normalizer(obs, None, everything)
    assert np.allclose(n_all.action.scale, Affine.fit(everything).scale)
    assert np.allclose(fit_normalizer(obs, clean_act[:0], everything).action.scale, n_all.action.scale)


def test_limits_mode_maps_min_to_max_of_every_source_to_the_unit_interval(tmp_path):
    """diffusion_policy's LinearNormalizer(mode="limits"): clean and corrupt actions alike end in [-1, 1]."""
    rng = np.random.default_rng(3)
    clean_act = rng.uniform([0.3, -0.2], [0.8, 0.2], (500, 2))
    corrupt_act = clean_act + rng.normal(0, 0.3, (500, 2))
    everything = np.concatenate([clean_act, corrupt_act])
    obs = rng.uniform(-1, 1, (1000, 6))
    n = fit_normalizer(obs, clean_act, everything, mode="limits")
    z = n.action.normalize(everything)
    assert np.allclose(z.min(0), -1, atol=1e-6) and np.allclose(z.max(0), 1, atol=1e-6)
    assert np.allclose(n.obs.normalize(obs)[:, :4].min(0), -1, atol=1e-6)
    # the percentile fit of the same data leaves corrupt actions far outside (what the DDPM clip must allow)
    assert np.abs(fit_normalizer(obs, clean_act, everything).action.normalize(everything)).max() > 1.5
    # the file records the mode; a percentile file is what it always was (no mode key: same bytes, same hash)
    save_normalizer(n, tmp_path / "limits.json")
    assert load_normalizer(tmp_path / "limits.json").mode == "limits"
    save_normalizer(fit_normalizer(obs, clean_act, everything), tmp_path / "percentile.json")
    assert "mode" not in json.loads((tmp_path / "percentile.json").read_text())
    bad = json.loads((tmp_path / "limits.json").read_text()) | {"mode": "minmax"}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(DatasetError, match="mode"):
        load_normalizer(tmp_path / "bad.json")


def test_a_normalizer_file_of_the_other_mode_is_refused(tmp_path):
    target = write_store(tmp_path / "t.zarr", "target", 3, seed=1)
    sim = write_store(tmp_path / "s.zarr", "sim", 3, wiggle=0.02, seed=2)
    raw = {"data": {"datasets": [{"path": str(target)}, {"path": str(sim)}], "normalizer_mode": "limits"}}
    limits = build(from_dict(TrainConfig, raw, "test")).normalizer
    assert limits.mode == "limits"
    save_normalizer(build(from_dict(TrainConfig, {"data": {**raw["data"], "normalizer_mode": "percentile"}},
                                    "test")).normalizer, tmp_path / "p.json")
    with pytest.raises(ConfigError, match="normalizer_mode.*fitted with mode percentile"):
        build(from_dict(TrainConfig, {"data": {**raw["data"], "normalizer": str(tmp_path / "p.json")}}, "test"))


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    n = Normalizer.fit(rng.uniform(-1, 1, (100, 6)), rng.uniform(0, 1, (100, 2)))
    save_normalizer(n, tmp_path / "n.json")
    back = load_normalizer(tmp_path / "n.json")
    for a, b in ((n.obs, back.obs), (n.action, back.action)):
        assert np.array_equal(a.offset, b.offset) and np.array_equal(a.scale, b.scale)


def _good_state() -> dict:
    return {"obs": {"offset": [0.0] * 6, "scale": [1.0] * 6}, "action": {"offset": [0.5, 0.0], "scale": [4.0, 5.0]}}


@pytest.mark.parametrize("damage, problem", [
    ("missing file", "no such normalizer file"),
    ("bad json", "not a readable normalizer JSON"),
    ("not an object", "expected an object"),
    ("no action", "action: missing"),
    ("no scale", "action.scale: missing"),
    ("wrong length", "obs.offset: has 5 values, expected 6"),
    ("not finite", "action.offset: must be finite numbers"),
    ("zero scale", "action.scale: must be nonzero"),
])
def test_bad_normalizer_files_are_one_line_errors(tmp_path, damage, problem):
    path = tmp_path / "n.json"
    state = _good_state()
    text = None
    if damage == "bad json":
        text = "{obs: "
    elif damage == "not an object":
        text = "[1, 2]"
    elif damage == "no action":
        del state["action"]
    elif damage == "no scale":
        del state["action"]["scale"]
    elif damage == "wrong length":
        state["obs"]["offset"] = [0.0] * 5
    elif damage == "not finite":
        text = json.dumps(state).replace("0.5", "NaN")
    elif damage == "zero scale":
        state["action"]["scale"] = [4.0, 0.0]
    if damage != "missing file":
        path.write_text(text if text is not None else json.dumps(state))
    with pytest.raises(DatasetError) as err:
        load_normalizer(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and problem in message, message


def _config(tmp_path, datasets, **data) -> TrainConfig:
    return from_dict(TrainConfig, {
        "out_dir": str(tmp_path / "run"), "device": "cpu",
        "data": {"datasets": datasets, "val_fraction": 0.0, **data},
        "policy": {"down_dims": [8, 16], "noise_dim": 8, "n_groups": 4},
        "optim": {"batch_size": 8}, "run": {"steps": 2, "progress": False},
    }, "test")


def test_trainer_uses_the_given_normalizer_and_fits_its_own_otherwise(tmp_path):
    clean = write_store(tmp_path / "clean.zarr", "target", n_episodes=4, seed=1)
    noisy = write_noisy_copy(clean, tmp_path / "noisy.zarr", noise=0.3, seed=3, copies=3)
    datasets = [{"path": str(clean)}, {"path": str(noisy)}]
    # no file given: fitted on this run's training data, actions on the clean ones only
    own = build(_config(tmp_path, datasets)).normalizer
    from harness.core.store import EpisodeStore
    clean_actions = EpisodeStore(clean).data("action")
    assert np.allclose(np.percentile(own.action.normalize(clean_actions), FIT_PERCENTILES, axis=0),
                       [[-1, -1], [1, 1]], atol=1e-4)
    # a file given: used as is, for observations and actions; the config loads before the file exists
    given = Normalizer(Affine(np.arange(6, dtype=np.float32) / 10, np.full(6, 2, np.float32)),
                       Affine(np.array([0.5, 0.0], np.float32), np.array([3.0, 4.0], np.float32)))
    cfg = _config(tmp_path, datasets, normalizer=str(tmp_path / "study" / "normalizer.json"))
    with pytest.raises(DatasetError, match="no such normalizer file"):
        build(cfg)
    save_normalizer(given, tmp_path / "study" / "normalizer.json")
    used = build(cfg).normalizer
    assert used.state() == given.state()


def test_annotations_in_other_units_are_refused(tmp_path):
    clean = write_store(tmp_path / "clean.zarr", "target", n_episodes=4, seed=1)
    corrupt = write_store(tmp_path / "corrupt.zarr", "sim", n_episodes=4, wiggle=0.01, seed=2)
    given = Normalizer(Affine(np.zeros(6, np.float32), np.ones(6, np.float32)),
                       Affine(np.array([0.5, 0.0], np.float32), np.array([3.0, 4.0], np.float32)))
    save_normalizer(given, tmp_path / "normalizer.json")

    def annotations(name, action_state):
        return write_annotations(tmp_path / name, Annotations(
            WindowSpec(2, 16, 8), np.array([0.0, 0.1, 1.0]), np.array([1.0, 0.8, 0.5]), [], action_state, {}))

    same = annotations("same.zarr", given.action.state())
    other = annotations("other.zarr", {"offset": [0.5, 0.0], "scale": [2.0, 4.0]})
    datasets = [{"path": str(clean)}, {"path": str(corrupt)}]

    def cfg(ann):
        c = _config(tmp_path, datasets, normalizer=str(tmp_path / "normalizer.json"))
        c.objective.annotations, c.objective.alpha_table = str(ann), "classifier"
        return c

    assert build(cfg(same)).normalizer.state() == given.state()
    with pytest.raises(ConfigError) as err:
        build(cfg(other))
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "normalizer.json") in message and str(other) in message
