"""Every config and experiment the repository ships resolves (with its data not there yet), and the
published ones are the published recipe all the way into the runs a study would train."""
from pathlib import Path

import pytest

from harness.core.configs import from_dict, load_yaml, to_dict
from harness.learning.classifier import AnnotateConfig
from harness.learning.train_config import TrainConfig
from harness.study import load_study
from harness.study.plan import plan_runs
from sim_envs.config import load_preset, preset_names

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("train_*.yaml")), ids=lambda p: p.name)
def test_train_configs_resolve(path):
    text = load_yaml(path)
    assert_holds(to_dict(from_dict(TrainConfig, text, str(path))), text)


def test_the_annotate_config_resolves_with_its_values():
    text = load_yaml(ROOT / "configs" / "annotate.yaml")
    assert_holds(to_dict(from_dict(AnnotateConfig, text, "annotate.yaml")), text)


@pytest.mark.parametrize("name", preset_names())
def test_every_physics_preset_loads_under_its_name(name):
    assert load_preset(name).name == name


def assert_holds(loaded: dict, text: dict, where: str = "") -> None:
    """Every key the file gives is in the loaded config with the file's value (none dropped or replaced)."""
    for key, value in text.items():
        assert key in loaded, f"{where}{key}: not in the loaded config"
        if isinstance(value, dict) and isinstance(loaded[key], dict):
            assert_holds(loaded[key], value, f"{where}{key}.")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):   # data.datasets
            assert len(loaded[key]) == len(value), f"{where}{key}: {len(loaded[key])} entries, {len(value)} in the file"
            for i, (got, given) in enumerate(zip(loaded[key], value)):
                assert_holds(got, given, f"{where}{key}[{i}].")
        else:
            assert loaded[key] == value or (isinstance(value, (int, float)) and loaded[key] == float(value)), \
                f"{where}{key}: {loaded[key]!r} loaded, {value!r} in the file"


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_experiments_plan_every_run(path, monkeypatch):
    monkeypatch.chdir(ROOT)                       # their paths are relative to the repository
    cfg = load_study(str(path), [])
    plans = plan_runs(cfg, annotations_path=cfg.annotations_path, dry=True)
    # one run per row and training seed, each with its own seed and its own folder of the study
    seeds_of = {}
    for p in plans:
        seeds_of.setdefault(p.label, []).append(p.seed)
    assert len(seeds_of) >= len(cfg.methods)                     # every method row is in the plan
    allowed = set(cfg.seeds) | {s for m in cfg.methods for s in m.seeds or []}
    assert all(len(set(s)) == len(s) and set(s) <= allowed for s in seeds_of.values()), seeds_of
    assert len({p.folder.root for p in plans}) == len(plans)
    assert all(p.train.seed == p.seed for p in plans)
    by_key = {p.key: p for p in plans}   # a run trains into its own folder, or shares an earlier run's training
    assert all(p.train.out_dir == str(by_key[p.trained_by].folder.train if p.trained_by else p.folder.train)
               for p in plans)
    assert all(p.folder.root.is_relative_to(cfg.out) for p in plans)


def test_the_published_study_trains_the_published_recipe(monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = load_study("experiments/published.yaml", [])
    plans = plan_runs(cfg, annotations_path=cfg.annotations_path, dry=True)
    for plan in plans:
        cfg = plan.train
        d, o = cfg.diffusion, cfg.optim
        assert (d.kind, d.num_train_timesteps, d.beta_schedule, d.prediction_type, d.clip_sample) == \
            ("ddpm", 100, "squaredcos_cap_v2", "epsilon", True)
        # diffusion_policy's LinearNormalizer(mode="limits"): every training action inside [-1, 1], so the
        # clip range the trainer derives is diffusers' default 1
        assert (cfg.data.normalizer_mode, d.clip_sample_range) == ("limits", None)
        assert (d.resolved_sampler, d.num_steps) == ("ddim", 10)
        assert cfg.policy.down_dims == [256, 512, 1024] and cfg.policy.arch == "unet"
        assert (o.batch_size, o.lr, o.grad_clip, o.ema_power, o.ema_decay, o.warmup_steps) == \
            (64, 1e-4, 0, 0.75, 0.9999, 500)


def test_cotrain_demo_finds_its_experiment():
    """`cotrain demo` reads experiments/demo.yaml by a path relative to its own module (which moved once)."""
    from harness.cli.commands.demo import DEMO
    from harness.study import load_study
    assert DEMO.is_file() and load_study(DEMO).name


def test_the_published_pixel_study_sees_the_published_cameras_through_resnet18(monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = load_study("experiments/pixels_published.yaml", [])
    for plan in plan_runs(cfg, annotations_path=cfg.annotations_path, dry=True):
        train = plan.train
        assert train.data.image_keys == ["image.overhead", "image.wrist"] and train.data.low_dim == ["agent_pos"]
        image = train.policy.image
        assert (image.encoder, image.crop, image.num_keypoints, image.feature_dim) == ("resnet18", [112, 112], 32, 64)
        assert (train.diffusion.kind, train.diffusion.prediction_type, train.optim.batch_size) == ("ddpm", "epsilon", 64)
    from sim_envs.visual import load_visual
    for look in ("sim", "target"):       # the stores it generates hold those cameras at 128x128
        assert load_visual(look).camera_shapes() == {"image.overhead": (128, 128, 3), "image.wrist": (128, 128, 3)}
