"""Checkpoint protocols (eval/selection.py, docs/objectives.md section 10): Beta pruning, the held-out
round, the study settings that refuse a protocol that could leak, the trainer's policy snapshots, and a
real tiny run's selection.json and table row.

The selection core is driven by a real stochastic evaluator standing in for a policy: each candidate has
a fixed success rate, and the outcome on a start seed is a coin flip seeded by (candidate, seed), so a
candidate scores the same on the same start however often or in whatever order it is asked.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from eval.metrics import TrialRecord
from eval.study_table import RunResult, study_table, table_markdown
from eval.selection import HELDOUT, pick_candidates, prob_better, round_seeds, select_checkpoint
from harness.core.configs import from_dict
from harness.core.errors import ConfigError, UserError
from harness.study.config import EvalSettings, StudyConfig
from harness.learning.train_config import TrainConfig
from tests.synthetic_stores import write_store

torch.set_num_threads(1)


def coin_flips(rates: dict[str, float]):
    """evaluate(candidate, seeds, stage) with fixed success rates, and the list of calls it answered."""
    calls = []

    def evaluate(name, seeds, stage):
        calls.append((name, list(seeds), stage))
        key = sorted(rates).index(name)
        return [bool(np.random.default_rng([key, s]).random() < rates[name]) for s in seeds]
    return evaluate, calls


HELD_OUT = list(range(100_000, 100_040))   # the study's eval seeds


# ---------------------------------------------------------------- the pure core
def test_prob_better_matches_numerical_integration():
    from scipy import integrate, stats
    for s, f, sb, fb in [(0, 0, 0, 0), (3, 7, 8, 2), (20, 30, 25, 25), (45, 5, 44, 6)]:
        quad = integrate.quad(lambda x: stats.beta.pdf(x, 1 + s, 1 + f) * stats.beta.cdf(x, 1 + sb, 1 + fb), 0, 1)[0]
        assert prob_better(s, f, sb, fb) == pytest.approx(quad, abs=1e-9)


def test_beta_pruning_drops_a_clearly_worse_checkpoint_and_keeps_the_better_one():
    rates = {"step_0000100": 0.1, "step_0000200": 0.9, "final": 0.5}
    evaluate, calls = coin_flips(rates)
    sel = select_checkpoint(list(rates), evaluate, rounds=4, round_trials=40, first_seed=200_000,
                            heldout_seeds=HELD_OUT, prune_below=0.05)
    assert sel.chosen == "step_0000200" and "step_0000200" not in sel.pruned_at
    assert sel.pruned_at["step_0000100"] == 0                # gone after the first round
    assert sel.totals["step_0000100"][1] == 40                # and never scored again
    assert len(sel.rounds) < 4                                # rounds stop once one candidate is left
    # the held-out score is the chosen candidate's, on the held-out seeds
    assert calls[-1] == ("step_0000200", HELD_OUT, HELDOUT)
    assert sum(sel.heldout_successes) > 0.75 * len(HELD_OUT)


def test_close_candidates_both_survive_a_round():
    """Pruning needs evidence: two candidates with near-equal rates are both kept after one round."""
    rates = {"step_0000100": 0.6, "final": 0.62}
    evaluate, _ = coin_flips(rates)
    sel = select_checkpoint(list(rates), evaluate, rounds=1, round_trials=20, first_seed=500,
                            heldout_seeds=HELD_OUT, prune_below=0.05)
    assert sel.pruned_at == {} and sel.rounds[0]["pruned"] == []


@pytest.mark.parametrize("prune_below", [0.05, 0.0])
def test_selection_never_scores_on_the_seeds_it_selected_with(prune_below):
    rates = {"step_0000100": 0.3, "step_0000200": 0.5, "step_0000300": 0.55, "final": 0.6}
    evaluate, calls = coin_flips(rates)
    sel = select_checkpoint(list(rates), evaluate, rounds=3, round_trials=25, first_seed=200_000,
                            heldout_seeds=HELD_OUT, prune_below=prune_below)
    chose = {s for name, seeds, stage in calls if stage != HELDOUT for s in seeds}
    scored = [(name, seeds) for name, seeds, stage in calls if stage == HELDOUT]
    assert scored == [(sel.chosen, HELD_OUT)]
    assert chose.isdisjoint(HELD_OUT) and set(sel.selection_seeds) == chose
    assert set(sel.heldout_seeds).isdisjoint(sel.selection_seeds)
    # every round: new seeds, the same ones for every candidate still in
    for index, r in enumerate(sel.rounds):
        assert r["seeds"] == round_seeds(200_000, 25, index)
        asked = [seeds for name, seeds, stage in calls if stage == f"r{index}"]
        assert asked and all(seeds == r["seeds"] for seeds in asked)
    assert len(set(sel.selection_seeds)) == len(sel.selection_seeds)


def test_select_none_scores_every_candidate_on_every_round_and_reports_their_mean():
    rates = {"step_0000100": 0.2, "step_0000200": 0.7, "final": 0.5}
    evaluate, _ = coin_flips(rates)
    sel = select_checkpoint(list(rates), evaluate, rounds=2, round_trials=30, first_seed=0,
                            heldout_seeds=HELD_OUT, prune_below=0.0)
    assert sel.pruned_at == {} and all(t[1] == 60 for t in sel.totals.values())
    assert sel.shared_rounds == 2
    assert sel.mean_over_candidates == pytest.approx(np.mean([k / n for k, n in sel.totals.values()]))
    assert sel.chosen == max(sel.totals, key=lambda n: sel.totals[n][0])


def test_overlapping_held_out_seeds_are_refused():
    evaluate, calls = coin_flips({"final": 0.5, "step_0000001": 0.5})
    with pytest.raises(ValueError, match="held-out seed 100000 is also a selection seed"):
        select_checkpoint(["step_0000001", "final"], evaluate, rounds=2, round_trials=10, first_seed=99_995,
                          heldout_seeds=HELD_OUT)
    assert calls == []                                         # refused before any trial


def test_pick_candidates():
    ckpts = ["step_0000010", "step_0000020", "step_0000030", "final"]
    assert pick_candidates(ckpts, "final", 5) == ["final"]
    assert pick_candidates(ckpts, "last_k", 2) == ["step_0000030", "final"]
    assert pick_candidates(ckpts, "last_k", 9) == ckpts
    assert pick_candidates(ckpts, "every", 2) == ckpts


# ---------------------------------------------------------------- study settings
BAD_EVAL = [
    ({"select": "beta_pruning"}, "eval.select beta_pruning needs eval.checkpoints"),
    ({"checkpoints": "last_k"}, "eval.snapshot_every must be >= 1"),
    ({"checkpoints": "every", "snapshot_every": 10, "selection_seed": 100_150}, "overlap the eval seeds"),
    ({"checkpoints": "every", "snapshot_every": 10, "selection_seed": 99_990, "selection_trials": 5,
      "selection_rounds": 3}, "overlap the eval seeds"),
    ({"last_k": 1}, "eval.last_k must be >= 2"),
    ({"selection_trials": 0}, "eval.selection_trials must be in [1, "),
    ({"selection_rounds": 0}, "eval.selection_rounds must be in [1, "),
    ({"selection_seed": -1}, "eval.selection_seed must be >= 0"),
    ({"snapshot_every": -5}, "eval.snapshot_every must be >= 0"),
    ({"checkpoints": "best"}, "eval.checkpoints"),
    ({"select": "max"}, "eval.select"),
]


@pytest.mark.parametrize("changes, needle", BAD_EVAL, ids=[n for _, n in BAD_EVAL])
def test_bad_protocol_settings_are_refused_with_one_line(changes, needle):
    with pytest.raises(ConfigError) as err:
        from_dict(EvalSettings, {**changes}, "experiment: eval")
    message = str(err.value)
    assert needle in message.replace("experiment: eval: ", "eval.") or needle in message, message
    assert "\n" not in message


def test_protocol_keys_count_in_a_run_identity_only_when_a_protocol_is_on():
    final = EvalSettings(selection_trials=7)
    assert set(final.identity()) == {"env", "trials", "seed", "time_limit", "inference_batch"}
    # inference_batch 0 (the natural batch) is left out, as in run folders made before the key existed
    assert set(EvalSettings(inference_batch=0).identity()) == {"env", "trials", "seed", "time_limit"}
    on = EvalSettings(checkpoints="last_k", snapshot_every=5)
    assert set(on.identity()) == set(EvalSettings.IDENTITY)


def _tiny_study(tmp_path, eval_settings: dict, steps: int = 4) -> StudyConfig:
    clean = write_store(tmp_path / "clean.zarr", "target", n_episodes=4, seed=1)
    raw = {"name": "tiny", "out_dir": str(tmp_path / "results"),
           "datasets": [{"name": "teleop", "path": str(clean), "role": "clean"}],
           "methods": [{"method": "target_only"}], "seeds": [0], "annotate": {"enabled": False},
           "train": {"policy": {"down_dims": [8, 16], "noise_dim": 8, "n_groups": 4}, "device": "cpu",
                     "diffusion": {"num_steps": 2}, "optim": {"batch_size": 8, "warmup_steps": 1},
                     "run": {"steps": steps, "log_every": 1, "val_every": steps, "checkpoint_every": steps,
                             "progress": False}, "data": {"val_fraction": 0.0}},
           "eval": {"trials": 2, "time_limit": 0.5, "n_envs": 2, "workers": 1, **eval_settings}}
    return from_dict(StudyConfig, raw, "test")


def test_plan_gives_every_run_its_snapshots_and_refuses_too_few(tmp_path):
    from harness.study.plan import plan_runs
    protocol = {"checkpoints": "every", "snapshot_every": 1, "select": "beta_pruning"}
    plans = plan_runs(_tiny_study(tmp_path, protocol), None, dry=True)
    assert all(p.train.run.snapshot_every == 1 for p in plans)
    assert all(p.train.run.snapshot_every == 0
               for p in plan_runs(_tiny_study(tmp_path, {}), None, dry=True))
    with pytest.raises(ConfigError, match="eval.snapshot_every: must be < run.steps = 4"):
        plan_runs(_tiny_study(tmp_path, {**protocol, "snapshot_every": 4}), None, dry=True)


# ---------------------------------------------------------------- the trainer's snapshots
def _train_cfg(stores, out, steps: int, snapshot_every: int) -> TrainConfig:
    raw = {"out_dir": str(out), "seed": 3, "device": "cpu",
           "data": {"datasets": [{"path": str(stores["target"])}, {"path": str(stores["sim"])}],
                    "val_fraction": 0.0},
           "policy": {"down_dims": [8, 16], "noise_dim": 8, "n_groups": 4},
           "optim": {"batch_size": 8, "warmup_steps": 1},
           "run": {"steps": steps, "log_every": 1, "val_every": steps, "checkpoint_every": 1000,
                   "progress": False, "snapshot_every": snapshot_every}}
    return from_dict(TrainConfig, raw, "test")


def test_trainer_writes_snapshots_at_the_right_steps_and_a_resume_keeps_them(tmp_path):
    from harness.learning.training import train
    stores = {"target": write_store(tmp_path / "t.zarr", "target", 3, seed=1),
              "sim": write_store(tmp_path / "s.zarr", "sim", 3, wiggle=0.01, seed=2)}
    names = ["step_0000003.pt", "step_0000006.pt"]           # 9 is the last step: that policy is final.pt

    train(_train_cfg(stores, tmp_path / "full", 9, 3))
    full = tmp_path / "full" / "checkpoints"
    assert sorted(p.name for p in full.glob("step_*.pt")) == names

    cut_cfg = _train_cfg(stores, tmp_path / "cut", 9, 3)
    train(cut_cfg, stop_after=4)                             # interrupted after the first snapshot
    cut = tmp_path / "cut" / "checkpoints"
    assert sorted(p.name for p in cut.glob("step_*.pt")) == names[:1]
    stamp = (cut / names[0]).stat().st_mtime_ns
    shutil.copytree(tmp_path / "cut", tmp_path / "lost")     # the same interrupted run, for the last check
    train(cut_cfg)
    assert sorted(p.name for p in cut.glob("step_*.pt")) == names
    assert (cut / names[0]).stat().st_mtime_ns == stamp      # not written again
    for name in names:                                       # the same policies as without the interruption
        a, b = (torch.load(d / name, weights_only=False) for d in (full, cut))
        assert a["step"] == b["step"] == int(name[5:12]) and "optimizer" not in a
        assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])

    # A snapshot deleted from an interrupted run cannot be made again: the resume says so.
    (tmp_path / "lost" / "checkpoints" / names[0]).unlink()
    with pytest.raises(UserError, match="step_0000003.pt: missing"):
        train(dataclasses.replace(cut_cfg, out_dir=str(tmp_path / "lost")))
    # snapshot_every is part of the run's identity: a resume with another value is refused
    with pytest.raises(ConfigError, match="run.snapshot_every"):
        train(_train_cfg(stores, tmp_path / "cut", 9, 2))


# ---------------------------------------------------------------- the table
def _records(seeds, wins) -> list[TrialRecord]:
    return [TrialRecord(s, "success" if w else "timeout", 5, 0.5 if w else float("nan"), 0.01, 0.01)
            for s, w in zip(seeds, wins)]


def test_table_keeps_the_final_row_and_adds_a_paired_selected_row(tmp_path):
    seeds = [100_000, 100_001, 100_002, 100_003]
    base = RunResult("cotrain", "alpha=0.5", 0, _records(seeds, [1, 0, 0, 0]), alpha=0.5)
    final = RunResult("target_only", "", 0, _records(seeds, [0, 0, 1, 0]), alpha=1.0)
    picked = dataclasses.replace(final, records=_records(seeds, [1, 1, 1, 0]), protocol="selected",
                                 n_checkpoints=4, checkpoint_mean=0.375)
    rows, base_label = study_table([base, final, picked], "cotrain")
    assert base_label == "cotrain (alpha=0.5)"
    assert [r.label for r in rows] == ["cotrain (alpha=0.5)", "target_only",
                                       "target_only · selected (best of 4 ckpts, held-out)"]
    assert rows[1].rate == 0.25 and rows[2].rate == 0.75      # the final row is unchanged
    assert rows[2].vs_baseline.n_pairs == 4                   # paired: the same start seeds
    md = table_markdown(rows, base_label)
    assert "mean of ckpts (selection seeds)" in md and "| 37.5% |" in md
    from eval.plots import plot_success, plot_success_vs_alpha
    plot_success_vs_alpha(rows, tmp_path / "alpha.png")
    assert "selected" not in (tmp_path / "alpha.csv").read_text()   # the alpha plot keeps final rows only
    plot_success(rows, tmp_path / "success.png")
    assert "selected (best of 4 ckpts" in (tmp_path / "success.csv").read_text()


# ---------------------------------------------------------------- a real tiny run
def test_a_real_run_selects_on_its_own_seeds_and_is_reported_on_the_eval_seeds(tmp_path):
    """The whole study machinery (runner, train+eval job, report) on one tiny run with Beta pruning."""
    from harness.study import run_study
    from harness.study.plan import plan_runs

    cfg = _tiny_study(tmp_path, {"checkpoints": "every", "snapshot_every": 1, "select": "beta_pruning",
                                 "selection_trials": 2, "selection_rounds": 2, "selection_seed": 300})
    study = run_study(cfg, progress=False, log=lambda *_: None)
    assert not study.failed
    plan = plan_runs(cfg, None)[0]
    sel = json.loads((plan.folder.selection).read_text())
    assert sel["candidates"] == ["step_0000001", "step_0000002", "step_0000003", "final"]
    assert set(sel["heldout_seeds"]) == {100_000, 100_001}    # the study's eval seeds ...
    assert set(sel["heldout_seeds"]).isdisjoint(sel["selection_seeds"])   # ... none of them used to choose
    for r in sel["rounds"]:
        for name in r["scored"]:
            folder = plan.folder.selection_evals / f"{name}-r{r['round']}"
            spec = json.loads((folder / "eval_spec.json").read_text())
            assert spec["seed"] == r["seeds"][0] and spec["trials"] == len(r["seeds"])
            assert spec["checkpoint"].endswith(f"{name}.pt")
            assert set(range(spec["seed"], spec["seed"] + spec["trials"])).isdisjoint(sel["heldout_seeds"])
    heldout = json.loads((plan.folder.root / sel["heldout_dir"] / "eval_spec.json").read_text())
    assert heldout["checkpoint"].endswith(f"{sel['chosen']}.pt") and heldout["seed"] == 100_000
    result = json.loads(plan.folder.result.read_text())
    assert result["selected"]["chosen"] == sel["chosen"] and result["selected"]["n_candidates"] == 4

    table = (cfg.out / "table.md").read_text()
    assert "| target_only | 1 | 2 |" in table                 # the final-checkpoint row, as always
    assert "| target_only · selected (best of 4 ckpts, held-out) | 1 | 2 |" in table
    assert "share none with the eval seeds" in table
    csv_rows = list(csv.DictReader((cfg.out / "table.csv").read_text().splitlines()))
    assert [row["protocol"] for row in csv_rows] == ["final", "selected"]
