"""Policies from pixels: visual presets, camera stores, image training with crops, closed-loop evaluation.

Everything is the real thing at a tiny size: Drake renders the cameras (RenderEngineVtk, EGL), the
generators write zarr stores, torch trains the encoders, and the evaluation steps Drake envs.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.core.configs import from_dict
from harness.core.store import EpisodeStore
from harness.learning.policy import load_policy
from harness.learning.train_config import TrainConfig
from harness.learning.training import train
from harness.learning.windows import make_windows
from sim_envs.visual import camera_rotation, load_visual

COTRAIN = str(Path(sys.executable).parent / "cotrain")
TINY = 32     # pixels a side of the test cameras


def tiny_look(tmp_path, base: str, name: str, **changes) -> Path:
    """A visual preset file: `base`'s look with one overhead camera of TINY pixels (and `changes`)."""
    camera = {**yaml.safe_load((Path("sim_envs/visuals") / f"{base}.yaml").read_text())["cameras"][0],
              "size": [TINY, TINY]}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"inherit": base, "cameras": [camera], **changes}))
    return path


def render(look, seed: int, slider_pose=None) -> np.ndarray:
    from sim_envs.env import PushTEnv
    env = PushTEnv("target", visual=look)
    obs = env.reset(seed, slider_pose=slider_pose)
    env.close()
    return obs["image.overhead"]


def test_two_looks_that_differ_in_the_slider_colour_differ_at_the_slider_pixels_only(tmp_path):
    """The slider's colour changes exactly the pixels where the slider is: the changed region sits where the
    camera model projects the T, covers about its area, and vanishes when the T is out of view."""
    grey = load_visual("target_96")
    red = load_visual("target_96", ["slider_color=[0.9, 0.1, 0.1]"])
    pose = [0.60, -0.05, 0.3]
    changed = np.any(render(grey, 0, pose) != render(red, 0, pose), axis=-1)       # (96, 96)
    assert 60 < changed.sum() < 1200            # the T's top and sides, not the whole frame
    rows, cols = np.nonzero(changed)
    # pinhole projection of the T's top face centre through the preset's camera
    cam = grey.cameras[0]
    R = camera_rotation(cam.position, cam.look_at, cam.up)
    p = R.T @ (np.array([pose[0], pose[1], 0.03]) - np.array(cam.position))
    fx = 48 / np.tan(np.radians(cam.fov_x) / 2)
    fy = 48 / np.tan(np.radians(cam.fov_y) / 2)
    u, v = 47.5 + fx * p[0] / p[2], 47.5 + fy * p[1] / p[2]
    assert abs(cols.mean() - u) < 5 and abs(rows.mean() - v) < 5, (cols.mean(), u, rows.mean(), v)
    # the T far outside the camera's view: the two looks give the same picture
    away = [0.60, 0.9, 0.0]
    assert np.array_equal(render(grey, 0, away), render(red, 0, away))
    # and the looks of the study do differ in more than the T (table, light, mounting)
    assert np.mean(render(load_visual("sim_96"), 0, away) != render(grey, 0, away)) > 0.5


_FRAMES_SCRIPT = """
import hashlib, sys
import numpy as np
from sim_envs.env import PushTEnv
from sim_envs.visual import load_visual
digest = hashlib.sha256()
env = PushTEnv("target", visual=load_visual(sys.argv[1]))
env.reset(3)
for i in range(6):
    obs, *_ = env.step(np.array([0.02 * i, 0.01 * i]))
    digest.update(np.ascontiguousarray(obs["image.overhead"]).tobytes())
print(digest.hexdigest())
"""


def test_rendering_in_the_calling_thread_gives_the_same_pixels_as_llvmpipes_thread_pool():
    """sim_envs.scene sets LP_NUM_THREADS=0 for speed; the stores and evaluations must not depend on it.
    Mesa reads the variable once per process, so each setting renders in its own process."""
    def frames(lp_threads: str) -> str:
        env = {**os.environ, "LP_NUM_THREADS": lp_threads}
        return subprocess.run([sys.executable, "-c", _FRAMES_SCRIPT, "sim_96"], env=env, check=True,
                              capture_output=True, text=True).stdout.strip()
    assert frames("0") == frames("4")


def test_camera_jitter_is_a_function_of_the_start_seed_alone(tmp_path):
    """The sim look re-mounts its cameras at every reset from the seed: the same seed gives the same picture
    whatever came before; another seed moves the camera (same scene, another picture)."""
    from sim_envs.env import PushTEnv
    pose = [0.60, -0.05, 0.3]
    env = PushTEnv("target", visual="sim_96")
    env.reset(11, slider_pose=pose)
    after_other = env.reset(7, slider_pose=pose)["image.overhead"]
    fresh = PushTEnv("target", visual="sim_96").reset(7, slider_pose=pose)["image.overhead"]
    assert np.array_equal(after_other, fresh)
    assert not np.array_equal(env.reset(8, slider_pose=pose)["image.overhead"], fresh)
    steady = PushTEnv("target", visual="target_96")          # no jitter: seeds do not move the camera
    assert np.array_equal(steady.reset(7, slider_pose=pose)["image.overhead"],
                          steady.reset(8, slider_pose=pose)["image.overhead"])


@pytest.fixture(scope="module")
def pixel_stores(tmp_path_factory):
    """Three clean teleop demos and three GCS demos with a TINY overhead camera, made by the CLI."""
    tmp = tmp_path_factory.mktemp("pixels")
    target, sim = tiny_look(tmp, "target_96", "tiny_target"), tiny_look(tmp, "sim_96", "tiny_sim")
    stores = {"target": tmp / "target.zarr", "sim": tmp / "sim.zarr", "looks": (target, sim), "tmp": tmp}
    for cmd in ([COTRAIN, "gen-teleop", "--num", "3", "--out", str(stores["target"]), "--visual", str(target),
                 "--workers", "1", "--no-progress"],
                [COTRAIN, "gen-sim", "--num", "3", "--out", str(stores["sim"]), "--visual", str(sim),
                 "--workers", "1", "--no-progress"]):
        subprocess.run(cmd, check=True, capture_output=True)
    return stores


def pixel_cfg(stores, out, steps: int, **data) -> TrainConfig:
    return from_dict(TrainConfig, {
        "out_dir": str(out), "device": "cpu", "seed": 0,
        "data": {"datasets": [{"path": str(stores["target"]), "role": "clean"}], "cameras": ["overhead"],
                 "low_dim": ["agent_pos"], "val_fraction": 0.0, **data},
        "policy": {"arch": "mlp", "mlp_width": 128, "mlp_depth": 2, "noise_dim": 16,
                   "image": {"widths": [8, 16], "feature_dim": 16, "crop": [28, 28]}},
        "objective": {"method": "target_only"}, "optim": {"batch_size": 32, "lr": 3e-3, "warmup_steps": 10},
        "diffusion": {"num_steps": 4}, "run": {"steps": steps, "progress": False},
    }, "test")


def test_the_store_records_its_look_and_one_frame_a_chunk(pixel_stores):
    for key, look in (("target", pixel_stores["looks"][0]), ("sim", pixel_stores["looks"][1])):
        store = EpisodeStore(pixel_stores[key])
        assert store.attrs["visual"]["name"] == look.stem
        frames = store.data("image.overhead")
        assert frames.shape[1:] == (TINY, TINY, 3) and frames.dtype == np.uint8 and frames.std() > 5
        import zarr
        assert zarr.open_group(str(pixel_stores[key]), mode="r")["data/image.overhead"].chunks[0] == 1


@pytest.mark.slow
def test_an_image_policy_with_crops_reproduces_its_demos_and_evaluates_identically_however_batched(pixel_stores):
    """Trained on three teleop demos from their TINY overhead camera alone (random crops on), it predicts
    the demonstrated actions far better than untrained; and its closed-loop trials, rendered in the look of
    its data, are the same per start seed whatever the wave size and worker count."""
    from eval.rollouts import evaluate
    stores = pixel_stores
    cfg = pixel_cfg(stores, stores["tmp"] / "run", steps=250)
    untrained = load_policy(train(cfg, stop_after=1))
    path = train(cfg)
    policy = load_policy(path)
    assert policy.image_shapes == {"image.overhead": (TINY, TINY, 3)}
    assert policy.cameras.visual.name == "tiny_target"          # the clean data's look travels with it
    store = EpisodeStore(stores["target"])
    w = make_windows(store.episode_ends, policy.spec)
    steps = w.steps()
    obs = {"agent_pos": store.data("agent_pos")[steps[:, :2]], "slider_pose": store.data("slider_pose")[steps[:, :2]],
           "image.overhead": store.data("image.overhead")[steps[:, :2]]}
    executed = store.data("action")[steps[:, 1:9]]
    seeds = list(range(len(executed)))
    mse = np.mean((policy.act(obs, seeds=seeds) - executed) ** 2)
    mse_untrained = np.mean((untrained.act(obs, seeds=seeds) - executed) ** 2)
    assert mse < mse_untrained / 4, (mse, mse_untrained)
    # it sees the pusher and the camera, not the slider's pose (data.low_dim: [agent_pos], as published)
    moved = {**obs, "slider_pose": obs["slider_pose"] + 0.05}
    assert np.array_equal(policy.act(moved, seeds=seeds), policy.act(obs, seeds=seeds))
    blank = {**obs, "image.overhead": np.zeros_like(obs["image.overhead"])}
    assert not np.allclose(policy.act(blank, seeds=seeds), policy.act(obs, seeds=seeds))

    starts = [3, 4, 5, 6]
    runs = [evaluate(str(path), "target", starts, n_envs=n, workers=k, progress=False, max_steps=25,
                     inference_batch=8) for n, k in ((1, 1), (4, 1), (2, 2))]
    key = [[(r.seed, r.outcome, r.steps, r.final_xy_error, r.final_theta_error) for r in run] for run in runs]
    assert key[0] == key[1] == key[2]
    assert len({r[3] for r in key[0]}) == len(starts)            # real, distinct trials


def run_train(cfg: TrainConfig, tmp_path) -> subprocess.CompletedProcess:
    from harness.core.configs import to_dict
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    return subprocess.run([COTRAIN, "train", str(path)], capture_output=True, text=True)


def test_a_store_without_the_camera_or_with_another_size_is_refused_before_training(pixel_stores, tmp_path):
    stores = pixel_stores
    missing = run_train(pixel_cfg(stores, tmp_path / "a", 5, cameras=["wrist"]), tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert str(stores["target"]) in missing.stderr and "data/image.wrist" in missing.stderr
    assert not (tmp_path / "a").exists()
    # the sim store rendered at another size than the clean one
    other = tmp_path / "sim_big.zarr"
    big = tiny_look(tmp_path, "sim_96", "big_sim")
    text = yaml.safe_load(big.read_text())
    text["cameras"][0]["size"] = [TINY + 8, TINY + 8]
    big.write_text(yaml.safe_dump(text))
    subprocess.run([COTRAIN, "gen-sim", "--num", "1", "--out", str(other), "--visual", str(big), "--workers", "1",
                    "--no-progress"], check=True, capture_output=True)
    cfg = pixel_cfg(stores, tmp_path / "b", 5)
    cfg.data.datasets.append(from_dict(TrainConfig, {"data": {"datasets": [{"path": str(other), "role": "corrupt"}]}},
                                       "t").data.datasets[0])
    cfg.objective.method = "cotrain"
    wrong = run_train(cfg, tmp_path)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert "image.overhead" in wrong.stderr and f"({TINY + 8}, {TINY + 8}, 3)" in wrong.stderr
    assert not (tmp_path / "b").exists()


def test_rendering_only_the_frames_a_query_reads_changes_no_trial(pixel_stores):
    """The rollout renders a camera only at the steps whose frames the next chunk query reads; the same
    trials with every frame rendered (an env that ignores the hint) are identical."""
    from eval import rollouts
    from sim_envs.vector_env import VectorEnv
    # its own checkpoint, briefly trained: the trials need a real image policy, not a good one
    policy = load_policy(train(pixel_cfg(pixel_stores, pixel_stores["tmp"] / "render_run", steps=5)))

    class EveryFrame(VectorEnv):
        def step(self, actions, render=None):
            return super().step(actions)

    look = policy.cameras.visual
    runs = []
    for cls in (VectorEnv, EveryFrame):
        with cls(3, "target", visual=look) as env:
            runs.append(rollouts.run_wave(policy, env, [3, 4, 5], max_steps=30, inference_batch=8))
    assert [r.seed for r in runs[0]] == [3, 4, 5]
    assert [r.to_dict() for r in runs[0]] == [r.to_dict() for r in runs[1]]
