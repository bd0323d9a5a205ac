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


def _val_run(tmp_path, name: str, method: str = "target_only", steps: int = 4):
    """A tiny run with held-out windows from two sources (clean and corrupt), validated at its last step."""
    clean = tmp_path / "clean.zarr"
    if not clean.exists():
        write_store(clean, "target", 6, seed=1)
        write_store(tmp_path / "sim.zarr", "sim", 6, seed=2)
    cfg = from_dict(TrainConfig, {
        "out_dir": str(tmp_path / name), "seed": 3, "device": "cpu",
        "data": {"datasets": [{"path": str(clean)}, {"path": str(tmp_path / "sim.zarr")}], "val_fraction": 0.3},
        "policy": {"arch": "mlp", "mlp_width": 16, "mlp_depth": 1, "noise_dim": 8},
        "objective": {"method": method}, "optim": {"batch_size": 8, "warmup_steps": 1},
        "run": {"steps": steps, "log_every": 2, "val_every": steps, "progress": False}}, "test")
    train(cfg)
    return tmp_path / name


def test_curve_loss_gives_the_trainers_validation_loss_at_each_sigma_of_each_run(tmp_path, capsys):
    from harness.learning.diffusion import EDM
    from harness.learning.held_out import losses_by_sigma

    a, b = _val_run(tmp_path, "a"), _val_run(tmp_path, "b", method="cotrain", steps=6)
    # at the trainer's own 8 validation sigmas, the mean is the val_<source> it logged at its last step
    last = _rows(a / "metrics.csv")[-1]
    sigmas = EDM().validation_sigmas()
    got = losses_by_sigma(a, sigmas)
    assert set(got) == {k[len("val_"):] for k in last if k.startswith("val_")} == {"clean", "sim"}
    for source, losses in got.items():
        assert sum(losses) / len(sigmas) == float(last[f"val_{source}"])
    # the command: every run x source x sigma in one CSV, a plot beside it, a table on stdout
    out = tmp_path / "loss.png"
    assert main(["curve", "loss", str(a), str(b), "--sigmas", "0.01", "0.1", "1", "--out", str(out)]) == 0
    rows = _rows(out.with_suffix(".csv"))
    assert len(rows) == 2 * 2 * 3 and {r["run"] for r in rows} == {"a", "b"} and out.is_file()
    assert [float(r["sigma"]) for r in rows[:3]] == [0.01, 0.1, 1.0]
    printed = capsys.readouterr().out
    assert "held-out windows of clean" in printed and "held-out windows of sim" in printed


def test_curve_loss_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, capsys):
    a = _val_run(tmp_path, "a")
    cases = [(["curve", "loss", str(a), str(a / "missing")], "not a finished training run"),
             (["curve", "loss", str(a), str(a)], "--out"),
             (["curve", "loss", str(a), "--sigmas", "0", "0.1"], "--sigmas"),
             (["curve", "loss", str(a), "--out", str(tmp_path / "x.txt")], "--out")]
    for argv, words in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, (argv, err)
    assert not (a / "curve-loss.png").exists() and not (tmp_path / "x.csv").exists()
