"""Scripted human-like teleoperator in the real target sim: success on fixed seeds, reproducibility, a style
measurably unlike a constant-speed path, and the resumable generator."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness.cli import main as cli_main
from harness.core.store import EpisodeStore, validate
from real_data.teleop import generate as generate_module
from real_data.teleop.generate import GenTeleopConfig, fill_store
from real_data.teleop.scripted import TeleopConfig, run_episode
from real_data.teleop.style import style_stats
from tests.helpers import straight_line_actions
from sim_envs.config import load_preset
from sim_envs.geometry import is_success
from tests.helpers import tree_digest

# Seeds the default teleoperator solves in < 25 s of sim time (found once; they stay fixed because
# everything is seeded).
FAST_SEEDS = (17, 9)


@pytest.fixture(scope="module")
def episodes():
    return {s: run_episode(s, TeleopConfig()) for s in FAST_SEEDS}


def test_succeeds_on_fixed_seeds(episodes):
    for seed, (data, meta) in episodes.items():
        assert meta["success"] and meta["outcome"] == "success", seed
        assert meta["seed"] == seed and meta["length"] == len(data["action"]) < 750
        assert data["agent_pos"].shape == (meta["length"], 2) and data["slider_pose"].shape == (meta["length"], 3)
        # Started away from the goal; the observed (noisy) last pose is close to it.
        assert not is_success(data["slider_pose"][0])


def test_reproducible_per_seed(episodes):
    data, meta = run_episode(FAST_SEEDS[0], TeleopConfig())
    np.testing.assert_array_equal(data["action"], episodes[FAST_SEEDS[0]][0]["action"])


def test_style_differs_from_constant_speed_path(episodes):
    """Against a straight constant-speed path over the same distance (the GCS comparison with real plans is
    in docs/teleop.md): the hand's speed varies, it pauses, and its velocity has high-frequency power."""
    data, _ = episodes[FAST_SEEDS[1]]
    teleop = style_stats(data["action"])
    line = style_stats(straight_line_actions(data["action"][0], data["action"][-1], speed=teleop["mean_speed"]))
    assert teleop["speed_cv"] > line["speed_cv"] + 0.3
    assert teleop["hf_power"] > line["hf_power"] + 0.05
    assert teleop["pause_fraction"] > line["pause_fraction"]


def test_human_traits_are_parameters():
    """With the traits turned off the actions change (so the traits are really in the loop)."""
    calm = TeleopConfig()
    calm.human = dataclasses.replace(calm.human, tremor_std=0.0, pause_prob=0.0, speed_drift=0.0,
                                     reaction_delay_steps=(1, 1), speed_factor_range=(1.0, 1.0))
    a, _ = run_episode(FAST_SEEDS[0], calm)
    b, _ = run_episode(FAST_SEEDS[0], TeleopConfig())
    n = min(len(a["action"]), len(b["action"]))
    assert np.abs(a["action"][:n] - b["action"][:n]).max() > 1e-3
    assert style_stats(a["action"])["hf_power"] < style_stats(b["action"])["hf_power"]


def test_generator_resumes_and_keeps_work_on_interrupt(tmp_path, monkeypatch):
    out = tmp_path / "target.zarr"
    real = generate_module.run_episode

    def interrupted(seed, config):
        if seed == FAST_SEEDS[0] + 1:
            raise KeyboardInterrupt
        return real(seed, config)

    monkeypatch.setattr(generate_module, "run_episode", interrupted)
    with pytest.raises(KeyboardInterrupt):   # workers=1: the patched run_episode lives in this process
        fill_store(out, GenTeleopConfig(num=2, seed=FAST_SEEDS[0], workers=1), progress=False)
    assert EpisodeStore(out).meta("seed").tolist() == [FAST_SEEDS[0]]   # the finished episode is kept

    calls = []
    monkeypatch.setattr(generate_module, "run_episode", lambda s, c: calls.append(s) or _fake(s))
    summary = fill_store(out, GenTeleopConfig(num=2, seed=FAST_SEEDS[0], workers=1), progress=False)
    assert calls == [FAST_SEEDS[0] + 1]                       # seed already in the store is skipped
    assert (summary.new_episodes, summary.skipped, summary.total_episodes) == (1, 1, 2)
    store = EpisodeStore(out)
    assert store.meta("seed").tolist() == [FAST_SEEDS[0], FAST_SEEDS[0] + 1]
    assert (store.domain, store.source, store.attrs["env"]) == ("target", "teleop_scripted", "target")
    assert store.attrs["env_params"] == _plain(dataclasses.asdict(load_preset("target")))
    assert store.attrs["generator"]["teleop"]["human"]["pause_prob"] == TeleopConfig().human.pause_prob


def _fake(seed):
    """A tiny stand-in episode with the same meta keys as run_episode's."""
    data = {"agent_pos": np.zeros((3, 2)), "slider_pose": np.zeros((3, 3)), "action": np.zeros((3, 2))}
    meta = {"seed": seed, "success": False, "outcome": "timeout", "length": 3, "reapproaches": 0, "pauses": 0,
            "reaction_delay_steps": 1, "speed_factor": 1.0}
    return data, meta


def _plain(d):
    from harness.core.configs import _plain as plain
    return plain(d)


def test_cli_gen_teleop(tmp_path, capsys):
    out = tmp_path / "t.zarr"
    code = cli_main(["gen-teleop", "--num", "1", "--seed", str(FAST_SEEDS[0]), "--out", str(out),
                     "human.pause_prob=0"])
    assert code == 0
    validate(out)
    printed = capsys.readouterr().out
    assert "success    100.0%" in printed
    assert EpisodeStore(out).attrs["generator"]["teleop"]["human"]["pause_prob"] == 0
    # A bad override is a one-line config error with status 2.
    assert cli_main(["gen-teleop", "--num", "1", "--out", str(out), "human.nope=1"]) == 2
    assert "human.nope" in capsys.readouterr().err



def test_cli_gen_teleop_refuses_another_config_and_leaves_the_store_untouched(tmp_path, capsys):
    out = tmp_path / "t.zarr"
    base = ["gen-teleop", "--num", "1", "--seed", str(FAST_SEEDS[0]), "--out", str(out)]
    assert cli_main(base) == 0
    before = tree_digest(out)
    capsys.readouterr()
    more = ["gen-teleop", "--num", "2", "--out", str(out)]            # refused even while asking for more
    for extra, key in [(["--seed", str(FAST_SEEDS[0]), "human.pause_prob=0"], "teleop.human.pause_prob"),
                       (["--seed", str(FAST_SEEDS[0] + 1)], "attrs.generator: seed"),
                       (["--seed", str(FAST_SEEDS[0]), "--image-size", "32", "32"], "teleop.image_size")]:
        assert cli_main([*more, *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and key in err and str(out) in err, err
        assert tree_digest(out) == before
    # Only the free keys (--num, --workers) may change: the same config with another worker count resumes.
    assert cli_main([*base, "--workers", "3"]) == 0
    assert tree_digest(out) == before and "0 new, 1 already there" in capsys.readouterr().out


def test_gen_teleop_num_fills_the_store_up_to_num_like_gen_sim(tmp_path, monkeypatch):
    """`num` is the size of the finished store, as for gen-sim: seeds seed, seed + 1, ... in order (the
    teleop keeps failed episodes, so these are seeds seed .. seed + num - 1). A larger num appends only the
    missing seeds; a smaller one leaves the store as it is."""
    out = tmp_path / "t.zarr"
    calls = []
    # workers=1: the stand-in run_episode is patched into this process
    monkeypatch.setattr(generate_module, "run_episode", lambda s, c: calls.append(s) or _fake(s))
    first = fill_store(out, GenTeleopConfig(num=2, seed=5, workers=1), progress=False)
    assert calls == [5, 6] and (first.new_episodes, first.skipped, first.total_episodes) == (2, 0, 2)
    calls.clear()
    more = fill_store(out, GenTeleopConfig(num=4, seed=5, workers=1), progress=False)
    assert calls == [7, 8] and (more.new_episodes, more.skipped, more.total_episodes) == (2, 2, 4)
    calls.clear()
    fewer = fill_store(out, GenTeleopConfig(num=3, seed=5, workers=1), progress=False)
    assert calls == [] and (fewer.new_episodes, fewer.total_episodes) == (0, 4)
    assert EpisodeStore(out).meta("seed").tolist() == [5, 6, 7, 8]
    assert EpisodeStore(out).attrs["generator"]["seed"] == 5


def test_gen_sim_and_gen_teleop_take_the_same_flags_with_the_configs_defaults():
    """The generators share one contract, so their flags read alike: --num, --seed, --workers, --executor and
    --env are optional, and left out they are the generator config's own defaults (one place for each)."""
    import argparse

    from gcs_planner.generate import GenSimConfig
    from harness.cli.commands import gen_sim, gen_teleop
    parsed = {}
    for name, module in (("gen-sim", gen_sim), ("gen-teleop", gen_teleop)):
        parser = argparse.ArgumentParser(prog=name)
        module.add_arguments(parser)
        parsed[name] = vars(parser.parse_args(["--out", "x.zarr"]))   # no --num: not required by either
    shared = ("num", "seed", "workers", "executor", "env")
    assert all(parsed[name][flag] is None for name in parsed for flag in shared), parsed
    assert (GenTeleopConfig().workers, GenTeleopConfig().executor) == (GenSimConfig().workers, GenSimConfig().executor)
