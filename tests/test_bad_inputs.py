"""Every bad user input through the real CLI: exit status 2, one line naming the key or flag, no traceback,
and nothing created or changed on disk.

Each case builds the tiny real inputs it needs (stores, a train config, an experiment) in its own tmp
folder, lists every file and folder there (with a sha256 of each file), runs `cotrain ...` in that folder
(so default output paths land there too), and lists again. The bad value must be refused before any heavy
work, so every case runs in well under a second once torch and Drake are imported.
"""
from __future__ import annotations

import gc
import hashlib
import logging
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from tests.synthetic_stores import write_store


class Inputs:
    """Tiny real inputs, made on demand inside the case's tmp folder."""

    def __init__(self, root: Path):
        self.root = root

    def clean(self) -> str:
        path = self.root / "clean.zarr"
        if not path.exists():
            write_store(path, "target", n_episodes=4, seed=1)
        return str(path)

    def corrupt(self) -> str:
        path = self.root / "corrupt.zarr"
        if not path.exists():
            write_store(path, "sim", n_episodes=4, wiggle=0.01, seed=2)
        return str(path)

    def train_yaml(self) -> str:
        """A tiny training config like tests/test_training.py's tiny_cfg."""
        raw = {
            "out_dir": str(self.root / "run"), "seed": 3, "device": "cpu",
            "data": {"datasets": [{"path": self.clean()}, {"path": self.corrupt()}], "val_fraction": 0.25},
            "policy": {"down_dims": [16, 32], "noise_dim": 16},
            "objective": {"method": "cotrain"},
            "optim": {"batch_size": 32, "warmup_steps": 10, "lr": 2e-3},
            "run": {"steps": 40, "log_every": 5, "val_every": 20, "val_windows": 16, "checkpoint_every": 1000,
                    "progress": False},
        }
        path = self.root / "train.yaml"
        path.write_text(yaml.safe_dump(raw))
        return str(path)

    def experiment(self, **changes) -> str:
        """A tiny study (as tests/test_compare.py's) with `changes` merged in ("eval.workers": 0, ...)."""
        raw = {
            "name": "tiny",
            "datasets": [{"name": "teleop", "path": self.clean(), "role": "clean", "episodes": 3},
                         {"name": "gcs", "path": self.corrupt(), "role": "corrupt"}],
            "methods": [{"method": "target_only"}, {"method": "cotrain", "alphas": [0.5]}],
            "seeds": [0],
            "train": {"policy": {"down_dims": [8, 16], "noise_dim": 8, "n_groups": 4},
                      "diffusion": {"num_steps": 2}, "optim": {"batch_size": 8, "warmup_steps": 1},
                      "run": {"steps": 3, "log_every": 1, "val_every": 3, "checkpoint_every": 3, "progress": False},
                      "data": {"val_fraction": 0.0}, "device": "cpu"},
            "annotate": {"overrides": {"steps": 5, "batch_size": 16, "grid_size": 4, "k_draws": 1,
                                       "val_windows": 20, "progress": False, "device": "cpu"}},
            "eval": {"trials": 2, "time_limit": 0.5, "n_envs": 2, "workers": 1},
            "spectra_window": 16,
        }
        for key, value in changes.items():
            *parents, last = key.split(".")
            node = raw
            for part in parents:
                node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
            node[last] = value
        path = self.root / "experiment.yaml"
        path.write_text(yaml.safe_dump(raw))
        return str(path)

    def blocked(self, name: str) -> str:
        """An output path whose folder cannot exist: its parent is a file (root may write anywhere else)."""
        blocker = self.root / "blocker"
        blocker.write_text("a file, not a folder\n")
        return str(blocker / name)

    def raw_train_yaml(self, content: bytes) -> str:
        """A train config whose bytes are given: the valid one with `content` appended."""
        path = self.root / "raw.yaml"
        path.write_bytes(Path(self.train_yaml()).read_bytes() + content)
        return str(path)

    def empty_yaml(self) -> str:
        (self.root / "empty.yaml").write_text("")
        return str(self.root / "empty.yaml")

    def existing(self, name: str) -> str:
        """A user's file already at an output path: it must be left as it is."""
        (self.root / name).write_text("the user's own file\n")
        return str(self.root / name)

    def folder(self, name: str) -> str:
        (self.root / name).mkdir()
        return str(self.root / name)

    def code_checkpoint(self) -> str:
        """A checkpoint file whose unpickling would run a call: it creates the file `ran_code`, which the
        case's before/after listing would show."""
        import torch
        from harness.learning.checkpoint import FORMAT
        path = self.root / "payload.pt"
        torch.save({"format": FORMAT, "config": _RunsCode(self.root / "ran_code")}, path)
        return str(path)

    def reduce_checkpoint(self) -> str:
        """A checkpoint whose unpickling would call a function of a module torch blocks outright (`sys`): torch
        words that "unsupported GLOBAL", not "Unsupported global"; it must still be refused as such."""
        import torch
        from harness.learning.checkpoint import FORMAT
        path = self.root / "blocked.pt"
        torch.save({"format": FORMAT, "config": _CallsSys()}, path)
        return str(path)

    def jpeg2k_zip(self) -> str:
        """A store zipped as diffusion_policy's real-robot data is shipped, with two cameras compressed with
        Jpeg2k (codec imagecodecs_jpeg2k, which a plain zarr does not know)."""
        import zipfile

        import numpy as np
        import zarr
        from imagecodecs.numcodecs import Jpeg2k
        folder, path = self.root / "cams.zarr", self.root / "cams.zarr.zip"
        write_store(folder, "target", n_episodes=2, seed=1)
        data = zarr.open_group(str(folder), mode="r+", zarr_format=2)["data"]
        n = data["action"].shape[0]
        for key in ("image", "image.wrist"):     # two: each broken array is one failing zarr task
            data.create_array(key, shape=(n, 8, 8, 3), chunks=(1, 8, 8, 3), dtype="uint8",
                              compressors=[Jpeg2k(reversible=True)])[...] = np.zeros((n, 8, 8, 3), np.uint8)
        with zipfile.ZipFile(path, "w") as zf:
            for f in sorted(folder.rglob("*")):
                if f.is_file() and not f.name.endswith(".lock"):
                    zf.write(f, f.relative_to(folder).as_posix())
        shutil.rmtree(folder)
        return str(path)

    def linked_store(self) -> str:
        """A store whose data/action is a symbolic link to an array outside it (another store's)."""
        import os
        outside = Path(self.corrupt())
        path = self.root / "linked.zarr"
        write_store(path, "target", n_episodes=4, seed=1)
        shutil.rmtree(path / "data" / "action")
        os.symlink(outside / "data" / "action", path / "data" / "action")
        return str(path)

    def lying_store(self, key: str = "data/action", rows: int = 10**12) -> str:
        """A store whose array metadata (.zarray) declares `rows` rows; its data are the 4 episodes' only."""
        import json
        path = self.root / "lying.zarr"
        write_store(path, "target", n_episodes=4, seed=1)
        meta = path / key / ".zarray"
        spec = json.loads(meta.read_text())
        spec["shape"][0] = rows
        meta.write_text(json.dumps(spec))
        return str(path)

    def text_file(self, name: str, text: str) -> str:
        (self.root / name).write_text(text)
        return str(self.root / name)

    def lerobot_info(self, info) -> str:
        """A LeRobot dataset folder whose meta/info.json holds `info` (JSON)."""
        import json
        path = self.root / "lerobot"
        (path / "meta").mkdir(parents=True)
        (path / "meta" / "info.json").write_text(json.dumps(info))
        return str(path)

    def success_store(self, dtype: str) -> str:
        """A store whose meta/success holds values of `dtype` (float or text) instead of true/false."""
        import numpy as np
        import zarr
        path = self.root / "success.zarr"
        write_store(path, "target", n_episodes=4, seed=1)
        meta = zarr.open_group(str(path), mode="r+", zarr_format=2)["meta"]
        del meta["success"]
        values = np.array([0.5, 1.0, 0.0, 2.0]) if dtype == "float" else np.array(["yes", "no", "yes", "yes"])
        meta.create_array("success", shape=(4,), dtype=values.dtype)[...] = values
        return str(path)

    def checkpoint(self, change) -> str:
        """A tiny trained policy (final.pt) with `change(ckpt)` applied to its contents."""
        import torch
        from harness.cli import main as cli
        assert cli(["train", self.train_yaml(), *_TINY_RUN]) == 0
        path = self.root / "run" / "checkpoints" / "final.pt"
        ckpt = torch.load(path, weights_only=True)
        change(ckpt)
        torch.save(ckpt, path)
        return str(path)

    def finished_run_without_final(self) -> list[str]:
        """The command line of a finished training run (`done`) whose checkpoints/final.pt was deleted."""
        self.checkpoint(lambda ckpt: None)
        (self.root / "run" / "checkpoints" / "final.pt").unlink()
        return ["train", self.train_yaml(), *_TINY_RUN]

    def study_started(self, **changes) -> str:
        """The experiment of a study whose first session recorded its data (fingerprint.json), then edited
        with `changes`."""
        from harness.core.configs import save_config
        from harness.study import load_study
        from harness.study.fingerprint import check_fingerprint
        from harness.study.runner import write_study_normalizer
        changes = {"out_dir": str(self.root / "study"), **changes}
        cfg = load_study(self.experiment(out_dir=changes["out_dir"]))
        cfg.out.mkdir(parents=True)
        save_config(cfg, cfg.out / "experiment.yaml")
        (cfg.out / ".lock").touch()
        write_study_normalizer(cfg)
        check_fingerprint(cfg, log=lambda line: None)
        return self.experiment(**changes)

    def dangling(self, name: str) -> str:
        """A symbolic link at an output path whose target does not exist."""
        import os
        os.symlink(self.root / "missing" / "place", self.root / name)
        return str(self.root / name)

    def bad_preset(self) -> str:
        path = self.root / "bad_preset.yaml"
        path.write_text("inherit: target\nslider_mass: -0.1\n")
        return str(path)


class _RunsCode:
    """Pickles as a call to Path.touch: what a hostile checkpoint would hold instead (os.system, ...)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


_TINY_RUN = ["run.steps=2", "run.val_every=2", "run.log_every=1"]   # a trained policy in a few seconds


class _CallsSys:
    """Pickles as a call to sys.getrecursionlimit: harmless, but from a module torch's loader blocks."""

    def __reduce__(self):
        return sys.getrecursionlimit, ()


def _listing(root: Path) -> dict[str, str]:
    """Every file and folder under root: a file's sha256, "dir" (so an empty new folder shows too), or a
    symbolic link's target (links are not followed: a link to outside is listed, not walked)."""
    def entry(p: Path) -> str:
        if p.is_symlink():
            return "link -> " + str(p.readlink())
        return "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return {str(p.relative_to(root)): entry(p) for p in sorted(root.rglob("*"))}


def _train(override):
    return lambda i: ["train", i.train_yaml(), override]


def _annotate(override):
    return lambda i: ["annotate", "--clean", i.clean(), "--corrupt", i.corrupt(), "--out", "ann.zarr", override]


def _gen_teleop(*extra):
    return lambda i: ["gen-teleop", "--num", "1", "--out", "teleop.zarr", *extra]


def _gen_teleop_out(out):
    return lambda i: ["gen-teleop", "--num", "1", "--out", out, "--no-progress"]


def _gen_sim(*extra):
    return lambda i: ["gen-sim", "--num", "1", "--out", "sim.zarr", *extra]


def _eval(*extra):
    return lambda i: ["eval", "scripted", "--out", "ev", "--trials", "1", *extra]


def _plan(*extra):
    return lambda i: ["plan", "--out", "plan.npz", *extra]


def _teleop(*extra):
    return lambda i: ["teleop", "--out", "teleop.zarr", *extra]


def _with_existing(name, argv):
    """The command line of `argv`, with a user's file already at `name` (an output the command would write)."""
    return lambda i: (i.existing(name), argv(i))[1]


def _compare(**changes):
    return lambda i: ["compare", i.experiment(**changes), "--no-progress"]


# (case id, argv builder, text the one line must contain)
CASES = [
    # ---- train (TrainConfig)
    ("train-batch_size", _train("optim.batch_size=-4"), "optim.batch_size"),
    # sizes past a stated bound, and non-finite numbers (harness/learning/train_config.py MAX_*, data/configs._coerce)
    ("train-empty-file", lambda i: ["train", i.empty_yaml()], "empty.yaml: data.datasets"),
    ("train-device-cuda-names-file", _train("device=cuda"), "train.yaml: device"),
    ("train-threads-huge", _train("run.threads=100000"), "run.threads"),
    ("train-batch_size-huge", _train("optim.batch_size=2000000000"), "optim.batch_size"),
    ("train-mlp_width-huge", _train("policy.mlp_width=3000000"), "policy.mlp_width"),
    ("train-P_mean-inf", _train("diffusion.P_mean=.inf"), "finite"),
    ("train-P_std-huge", _train("diffusion.P_std=1e308"), "diffusion.P_std"),
    ("train-sigma_data-inf", _train("diffusion.sigma_data=.inf"), "finite"),
    ("train-sampler_sigma_max-inf", _train("diffusion.sampler_sigma_max=.inf"), "finite"),
    ("train-locality-negative", _train("objective.locality_sigma_max=-5"), "locality_sigma_max"),
    ("train-sigma_n-inf", _train("objective.sigma_n=.inf"), "finite"),
    ("train-same-store-twice", lambda i: ["train", i.train_yaml(), f"data.datasets=[{{path: {i.clean()}, role: clean}}, "
                                          f"{{path: {i.clean()}, role: corrupt}}]"], "listed twice"),
    ("train-duplicate-key", lambda i: ["train", i.raw_train_yaml(b"seed: 1\nseed: 2\n")], "given twice"),
    ("train-latin-1", lambda i: ["train", i.raw_train_yaml("# r\u00e9glage\n".encode("latin-1"))], "not UTF-8"),
    ("train-lr", _train("optim.lr=-0.01"), "optim.lr"),
    ("train-horizon-short", _train("data.horizon=4"), "data.horizon"),
    ("train-horizon-unet", _train("data.horizon=11"), "data.horizon"),
    ("train-n_obs", _train("data.n_obs=0"), "data.n_obs"),
    ("train-n_action", _train("data.n_action=0"), "data.n_action"),
    ("train-val_fraction", _train("data.val_fraction=1.0"), "data.val_fraction"),
    ("train-checkpoint_every", _train("run.checkpoint_every=0"), "run.checkpoint_every"),
    ("train-log_every", _train("run.log_every=0"), "run.log_every"),
    ("train-val_every", _train("run.val_every=-5"), "run.val_every"),
    ("train-val_windows", _train("run.val_windows=0"), "run.val_windows"),
    ("train-steps", _train("run.steps=0"), "run.steps"),
    ("train-threads", _train("run.threads=-1"), "run.threads"),
    ("train-num_steps", _train("diffusion.num_steps=0"), "diffusion.num_steps"),
    ("train-sigma_data", _train("diffusion.sigma_data=0"), "diffusion.sigma_data"),
    ("train-P_std", _train("diffusion.P_std=0"), "diffusion.P_std"),
    ("train-rho", _train("diffusion.rho=-1"), "diffusion.rho"),
    ("train-sampler_sigma", _train("diffusion.sampler_sigma_min=20"), "sampler_sigma_min"),
    ("train-weight_decay", _train("optim.weight_decay=-1e-6"), "optim.weight_decay"),
    ("train-betas", _train("optim.betas=[0.9, 1.0]"), "optim.betas"),
    ("train-warmup", _train("optim.warmup_steps=-1"), "optim.warmup_steps"),
    ("train-grad_clip", _train("optim.grad_clip=-1"), "optim.grad_clip"),
    ("train-ema_decay", _train("optim.ema_decay=1.0"), "optim.ema_decay"),
    ("train-down_dims", _train("policy.down_dims=[0, 16]"), "policy.down_dims"),
    ("train-arch", _train("policy.arch=transformer"), "policy.arch"),
    ("train-mlp_width", _train("policy.mlp_width=0"), "policy.mlp_width"),
    ("train-n_groups", _train("policy.n_groups=0"), "policy.n_groups"),
    ("train-kernel_size", _train("policy.kernel_size=4"), "policy.kernel_size"),
    ("train-noise_dim", _train("policy.noise_dim=7"), "policy.noise_dim"),
    ("train-image-feature_dim", _train("policy.image.feature_dim=0"), "policy.image.feature_dim"),
    ("train-image-widths", _train("policy.image.widths=[]"), "policy.image.widths"),
    ("train-seed", _train("seed=-1"), "seed"),
    ("train-alpha", _train("objective.alpha=1.5"), "objective.alpha"),
    # ---- annotate (AnnotateConfig)
    ("annotate-batch_size", _annotate("batch_size=-32"), "batch_size"),
    ("annotate-grid_size", _annotate("grid_size=0"), "grid_size"),
    ("annotate-steps", _annotate("steps=-10"), "steps"),
    ("annotate-k_draws", _annotate("k_draws=0"), "k_draws"),
    ("annotate-lr", _annotate("lr=0"), "lr"),
    ("annotate-weight_decay", _annotate("weight_decay=-1"), "weight_decay"),
    ("annotate-val_windows", _annotate("val_windows=0"), "val_windows"),
    ("annotate-p_zero", _annotate("p_zero=1.0"), "p_zero"),
    ("annotate-annotate_batch", _annotate("annotate_batch=0"), "annotate_batch"),
    ("annotate-widths", _annotate("widths=[]"), "widths"),
    ("annotate-noise_dim", _annotate("noise_dim=0"), "noise_dim"),
    ("annotate-seed", _annotate("seed=-1"), "seed"),
    ("annotate-device", _annotate("device=tpu"), "device"),
    ("annotate-horizon", _annotate("horizon=4"), "horizon"),
    # ---- gen-teleop (TeleopConfig, HumanTraits, StrategyConfig)
    ("gen-teleop-seed", _gen_teleop("--seed", "-4"), "--seed"),
    ("gen-teleop-image-size", _gen_teleop("--image-size", "-5", "96"), "--image-size"),
    ("gen-teleop-num", lambda i: ["gen-teleop", "--num", "0", "--out", "teleop.zarr"], "--num"),
    ("gen-teleop-workers", _gen_teleop("--workers", "0"), "--workers"),
    ("gen-teleop-num-huge", lambda i: ["gen-teleop", "--num", str(10**15), "--out", "teleop.zarr"], "--num"),
    ("gen-teleop-seed-huge", _gen_teleop("--seed", str(10**20)), "--seed"),
    ("gen-sim-seed-huge", _gen_sim("--seed", str(10**20)), "seed"),
    ("gen-sim-num-huge", lambda i: ["gen-sim", "--num", str(10**15), "--out", "sim.zarr"], "num"),
    ("gen-teleop-env", _gen_teleop("--env", "nonexistent"), "env (--env)"),
    ("gen-teleop-image_size-key", _gen_teleop("image_size=[4, 4]"), "image_size"),
    ("gen-teleop-pause_prob", _gen_teleop("human.pause_prob=-0.5"), "pause_prob"),
    ("gen-teleop-pause_prob-high", _gen_teleop("human.pause_prob=1.5"), "pause_prob"),
    ("gen-teleop-pause_steps", _gen_teleop("human.pause_steps=[5, 2]"), "pause_steps"),
    ("gen-teleop-reaction_delay", _gen_teleop("human.reaction_delay_steps=[-1, 2]"), "reaction_delay_steps"),
    ("gen-teleop-speed_factor", _gen_teleop("human.speed_factor_range=[0, 1]"), "speed_factor_range"),
    ("gen-teleop-speed_drift", _gen_teleop("human.speed_drift=-0.1"), "speed_drift"),
    ("gen-teleop-max_accel", _gen_teleop("human.max_accel=0"), "max_accel"),
    ("gen-teleop-max_speed", _gen_teleop("human.max_speed=-1"), "max_speed"),
    ("gen-teleop-tremor_std", _gen_teleop("human.tremor_std=-0.001"), "tremor_std"),
    ("gen-teleop-tremor_smoothing", _gen_teleop("human.tremor_smoothing=1.0"), "tremor_smoothing"),
    ("gen-teleop-lead_limit", _gen_teleop("human.lead_limit=-0.01"), "lead_limit"),
    ("gen-teleop-push_speed", _gen_teleop("strategy.push_speed_min=0.1"), "push_speed_min"),
    ("gen-teleop-approach_speed", _gen_teleop("strategy.approach_speed=0"), "approach_speed"),
    ("gen-teleop-candidate_spacing", _gen_teleop("strategy.candidate_spacing=0"), "candidate_spacing"),
    ("gen-teleop-limit_surface_c", _gen_teleop("strategy.limit_surface_c=-0.06"), "limit_surface_c"),
    ("gen-teleop-keep_score", _gen_teleop("strategy.keep_score=2"), "keep_score"),
    ("gen-teleop-switch_margin", _gen_teleop("strategy.switch_margin=-0.1"), "switch_margin"),
    ("gen-teleop-retreat", _gen_teleop("strategy.retreat_distance=-0.01"), "retreat_distance"),
    ("gen-teleop-lost_contact", _gen_teleop("strategy.lost_contact=0"), "lost_contact"),
    # ---- gen-sim (GenSimConfig, PlannerConfig)
    ("gen-sim-seed", _gen_sim("--seed", "-4"), "--seed"),
    ("gen-sim-num", lambda i: ["gen-sim", "--num", "0", "--out", "sim.zarr"], "--num"),
    ("gen-sim-workers", _gen_sim("--workers", "0"), "--workers"),
    ("gen-sim-env", _gen_sim("--env", "nonexistent"), "env (--env)"),
    ("gen-sim-image_size", _gen_sim("image_size=[4, 4]"), "image_size"),
    ("gen-sim-visual", _gen_sim("--visual", "nonexistent"), "--visual"),
    ("gen-teleop-visual", _gen_teleop("--visual", "nonexistent"), "--visual"),
    ("gen-sim-push_depth", _gen_sim("push_depth=-0.01"), "push_depth"),
    ("gen-sim-settle_steps", _gen_sim("settle_steps=-1"), "settle_steps"),
    ("gen-sim-max_replans", _gen_sim("max_replans=-1"), "max_replans"),
    ("gen-sim-max_seeds", _gen_sim("max_seeds=-1"), "max_seeds"),
    ("gen-sim-max_seeds-short", lambda i: ["gen-sim", "--num", "5", "--out", "sim.zarr", "max_seeds=2"],
     "max_seeds"),
    ("gen-sim-planner-mu", _gen_sim("planner.mu=0"), "mu"),
    ("gen-sim-planner-robust_fraction", _gen_sim("planner.robust_fraction=2"), "robust_fraction"),
    ("gen-sim-planner-w_goal", _gen_sim("planner.w_goal=-1"), "w_goal"),
    ("gen-sim-planner-polish_iterations", _gen_sim("planner.polish_iterations=-1"), "polish_iterations"),
    ("gen-sim-planner-tol", _gen_sim("planner.tol_penetration=-0.001"), "tol_penetration"),
    ("gen-sim-planner-interval_deg", _gen_sim("planner.interval_deg=400"), "interval_deg"),
    ("gen-sim-bad-preset-file", lambda i: ["gen-sim", "--num", "1", "--out", "sim.zarr", "--env", i.bad_preset()],
     "slider_mass"),
    # ---- eval
    ("eval-seed", _eval("--seed", "-5"), "--seed"),
    ("eval-device-tpu", _eval("--device", "tpu"), "--device"),
    ("eval-device-cuda", _eval("--device", "cuda"), "--device"),
    ("eval-trials", lambda i: ["eval", "scripted", "--out", "ev", "--trials", "0"], "--trials"),
    ("eval-n-envs", _eval("--n-envs", "0"), "--n-envs"),
    ("eval-workers", _eval("--workers", "0"), "--workers"),
    ("eval-time-limit", _eval("--time-limit", "0"), "--time-limit"),
    ("eval-time-limit-nan", _eval("--time-limit", "nan"), "--time-limit"),
    ("eval-record", _eval("--record", "-1"), "--record"),
    ("eval-trials-huge", _eval("--trials", str(10**15)), "--trials"),
    ("eval-workers-huge", _eval("--workers", "100000"), "--workers"),
    ("eval-env", _eval("--env", "nonexistent"), "--env"),
    ("eval-checkpoint-runs-code", lambda i: ["eval", i.code_checkpoint(), "--out", "ev", "--trials", "1"],
     "could run code"),
    ("eval-default-out-seed", lambda i: ["eval", "scripted", "--trials", "1", "--seed", "-5"], "--seed"),
    # ---- info
    ("info-max-rows", lambda i: ["info", i.clean(), "--max-rows", "-1"], "--max-rows"),
    # ---- rollout (and physics presets, PhysicsConfig)
    ("rollout-video-unwritable", lambda i: ["rollout", "--video", i.blocked("out.mp4")], "--video"),
    ("rollout-video-folder", lambda i: ["rollout", "--video", i.folder("clip.mp4")], "--video"),
    ("rollout-html-unwritable", lambda i: ["rollout", "--html", i.blocked("out.html")], "--html"),
    ("rollout-seed", lambda i: ["rollout", "--seed", "-1"], "--seed"),
    # an existing file at an output path is never replaced (harness/core/locks.check_output_file)
    ("rollout-video-exists", lambda i: ["rollout", "--video", i.existing("clip.mp4")], "exists"),
    ("rollout-html-exists", lambda i: ["rollout", "--html", i.existing("out.html")], "exists"),
    ("plan-out-exists", lambda i: ["plan", "--seed", "0", "--out", i.existing("p.npz")], "exists"),
    ("plan-show-exists", lambda i: ["plan", "--seed", "0", "--out", "p.npz", "--show", i.existing("p.png")], "exists"),
    ("curve-out-exists", lambda i: ["curve", "steps", "x.pt", "--out", i.existing("c.png")], "exists"),
    ("curve-out-csv-exists", _with_existing("c.csv", lambda i: ["curve", "steps", "x.pt", "--out", "c.png"]),
     "its CSV"),
    ("annotate-figure-exists", _with_existing("ann.accuracy.csv", _annotate("steps=5")), "figure beside"),
    ("rollout-steps", lambda i: ["rollout", "--steps", "0"], "--steps"),
    ("rollout-visual", lambda i: ["rollout", "--visual", "nonexistent"], "--visual"),
    ("rollout-image-size", lambda i: ["rollout", "--video", "out.mp4", "--image-size", "4x4"], "--image-size"),
    ("physics-slider_mass", lambda i: ["rollout", "--set", "slider_mass=-1"], "slider_mass"),
    ("physics-pusher_mass", lambda i: ["rollout", "--set", "pusher_mass=0"], "pusher_mass"),
    ("physics-mu", lambda i: ["rollout", "--set", "mu_slider_table=-0.1"], "mu_slider_table"),
    ("physics-time_step", lambda i: ["rollout", "--set", "time_step=0"], "time_step"),
    ("physics-time_step-inf", lambda i: ["rollout", "--set", "time_step=.inf"], "time_step"),
    ("physics-latency", lambda i: ["rollout", "--set", "action_latency=-1"], "action_latency"),
    ("physics-obs_noise", lambda i: ["rollout", "--set", "obs_noise_xy=-0.01"], "obs_noise_xy"),
    ("physics-preset-file", lambda i: ["rollout", "--env", i.bad_preset()], "slider_mass"),
    ("physics-eval-preset-file", lambda i: ["eval", "scripted", "--out", "ev", "--env", i.bad_preset()],
     "slider_mass"),
    # ---- plan (PlannerConfig)
    ("plan-start-nan", _plan("--start", "nan", "0.05", "1.2"), "--start"),
    ("plan-start-outside", _plan("--start", "2.0", "0.0", "0.0"), "--start"),
    ("plan-seed", _plan("--seed", "-1"), "--seed"),
    ("plan-out-unwritable", lambda i: ["plan", "--seed", "0", "--out", i.blocked("p.npz")], "--out"),
    ("plan-show-unwritable", lambda i: ["plan", "--seed", "0", "--out", "plan.npz", "--show", i.blocked("p.png")], "--show"),
    ("plan-mu", _plan("--seed", "0", "mu=0"), "mu"),
    ("plan-sample_dt", _plan("--seed", "0", "sample_dt=-0.01"), "sample_dt"),
    ("plan-clearance", _plan("--seed", "0", "clearance=-0.01"), "clearance"),
    # ---- teleop (browser)
    ("teleop-seed", _teleop("--seed", "-1"), "--seed"),
    ("teleop-port", _teleop("--port", "70000"), "--port"),
    ("teleop-image-size", _teleop("--image-size", "0", "0"), "--image-size"),
    ("teleop-max-speed", _teleop("--max-speed", "nan"), "--max-speed"),
    ("teleop-env", _teleop("--env", "nonexistent"), "--env"),
    # ---- compare (StudyConfig and its parts)
    ("compare-eval-env", _compare(**{"eval.env": "nonexistent"}), "eval.env"),
    ("compare-ray-unreachable", _compare(**{"executor.kind": "ray", "executor.address": "127.0.0.1:1"}),
     "no Ray cluster answers"),
    ("compare-ray-address-malformed", _compare(**{"executor.kind": "ray", "executor.address": "not_a_host"}),
     "expected host:port"),
    ("compare-eval-trials-huge", _compare(**{"eval.trials": 10**15}), "eval.trials"),
    ("compare-eval-record", _compare(**{"eval.record": 1}), "eval.record"),
    ("compare-seeds-huge", _compare(seeds=[10**20]), "seeds"),
    ("compare-labels-one-folder", _compare(methods=[{"method": "cotrain", "label": "a/b"},
                                                    {"method": "cotrain", "label": "a-b"}]), "share the run folder"),
    ("compare-eval-workers", _compare(**{"eval.workers": 0}), "eval.workers"),
    ("compare-eval-n_envs", _compare(**{"eval.n_envs": 0}), "eval.n_envs"),
    ("compare-eval-time_limit", _compare(**{"eval.time_limit": 0}), "eval.time_limit"),
    ("compare-eval-seed", _compare(**{"eval.seed": -1}), "eval.seed"),
    ("compare-eval-device", _compare(**{"eval.device": "tpu"}), "eval.device"),
    # checkpoint protocols (eval/selection.py): something to select from, selection seeds apart from eval's
    ("compare-eval-checkpoints", _compare(**{"eval.checkpoints": "best"}), "checkpoints"),
    ("compare-eval-select-final", _compare(**{"eval.select": "beta_pruning"}), "eval.select"),
    ("compare-eval-snapshot_every-missing", _compare(**{"eval.checkpoints": "last_k"}), "eval.snapshot_every"),
    ("compare-eval-snapshot_every-too-late", _compare(**{"eval.checkpoints": "every", "eval.snapshot_every": 3}),
     "eval.snapshot_every"),
    ("compare-eval-selection-overlap", _compare(**{"eval.checkpoints": "every", "eval.snapshot_every": 1,
                                                  "eval.selection_seed": 100_001}), "eval.selection_seed"),
    ("compare-eval-selection_trials", _compare(**{"eval.selection_trials": 0}), "eval.selection_trials"),
    ("compare-eval-last_k", _compare(**{"eval.last_k": 1}), "eval.last_k"),
    ("compare-executor-max_parallel", _compare(**{"executor.max_parallel": 0}), "executor.max_parallel"),
    ("compare-executor-threads", _compare(**{"executor.threads": -1}), "executor.threads"),
    ("compare-spectra_window", _compare(spectra_window=1), "spectra_window"),
    ("compare-dataset-episodes", _compare(**{"datasets.0.episodes": 0}), "episodes"),
    ("compare-generate-num", _compare(**{"datasets.1.generate": {"kind": "gcs", "num": 0}}), "num"),
    ("compare-generate-workers", _compare(**{"datasets.1.generate": {"kind": "gcs", "workers": 0}}), "workers"),
    ("compare-generate-seed", _compare(**{"datasets.1.generate": {"kind": "gcs", "seed": -1}}), "seed"),
    ("compare-generate-env", _compare(**{"datasets.1.generate": {"kind": "gcs", "env": "nonexistent"}}), "env"),
    # (refused by harness/study/runner.py, which checks every job's config before it creates results/<study>)
    ("compare-train-batch_size", _compare(**{"train.optim.batch_size": -32}), "optim.batch_size"),
    ("compare-annotate-grid_size", _compare(**{"annotate.overrides.grid_size": 0}), "grid_size"),
    # ---- validate
    ("validate-jpeg2k-zip", lambda i: ["validate", i.jpeg2k_zip()], "imagecodecs_jpeg2k"),
    # ---- paths and names that escape or collide (issue 37, section 1)
    # one slug rule for row labels (harness/study/plan.run_slug), checked before any work
    ("compare-label-dotdot", _compare(methods=[{"method": "target_only", "label": ".."}]), "run folder name"),
    ("compare-label-dot", _compare(methods=[{"method": "target_only", "label": "."}]), "run folder name"),
    ("compare-label-no-letter", _compare(methods=[{"method": "target_only", "label": "***"}]), "run folder name"),
    ("compare-label-nul", _compare(methods=[{"method": "target_only", "label": "a\0b"}]), "NUL byte"),
    ("compare-label-newline", _compare(methods=[{"method": "target_only", "label": "a\nb"}]), "control character"),
    ("compare-label-too-long", _compare(methods=[{"method": "target_only", "label": "x" * 300}]), "shorter label"),
    # a store never follows a link out of itself (harness/core/store.check_contained)
    ("validate-linked-array", lambda i: ["validate", i.linked_store()], "data/action: is a symbolic link"),
    ("info-linked-array", lambda i: ["info", i.linked_store()], "outside the store"),
    ("gen-teleop-linked-array", lambda i: ["gen-teleop", "--num", "5", "--out", i.linked_store(), "--no-progress"],
     "outside the store"),
    ("train-linked-array", lambda i: ["train", i.train_yaml(), f"data.datasets=[{{path: {i.linked_store()}}}]"],
     "outside the store"),
    # an output never inside its own input (harness/core/locks.check_writable's inputs)
    ("export-out-inside-store", lambda i: ["export", i.clean(), "--format", "lerobot", "--out",
                                           str(Path(i.clean()) / "exp")], "inside the input"),
    ("import-out-inside-source", lambda i: ["import", i.clean(), "--format", "diffusion-policy", "--out",
                                            str(Path(i.clean()) / "data" / "imp.zarr")], "inside the input"),
    ("import-out-holds-source", lambda i: ["import", i.clean(), "--format", "diffusion-policy", "--out",
                                           str(i.root), "--overwrite"], "holds the input"),
    # ---- stores and files that lie about their size (section 2): bounds checked before reading
    ("validate-declared-shape-huge", lambda i: ["validate", i.lying_store()], "data/action: declares"),
    ("validate-repair-declared-shape-huge", lambda i: ["validate", "--repair", i.lying_store()], "data/action: declares"),
    ("info-declared-shape-huge", lambda i: ["info", i.lying_store()], "data/action: declares"),
    ("export-declared-shape-huge", lambda i: ["export", i.lying_store(), "--format", "lerobot", "--out", "exp"],
     "data/action: declares"),
    ("train-declared-shape-huge", lambda i: ["train", i.train_yaml(), f"data.datasets=[{{path: {i.lying_store()}}}]"],
     "data/action: declares"),
    ("validate-declared-episodes-huge", lambda i: ["validate", i.lying_store("meta/episode_ends")], "episode_ends"),
    ("validate-declared-meta-huge", lambda i: ["validate", i.lying_store("meta/seed")], "meta/seed: declares"),
    ("train-yaml-huge", lambda i: ["train", i.text_file("big.yaml", "seed: [" + "1, " * 1_500_000 + "1]\n")],
     "more than a config may hold"),
    ("train-yaml-deep", lambda i: ["train", i.text_file("deep.yaml", "seed: " + "[" * 100_000 + "]" * 100_000)],
     "nested deeper than 100"),
    ("train-override-deep", _train("seed=" + "[" * 100_000 + "]" * 100_000), "nested deeper than 100"),
    ("train-normalizer-deep", lambda i: ["train", i.train_yaml(), "data.normalizer=" + i.text_file(
        "norm.json", "[" * 100_000 + "]" * 100_000)], "norm.json"),
    ("train-normalizer-scale-huge", lambda i: ["train", i.train_yaml(), "data.normalizer=" + i.text_file(
        "norm.json", '{"obs": {"offset": [0, 0, 0, 0, 0, 0], "scale": [1, 1, 1, 1, 1, 1]}, '
                     '"action": {"offset": [0, 0], "scale": [1e308, 1]}}')], "norm.json: action.scale: must lie within"),
    ("physics-latency-huge", lambda i: ["rollout", "--set", "action_latency=1e9"], "action_latency"),
    ("import-lerobot-info-list", lambda i: ["import", i.lerobot_info([1, 2]), "--format", "lerobot", "--out",
                                            "imp.zarr"], "meta/info.json: must be a JSON object"),
    # ---- OS errors as one line (section 3): paths the OS cannot make, checked before any work
    ("train-out_dir-dangling-link", lambda i: ["train", i.train_yaml(), f"out_dir={i.dangling('run')}"],
     "does not exist"),
    ("gen-teleop-out-dangling-link", lambda i: ["gen-teleop", "--num", "1", "--out", i.dangling("t.zarr")],
     "does not exist"),
    ("eval-out-dangling-link", lambda i: ["eval", "scripted", "--out", i.dangling("ev"), "--trials", "1"],
     "does not exist"),
    ("eval-out-under-dangling-link", lambda i: ["eval", "scripted", "--out", i.dangling("ev") + "/deeper",
                                                "--trials", "1"], "does not exist"),
    ("train-out_dir-name-too-long", _train("out_dir=" + "r" * 300), "255 bytes"),
    ("gen-teleop-out-name-too-long", _gen_teleop_out("t" * 300 + ".zarr"), "255 bytes"),
    ("train-out_dir-nul", _train('out_dir="run\\0x"'), "NUL byte"),
    ("train-dataset-path-nul", _train('data.datasets=[{path: "a\\0b.zarr"}]'), "NUL byte"),
    # ---- values that mean nothing, malformed input (section 4)
    ("validate-success-float", lambda i: ["validate", i.success_store("float")], "meta/success: must be true/false"),
    ("info-success-text", lambda i: ["info", i.success_store("text")], "meta/success: must be true/false"),
    ("train-success-float", lambda i: ["train", i.train_yaml(), f"data.datasets=[{{path: {i.success_store('float')}}}]"],
     "meta/success"),
    ("compare-baseline-nonexistent", _compare(baseline="nonexistent"), "baseline: 'nonexistent' names no row"),
    ("compare-train-seed", _compare(**{"train.seed": 3}), "train.seed: is set by the study"),
    ("compare-train-out_dir", _compare(**{"train.out_dir": "elsewhere"}), "train.out_dir: is set by the study"),
    ("compare-row-train-seed", _compare(methods=[{"method": "target_only", "label": "t", "train": {"seed": 1}}]),
     "methods[0].train.seed"),
    ("compare-spectra_window-huge", _compare(spectra_window=10**8), "spectra_window"),
    ("gen-sim-keep-failed-kinematic", _gen_sim("--keep-failed-replays"), "keep_failed_replays"),
    ("train-mixed-keys", lambda i: ["train", i.raw_train_yaml(b"1: x\nbogus: y\n")], "1: unknown key"),
    ("eval-checkpoint-normalizer-junk", lambda i: ["eval", i.checkpoint(lambda c: c.update(normalizer={"junk": 1})),
                                                   "--out", "ev", "--trials", "1"], "normalizer: not a normalizer"),
    ("eval-checkpoint-nan-weights", lambda i: ["eval", i.checkpoint(lambda c: next(iter(c["ema"].values())).fill_(
        float("nan"))), "--out", "ev", "--trials", "1"], "NaN or inf"),
    ("curve-out-bogus-suffix", lambda i: ["curve", "steps", "x.pt", "--out", "x.bogus"], "--out x.bogus"),
    # ---- messages naming the right thing (section 5)
    ("train-key-newline", _train("optim.batch\nsize=3"), "optim.batch\\nsize"),
    ("compare-train-batch-names-file", _compare(**{"train.optim.batch_size": -32}),
     "experiment.yaml: 'target_only' seed 0: optim.batch_size"),
    ("compare-train-unknown-key-names-file", _compare(**{"train.bogus": 1}), "experiment.yaml: 'target_only' seed 0: bogus"),
    ("compare-annotate-names-file", _compare(**{"annotate.overrides.grid_size": 0}), "experiment.yaml: annotate"),
    ("compare-resume-episodes-edited", lambda i: ["compare", i.study_started(**{"datasets.0.episodes": 2}),
                                                  "--no-progress"], "datasets.teleop.episodes"),
    ("train-finished-final-deleted", lambda i: i.finished_run_without_final(), "final.pt: missing"),
    ("eval-checkpoint-global-refused", lambda i: ["eval", i.reduce_checkpoint(), "--out", "ev", "--trials", "1"],
     "convert it"),
]


@pytest.mark.parametrize("case, argv, needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, argv, needle, tmp_path, monkeypatch, capsys, caplog):
    if case in ("eval-device-cuda", "train-device-cuda-names-file"):
        import torch
        if torch.cuda.is_available():
            pytest.skip("torch sees a CUDA device here")
    inputs = Inputs(tmp_path)
    args = argv(inputs)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [sys.argv[0]])
    before = _listing(tmp_path)
    capsys.readouterr()
    code = main(args)
    gc.collect()       # a finalizer's message (asyncio's "Task exception was never retrieved") comes now
    err = capsys.readouterr().err
    # A warning or error logged by a library reaches stderr in a real run (logging's last-resort handler);
    # under pytest the logging plugin takes it instead, so it is checked here.
    logged = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    after = _listing(tmp_path)
    assert code == 2, err
    assert "Traceback" not in err
    assert not logged, logged
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0], lines[0]
    assert after == before, sorted(set(after.items()) ^ set(before.items()))
    if case.startswith("compare"):
        assert not (tmp_path / "results").exists()


# ---- a full disk (issue 37, section 3): each output on a tiny tmpfs of its own, so the OS says ENOSPC in the
# middle of the work. (case id, tmpfs size, argv builder given the inputs and the full disk's folder)
FULL_DISK_CASES = [
    ("gen-teleop-disk-full", "64k", lambda i, disk: ["gen-teleop", "--num", "3", "--out", f"{disk}/t.zarr",
                                                     "--no-progress"]),
    ("train-disk-full", "64k", lambda i, disk: ["train", i.train_yaml(), f"out_dir={disk}/run", "run.steps=4"]),
    ("eval-disk-full", "8k", lambda i, disk: ["eval", "scripted", "--out", f"{disk}/ev", "--trials", "2",
                                              "--n-envs", "2", "--workers", "1", "--time-limit", "1",
                                              "--no-progress"]),
    ("export-disk-full", "16k", lambda i, disk: ["export", i.clean(), "--format", "lerobot", "--out",
                                                 f"{disk}/exp", "--images", "png"]),
    ("annotate-disk-full", "16k", lambda i, disk: ["annotate", "--clean", i.clean(), "--corrupt", i.corrupt(),
                                                   "--out", f"{disk}/ann.zarr", "steps=5", "batch_size=16",
                                                   "grid_size=4", "k_draws=1", "val_windows=20", "progress=false"]),
    ("compare-disk-full", "64k", lambda i, disk: ["compare", i.experiment(out_dir=f"{disk}/study",
                                                  methods=[{"method": "target_only"}], annotate={"enabled": False}),
                                                  "--no-progress"]),
]


@pytest.fixture
def full_disk(tmp_path):
    """A factory of tiny tmpfs folders (real ENOSPC); unmounted at the end. Mounting needs root."""
    import os
    import subprocess
    mounted = []

    def make(size: str) -> Path:
        place = tmp_path / "disk"
        place.mkdir()
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(place)],
                                               capture_output=True).returncode != 0:
            pytest.skip("a tiny tmpfs needs root (mount -t tmpfs)")
        mounted.append(place)
        return place

    yield make
    for place in mounted:
        subprocess.run(["umount", "-l", str(place)], capture_output=True)


@pytest.mark.parametrize("case, size, argv", FULL_DISK_CASES, ids=[c[0] for c in FULL_DISK_CASES])
def test_a_full_disk_is_one_line_naming_the_output_and_leaves_no_temporaries(case, size, argv, tmp_path, full_disk,
                                                                             monkeypatch, capsys):
    """ENOSPC from the OS, zarr, pyarrow or torch's zip writer (inline_container): one line naming the output
    on the full disk, exit 2, no traceback, no temporary (`.<name>.tmp-<pid>`) left, and nothing outside
    the output changed. Finished work on the disk is kept (a resume goes on from it)."""
    inputs = Inputs(tmp_path)
    disk = full_disk(size)
    args = argv(inputs, disk.relative_to(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [sys.argv[0]])
    outside = {k: v for k, v in _listing(tmp_path).items() if not k.startswith("disk")}
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith(f"cotrain {args[0]}: error:")]
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(errors) == 1 and "disk/" in errors[0] and ("No space left" in errors[0] or "disk full" in errors[0]), err
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]
    assert {k: v for k, v in _listing(tmp_path).items() if not k.startswith("disk")} == outside


@pytest.mark.parametrize("command", ["gen-sim", "gen-teleop"])
def test_an_unreachable_ray_cluster_is_one_line_and_leaves_no_store(command, tmp_path, monkeypatch, capsys):
    """RAY_ADDRESS naming a port where nothing listens: ray.init would retry for minutes (a hang)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    assert main([command, "--num", "1", "--out", "s.zarr", "--executor", "ray", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no Ray cluster answers" in err, err
    assert list(tmp_path.iterdir()) == []


def test_output_in_a_missing_folder_is_still_accepted(tmp_path):
    """The writers make missing folders, so the early check refuses only what could never be written."""
    from harness.core.locks import check_output_file
    check_output_file(tmp_path / "new" / "clip.mp4", "--video")
    check_output_file(tmp_path / "new" / "deeper" / "plan.npz", "--out")
    assert list(tmp_path.iterdir()) == []
