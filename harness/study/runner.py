"""Run (or resume) a whole study: datasets, the shared classifier, every run, then the report."""
from __future__ import annotations

import dataclasses
import inspect
import time
from pathlib import Path

from harness.core.configs import free_keys, from_dict, load_yaml, merge, save_config, to_dict
from harness.core.errors import ConfigError, DatasetError, UserError
from harness.core.identity import check_same_identity, claim_output, LOCK_FILE, read_identity
from harness.core.locks import check_writable, hold_lock
from harness.core.parallel import check_ray_address
from harness.core.store import EpisodeStore
from harness.learning.classifier import AnnotateConfig
from harness.learning.device import resolve_device
from harness.learning.normalizer import load_normalizer, save_normalizer
from harness.learning.train_config import DatasetSpec, TrainConfig
from harness.learning.training_data import fit_dataset_normalizer, load_dataset
from harness.study.config import StudyConfig
from harness.study.executor import make_executor
from harness.study.fingerprint import check_fingerprint
from harness.study.job import Job, JobResult
from harness.study.jobs import annotate, corruption_units, generate_dataset, generator_config, train_and_evaluate
from harness.study.plan import plan_runs, with_matched_alphas
from harness.study.progress import StatusView
from harness.study.report import StudyReport, write_report
from harness.study.run_spec import RunFolder, RunSpec

# Settings that may change between sessions of one run without changing its result: the train config's keys
# declared free (harness/learning/train_config.py; its out_dir is the run's place inside this study, not
# free here), and alpha, which is only the plots' number: the alpha that trains is train_config.objective's
# (a natural row's is measured by the trainer; before 2026-12-03 the plan recorded its own estimate here).
RUN_FREE_KEYS = free_keys(TrainConfig, "train_config", own=False) + ("alpha",)


@dataclasses.dataclass
class StudyResult:
    out: Path
    failed: list[JobResult]
    report: StudyReport | None = None   # None when a stage failed before the runs


def run_study(cfg: StudyConfig, executor=None, progress: bool = True, log=print) -> StudyResult:
    """Run (or resume) the whole study and write its report; see harness/study/__init__.py.

    Every config of every job (generation, annotation, training, evaluation) is resolved and checked
    before anything is written; the study folder is locked while the study runs.
    """
    out = cfg.out
    check_study_folder(out)
    annotations = cfg.annotations_path
    plans = plan_runs(cfg, annotations, dry=True)       # a check, not the plan: every TrainConfig, with stand-ins
                                                         # for the data's numbers (the plan: _run_stages, once)
    _check_devices(cfg, plans)
    annotate_jobs(cfg)                                   # every AnnotateConfig
    generation_jobs(cfg, progress, dry=True)             # every generator config
    if cfg.executor.kind == "ray":
        check_ray_address(cfg.executor.address)          # an unreachable cluster: one line, not a long retry
    check_writable(out)
    out.mkdir(parents=True, exist_ok=True)
    with hold_study_lock(out):
        if not (out / "experiment.yaml").is_file():
            save_config(cfg, out / "experiment.yaml")
        return _run_stages(cfg, annotations, executor, progress, log)


def _run_stages(cfg: StudyConfig, annotations: Path | None, executor, progress: bool, log) -> StudyResult:
    out = cfg.out
    executor = executor or make_executor(cfg.executor.kind, cfg.executor.max_parallel, cfg.executor.address,
                                         shared_dir=out)
    t0 = time.perf_counter()

    # 1. datasets: first the generated ones, then the corrupt copies of them (`generate: {kind: corrupt}`),
    # whose levels are in the action units of the clean data made in the first wave
    for corrupt, stage in ((False, "datasets"), (True, "corrupt")):
        failed = _run_stage(executor, generation_jobs(cfg, progress, corrupt=corrupt), stage, log, progress)
        if failed:
            return StudyResult(out, failed)
    _check_datasets(cfg)
    write_study_normalizer(cfg)
    check_fingerprint(cfg, log)   # the data's bytes: a study never mixes two versions of its data

    # 2. the shared classifier (and the classifiers of rows with their own annotate settings)
    jobs = annotate_jobs(cfg, progress)
    if jobs:
        failed = _run_stage(executor, jobs, "annotate", log, progress)
        if failed:
            return StudyResult(out, failed)

    # 3. runs: every folder claimed (or refused) before any is trained; then the study records its config.
    # Two waves: every run that trains with its own alpha; then the matched-alpha controls, whose alpha is
    # the realised clean fraction of a first-wave run (known only once that run has trained), and the runs
    # that evaluate a first-wave run's weights their own way (plan.share_training).
    plans = plan_runs(cfg, annotations)
    for plan in plans:
        if not plan.pending:
            claim_run(plan)
    save_config(cfg, out / "experiment.yaml")
    finished = sum(p.folder.finished for p in plans)
    log(f"runs       {len(plans)} in total, {finished} finished, {len(plans) - finished} to run")
    first = [p for p in plans if p.matched_to is None and p.trained_by is None]
    failed = _train_runs(cfg, first, executor, "runs", log, progress)
    if len(first) < len(plans):
        plans = with_matched_alphas(cfg, plans)   # the first wave has trained: the matched alphas are known
        trained = {p.key for p in first if p.trained}
        done_or_first = {p.key for p in first} | {p.key for p in plans if p.folder.finished}
        second = []
        for plan in plans:
            if plan.key in done_or_first:
                continue
            if plan.pending:
                failed.append(_not_run(plan, f"{plan.matched_to} seed {plan.seed} has not finished training, "
                                             "so the matched alpha is unknown", log))
            elif plan.trained_by is not None and plan.trained_by not in trained:
                failed.append(_not_run(plan, f"{plan.trained_by} has not finished training, and this run "
                                             "evaluates its weights", log))
            else:
                claim_run(plan)
                second.append(plan)
        failed += _train_runs(cfg, second, executor, "second", log, progress)

    # 4. report
    report = write_report(cfg, plans, annotations)
    log(f"study      {cfg.name}: {time.perf_counter() - t0:.0f} s this session; results in {out}")
    return StudyResult(out, failed, report)


def _train_runs(cfg: StudyConfig, plans: list[RunSpec], executor, stage: str, log, progress: bool) -> list[JobResult]:
    """Train and evaluate the unfinished runs among `plans` (one job each); returns the failed jobs."""
    jobs = [Job(f"train+eval {p.key}", train_and_evaluate,
                {"run": p.to_json(), "threads": cfg.executor.threads, "progress": progress},
                resources={"num_cpus": max(cfg.executor.train_num_cpus, cfg.eval.workers),
                           "num_gpus": cfg.executor.train_num_gpus})
            for p in plans if not p.folder.finished]
    return _run_stage(executor, jobs, stage, log, progress) if jobs else []


def _not_run(plan: RunSpec, why: str, log) -> JobResult:
    """A second-wave run whose first-wave run did not finish training (a matched run: its alpha is unknown;
    a run sharing that training: there are no weights) is not run."""
    key = f"train+eval {plan.key}"
    error = f"NotRun: {why}"
    log(f"{'second':<10} FAILED {key}: {error}")
    return JobResult(key, ok=False, error=error)


def write_study_normalizer(cfg: StudyConfig) -> Path:
    """Fit the study's one normalizer on every episode it uses (each dataset's first `episodes`) and write
    it, so that every run and the classifier measure sigma in the same units. It is fitted the way the
    study's train config says (`data.normalizer_mode`). An existing file is reused as is: the study's
    identity fixes its data."""
    path = cfg.normalizer_path
    if path.exists():
        load_normalizer(path)    # a damaged file: one line now, not in every run
        return path
    raws = [load_dataset(DatasetSpec(d.path, role=d.role, max_episodes=d.episodes), [], d.name)
            for d in cfg.datasets]
    save_normalizer(fit_dataset_normalizer(raws, study_train_data(cfg).normalizer_mode), path)
    return path


def report_only(cfg: StudyConfig) -> StudyResult:
    """Rewrite the table and plots from the finished runs, computing nothing."""
    # the runs can be planned once every classifier store they read exists: the shared one and the rows' own
    missing = [path for path in cfg.annotation_stores() if not path.exists()]
    if missing:
        finished = RunFolder.finished_in(cfg.out)
        if finished:   # e.g. imported outcomes (harness/study/outcomes.py) on a machine that has not made them
            raise UserError(f"{cfg.out}: {len(finished)} finished runs, but the classifier store {missing[0]} "
                            "that planning them reads is not there yet; `cotrain compare` makes it (and trains "
                            "only the runs that are missing)")
        return StudyResult(cfg.out, [], write_report(cfg, [], None))
    plans = plan_runs(cfg, cfg.annotations_path)
    for plan in plans:   # a run folder made with other settings (an edited YAML, an import) is refused here too
        if plan.folder.identity.is_file():
            check_same_identity(read_identity(plan.folder.identity), plan.identity(), RUN_FREE_KEYS,
                                plan.folder.identity)
    return StudyResult(cfg.out, [], write_report(cfg, plans, cfg.annotations_path))


def claim_run(plan: RunSpec) -> None:
    """Record what a run folder is for, or refuse a folder that a different config made."""
    claim_output(plan.folder.root, RunFolder.IDENTITY_FILE, plan.identity(), RUN_FREE_KEYS, kind="study run folder")


def generation_jobs(cfg: StudyConfig, progress: bool = True, dry: bool = False,
                    corrupt: bool | None = None) -> list[Job]:
    """One job per dataset that must be generated or extended to the episodes the study uses.

    dry: only resolve and check every generator config (and that a missing store's place is writable).
    corrupt: True for the corrupt copies alone (`kind: corrupt`, made once their sources exist), False for
    the other generated datasets, None for all.
    """
    jobs = []
    units = None
    for d in cfg.datasets:
        if d.generate is None or corrupt is not None and (d.generate.kind == "corrupt") != corrupt:
            continue
        num = d.generate.num or d.episodes
        if num is None:
            raise ConfigError("experiment", f"datasets.{d.name}.generate.num", "say how many episodes to generate")
        g = d.generate
        kwargs = {"path": d.path, "kind": g.kind, "num": num, "env": g.env, "seed": g.seed, "workers": g.workers,
                  "config": dict(g.config)}
        if g.kind == "corrupt":
            source = next(s for s in cfg.datasets if s.name == g.from_)
            kwargs["config"].update({"source": source.path, "transform": g.transform, "level": g.level})
            if not dry and not (Path(d.path).exists() and EpisodeStore(d.path).n_episodes >= num):
                units = units or corruption_units([{"path": c.path, "max_episodes": c.episodes}
                                                   for c in cfg.datasets if c.role == "clean"])
                kwargs["config"]["units"] = units   # the study normalizer's action units (its clean data)
        if dry:
            generator_config(**kwargs)
            if not Path(d.path).exists():
                check_writable(d.path)
            continue
        if Path(d.path).exists() and EpisodeStore(d.path).n_episodes >= num:
            continue
        jobs.append(Job(f"generate {d.name}", generate_dataset, {**kwargs, "progress": progress},
                        resources={"num_cpus": 1 if g.kind == "corrupt" else g.workers}))
    return jobs


def annotate_jobs(cfg: StudyConfig, progress: bool = True) -> list[Job]:
    """One annotate job per store the study makes (the shared one, and one per distinct row annotate
    settings). They run max_parallel at once like any stage, so each gets executor.threads; a lone job gets
    the cores the executor would give max_parallel jobs (two classifiers of 2 threads each on 2 cores ran
    over three times slower than one alone)."""
    stores = cfg.annotation_stores()
    threads = cfg.executor.threads * (cfg.executor.max_parallel if len(stores) == 1 else 1)
    return [annotate_job(cfg, progress, out, overrides, threads) for out, overrides in stores.items()]


def study_train_data(cfg: StudyConfig):
    """The data section of the study's train config (its train_config file with its `train` keys on top)."""
    return from_dict(TrainConfig, cfg.train_base(), "experiment: train").data


def annotate_job(cfg: StudyConfig, progress: bool, out: Path | None, overrides: dict | None, threads: int) -> Job:
    """The classifier's windows must match the trainer's, so their sizes come from the train config; its
    sigmas must be in the runs' units, so it normalizes with the study's normalizer. out / overrides: a row's
    own store and its AnnotateConfig overrides; threads: torch threads of the job (annotate_jobs decides)."""
    data = study_train_data(cfg)
    shared = {"n_obs": data.n_obs, "horizon": data.horizon, "n_action": data.n_action,
              "normalizer": str(cfg.normalizer_path), "progress": progress}   # progress: a free key
    settings = merge(merge(load_yaml(cfg.annotate.config) if cfg.annotate.config else {}, cfg.annotate.overrides),
                     overrides or {})
    acfg = from_dict(AnnotateConfig, merge(settings, shared), "experiment: annotate")
    out = out or cfg.annotations_path
    data = cfg.annotation_datasets(out)   # a row with its own datasets: its own clean-vs-corrupt classifier
    return Job(f"annotate {out.name}" if out != cfg.annotations_path else "annotate", annotate, {
        # the classifier sees the same first-N episodes that the runs train on
        "clean": [{"path": d.path, "max_episodes": d.episodes} for d in data if d.role == "clean"],
        "corrupt": [{"path": d.path, "max_episodes": d.episodes} for d in data if d.role == "corrupt"],
        "out": str(out), "config": to_dict(acfg),
        "threads": threads},
        resources={"num_cpus": cfg.executor.train_num_cpus,
                   "num_gpus": 0 if acfg.device == "cpu" else cfg.executor.train_num_gpus})


def _run_stage(executor, jobs: list[Job], stage: str, log, progress: bool = False) -> list[JobResult]:
    """Run one stage's jobs; failures are returned, Ctrl-C / SIGTERM propagate once the executor has
    stopped every job (closing the iterator is what stops them, also when the loop body raises).

    progress and parallel jobs: one status view (harness/study/progress.py) instead of a bar per job, for
    an engine whose `run` takes `on_status`; one job at a time keeps the jobs' own bars."""
    failed = []
    view = None
    if progress and len(jobs) > 1 and getattr(executor, "max_parallel", 2) > 1 \
            and "on_status" in inspect.signature(executor.run).parameters:
        view = StatusView(stage, [job.key for job in jobs], log=log)
    say = view.write if view is not None else log
    results = executor.run(jobs, on_status=view.update) if view is not None else executor.run(jobs)
    try:
        for result in results:
            if view is not None:
                view.update(result.key, "done" if result.ok else "failed")
            if result.ok:
                say(f"{stage:<10} done   {result.key} ({result.seconds:.0f} s)")
            else:
                say(f"{stage:<10} FAILED {result.key}: {result.error.splitlines()[0]}")
                failed.append(result)
    finally:
        getattr(results, "close", lambda: None)()
        if view is not None:
            view.close()
    stopped = next((r for r in failed if r.os_error), None)
    if stopped is not None:   # a full disk fails every later job too: stop, one line, exit 2 (work is kept)
        raise UserError(f"{stage}: {stopped.key}: {stopped.error}")
    return failed


def _check_datasets(cfg: StudyConfig) -> None:
    for d in cfg.datasets:
        if not Path(d.path).exists():
            raise DatasetError(d.path, None, f"dataset {d.name!r} does not exist (add `generate:` to make it)")
        n = EpisodeStore(d.path).n_episodes
        if d.episodes is not None and n < d.episodes:
            raise DatasetError(d.path, None, f"dataset {d.name!r} has {n} episodes, the study uses {d.episodes}")


def _check_devices(cfg: StudyConfig, plans: list[RunSpec]) -> None:
    """A training device this machine does not have fails now, not when the first run starts training
    (eval.device is checked when the config loads)."""
    for name in {p.train.device for p in plans}:
        try:
            resolve_device(name)
        except ConfigError as exc:
            raise ConfigError("experiment", "train.device", exc.problem) from None


def hold_study_lock(out: Path):
    """The study folder's lock, held while a command writes into it (a run, an import)."""
    return hold_lock(out / LOCK_FILE, f"{out}: another `cotrain compare` is running this study; wait for it")


def check_study_folder(out: Path) -> None:
    """A study writes only into a folder it made (one holding experiment.yaml) or a new one."""
    foreign = out.exists() and (not out.is_dir() or (any(p.name != LOCK_FILE for p in out.iterdir())
                                                     and not (out / "experiment.yaml").is_file()))
    if foreign:
        raise UserError(f"{out}: exists and is not a study folder (no experiment.yaml); choose another out_dir")
