"""A study's outcomes exported without weights and imported elsewhere (harness/study/outcomes.py): the
imported runs are never trained again, the table is the same, a study goes on past them, and outcomes of
other data or other settings are refused in one line."""
import json
import shutil
from pathlib import Path

import pytest

import harness.study.runner as runner
from eval.metrics import TrialRecord
from eval.report import trials_csv
from harness.cli import main
from harness.core.errors import ConfigError, DatasetError, UserError
from harness.study import report_only, run_study
from harness.study.outcomes import export_outcomes, import_outcomes
from harness.study.run_spec import RunSpec
from tests.test_compare import _study

METHODS = [{"method": "target_only"}, {"method": "cotrain", "alphas": [0.5]}]


@pytest.fixture
def trained(monkeypatch):
    """Train+eval replaced by a job that writes a run's files (its trials depend on the row and the seed);
    returns the list of runs it was asked for."""
    calls = []

    def fake_job(run, **kw):
        spec = RunSpec.from_json(run)
        calls.append(spec.key)
        wins = [(spec.seed + i + len(spec.label)) % 2 for i in range(3)]
        recs = [TrialRecord(spec.eval.seed + i, "success" if w else "timeout", 5, 0.5 if w else float("nan"),
                            0.01, 0.01) for i, w in enumerate(wins)]
        spec.folder.eval.mkdir(parents=True, exist_ok=True)
        spec.folder.trials.write_text(trials_csv(recs))
        spec.folder.finish({"success": sum(wins) / 3})
        return {}

    monkeypatch.setattr(runner, "train_and_evaluate", fake_job)
    return calls


def _cfg(tmp_path, out: str, **extra):
    return _study(tmp_path, METHODS, annotate={"enabled": False}, out_dir=str(tmp_path / out), **extra)


def test_exported_outcomes_resume_a_study_elsewhere_without_training_again(tmp_path, trained):
    first = _cfg(tmp_path, "here")
    assert not run_study(first, progress=False, log=lambda *_: None).failed
    (first.out / "runs" / "target_only" / "seed0" / "train").mkdir()
    (first.out / "runs" / "target_only" / "seed0" / "train" / "final.pt").write_bytes(b"weights")
    chosen = first.out / "runs" / "cotrain-alpha0.5" / "seed0"      # a checkpoint protocol's choice, held out
    (chosen / "eval_selected").mkdir()
    (chosen / "eval_selected" / "trials.csv").write_text((chosen / "eval" / "trials.csv").read_text())
    (chosen / "selection.json").write_text(json.dumps({"select": "best", "candidates": ["final.pt"],
                                                     "heldout_dir": "eval_selected"}))
    runs, dest = export_outcomes(first, tmp_path / "outcomes")
    assert runs == 2
    exported = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert "runs/target_only/seed0/eval/trials.csv" in exported and "runs/target_only/seed0/done" in exported
    assert {"normalizer.json", "fingerprint.json", "experiment.yaml", "table.md"} <= set(exported)
    assert not any(name.endswith(".pt") for name in exported)              # no weights
    assert {"runs/cotrain-alpha0.5/seed0/selection.json", "runs/cotrain-alpha0.5/seed0/eval_selected/trials.csv"} \
        <= set(exported)
    with pytest.raises(UserError, match="exists"):
        export_outcomes(first, dest)                                       # never replaces an output

    kept = {p.relative_to(first.out): p.read_bytes() for p in first.out.rglob("*") if p.is_file()}
    shutil.rmtree(first.out)                                               # another machine, another day
    with pytest.raises(UserError, match=r"belong to the study folder .*here.*; import them with out_dir="):
        import_outcomes(_cfg(tmp_path, "there"), dest)
    elsewhere = _cfg(tmp_path, "here", seeds=[0, 1])                       # the same study, one more seed
    assert import_outcomes(elsewhere, dest) == (2, 0)
    assert import_outcomes(elsewhere, dest) == (0, 2)                      # what is here is kept
    with_classifier = _study(tmp_path, METHODS + [{"method": "truncated", "sigma_n": "per_datapoint"}],
                             out_dir=str(elsewhere.out))
    with pytest.raises(UserError, match="2 finished runs, but the classifier store .* is not there yet"):
        report_only(with_classifier)                                       # said, not "no finished runs"
    trained.clear()
    assert not run_study(elsewhere, progress=False, log=lambda *_: None).failed
    assert sorted(trained) == ["cotrain-alpha0.5/seed1", "target_only/seed1"]   # only what was missing
    for name in ("runs/cotrain-alpha0.5/seed0/eval/trials.csv", "runs/target_only/seed0/run.json", "normalizer.json"):
        assert (elsewhere.out / name).read_bytes() == kept[Path(name)], name
    table = (elsewhere.out / "table.csv").read_text()
    assert ",6," in table.splitlines()[1]                                  # 2 seeds x 3 trials per row


def test_outcomes_of_other_data_or_other_settings_are_refused(tmp_path, trained):
    first = _cfg(tmp_path, "here")
    run_study(first, progress=False, log=lambda *_: None)
    export_outcomes(first, tmp_path / "outcomes")

    shutil.rmtree(first.out)
    other = _cfg(tmp_path, "here", eval={"trials": 4, "time_limit": 0.5, "n_envs": 2, "workers": 1})
    import_outcomes(other, tmp_path / "outcomes")                          # runs of other settings: refused
    with pytest.raises(ConfigError, match="eval.trials"):                  # when the study reads them,
        report_only(other)                                                 # --report-only included
    with pytest.raises(ConfigError, match="eval.trials"):
        run_study(other, progress=False, log=lambda *_: None)

    shutil.rmtree(other.out)
    mine = _cfg(tmp_path, "here")
    mine.out.mkdir()
    (mine.out / "experiment.yaml").write_text("name: tiny\n")
    (mine.out / "normalizer.json").write_text("{}")                         # a study with its own data
    with pytest.raises(DatasetError, match="normalizer.json: differs from the study's own"):
        import_outcomes(mine, tmp_path / "outcomes")
    assert not (mine.out / "runs").exists()                                # nothing half written

    broken = tmp_path / "outcomes" / "runs" / "target_only" / "seed0" / "eval" / "trials.csv"
    broken.unlink()
    with pytest.raises(DatasetError, match="trials.csv: missing"):
        import_outcomes(_cfg(tmp_path, "here"), tmp_path / "outcomes")


def test_the_cli_takes_one_mode_and_names_bad_folders(tmp_path, capsys):
    cfg = _cfg(tmp_path, "results")
    experiment = tmp_path / "study.yaml"
    experiment.write_text(json.dumps({"name": "tiny", "out_dir": str(cfg.out),
                                      "datasets": [dict(path=d.path, name=d.name, role=d.role) for d in cfg.datasets],
                                      "methods": METHODS, "annotate": {"enabled": False}}))
    assert main(["compare", str(experiment), "--report-only", "--export-outcomes", str(tmp_path / "x")]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert main(["compare", str(experiment), "--export-outcomes", str(tmp_path / "x")]) == 2
    assert "no study here yet" in capsys.readouterr().err
    assert main(["compare", str(experiment), "--import-outcomes", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not cfg.out.exists()
