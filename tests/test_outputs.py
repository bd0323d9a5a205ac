"""Outputs are never silently replaced, mixed or half written: locks, identities, unwritable and corrupt inputs.

Every case runs the real CLI and asserts exit status 2, one line on stderr naming the problem, no
traceback, and (where something existed before) nothing changed on disk.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.core.configs import from_dict, to_dict
from harness.core.identity import hold_output
from harness.learning.train_config import TrainConfig
from harness.learning.training import IDENTITY_FILE, RESUME_FREE_KEYS, train
from tests.helpers import tree_digest
from tests.test_import import write_replay_buffer
from tests.synthetic_stores import write_store

READ_ONLY = Path("/sys/cotrain-test")   # creating anything here fails, even as root (permission bits do not)


def _one_line_error(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("stores")
    return {"clean": write_store(d / "clean.zarr", "target", 4, seed=1),
            "corrupt": write_store(d / "corrupt.zarr", "sim", 6, wiggle=0.01, seed=2)}


def _train_yaml(stores, folder: Path, out_dir: Path, **extra) -> Path:
    cfg = {"out_dir": str(out_dir), "device": "cpu", "seed": 0,
           "data": {"datasets": [{"path": str(stores["clean"])}, {"path": str(stores["corrupt"])}],
                    "val_fraction": 0.0},
           "policy": {"down_dims": [8, 16], "noise_dim": 8, "n_groups": 4}, "diffusion": {"num_steps": 2},
           "optim": {"batch_size": 8, "warmup_steps": 1},
           "run": {"steps": 2, "log_every": 1, "val_every": 2, "checkpoint_every": 2, "progress": False}, **extra}
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def checkpoint(stores, tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    assert main(["train", str(_train_yaml(stores, d, d / "run"))]) == 0
    return d / "run" / "checkpoints" / "final.pt"


def test_a_second_trainer_on_a_held_run_folder_is_refused(stores, tmp_path, capsys):
    cfg = from_dict(TrainConfig, yaml.safe_load(_train_yaml(stores, tmp_path, tmp_path / "run").read_text()))
    with hold_output(cfg.out_dir, IDENTITY_FILE, to_dict(cfg), RESUME_FREE_KEYS, kind="training run folder"):
        before = tree_digest(tmp_path / "run")
        assert main(["train", str(tmp_path / "train.yaml")]) == 2
        _one_line_error(capsys, "another process is using this training run folder")
        assert tree_digest(tmp_path / "run") == before
    assert Path(train(cfg)).is_file()          # released: the same command now runs


@pytest.mark.parametrize("command", ["import", "annotate"])
def test_a_second_import_or_annotate_of_one_output_is_refused(command, stores, tmp_path, capsys):
    """Both build beside the output and rename it into place: without the lock two runs both exit 0 and
    one result is lost. The second is refused while the first holds the output; the lock file goes away."""
    from harness.core.locks import hold_output_lock
    out = tmp_path / "out.zarr"
    args = (["import", str(write_replay_buffer(tmp_path / "dp.zarr", images=False)), "--format",
             "diffusion-policy", "--out", str(out)] if command == "import" else
            ["annotate", "--clean", str(stores["clean"]), "--corrupt", str(stores["corrupt"]), "--out", str(out),
             "steps=5", "grid_size=4", "k_draws=1", "val_windows=20", "batch_size=16", "progress=false"])
    with hold_output_lock(out, "test's output"):
        assert main(args) == 2
        _one_line_error(capsys, "another process is writing this")
        assert not out.exists()
    assert main(args) == 0 and out.is_dir()      # released: the same command now runs
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_two_evaluations_of_one_folder_never_interleave(checkpoint, tmp_path, capsys):
    out = tmp_path / "ev"
    args = ["eval", str(checkpoint), "--trials", "1", "--time-limit", "0.3", "--n-envs", "1", "--workers", "1",
            "--out", str(out), "--no-progress"]
    from harness.core.locks import hold_lock
    from harness.core.identity import LOCK_FILE
    out.mkdir()
    with hold_lock(out / LOCK_FILE, "held by the test"):
        assert main(args) == 2
        _one_line_error(capsys, "another process is using this evaluation folder")
    assert main(args) == 0


def test_eval_identifies_the_checkpoint_by_its_content(checkpoint, tmp_path, capsys):
    """Replacing the checkpoint file under the same path must not resume (and mix) the old evaluation."""
    ckpt = tmp_path / "final.pt"
    ckpt.write_bytes(checkpoint.read_bytes())
    out = tmp_path / "ev"
    args = ["eval", str(ckpt), "--trials", "1", "--time-limit", "0.3", "--n-envs", "1", "--workers", "1",
            "--out", str(out), "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    import torch
    state = torch.load(ckpt, weights_only=False)
    state["step"] = state["step"] + 1             # another policy file, same path
    torch.save(state, ckpt)
    before = tree_digest(out)
    assert main(args) == 2
    _one_line_error(capsys, "checkpoint_sha256")
    assert tree_digest(out) == before


@pytest.fixture()
def read_only():
    try:
        (READ_ONLY / "probe").mkdir(parents=True)
    except OSError:
        return READ_ONLY / "out"
    pytest.skip("/sys is writable here: no read-only place to test with")


UNWRITABLE_CASES = {
    "gen-teleop": lambda ro, st, ck, tmp: ["gen-teleop", "--num", "1", "--out", str(ro / "t.zarr")],
    "gen-sim": lambda ro, st, ck, tmp: ["gen-sim", "--num", "1", "--out", str(ro / "s.zarr"), "--workers", "1",
                                        "--no-progress"],
    "train": lambda ro, st, ck, tmp: ["train", str(_train_yaml(st, tmp, ro / "run"))],
    "eval": lambda ro, st, ck, tmp: ["eval", str(ck), "--trials", "1", "--out", str(ro / "ev"), "--no-progress"],
    "annotate": lambda ro, st, ck, tmp: ["annotate", "--clean", str(st["clean"]), "--corrupt", str(st["corrupt"]),
                                         "--out", str(ro / "a.zarr"), "steps=5", "progress=false"],
    "plan": lambda ro, st, ck, tmp: ["plan", "--seed", "3", "--out", str(ro / "p.npz")],
    "import": lambda ro, st, ck, tmp: ["import", str(write_replay_buffer(tmp / "dp.zarr", images=False)),
                                       "--format", "diffusion-policy", "--out", str(ro / "r.zarr")],
    "export": lambda ro, st, ck, tmp: ["export", str(st["clean"]), "--format", "lerobot", "--out", str(ro / "le")],
}


@pytest.mark.parametrize("case", sorted(UNWRITABLE_CASES))
def test_unwritable_outputs_are_refused_before_any_work(case, stores, checkpoint, read_only, tmp_path, capsys):
    args = UNWRITABLE_CASES[case](read_only, stores, checkpoint, tmp_path)
    before = tree_digest(tmp_path)
    assert main(args) == 2, args
    _one_line_error(capsys, str(READ_ONLY))
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize("damage", ["no normalizer", "weights of another size", "truncated"])
def test_a_broken_checkpoint_is_one_line_and_creates_no_evaluation(damage, checkpoint, tmp_path, capsys):
    import torch
    state = torch.load(checkpoint, weights_only=False)
    broken = tmp_path / "broken.pt"
    if damage == "no normalizer":
        del state["normalizer"]
    elif damage == "weights of another size":
        state["config"]["policy"]["down_dims"] = [16, 32]
    torch.save(state, broken)
    if damage == "truncated":
        broken.write_bytes(checkpoint.read_bytes()[:1000])
    assert main(["eval", str(broken), "--trials", "1", "--out", str(tmp_path / "ev"), "--no-progress"]) == 2
    _one_line_error(capsys, str(broken))
    assert not (tmp_path / "ev").exists()


def test_a_truncated_latest_checkpoint_stops_the_resume_in_one_line(stores, tmp_path, capsys):
    cfg_path = _train_yaml(stores, tmp_path, tmp_path / "run", run={"steps": 4, "checkpoint_every": 2,
                                                                    "log_every": 1, "val_every": 2,
                                                                    "progress": False})
    train(from_dict(TrainConfig, yaml.safe_load(cfg_path.read_text())), stop_after=2)
    latest = tmp_path / "run" / "checkpoints" / "latest.pt"
    latest.write_bytes(latest.read_bytes()[:500])
    before = tree_digest(tmp_path / "run")
    assert main(["train", str(cfg_path)]) == 2
    _one_line_error(capsys, "latest.pt", "not a readable checkpoint")
    assert tree_digest(tmp_path / "run") == before


def _corrupt(store: Path) -> None:
    chunk = sorted((store / "data" / "action").glob("0*"))[0]
    chunk.write_bytes(os.urandom(64))
    (store / "data" / "agent_pos" / ".zarray").write_text("{not json")


def test_a_corrupt_store_is_reported_in_one_line_by_every_reader(stores, tmp_path, capsys):
    store = write_store(tmp_path / "broken.zarr", "target", 3, seed=4)
    _corrupt(store)
    before = tree_digest(tmp_path)
    assert main(["validate", str(store)]) == 2
    err = _one_line_error(capsys, "unreadable chunks")
    assert "data/action[0:" in err and "data/agent_pos metadata" in err   # every unreadable chunk, named
    assert main(["info", str(store)]) == 2
    _one_line_error(capsys, str(store), "unreadable")
    cfg = _train_yaml({"clean": store, "corrupt": stores["corrupt"]}, tmp_path, tmp_path / "run")
    assert main(["train", str(cfg)]) == 2
    _one_line_error(capsys, str(store), "unreadable")
    assert not (tmp_path / "run").exists()
    (tmp_path / "train.yaml").unlink()
    assert tree_digest(tmp_path) == before


def test_a_closed_pipe_is_not_an_error(stores):
    proc = subprocess.run(f"{Path(sys.executable).parent / 'cotrain'} info {stores['corrupt']} | head -n 1",
                          shell=True, capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("store") and proc.stderr == ""


def test_sigterm_stops_gen_sim_cleanly_and_the_rerun_resumes(tmp_path):
    """SIGTERM to gen-sim's main process: finished episodes kept, workers stopped quietly, no leaks."""
    out = tmp_path / "s.zarr"
    cmd = [str(Path(sys.executable).parent / "cotrain"), "gen-sim", "--num", "40", "--out", str(out),
           "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    ends = out / "meta" / "episode_ends" / "0"
    deadline = time.time() + 120
    while not ends.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "leaked" not in err, err
    assert main(["validate", str(out)]) == 0


def test_a_refused_compare_leaves_the_study_config_alone(tmp_path, monkeypatch, capsys):
    """A compare refused for changed settings must not overwrite results/<study>/experiment.yaml."""
    import harness.study.runner as runner
    from harness.study import StudyConfig, run_study
    from harness.study.run_spec import RunSpec

    def fake_job(run, **kw):
        from eval.metrics import TrialRecord
        from eval.report import trials_csv
        spec = RunSpec.from_json(run)
        run_dir, eval = spec.folder.root, spec.eval
        (run_dir / "eval").mkdir(parents=True, exist_ok=True)
        (run_dir / "eval" / "trials.csv").write_text(trials_csv([TrialRecord(eval.seed, "timeout", 3,
                                                                             float("nan"), 0.1, 0.1)]))
        (run_dir / "result.json").write_text("{}")
        (run_dir / "done").write_text("")
        return {}

    monkeypatch.setattr(runner, "train_and_evaluate", fake_job)
    clean = write_store(tmp_path / "c.zarr", "target", 3, seed=1)
    raw = {"name": "s", "out_dir": str(tmp_path / "results"), "annotate": {"enabled": False},
           "datasets": [{"name": "c", "path": str(clean), "role": "clean"}],
           "methods": [{"method": "target_only"}], "train": {"device": "cpu", "run": {"steps": 2}},
           "eval": {"trials": 1}}
    assert not run_study(from_dict(StudyConfig, raw), progress=False, log=lambda *_: None).failed
    recorded = (tmp_path / "results" / "experiment.yaml").read_text()
    changed = from_dict(StudyConfig, {**raw, "eval": {"trials": 2}})
    from harness.core.errors import UserError
    with pytest.raises(UserError, match="eval.trials"):
        run_study(changed, progress=False, log=lambda *_: None)
    assert (tmp_path / "results" / "experiment.yaml").read_text() == recorded


def test_a_non_finite_loss_stops_the_run_in_one_line_and_writes_no_policy(stores, tmp_path, capsys):
    """lr 1e30 is finite (so the config accepts it) but blows the weights up at once: the run must stop
    with one line before it saves spoiled weights, not train on to loss=nan and write `done`."""
    path = _train_yaml(stores, tmp_path, tmp_path / "run", optim={"batch_size": 8, "warmup_steps": 0, "lr": 1e30})
    cfg = yaml.safe_load(path.read_text())
    cfg["run"].update(steps=6, checkpoint_every=1)
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path)]) == 2
    _one_line_error(capsys, "not finite")
    run = tmp_path / "run"
    assert not (run / "done").exists() and not (run / "checkpoints" / "final.pt").exists()


def test_constant_actions_are_refused_before_training(tmp_path, capsys):
    """sigma_data 0: EDM would divide by it and train on NaN."""
    from harness.core import EpisodeWriter
    from tests.helpers import episode
    import numpy as np
    with EpisodeWriter(tmp_path / "still.zarr", domain="target", source="teleop_scripted", env="target",
                       env_params={}, generator={}) as w:
        for i in range(3):
            ep = episode(30, 0.0)
            ep["slider_pose"] = np.tile([0.1 * i, 0.0, 0.0], (30, 1))
            w.add_episode(ep, {"seed": i, "success": True})
    path = _train_yaml({"clean": tmp_path / "still.zarr", "corrupt": tmp_path / "still.zarr"}, tmp_path,
                       tmp_path / "run", objective={"method": "target_only"})
    cfg = yaml.safe_load(path.read_text())
    cfg["data"]["datasets"] = [{"path": str(tmp_path / "still.zarr")}]
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path)]) == 2
    _one_line_error(capsys, "actions are constant")
