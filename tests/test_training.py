"""The trainer end to end at tiny size: learning, exact resume, run folder, CLI errors, policy API."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_stores import write_store  # noqa: E402

from harness.core.configs import from_dict, load_config  # noqa: E402
from harness.core.errors import ConfigError, UserError  # noqa: E402
from harness.core.store import EpisodeStore  # noqa: E402
from harness.learning.windows import WindowSpec, make_windows  # noqa: E402
from harness.learning.methods import method_class  # noqa: E402
from harness.learning.policy import load_policy  # noqa: E402
from harness.learning.train_config import TrainConfig  # noqa: E402
from harness.learning.training import Trainer, train  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("stores")
    return {"target": write_store(d / "target.zarr", "target", 4, seed=1),
            "sim": write_store(d / "sim.zarr", "sim", 8, wiggle=0.01, seed=2)}


def tiny_cfg(stores, out, method="cotrain", steps=40, **overrides) -> TrainConfig:
    raw = {
        "out_dir": str(out), "seed": 3, "device": "cpu",
        "data": {"datasets": [{"path": str(stores["target"])}, {"path": str(stores["sim"])}], "val_fraction": 0.25},
        "policy": {"down_dims": [16, 32], "noise_dim": 16},
        "objective": {"method": method, **({"sigma_n": 0.2} if method_class(method).needs_sigma_n else {})},
        "optim": {"batch_size": 32, "warmup_steps": 10, "lr": 2e-3},
        "run": {"steps": steps, "log_every": 5, "val_every": 20, "val_windows": 16, "checkpoint_every": 1000,
                "progress": False},
    }
    for key, value in overrides.items():
        node = raw
        *path, last = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return from_dict(TrainConfig, raw, "test")


def read_metrics(out) -> list[dict]:
    with open(Path(out) / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_resume_continues_the_same_loss_curve(stores, tmp_path):
    full = train(tiny_cfg(stores, tmp_path / "full", method="ambient"))
    cfg = tiny_cfg(stores, tmp_path / "cut", method="ambient")
    latest = train(cfg, stop_after=17)          # interrupted between log rows and checkpoints
    assert latest.name == "latest.pt" and not (tmp_path / "cut" / "done").exists()
    assert int(read_metrics(tmp_path / "cut")[-1]["step"]) == 15
    resumed = train(cfg)
    a, b = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "cut")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for col in ("loss", "loss_clean", "loss_corrupt", "frac_ambient", "val_target", "val_sim", "lr"):
        assert [r[col] for r in a] == [r[col] for r in b], col   # bit-identical on CPU
    ema_a = torch.load(full, weights_only=False)["ema"]
    ema_b = torch.load(resumed, weights_only=False)["ema"]
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    # what the run trained on is counted across the interruption exactly as without it
    summary = (tmp_path / "full" / "train_summary.json").read_text()
    assert summary == (tmp_path / "cut" / "train_summary.json").read_text()
    assert json.loads(summary)["steps"] == 40


def test_a_cpu_run_resumed_with_another_thread_count_is_refused(stores, tmp_path):
    """Threads change a CPU run's float round-off, so a resume with other threads would not continue the
    same run: refused in one line naming run.threads; the same count resumes."""
    before = torch.get_num_threads()
    try:
        cfg = tiny_cfg(stores, tmp_path / "cut", steps=10, **{"run.threads": 1})
        train(cfg, stop_after=5)
        with pytest.raises(ConfigError, match="run.threads: trained so far with 1 CPU threads, resumed with 2"):
            train(tiny_cfg(stores, tmp_path / "cut", steps=10, **{"run.threads": 2}))
        assert train(cfg).name == "final.pt"
    finally:
        torch.set_num_threads(before)


def test_train_summary_reports_the_realised_clean_fraction_and_clipped_steps(stores, tmp_path):
    """target_only trains on clean data only; truncation at a high sigma_n fills low sigmas with clean
    samples, so truncated sees more clean data than cotrain; a tiny clip threshold clips every step."""
    def summary(out, method, **kw):
        train(tiny_cfg(stores, tmp_path / out, method=method, steps=30, **kw))
        return json.loads((tmp_path / out / "train_summary.json").read_text())

    only = summary("t", "target_only")
    assert only["clean_fraction"] == 1.0 and set(only["clean_fraction_by_sigma"].values()) <= {1.0, None}
    co = summary("c", "cotrain", **{"optim.grad_clip": 1e-6})
    tr = summary("tr", "truncated", **{"objective.sigma_n": 0.5})
    assert tr["clean_fraction"] > co["clean_fraction"] + 0.1
    assert tr["clean_fraction_by_sigma"]["0-0.05"] == 1.0           # no corrupt window is valid below 0.5
    assert co["clipped_fraction"] == 1.0 and sum(co["samples_by_sigma"].values()) == 30 * 32


def test_run_totals_count_by_sigma_band():
    from harness.learning.training import RunTotals
    t = RunTotals()
    t.add(np.array([0.01, 0.01, 0.1, 5.0]), np.array([False, True, True, False]), clipped=True)
    t.add(np.array([0.03]), np.array([False]), clipped=False)
    s = t.summary()
    assert s["clean_fraction"] == 0.6 and s["clipped_fraction"] == 0.5 and s["steps"] == 2
    assert s["clean_fraction_by_sigma"]["0-0.05"] == pytest.approx(2 / 3)
    assert s["clean_fraction_by_sigma"]["0.05-0.2"] == 0.0 and s["clean_fraction_by_sigma"]["3.2-inf"] == 1.0
    assert s["clean_fraction_by_sigma"]["0.8-3.2"] is None


def test_run_folder_contents_and_done_marker(stores, tmp_path):
    cfg = tiny_cfg(stores, tmp_path / "run", steps=10)
    path = train(cfg)
    out = tmp_path / "run"
    for name in ("config.yaml", "metrics.csv", "done", "checkpoints/latest.pt", "checkpoints/final.pt"):
        assert (out / name).exists(), name
    assert any((out / "tensorboard").iterdir())
    assert load_config(TrainConfig, out / "config.yaml") == cfg
    mtime = path.stat().st_mtime_ns
    assert train(cfg) == path and path.stat().st_mtime_ns == mtime   # finished: skipped


def test_resume_refuses_a_changed_config(stores, tmp_path):
    train(tiny_cfg(stores, tmp_path / "run"), stop_after=5)
    with pytest.raises(ConfigError, match="optim.lr"):
        train(tiny_cfg(stores, tmp_path / "run", **{"optim.lr": 1e-2}))


def test_target_only_never_draws_corrupt_and_truncated_respects_sigma_n(stores, tmp_path):
    train(tiny_cfg(stores, tmp_path / "t", method="target_only", steps=10))
    assert all(float(r["frac_corrupt"]) == 0 for r in read_metrics(tmp_path / "t"))
    tr = Trainer(tiny_cfg(stores, tmp_path / "tr", method="truncated"))
    draw = tr.data.sampler.sample(4096, np.random.default_rng(0))
    assert draw.corrupt.any() and np.all(draw.sigma[draw.corrupt] > 0.2)


def test_ambient_needs_a_sigma_n(stores, tmp_path):
    cfg = tiny_cfg(stores, tmp_path / "x", method="ambient", **{"objective.sigma_n": None})
    with pytest.raises(ConfigError, match="sigma_n"):
        train(cfg)


def test_sigma_n_comes_from_one_place(stores, tmp_path):
    """A dataset's own sigma_n is used when objective.sigma_n is null; setting both is refused."""
    datasets = [{"path": str(stores["target"])}, {"path": str(stores["sim"]), "sigma_n": 0.3}]
    tr = Trainer(tiny_cfg(stores, tmp_path / "a", method="truncated",
                          **{"objective.sigma_n": None, "data.datasets": datasets}))
    assert np.all(tr.data.pools["corrupt"].sigma_n == 0.3)
    with pytest.raises(ConfigError, match="both set"):
        Trainer(tiny_cfg(stores, tmp_path / "b", method="truncated", **{"data.datasets": datasets}))


def test_a_finished_run_is_returned_only_to_its_own_config(stores, tmp_path):
    train(tiny_cfg(stores, tmp_path / "run", steps=5))
    with pytest.raises(ConfigError, match="objective.method"):
        train(tiny_cfg(stores, tmp_path / "run", method="ambient", steps=5))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "metrics.csv").write_text("not ours\n")
    with pytest.raises(UserError, match="not a training run folder"):
        train(tiny_cfg(stores, tmp_path / "other", steps=5))
    assert (tmp_path / "other" / "metrics.csv").read_text() == "not ours\n"


def demo_windows(store_path, spec: WindowSpec):
    """Observation histories and the demonstrated executed actions of every window of a store."""
    store = EpisodeStore(store_path)
    w = make_windows(store.episode_ends, spec)
    steps = w.steps()
    agent, slider, action = store.data("agent_pos"), store.data("slider_pose"), store.data("action")
    obs = {"agent_pos": agent[steps[:, : spec.n_obs]], "slider_pose": slider[steps[:, : spec.n_obs]]}
    executed = action[steps[:, spec.n_obs - 1: spec.n_obs - 1 + spec.n_action]]
    return obs, executed


TINY_NETWORKS = {"unet": {"down_dims": [16, 32], "noise_dim": 16},
                 "mlp": {"arch": "mlp", "mlp_width": 128, "mlp_depth": 2, "noise_dim": 16}}


# (diffusion settings, training steps); eps prediction learns slower than x0 prediction on these tiny data
# (RMS error at 400 steps: 18 mm with DDPM-100, 47 mm with DDIM-10; at 1500 steps 2 mm and 8 mm)
TINY_DIFFUSIONS = {"edm": ({"num_steps": 10}, 400),
                   "ddpm": ({"kind": "ddpm", "num_steps": 100}, 1000),                      # DDPM-100, eps
                   "ddpm-sample": ({"kind": "ddpm", "num_steps": 10, "sampler": "ddim",
                                    "prediction_type": "sample"}, 400)}                    # DDIM-10, x0


@pytest.mark.parametrize("arch,diffusion", [pytest.param("unet", "edm", marks=pytest.mark.slow), ("mlp", "edm"), ("mlp", "ddpm"),
                                           ("mlp", "ddpm-sample")])
def test_tiny_policy_reproduces_its_demonstrations(stores, tmp_path, arch, diffusion):
    settings, steps = TINY_DIFFUSIONS[diffusion]
    cfg = tiny_cfg(stores, tmp_path / "p", method="target_only", steps=steps,
                   **{"optim.batch_size": 64, "optim.lr": 3e-3, "data.val_fraction": 0.0,
                      "diffusion": settings, "policy": TINY_NETWORKS[arch]})
    untrained = load_policy(train(cfg, stop_after=1))
    trained = load_policy(train(cfg))
    obs, executed = demo_windows(stores["target"], untrained.spec)
    seeds = list(range(len(executed)))
    err_untrained = np.sqrt(np.mean((untrained.act(obs, seeds=seeds) - executed) ** 2))
    err_trained = np.sqrt(np.mean((trained.act(obs, seeds=seeds) - executed) ** 2))
    # 'far better': at least 10x smaller RMS error (metres) on the demonstrated actions
    assert err_trained < err_untrained / 10, (err_trained, err_untrained)
    # and better than the "stay where you are" baseline (predicting the current pusher position); at 400
    # steps it is ~2x better (14 mm vs 29 mm), at 1000 steps ~8x (4 mm)
    hold = np.repeat(obs["agent_pos"][:, -1:], untrained.n_action, axis=1)
    assert err_trained < 0.75 * np.sqrt(np.mean((hold - executed) ** 2))


def test_batched_and_unbatched_act_agree_with_per_sample_seeds(stores, tmp_path):
    policy = load_policy(train(tiny_cfg(stores, tmp_path / "b", steps=5)))
    assert (policy.n_obs, policy.n_action, policy.horizon) == (2, 8, 16)
    obs, _ = demo_windows(stores["target"], policy.spec)
    obs = {k: v[:4] for k, v in obs.items()}
    batched = policy.act(obs, seeds=[10, 11, 12, 13])
    single = np.concatenate([policy.act({k: v[i: i + 1] for k, v in obs.items()}, seeds=[10 + i])
                             for i in range(4)])
    assert batched.shape == (4, 8, 2)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    noise = torch.stack([torch.randn((16, 2), generator=torch.Generator().manual_seed(s)) for s in (10, 11, 12, 13)])
    again = policy.act(obs, noise=noise)
    np.testing.assert_allclose(again, batched, atol=1e-6)


@pytest.mark.parametrize("diffusion", [{"sampler": "heun_churn", "num_steps": 4}, {"kind": "ddpm", "num_steps": 20}])
def test_stochastic_samplers_are_batch_invariant_and_seeded_per_sample(stores, tmp_path, diffusion):
    """heun_churn and DDPM draw fresh noise per step: still a function of each sample's own seeds."""
    policy = load_policy(train(tiny_cfg(stores, tmp_path / "s", steps=5, diffusion=diffusion)))
    assert policy.stochastic
    obs, _ = demo_windows(stores["target"], policy.spec)
    obs = {k: v[:3] for k, v in obs.items()}
    batched = policy.act(obs, seeds=[4, 5, 6])
    single = np.concatenate([policy.act({k: v[i: i + 1] for k, v in obs.items()}, seeds=[4 + i]) for i in range(3)])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    noise = np.random.default_rng(0).standard_normal((3, 16, 2)).astype(np.float32)
    one = policy.act(obs, noise=noise, step_seeds=[1, 2, 3])
    np.testing.assert_array_equal(one, policy.act(obs, noise=noise, step_seeds=[1, 2, 3]))
    assert not np.allclose(one, policy.act(obs, noise=noise, step_seeds=[7, 8, 9]), atol=1e-4)   # noise is used


def test_cli_train_reports_bad_config_in_one_line(stores, tmp_path):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump({"out_dir": str(tmp_path / "cli"),
                                        "data": {"datasets": [{"path": str(stores["target"])}]}}))
    cotrain = Path(sys.executable).parent / "cotrain"
    bad = subprocess.run([str(cotrain), "train", str(cfg_path), "objective.method=magic"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "objective.method" in bad.stderr and "Traceback" not in bad.stderr
    missing = subprocess.run([str(cotrain), "train", str(cfg_path), "data.datasets=[{path: /nope.zarr}]"],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "/nope.zarr" in missing.stderr and "Traceback" not in missing.stderr


def test_image_observations_train_and_act(tmp_path):
    """A tiny image policy (encoder + U-Net) learns: it reproduces its demonstrations far better than untrained."""
    stores = {"target": write_store(tmp_path / "img.zarr", "target", 2, length=12, image_hw=(16, 16))}
    cfg = from_dict(TrainConfig, {
        "out_dir": str(tmp_path / "run"), "device": "cpu", "seed": 0,
        "data": {"datasets": [{"path": str(stores["target"])}], "use_image": True, "val_fraction": 0.0},
        "policy": {"down_dims": [16, 32], "noise_dim": 16, "image": {"widths": [8, 16], "feature_dim": 8}},
        "objective": {"method": "target_only"}, "optim": {"batch_size": 16, "lr": 3e-3, "warmup_steps": 10},
        "diffusion": {"num_steps": 4}, "run": {"steps": 300, "progress": False},
    }, "test")
    untrained = load_policy(train(cfg, stop_after=1))
    policy = load_policy(train(cfg))
    assert policy.net.image_encoder is not None and policy.image_shapes == {"image": (16, 16, 3)}
    obs, executed = demo_windows(stores["target"], policy.spec)
    store = EpisodeStore(stores["target"])
    w = make_windows(store.episode_ends, policy.spec)
    obs["image"] = store.data("image")[w.steps()[:, : policy.n_obs]]    # (N, n_obs, 16, 16, 3)
    seeds = list(range(len(executed)))
    actions = policy.act(obs, seeds=seeds)
    assert actions.shape == (len(executed), 8, 2) and np.isfinite(actions).all()
    mse_trained = np.mean((actions - executed) ** 2)
    mse_untrained = np.mean((untrained.act(obs, seeds=seeds) - executed) ** 2)
    # measured: ~12x smaller after 300 steps (~5x after 150); assert a clear margin below that
    assert mse_trained < mse_untrained / 4, (mse_trained, mse_untrained)


def test_coarsened_sigma_n_floor_and_buckets():
    """Floor: no window below it. Buckets: equal-count groups of the finite values, each its largest, so
    no window is used below its own level; never stays never."""
    from harness.learning.training_data import coarsened_sigma_n
    s = np.array([0.0, 0.0, 0.1, 0.3, 0.2, np.inf, 0.4, 0.0, 0.8])
    assert np.array_equal(coarsened_sigma_n(s, 0.05, None), np.maximum(s, 0.05))
    b = coarsened_sigma_n(s, None, 2)          # finite sorted: 0 0 0 0.1 | 0.2 0.3 0.4 0.8 (+ 0.0 first)
    assert np.all(b >= s) and np.isinf(b[5]) and len(np.unique(b[np.isfinite(b)])) == 2
    assert b[0] == b[1] == b[7] == 0.1 and b[3] == b[8] == 0.8
    assert np.array_equal(coarsened_sigma_n(s, None, 100), s)   # one window per bucket: unchanged
    assert np.array_equal(coarsened_sigma_n(s, None, None), s)


def test_alpha_natural_all_holds_plain_cotrainings_ratio_at_every_sigma(stores, tmp_path):
    """truncated with alpha natural_all: P(clean) is E_clean / (E_clean + E_corrupt) wherever a corrupt
    window is valid (the natural alpha would rise towards 1 where few are valid)."""
    natural = Trainer(tiny_cfg(stores, tmp_path / "n", method="truncated")).data
    fixed = Trainer(tiny_cfg(stores, tmp_path / "f", method="truncated", **{"objective.alpha": "natural_all"})).data
    sigma = np.array([0.3, 1.0, 10.0])
    assert np.allclose(fixed.sampler.p_clean(sigma), natural.alpha_natural)
    assert fixed.alpha_target == pytest.approx(natural.alpha_natural)
    assert np.allclose(natural.sampler.p_clean(sigma), natural.alpha_natural)   # sigma_n 0.2: all valid above
    assert np.all(natural.sampler.p_clean(np.array([0.1])) == 1.0) and np.all(fixed.sampler.p_clean(np.array([0.1])) == 1.0)


def test_floor_and_buckets_need_per_window_sigma_n(stores, tmp_path):
    with pytest.raises(ConfigError, match="sigma_n_floor"):
        Trainer(tiny_cfg(stores, tmp_path / "a", method="truncated", **{"objective.sigma_n_floor": 0.1}))
    with pytest.raises(ConfigError, match="sigma_n_buckets"):
        tiny_cfg(stores, tmp_path / "b", method="truncated", **{"objective.sigma_n_buckets": 0})
    with pytest.raises(ConfigError, match="does not apply"):
        tiny_cfg(stores, tmp_path / "c", method="cotrain", **{"objective.sigma_n_floor": 0.1})


def _shifted_store(path, n_episodes: int, shift: float, seed: int):
    """Corrupt episodes like the synthetic ones, moved `shift` metres along x (states and actions): their
    actions lie beyond every clean one, where the sim data of a real study put 15% of theirs."""
    from synthetic_stores import episode
    from harness.core.writer import EpisodeWriter
    rng = np.random.default_rng(seed)
    with EpisodeWriter(path, domain="sim", source="gcs_kinematic", env="synthetic", env_params={},
                       generator={"test": True}) as w:
        for e in range(n_episodes):
            data = episode(rng, 24, 0.0)
            for key in ("agent_pos", "action"):
                data[key] = data[key] + [shift, 0.0]
            data["slider_pose"] = data["slider_pose"] + [shift, 0.0, 0.0]
            w.add_episode(data, meta={"seed": e, "success": True})
    return path


@pytest.fixture(scope="module")
def far_stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("far")
    return {"target": write_store(d / "target.zarr", "target", 6, seed=1),
            "sim": _shifted_store(d / "sim.zarr", 6, 0.4, seed=2)}


def test_a_ddpm_cotrain_policy_emits_the_corrupt_actions_beyond_the_clean_range(far_stores, tmp_path):
    """The DDPM sampler clips its x0 estimate; before 2026-12-07 to [-1, 1], which the percentile normalizer
    gives to the clean actions alone, so no action beyond the clean range could ever come out. The trainer
    now derives the clip range from every training source and the checkpoint records it."""
    cfg = tiny_cfg(far_stores, tmp_path / "far", steps=400,
                   **{"optim.batch_size": 64, "optim.lr": 3e-3, "data.val_fraction": 0.0,
                      "diffusion": TINY_DIFFUSIONS["ddpm-sample"][0], "policy": TINY_NETWORKS["mlp"]})
    policy = load_policy(train(cfg))
    clean_hi = EpisodeStore(far_stores["target"]).data("action")[:, 0].max()      # metres
    sim = EpisodeStore(far_stores["sim"]).data("action")
    reach = float(np.abs(policy.normalizer.action.normalize(sim)).max())
    assert reach > 2      # the corrupt actions lie far beyond the clean range in normalized units
    assert policy.config.diffusion.clip_sample_range == pytest.approx(np.ceil(reach * 10) / 10)
    assert policy.sampler.scheduler.config.clip_sample_range == policy.config.diffusion.clip_sample_range
    assert yaml.safe_load((tmp_path / "far" / "config.yaml").read_text())["diffusion"]["clip_sample_range"] is None
    obs, executed = demo_windows(far_stores["sim"], policy.spec)
    acted = policy.act(obs, seeds=list(range(len(executed))))          # (N, n_action, 2) metres
    # conditioned on the corrupt states, the policy pushes where the corrupt demos did: beyond the clean range
    beyond, demonstrated = np.mean(acted[..., 0] > clean_hi), np.mean(executed[..., 0] > clean_hi)
    assert demonstrated > 0.9 and beyond > 0.8 * demonstrated, (beyond, demonstrated)
    assert acted[..., 0].max() > clean_hi + 0.2


def test_a_ddpm_clip_range_below_the_data_is_refused(far_stores, tmp_path):
    cfg = tiny_cfg(far_stores, tmp_path / "cut", steps=5,
                   **{"diffusion": {"kind": "ddpm", "clip_sample_range": 1.0}, "policy": TINY_NETWORKS["mlp"]})
    with pytest.raises(ConfigError, match="clip_sample_range.*below the largest"):
        train(cfg)
    assert not (tmp_path / "cut" / "checkpoints").exists()
    # an EDM run records no clip range: its checkpoints and results are what they were
    edm = load_policy(train(tiny_cfg(far_stores, tmp_path / "edm", steps=5, policy=TINY_NETWORKS["mlp"])))
    assert edm.config.diffusion.clip_sample_range is None
