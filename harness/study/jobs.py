"""The study's jobs: plain functions of JSON-able arguments, what an executor runs (harness/study/executor.py).

Every job is idempotent: a finished job returns its stored result at once, a half-finished one resumes,
and an output made by other settings is refused (the run-identity rule, harness/data/identity.py). That is
what makes a study resumable whatever engine runs it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from harness.data.atomic import atomic_write_text
from harness.data.configs import from_dict, merge


def generator_config(path: str, kind: str, num: int, env: str | None, seed: int, workers: int, config: dict):
    """The resolved, checked generator config of a dataset (GenSimConfig or TeleopConfig)."""
    from sim_envs.config import load_preset
    if kind == "gcs":
        from gcs_planner.generate import GenSimConfig
        cfg = from_dict(GenSimConfig, merge(config, {"num": num, "seed": seed, "env": env or "sim",
                                                     "workers": workers}), f"generate {path}")
    else:
        from real_data.teleop.scripted import TeleopConfig
        cfg = from_dict(TeleopConfig, merge(config, {"env": env or "target"}), f"generate {path}")
    load_preset(cfg.env)   # an unknown physics preset: one line now, not after other datasets were made
    return cfg


def generate_dataset(path: str, kind: str, num: int, env: str | None, seed: int, workers: int,
                     config: dict, progress: bool = True) -> dict:
    """Fill the store at `path` up to `num` episodes from seeds seed, seed + 1, ... (what gen-sim /
    gen-teleop run; both resume and refuse a store made by another generator config)."""
    cfg = generator_config(path, kind, num, env, seed, workers, config)
    if kind == "gcs":
        from gcs_planner.generate import run_generation
        summary = run_generation(path, cfg, progress=progress)
    else:
        from real_data.teleop.generate import generate
        summary = generate(path, num, cfg, seed=seed, workers=workers, progress=progress)
    return {"path": path, "summary": summary.lines()}


def annotate(clean: list, corrupt: list, out: str, config: dict, threads: int | None = None) -> dict:
    """Train the noise-level classifier once and annotate the corrupt windows; plots beside the store.

    An existing store is reused only if it was made from the same data with the same settings.
    """
    from eval.plots import plot_annotations
    from harness.classifier import AnnotateConfig, annotate as run_annotate

    cfg = from_dict(AnnotateConfig, config, out)
    new = not Path(out).exists()
    if new:
        _limit_threads(threads)
    run_annotate(clean, corrupt, out, cfg)
    if new:
        plot_annotations(out)
    return {"path": out}


def train_and_evaluate(run_dir: str, train_config: dict, eval: dict, threads: int | None = None,
                       progress: bool = True) -> dict:
    """Train one run (resuming) and evaluate its final checkpoint (resuming); with eval.checkpoints last_k
    or every, also run the checkpoint protocol (select_and_score); mark the run done."""
    from eval.evaluation import EvalSpec, run_eval
    from harness.train_config import TrainConfig
    from harness.training import train

    run_dir = Path(run_dir)
    if (run_dir / "done").exists():
        return json.loads((run_dir / "result.json").read_text())
    _limit_threads(threads)
    started = time.perf_counter()
    cfg = from_dict(TrainConfig, train_config, str(run_dir / "run.json"))
    cfg.run.progress = cfg.run.progress and progress   # --no-progress silences the training bar too (a free key)
    checkpoint = train(cfg)
    trained = time.perf_counter()
    spec = EvalSpec(checkpoint=str(checkpoint), env=eval["env"], trials=eval["trials"], seed=eval["seed"],
                    time_limit=eval["time_limit"])
    from harness.device import resolve_device
    summary = run_eval(spec, run_dir / "eval", n_envs=eval["n_envs"], workers=eval["workers"],
                       device=str(resolve_device(eval["device"])), record=eval["record"], progress=progress)
    result = {"checkpoint": str(checkpoint), "success": summary.to_dict()["success"]}
    if eval.get("checkpoints", "final") != "final":
        result["selected"] = select_and_score(run_dir, Path(checkpoint), eval,
                                              str(resolve_device(eval["device"])), progress)
    result.update({"train_seconds_last_session": round(trained - started, 1),
                   "eval_seconds_last_session": round(time.perf_counter() - trained, 1)})
    atomic_write_text(run_dir / "result.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(run_dir / "done", "")
    return result


SELECTION_FILE = "selection.json"    # in a run folder: what the checkpoint protocol did (eval/selection.py)
SELECTION_DIR = "eval_selection"     # <checkpoint stem>-r<round>/: one evaluation folder per candidate and round
SELECTED_DIR = "eval_selected"       # the chosen checkpoint on the study's eval seeds (held out from the choice)


def select_and_score(run_dir: Path, final: Path, eval: dict, device: str, progress: bool = True) -> dict:
    """The checkpoint protocol of one run: choose among its checkpoints on the selection seeds, then score
    the choice on the study's eval seeds, which took no part in the choice (eval/selection.py).

    Every evaluation is a resumable run_eval folder, and the choice depends only on their trial outcomes,
    so a resumed job makes the same choice without re-running finished trials. When the choice is final.pt
    its held-out score is the run's own eval/ (the same checkpoint on the same seeds: the same evaluation).
    Writes selection.json; returns the summary that goes into result.json.
    """
    from eval.evaluation import EvalSpec, run_eval
    from eval.metrics import wilson_interval
    from eval.report import read_trials_csv
    from eval.selection import HELDOUT, PRUNE_BELOW, pick_candidates, select_checkpoint
    from harness.checkpoint import list_snapshots

    paths = {p.stem: p for _, p in list_snapshots(final.parent)}   # oldest first ...
    paths[final.stem] = final                                      # ... final last
    candidates = pick_candidates(list(paths), eval["checkpoints"], eval["last_k"])
    folders: dict[tuple[str, str], Path] = {}

    def evaluate(name: str, seeds: list[int], stage: str) -> list[bool]:
        if stage == HELDOUT:
            out = run_dir / ("eval" if name == final.stem else SELECTED_DIR)
        else:
            out = run_dir / SELECTION_DIR / f"{name}-{stage}"
        spec = EvalSpec(checkpoint=str(paths[name]), env=eval["env"], trials=len(seeds), seed=seeds[0],
                        time_limit=eval["time_limit"])
        if spec.seeds != seeds:
            raise ValueError(f"{stage}: start seeds must be consecutive, got {seeds[0]}..{seeds[-1]}")
        run_eval(spec, out, n_envs=eval["n_envs"], workers=eval["workers"], device=device, progress=progress)
        folders[(name, stage)] = out
        return [r.success for r in read_trials_csv(out / "trials.csv")]   # sorted by seed, as `seeds`

    heldout_seeds = list(range(eval["seed"], eval["seed"] + eval["trials"]))
    prune = PRUNE_BELOW if eval["select"] == "beta_pruning" else 0.0
    sel = select_checkpoint(candidates, evaluate, eval["selection_rounds"], eval["selection_trials"],
                            eval["selection_seed"], heldout_seeds, prune_below=prune)
    heldout_dir = folders[(sel.chosen, HELDOUT)]
    record = {"checkpoints": eval["checkpoints"], "select": eval["select"], **sel.to_dict(),
              "checkpoint_paths": {name: str(paths[name]) for name in candidates},
              "heldout_dir": heldout_dir.name}   # eval or eval_selected, inside the run folder
    atomic_write_text(run_dir / SELECTION_FILE, json.dumps(record, indent=2) + "\n")
    ci = wilson_interval(sum(sel.heldout_successes), len(sel.heldout_successes))
    return {"chosen": sel.chosen, "checkpoint": str(paths[sel.chosen]), "n_candidates": len(candidates),
            "success_heldout": {"successes": ci.successes, "trials": ci.trials, "rate": ci.rate,
                                "low": ci.low, "high": ci.high},
            "mean_over_candidates": sel.mean_over_candidates}


def _limit_threads(threads: int | None) -> None:
    if threads:
        from harness.device import limit_threads
        limit_threads(threads)
