"""`cotrain curve`: success against Heun steps or training steps, one resumable evaluation per point."""
from __future__ import annotations

import csv

from harness.cli import main
from harness.core.configs import from_dict
from harness.learning.policy import load_policy
from harness.learning.train_config import TrainConfig
from harness.learning.training import train
from tests.synthetic_stores import write_store


def _run(tmp_path):
    store = write_store(tmp_path / "target.zarr", "target", 3, seed=1)
    cfg = from_dict(TrainConfig, {
        "out_dir": str(tmp_path / "run"), "seed": 0, "device": "cpu",
        "data": {"datasets": [{"path": str(store)}], "val_fraction": 0.0},
        "policy": {"arch": "mlp", "mlp_width": 16, "mlp_depth": 1, "noise_dim": 8},
        "objective": {"method": "target_only"}, "optim": {"batch_size": 8, "warmup_steps": 1},
        "run": {"steps": 4, "log_every": 2, "val_every": 4, "snapshot_every": 2, "progress": False}}, "test")
    train(cfg)
    return tmp_path / "run"


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_curves_evaluate_each_point_once_and_write_plot_and_csv(tmp_path, capsys):
    run = _run(tmp_path)
    quick = ["--trials", "2", "--time-limit", "0.5", "--workers", "1", "--n-envs", "2", "--no-progress"]
    assert main(["curve", "heun", str(run / "checkpoints" / "final.pt"), "--values", "4", "2", *quick]) == 0
    rows = _rows(run / "eval" / "curve-heun.csv")
    assert [float(r["x"]) for r in rows] == [2.0, 4.0] and all(r["trials"] == "2" for r in rows)
    assert (run / "eval" / "curve-heun.png").is_file()
    # each point evaluated the policy with its own sampler: an eval folder per step count
    h2 = run / "eval" / "target-s100000-n2-h2-b32" / "trials.jsonl"
    assert h2.is_file() and (run / "eval" / "target-s100000-n2-h4-b32" / "trials.jsonl").is_file()
    assert load_policy(run / "checkpoints" / "final.pt", num_steps=2).schedule.numel() == 3
    before = h2.read_text()
    assert main(["curve", "heun", str(run / "checkpoints" / "final.pt"), "--values", "2", *quick]) == 0
    assert h2.read_text() == before                                   # resumed: nothing run again

    assert main(["curve", "training", str(run), "--num-steps", "2", *quick]) == 0
    assert [float(r["x"]) for r in _rows(run / "eval" / "curve-training.csv")] == [2.0, 4.0]   # snapshot, final
    capsys.readouterr()
    assert main(["curve", "training", str(tmp_path), *quick]) == 2
    assert "not a finished run folder" in capsys.readouterr().err


def test_a_sampler_of_the_other_formulation_is_refused_in_one_line_before_anything_is_written(tmp_path, capsys):
    run = _run(tmp_path)                                   # an EDM checkpoint
    final = run / "checkpoints" / "final.pt"
    out = tmp_path / "ev"
    assert main(["eval", str(final), "--sampler", "ddim", "--trials", "1", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ddim" in err and "heun" in err and not out.exists()
    # heun_churn is EDM's: it runs, in its own evaluation folder, and the curve names the sampler
    quick = ["--trials", "2", "--time-limit", "0.5", "--workers", "1", "--n-envs", "2", "--no-progress"]
    assert main(["curve", "steps", str(final), "--values", "2", "--sampler", "heun_churn", *quick]) == 0
    assert (run / "eval" / "target-s100000-n2-h2-heun_churn-b32" / "trials.csv").is_file()
    assert (run / "eval" / "curve-steps-heun_churn.csv").is_file()
