"""The study's jobs: plain functions of JSON-able arguments, what an executor runs (harness/study/executor.py).

Every job is idempotent: a finished job returns its stored result at once, a half-finished one resumes,
and an output made by other settings is refused (the run-identity rule, harness/core/identity.py). That is
what makes a study resumable whatever engine runs it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from eval.evaluation import EvalSettings, run_eval
from eval.metrics import wilson_interval
from eval.plots import annotation_plot_paths, plot_annotations
from eval.report import read_trials_csv
from eval.selection import HELDOUT, pick_candidates, PRUNE_BELOW, select_checkpoint
from harness.core.atomic import atomic_write_text
from harness.core.configs import from_dict, merge
from harness.learning.annotations import read_annotations
from harness.learning.checkpoint import list_snapshots
from harness.learning.classifier import annotate as run_annotate, AnnotateConfig
from harness.learning.device import limit_threads, usable_cores
from harness.learning.train_config import DatasetSpec
from harness.learning.training import train
from harness.learning.training_data import fit_dataset_normalizer, load_dataset
from harness.study.run_spec import RunFolder, RunSpec
from sim_envs.config import load_preset


def generator(kind: str):
    """(config class, fill_store) of a dataset kind; both generators keep the one contract
    fill_store(out, cfg, progress) -> summary with .lines()."""
    # each generator is imported only when its kind is asked for: the planner loads Drake's solvers, the teleop
    # generator Drake's simulator, and a study need not load the ones it does not use
    if kind == "gcs":
        from gcs_planner.generate import GenSimConfig, fill_store   # (Drake's solvers: see above)
        return GenSimConfig, fill_store
    if kind == "corrupt":
        from real_data.corruption.generate import CorruptConfig, fill_store   # (see above)
        return CorruptConfig, fill_store
    from real_data.teleop.generate import GenTeleopConfig, fill_store   # (see above)
    return GenTeleopConfig, fill_store


def generator_config(path: str, kind: str, num: int, env: str | None, seed: int, workers: int, config: dict):
    """The resolved, checked generator config of a dataset. `config` holds GenSimConfig keys for gcs and
    the teleoperator's (TeleopConfig) keys for teleop, as `gen-sim --config` and `gen-teleop --config` do, and
    CorruptConfig keys for corrupt (source, transform, level, units, cutoff_hz; it runs in this process)."""
    cls, _ = generator(kind)
    if kind == "corrupt":
        return from_dict(cls, merge(config, {"num": num, "seed": seed}), f"generate {path}")
    run = {"num": num, "seed": seed, "workers": workers}
    if kind == "gcs":
        settings = merge(config, {**run, "env": env or "sim"})
    else:
        settings = {**run, "teleop": merge(config, {"env": env or "target"})}
    cfg = from_dict(cls, settings, f"generate {path}")
    load_preset(cfg.env)   # an unknown physics preset: one line now, not after other datasets were made
    return cfg


def generate_dataset(path: str, kind: str, num: int, env: str | None, seed: int, workers: int,
                     config: dict, progress: bool = True) -> dict:
    """Fill the store at `path` up to `num` episodes from seeds seed, seed + 1, ... (what gen-sim /
    gen-teleop run; both resume and refuse a store made by another generator config)."""
    cfg = generator_config(path, kind, num, env, seed, workers, config)
    _, fill_store = generator(kind)
    return {"path": path, "summary": fill_store(path, cfg, progress=progress).lines()}


def corruption_units(datasets: list[dict]) -> dict:
    """{offset, scale} of the action fit on `datasets` ({path, max_episodes}, loaded as a study loads clean
    data: successful episodes, the first max_episodes): the normalized action units a corruption level is in.
    A study passes its clean datasets, so the units are its normalizer's (actions are fitted on clean data,
    harness/learning/normalizer.py); `cotrain corrupt` passes the source."""
    raws = [load_dataset(DatasetSpec(d["path"], role="clean", max_episodes=d.get("max_episodes")), [], Path(d["path"]).stem)
            for d in datasets]
    return fit_dataset_normalizer(raws).action.state()


def annotate(clean: list, corrupt: list, out: str, config: dict, threads: int | None = None) -> dict:
    """Train the noise-level classifier once and annotate the corrupt windows; plots beside the store.

    An existing store is reused only if it was made from the same data with the same settings.
    """
    cfg = from_dict(AnnotateConfig, config, out)
    new = not Path(out).exists()
    if new:   # the stage's cores, never more threads than the machine has (3 on 2 cores: 2.6x slower)
        _limit_threads(min(threads or 0, usable_cores()))
    run_annotate(clean, corrupt, out, cfg)
    if new:
        plot_annotations(read_annotations(out), *annotation_plot_paths(out))
    return {"path": out}


def train_and_evaluate(run: str, threads: int | None = None, progress: bool = True) -> dict:
    """Train one run (resuming) and evaluate its final checkpoint (resuming); with eval.checkpoints last_k
    or every, also run the checkpoint protocol (select_and_score); mark the run done. A run that shares
    another's training (spec.trained_by) evaluates that run's weights, once it has finished.

    run: the RunSpec as JSON (RunSpec.to_json), the one thing a job needs to know about its run.
    """
    spec = RunSpec.from_json(run)
    folder, settings = spec.folder, spec.eval
    if folder.finished:
        return folder.read_result()
    _limit_threads(threads)
    started = time.perf_counter()
    spec.train.run.progress = spec.train.run.progress and progress   # --no-progress silences training too
    if spec.trained_by is not None and not spec.trained:
        raise RuntimeError(f"{spec.trained_by} has not finished training; this run evaluates its weights")
    checkpoint = train(spec.train)   # a shared training that has finished: its final.pt, nothing trained
    trained = time.perf_counter()
    summary = run_eval(checkpoint, settings, folder.eval, progress=progress)
    result = {"checkpoint": str(checkpoint), "success": summary.to_dict()["success"]}
    if settings.checkpoints != "final":
        result["selected"] = select_and_score(folder, Path(checkpoint), settings, progress)
    result.update({"train_seconds_last_session": round(trained - started, 1),
                   "eval_seconds_last_session": round(time.perf_counter() - trained, 1)})
    folder.finish(result)
    return result


def select_and_score(folder: RunFolder, final: Path, settings: EvalSettings, progress: bool = True) -> dict:
    """The checkpoint protocol of one run: choose among its checkpoints on the selection seeds, then score
    the choice on the study's eval seeds, which took no part in the choice (eval/selection.py).

    Every evaluation is a resumable run_eval folder, and the choice depends only on their trial outcomes,
    so a resumed job makes the same choice without re-running finished trials. When the choice is final.pt
    its held-out score is the run's own eval/ (the same checkpoint on the same seeds: the same evaluation).
    Writes selection.json; returns the summary that goes into result.json.
    """
    paths = {p.stem: p for _, p in list_snapshots(final.parent)}   # oldest first ...
    paths[final.stem] = final                                      # ... final last
    candidates = pick_candidates(list(paths), settings.checkpoints, settings.last_k)
    folders: dict[tuple[str, str], Path] = {}

    def evaluate(name: str, seeds: list[int], stage: str) -> list[bool]:
        if stage == HELDOUT:
            out = folder.eval if name == final.stem else folder.selected_eval
        else:
            out = folder.selection_evals / f"{name}-{stage}"
        one = settings.on_seeds(seeds[0], len(seeds))
        if one.seeds != seeds:
            raise ValueError(f"{stage}: start seeds must be consecutive, got {seeds[0]}..{seeds[-1]}")
        run_eval(paths[name], one, out, progress=progress)
        folders[(name, stage)] = out
        return [r.success for r in read_trials_csv(out / "trials.csv")]   # sorted by seed, as `seeds`

    heldout_seeds = list(range(settings.seed, settings.seed + settings.trials))
    prune = PRUNE_BELOW if settings.select == "beta_pruning" else 0.0
    sel = select_checkpoint(candidates, evaluate, settings.selection_rounds, settings.selection_trials,
                            settings.selection_seed, heldout_seeds, prune_below=prune)
    heldout_dir = folders[(sel.chosen, HELDOUT)]
    record = {"checkpoints": settings.checkpoints, "select": settings.select, **sel.to_dict(),
              "checkpoint_paths": {name: str(paths[name]) for name in candidates},
              "heldout_dir": heldout_dir.name}   # eval or eval_selected, inside the run folder
    atomic_write_text(folder.selection, json.dumps(record, indent=2) + "\n")
    ci = wilson_interval(sum(sel.heldout_successes), len(sel.heldout_successes))
    return {"chosen": sel.chosen, "checkpoint": str(paths[sel.chosen]), "n_candidates": len(candidates),
            "success_heldout": {"successes": ci.successes, "trials": ci.trials, "rate": ci.rate,
                                "low": ci.low, "high": ci.high},
            "mean_over_candidates": sel.mean_over_candidates}


def _limit_threads(threads: int | None) -> None:
    if threads:
        limit_threads(threads)
