"""A tiny comparison study end to end (real trainer, classifier, Drake evaluation), and its resume.

Sizes are minimal: synthetic stores of a few episodes, a few optimizer steps of a tiny network, 2 trials
of 0.5 s each. The point is the machinery: run folders, the shared annotation, skip-if-done, the table.
"""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import harness.study.runner as runner
from harness.core.configs import from_dict
from harness.core.errors import ConfigError, UserError
from harness.study import StudyConfig, run_study
from harness.study.plan import plan_runs
from harness.study.run_spec import RunSpec
from tests.synthetic_stores import write_store

TINY_TRAIN = {
    "policy": {"down_dims": [8, 16], "noise_dim": 8, "n_groups": 4},
    "diffusion": {"num_steps": 2},
    "optim": {"batch_size": 8, "warmup_steps": 1},
    "run": {"steps": 3, "log_every": 1, "val_every": 3, "checkpoint_every": 3, "progress": False},
    "data": {"val_fraction": 0.0},
    "device": "cpu",
}


def _study(tmp_path, methods, **extra) -> StudyConfig:
    """A tiny study on two synthetic stores, written once per tmp_path (a second call uses the same data)."""
    clean, corrupt = tmp_path / "clean.zarr", tmp_path / "corrupt.zarr"
    if not clean.exists():
        write_store(clean, "target", n_episodes=4, seed=1)
    if not corrupt.exists():
        write_store(corrupt, "sim", n_episodes=6, wiggle=0.01, seed=2)
    raw = {
        "name": "tiny", "out_dir": str(tmp_path / "results"),
        "datasets": [{"name": "teleop", "path": str(clean), "role": "clean", "episodes": 3},
                     {"name": "gcs", "path": str(corrupt), "role": "corrupt"}],
        "methods": methods, "seeds": [0], "train": TINY_TRAIN,
        "annotate": {"overrides": {"steps": 5, "batch_size": 16, "grid_size": 4, "k_draws": 1,
                                   "val_windows": 20, "progress": False, "device": "cpu"}},
        "eval": {"trials": 2, "time_limit": 0.5, "n_envs": 2, "workers": 1},
        "spectra_window": 16,
        **extra,
    }
    return from_dict(StudyConfig, raw, "test")


def two_run_study_yaml(folder, train: dict, executor: dict, file: str = "study.yaml"):
    """The tiny two-run study (target_only, cotrain alpha 0.5; annotation off) as a YAML file in `folder`,
    for tests that run the real `cotrain compare` in a subprocess."""
    import yaml
    folder.mkdir(parents=True, exist_ok=True)
    clean, corrupt = folder / "clean.zarr", folder / "corrupt.zarr"
    write_store(clean, "target", n_episodes=4, seed=1)
    write_store(corrupt, "sim", n_episodes=6, wiggle=0.01, seed=2)
    raw = {
        "name": "tiny", "out_dir": str(folder / "results"),
        "datasets": [{"name": "teleop", "path": str(clean), "role": "clean", "episodes": 3},
                     {"name": "gcs", "path": str(corrupt), "role": "corrupt"}],
        "methods": [{"method": "target_only"}, {"method": "cotrain", "alphas": [0.5]}],
        "seeds": [0], "train": train, "annotate": {"enabled": False},
        "eval": {"trials": 2, "time_limit": 0.5, "n_envs": 2, "workers": 1},
        "spectra_window": 16, "executor": executor,
    }
    path = folder / file
    path.write_text(yaml.safe_dump(raw))
    return path


def test_methods_expand_into_validated_runs(tmp_path):
    cfg = _study(tmp_path, [{"method": "target_only"}, {"method": "cotrain", "alphas": [0.25, "natural"]},
                            {"method": "truncated", "sigma_n": 0.3, "locality_sigma_max": 0.05}],
                 seeds=[0, 1])
    plans = plan_runs(cfg, annotations_path=None)
    labels = sorted({p.label for p in plans})
    assert labels == ["cotrain (alpha=0.25)", "cotrain (alpha=natural)", "target_only",
                      "truncated (sigma_n=0.3, locality<0.05)"]
    assert len(plans) == 8 and len({p.folder for p in plans}) == 8
    natural = next(p for p in plans if p.label == "cotrain (alpha=natural)")
    assert natural.alpha is None and natural.train.objective.alpha == "natural"   # the trainer measures it
    assert next(p for p in plans if p.label == "cotrain (alpha=0.25)").alpha == 0.25
    trunc = next(p for p in plans if p.method == "truncated")
    assert trunc.train.objective.sigma_n == 0.3
    assert trunc.train.data.datasets[0].max_episodes == 3
    with pytest.raises(ConfigError):   # per-datapoint sigma needs the classifier
        plan_runs(_study(tmp_path, [{"method": "ambient", "sigma_n": "per_datapoint"}],
                         annotate={"enabled": False}), annotations_path=None)
    with pytest.raises(ConfigError, match="alphas"):
        _study(tmp_path, [{"method": "truncated", "sigma_n": 0.1, "alphas": [0.5]}])


@pytest.mark.slow
def test_tiny_study_runs_and_resumes_without_recomputing(tmp_path, monkeypatch):
    methods = [{"method": "target_only"}, {"method": "cotrain", "alphas": [0.5]},
               {"method": "truncated", "sigma_n": "per_datapoint"}]
    cfg = _study(tmp_path, methods)
    calls = []
    real_job = runner.train_and_evaluate

    class Stop(BaseException):   # like Ctrl-C: not an Exception, so no job-failure handling catches it
        pass

    interrupt_at = [2]

    def interrupted(run, **kw):
        calls.append(run)
        if len(calls) == interrupt_at[0]:
            interrupt_at[0] = 0
            raise Stop   # killed during the second run of the first session
        return real_job(run, **kw)

    monkeypatch.setattr(runner, "train_and_evaluate", interrupted)
    with pytest.raises(Stop):
        run_study(cfg, progress=False, log=lambda *_: None)
    first = tmp_path / "results" / "runs" / "target_only" / "seed0"
    assert (first / "done").exists()
    stamp = (first / "result.json").stat().st_mtime_ns
    annotations = tmp_path / "results" / "annotations.zarr"
    assert annotations.exists()
    ann_stamp = (annotations / "zarr.json" if (annotations / "zarr.json").exists()
                 else annotations / ".zattrs").stat().st_mtime_ns

    calls.clear()
    result = run_study(cfg, progress=False, log=lambda *_: None)
    assert not result.failed
    # The finished run and the shared annotation were not recomputed.
    assert all("target_only" not in c for c in calls) and len(calls) == 2
    assert (first / "result.json").stat().st_mtime_ns == stamp
    assert (annotations / "zarr.json" if (annotations / "zarr.json").exists()
            else annotations / ".zattrs").stat().st_mtime_ns == ann_stamp
    out = tmp_path / "results"
    table = (out / "table.md").read_text()
    for label in ("target_only", "cotrain (alpha=0.5)", "truncated (per-datapoint)"):
        assert f"| {label} | 1 | 2 |" in table
    assert "(baseline)" in table
    target_row = next(line for line in table.splitlines() if line.startswith("| target_only |"))
    assert target_row.endswith("| 100.0% | 0.0% |") or target_row.split("|")[-3].strip() == "100.0%"
    for name in ("success", "success_vs_alpha", "classifier_accuracy", "sigma_n_hist", "action_spectra"):
        assert (out / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    _assert_success_csv_matches_table(out)
    from harness.learning.annotations import read_annotations
    ann = read_annotations(annotations)
    acc = _rows(out / "plots" / "classifier_accuracy.csv")
    assert [float(r["balanced_accuracy"]) for r in acc] == pytest.approx(ann.accuracy, abs=1e-6)
    assert [float(r["sigma"]) for r in acc] == pytest.approx(ann.sigma_grid, rel=1e-5)
    smin = np.concatenate([d.sigma_n for d in ann.datasets])
    hist = _rows(out / "plots" / "sigma_n_hist.csv")
    assert sum(int(r["count"]) for r in hist if r["kind"] == "bin") == np.sum(np.isfinite(smin) & (smin > 0))
    assert sum(int(r["count"]) for r in hist) == len(smin)
    spectra = _rows(out / "plots" / "action_spectra.csv")
    assert {r["dataset"] for r in spectra} == {"teleop (clean)", "gcs (corrupt)"}
    assert len(spectra) == 2 * (16 // 2 + 1)               # spectra_window 16: rfft bins per dataset
    summary = json.loads((first / "eval" / "summary.json").read_text())
    assert summary["n_trials"] == 2 and summary["spec"]["time_limit"] == 0.5
    # One normalizer: every run's policy checkpoint and the annotations carry the study's normalizer.json.
    import torch
    shared = json.loads((out / "normalizer.json").read_text())
    finals = sorted((out / "runs").glob("*/seed0/train/checkpoints/final.pt"))
    assert len(finals) == 3
    for final in finals:
        assert torch.load(final, weights_only=False)["normalizer"] == shared, final
    assert ann.action_normalizer == shared["action"]

    # A changed experiment must not silently reuse runs made with other settings.
    changed = _study(tmp_path, methods, eval={"trials": 3, "time_limit": 0.5, "n_envs": 2, "workers": 1})
    with pytest.raises(UserError, match="eval.trials"):
        run_study(changed, progress=False, log=lambda *_: None)


def test_study_bookkeeping_resumes_with_a_stand_in_job(tmp_path, monkeypatch):
    """Fast variant: the real runner and report, with train+eval replaced by a job that writes its files."""
    from eval.metrics import TrialRecord
    from eval.report import trials_csv

    def fake_job(run, **kw):
        spec = RunSpec.from_json(run)
        run_dir, eval = spec.folder.root, spec.eval
        calls.append(run_dir.parent.name)
        wins = {"target_only": [0, 0], "cotrain-alpha0.5": [1, 0]}.get(run_dir.parent.name, [1, 1])
        recs = [TrialRecord(eval.seed + i, "success" if w else "timeout", 5, 0.5 if w else float("nan"),
                            0.01, 0.01) for i, w in enumerate(wins)]
        (run_dir / "eval").mkdir(parents=True, exist_ok=True)
        (run_dir / "eval" / "trials.csv").write_text(trials_csv(recs))
        (run_dir / "result.json").write_text("{}")
        (run_dir / "done").write_text("")
        if run_dir.parent.name == "cotrain-alpha0.5" and len(calls) == 2 and first_session[0]:
            raise RuntimeError("simulated crash after the files were written")  # a failed job
        return {}

    calls, first_session = [], [True]
    monkeypatch.setattr(runner, "train_and_evaluate", fake_job)
    cfg = _study(tmp_path, [{"method": "target_only"}, {"method": "cotrain", "alphas": [0.5]},
                            {"method": "ambient", "sigma_n": 0.2}], annotate={"enabled": False})
    result = run_study(cfg, progress=False, log=lambda *_: None)
    assert [f.key for f in result.failed] == ["train+eval cotrain-alpha0.5/seed0"]
    first_session[0] = False
    calls.clear()
    result = run_study(cfg, progress=False, log=lambda *_: None)
    assert calls == [] and not result.failed          # every run has its done marker: nothing recomputed
    rows = (tmp_path / "results" / "table.csv").read_text().splitlines()
    assert rows[0].startswith("label,method") and len(rows) == 4
    ambient = next(r for r in rows if r.startswith("ambient"))
    assert ",2,2,1," in ambient                      # trials 2, successes 2, rate 1
    assert not (tmp_path / "results" / "plots" / "classifier_accuracy.png").exists()
    _assert_success_csv_matches_table(tmp_path / "results")
    curve = _rows(tmp_path / "results" / "plots" / "success_vs_alpha.csv")
    assert [(r["label"], r["drawn_as"]) for r in curve] == [("cotrain (alpha=0.5)", "curve"),
                                                          ("target_only", "fixed"), ("ambient (sigma_n=0.2)", "reference")]


def test_a_row_can_have_its_own_train_settings_and_its_own_baseline(tmp_path):
    """A formulation row: its train overrides reach its runs alone; it is paired with the row it names."""
    ddpm = {"method": "cotrain", "label": "cotrain ddpm", "train": {"diffusion": {"kind": "ddpm", "num_steps": 3}}}
    methods = [{"method": "cotrain"}, ddpm,
               {"method": "truncated", "label": "truncated ddpm", "sigma_n": 0.3, "baseline": "cotrain ddpm",
                "train": {"diffusion": {"kind": "ddpm", "num_steps": 3}, "run": {"steps": 5}}}]
    plans = {p.label: p for p in plan_runs(_study(tmp_path, methods, annotate={"enabled": False}), None, dry=True)}
    assert plans["cotrain"].train.diffusion.kind == "edm" and plans["cotrain"].baseline is None
    assert plans["cotrain ddpm"].train.diffusion.kind == "ddpm"
    trunc = plans["truncated ddpm"]
    assert trunc.train.diffusion.num_steps == 3 and trunc.train.run.steps == 5
    assert trunc.train.objective.sigma_n == 0.3 and trunc.baseline == "cotrain ddpm"
    with pytest.raises(ConfigError, match="needs a label"):
        _study(tmp_path, [{"method": "cotrain", "train": {"run": {"steps": 5}}}])
    with pytest.raises(ConfigError, match="names no row"):
        plan_runs(_study(tmp_path, [{"method": "cotrain", "baseline": "nothing"}], annotate={"enabled": False}),
                  None, dry=True)
    with pytest.raises(ConfigError, match="diffusion.kind"):
        plan_runs(_study(tmp_path, [{"method": "cotrain", "label": "x", "train": {"diffusion": {"kind": "vp"}}}],
                         annotate={"enabled": False}), None, dry=True)


def test_a_row_with_its_own_annotate_settings_reads_its_own_store(tmp_path):
    """The annotation variants (issue 21, section 4): one store per distinct row annotate settings, made
    with the study's settings plus the row's; every other row reads the shared store."""
    from harness.study.runner import annotate_jobs
    wide = {"method": "truncated", "label": "truncated (wide grid)", "sigma_n": "per_datapoint",
            "annotate": {"sigma_hi": 40.0, "grid_size": 6}}
    cfg = _study(tmp_path, [{"method": "truncated", "sigma_n": "per_datapoint"}, wide])
    plans = {p.label: p for p in plan_runs(cfg, cfg.annotations_path, dry=True)}
    own = cfg.out / "annotations-grid_size6-sigma_hi40.0.zarr"
    assert plans["truncated (wide grid)"].train.objective.annotations == str(own)
    assert plans["truncated (per-datapoint)"].train.objective.annotations == str(cfg.annotations_path)
    jobs = {job.kwargs["out"]: job.kwargs["config"] for job in annotate_jobs(cfg, progress=False)}
    assert set(jobs) == {str(cfg.annotations_path), str(own)}
    assert jobs[str(own)]["sigma_hi"] == 40.0 and jobs[str(own)]["grid_size"] == 6
    assert jobs[str(own)]["steps"] == jobs[str(cfg.annotations_path)]["steps"] == 5     # the study's settings
    assert jobs[str(cfg.annotations_path)]["sigma_hi"] == 5.0
    with pytest.raises(ConfigError, match="needs a label"):
        _study(tmp_path, [{"method": "truncated", "sigma_n": "per_datapoint", "annotate": {"use_obs": True}}])
    with pytest.raises(ConfigError, match="uses the classifier"):
        _study(tmp_path, [{"method": "cotrain", "label": "x", "annotate": {"use_obs": True}}])


def test_rows_that_differ_only_in_their_sampler_share_one_training(tmp_path, monkeypatch):
    """A row's `eval` (sampler, num_steps) changes how its run is evaluated, not how it trains: the study
    trains those weights once, and the second row evaluates them with its own sampler, after the first."""
    import harness.study.jobs as jobs
    trained = []

    def counted_train(cfg, **kw):
        trained.append(cfg.out_dir)
        return real_train(cfg, **kw)

    real_train = jobs.train
    monkeypatch.setattr(jobs, "train", counted_train)
    ddpm = {"diffusion": {"kind": "ddpm", "num_steps": 3}}
    methods = [{"method": "cotrain", "label": "cotrain [ddpm-3]", "train": ddpm},
               {"method": "cotrain", "label": "cotrain [ddim-2]", "train": ddpm,
                "eval": {"sampler": "ddim", "num_steps": 2}, "baseline": "cotrain [ddpm-3]"}]
    cfg = _study(tmp_path, methods, annotate={"enabled": False}, baseline="cotrain [ddpm-3]")
    result = run_study(cfg, progress=False, log=lambda *_: None)
    assert not result.failed
    runs = tmp_path / "results" / "runs"
    owner, sharer = runs / "cotrain-ddpm-3" / "seed0", runs / "cotrain-ddim-2" / "seed0"
    assert (owner / "train" / "done").exists() and not (sharer / "train").exists()
    final = owner / "train" / "checkpoints" / "final.pt"
    assert json.loads((sharer / "result.json").read_text())["checkpoint"] == str(final)
    spec = json.loads((sharer / "eval" / "eval_spec.json").read_text())
    assert spec["sampler"] == "ddim" and spec["num_steps"] == 2 and spec["checkpoint"] == str(final)
    assert json.loads((owner / "eval" / "eval_spec.json").read_text())["sampler"] is None   # the checkpoint's own
    assert [Path(p).parent.parent.name for p in trained] == ["cotrain-ddpm-3"] * 2   # trained, then only read
    table = {r["label"]: r for r in _rows(tmp_path / "results" / "table.csv")}
    assert table["cotrain [ddim-2]"]["clean_fraction"] == table["cotrain [ddpm-3]"]["clean_fraction"] != ""
    trained.clear()
    assert not run_study(cfg, progress=False, log=lambda *_: None).failed and trained == []   # all done


def test_a_row_eval_sets_sampling_keys_only_and_waits_for_the_weights_it_shares(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="eval.trials: a row's eval may set only"):
        _study(tmp_path, [{"method": "cotrain", "label": "x", "eval": {"trials": 5}}])
    with pytest.raises(ConfigError, match="needs a label"):
        _study(tmp_path, [{"method": "cotrain", "eval": {"num_steps": 4}}])
    with pytest.raises(ConfigError, match="not a sampler of diffusion.kind edm"):
        plan_runs(_study(tmp_path, [{"method": "cotrain", "label": "x", "eval": {"sampler": "ddim"}}],
                         annotate={"enabled": False}), None, dry=True)
    with pytest.raises(ConfigError, match="eval.num_steps must be >= 1"):
        plan_runs(_study(tmp_path, [{"method": "cotrain", "label": "x", "eval": {"num_steps": 0}}],
                         annotate={"enabled": False}), None, dry=True)
    methods = [{"method": "cotrain"}, {"method": "cotrain", "label": "cotrain [heun-1]", "eval": {"num_steps": 1}}]
    cfg = _study(tmp_path, methods, annotate={"enabled": False})
    plans = {p.label: p for p in plan_runs(cfg, None, dry=True)}
    assert plans["cotrain [heun-1]"].trained_by == "cotrain/seed0"
    assert plans["cotrain [heun-1]"].train.out_dir == plans["cotrain"].train.out_dir
    (plans["cotrain [heun-1]"].folder.train).mkdir(parents=True)   # trained on its own before the rule: kept
    assert plan_runs(cfg, None, dry=True)[1].trained_by is None
    shutil.rmtree(cfg.out)

    def owner_fails(run, **kw):   # the shared training fails: the run that needs its weights is not run
        spec = RunSpec.from_json(run)
        assert spec.trained_by is None, "a sharing run was started"
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(runner, "train_and_evaluate", owner_fails)
    lines = []
    result = run_study(cfg, progress=False, log=lines.append)
    assert [f.key for f in result.failed] == ["train+eval cotrain/seed0", "train+eval cotrain-heun-1/seed0"]
    assert "cotrain/seed0 has not finished training" in result.failed[1].error


def test_matched_alpha_must_name_an_unmatched_row(tmp_path):
    def plan(alphas, extra=()):
        methods = [{"method": "truncated", "sigma_n": 0.3}, {"method": "cotrain", "alphas": alphas}, *extra]
        return plan_runs(_study(tmp_path, methods, annotate={"enabled": False}), None, dry=True)

    plans = plan(["matched_to truncated (sigma_n=0.3)"])
    matched = next(p for p in plans if p.method == "cotrain")
    assert matched.label == "cotrain (alpha=matched to truncated (sigma_n=0.3))"
    assert matched.matched_to == "truncated (sigma_n=0.3)" and matched.pending
    with pytest.raises(ConfigError, match="names no row") as err:
        plan(["matched_to truncated"])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="names a matched row"):
        plan(["matched_to truncated (sigma_n=0.3)"],
             [{"method": "cotrain", "label": "twice", "alphas": ["matched_to cotrain (alpha=matched to truncated "
                                                                 "(sigma_n=0.3))"]}])
    with pytest.raises(ConfigError, match="matched_to"):
        _study(tmp_path, [{"method": "cotrain", "alphas": ["matched_to"]}])
    with pytest.raises(ConfigError, match="sigma_mixing"):
        _study(tmp_path, [{"method": "cotrain", "alphas": ["matched_to x"], "sigma_mixing": [[0.1, 0.5]]}])


def test_matched_alpha_control_and_one_normalizer_per_study(tmp_path, monkeypatch):
    """Real trainings (the evaluation is a stand-in): the matched run trains after the run it is matched to,
    with alpha = that run's realised clean fraction, and realises the same clean fraction within a binomial
    tolerance; the natural row is plotted at the trainer's natural alpha; every run normalizes with the
    study's one normalizer."""
    from eval.metrics import TrialRecord
    from eval.report import trials_csv
    from harness.learning.training import train

    order = []

    def train_then_stand_in_eval(run, **kw):
        spec = RunSpec.from_json(run)
        run_dir, eval = spec.folder.root, spec.eval
        order.append(run_dir.parent.name)
        train(spec.train)
        records = [TrialRecord(eval.seed + i, "success", 5, 0.5, 0.01, 0.01) for i in range(2)]
        (run_dir / "eval").mkdir(parents=True, exist_ok=True)
        (run_dir / "eval" / "trials.csv").write_text(trials_csv(records))
        (run_dir / "result.json").write_text("{}")
        (run_dir / "done").write_text("")
        return {}

    monkeypatch.setattr(runner, "train_and_evaluate", train_then_stand_in_eval)
    steps, batch = 150, 32
    train_cfg = {**TINY_TRAIN, "optim": {"batch_size": batch, "warmup_steps": 1},
                 "run": {**TINY_TRAIN["run"], "steps": steps, "val_every": steps, "checkpoint_every": steps},
                 "data": {"val_fraction": 0.2}}    # the trainer's natural alpha: training episodes only
    named = "truncated (sigma_n=0.3)"
    methods = [{"method": "cotrain", "alphas": [f"matched_to {named}", "natural"]},   # listed first on purpose
               {"method": "truncated", "sigma_n": 0.3}]
    cfg = _study(tmp_path, methods, annotate={"enabled": False}, train=train_cfg)
    result = run_study(cfg, progress=False, log=lambda *_: None)
    assert not result.failed
    out = tmp_path / "results"
    runs = out / "runs"
    matched_dir = runs / "cotrain-alphamatched-to-truncated-sigma_n0.3" / "seed0"
    assert order[-1] == matched_dir.parent.name                 # the second wave

    def summary(run):
        return json.loads((run / "train" / "train_summary.json").read_text())

    f_named = summary(runs / "truncated-sigma_n0.3" / "seed0")["clean_fraction"]
    f_matched = summary(matched_dir)["clean_fraction"]
    # the matched run draws n = steps * batch_size samples, each clean with probability f_named:
    # binomial standard deviation sqrt(f (1 - f) / n); allow 4 of them
    n = steps * batch
    assert abs(f_matched - f_named) <= 4 * np.sqrt(f_named * (1 - f_named) / n)
    identity = json.loads((matched_dir / "run.json").read_text())
    assert identity["alpha"] == f_named and identity["train_config"]["objective"]["alpha"] == f_named
    assert summary(matched_dir)["alpha_target"] == pytest.approx(f_named, abs=1e-6)

    # the natural row is plotted at the trainer's natural alpha (2 of 3 clean and 5 of 6 corrupt episodes
    # train after the validation split), not at the plan's 3 / 9 from whole datasets
    natural = summary(runs / "cotrain-alphanatural" / "seed0")
    assert natural["alpha_natural"] == pytest.approx(2 / 7, abs=1e-6)
    curve = {r["label"]: r for r in _rows(out / "plots" / "success_vs_alpha.csv")}
    assert float(curve["cotrain (alpha=natural)"]["alpha"]) == pytest.approx(natural["alpha_natural"], abs=1e-9)
    assert float(curve[f"cotrain (alpha=matched to {named})"]["alpha"]) == pytest.approx(f_named, abs=1e-9)

    # one normalizer: every run's policy checkpoint carries the study's normalizer.json
    import torch
    shared = json.loads((out / "normalizer.json").read_text())
    finals = sorted(runs.glob("*/seed0/train/checkpoints/final.pt"))
    assert len(finals) == 3
    for final in finals:
        assert torch.load(final, weights_only=False)["normalizer"] == shared, final


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _assert_success_csv_matches_table(out):
    """The success plot's numbers are the study table's."""
    table = {r["label"]: r for r in _rows(out / "table.csv")}
    plotted = _rows(out / "plots" / "success.csv")
    assert [r["label"] for r in plotted] == list(table)
    for r in plotted:
        t = table[r["label"]]
        assert float(r["rate"]) == pytest.approx(float(t["rate"]), abs=1e-6)
        assert float(r["ci_low"]) == pytest.approx(float(t["ci_low"]), abs=1e-6)
        assert float(r["ci_high"]) == pytest.approx(float(t["ci_high"]), abs=1e-6)
        assert [float(x) for x in r["per_seed_rate"].split()] == pytest.approx(
            [float(x) for x in t["per_seed_rate"].split()], abs=1e-4)


def test_a_row_can_have_more_seeds_and_runs_go_seed_by_seed(tmp_path):
    """The rows that decide get 3 seeds while the rest keep one; the whole table's first seed runs first,
    and a row cannot have a seed its baseline lacks (its paired test would silently drop those runs)."""
    methods = [{"method": "cotrain", "seeds": [0, 1, 2]}, {"method": "target_only"},
               {"method": "truncated", "sigma_n": 0.3, "seeds": [0, 2]}]
    plans = plan_runs(_study(tmp_path, methods, annotate={"enabled": False}), None, dry=True)
    assert [(p.label, p.seed) for p in plans] == [
        ("cotrain", 0), ("target_only", 0), ("truncated (sigma_n=0.3)", 0),
        ("cotrain", 1), ("truncated (sigma_n=0.3)", 2), ("cotrain", 2)]
    with pytest.raises(ConfigError, match=r"baseline 'cotrain' has no run at training seed\(s\) \[1\]"):
        plan_runs(_study(tmp_path, [{"method": "cotrain"}, {"method": "target_only", "seeds": [0, 1]}],
                         annotate={"enabled": False}), None, dry=True)
    with pytest.raises(ConfigError, match="distinct training seeds"):
        _study(tmp_path, [{"method": "cotrain", "seeds": [1, 1]}])


def test_a_study_refuses_data_that_changed_since_its_first_session(tmp_path, monkeypatch):
    """fingerprint.json holds the data's sha256 from the first session: a store regenerated in place with
    other content is refused in one line before any run; the same data resume as before."""
    import shutil

    from eval.metrics import TrialRecord
    from eval.report import trials_csv
    from harness.core.errors import DatasetError

    def fake_job(run, **kw):
        spec = RunSpec.from_json(run)
        (spec.folder.eval).mkdir(parents=True, exist_ok=True)
        spec.folder.trials.write_text(trials_csv([TrialRecord(spec.eval.seed, "timeout", 3, float("nan"), 0.1, 0.1)]))
        spec.folder.finish({})
        return {}

    monkeypatch.setattr(runner, "train_and_evaluate", fake_job)
    cfg = _study(tmp_path, [{"method": "target_only"}], annotate={"enabled": False})
    assert not run_study(cfg, progress=False, log=lambda *_: None).failed
    recorded = json.loads((cfg.out / "fingerprint.json").read_text())
    assert recorded["data"]["teleop"]["episodes"] == 3 and recorded["environment"]["torch"]
    assert recorded["environment"]["numpy_blas"].split()[0] in ("openblas", "mkl", "blis")   # its kernels make the data
    assert not run_study(cfg, progress=False, log=lambda *_: None).failed     # same data: resumes
    shutil.rmtree(tmp_path / "clean.zarr")
    write_store(tmp_path / "clean.zarr", "target", n_episodes=4, seed=7)    # same path, other content
    with pytest.raises(DatasetError, match="teleop: .* is not the data this study started with"):
        run_study(cfg, progress=False, log=lambda *_: None)
