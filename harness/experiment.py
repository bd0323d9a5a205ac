"""The comparison study: `cotrain compare EXPERIMENT.yaml`.

One YAML file names the datasets (and how many episodes of each to use), the methods with their settings,
the training seeds, the training budget and the evaluation. The study then
  1. makes sure every dataset exists with enough episodes (generating it with `cotrain gen-sim` /
     `cotrain gen-teleop` when asked; those resume, so an interrupted generation continues);
  2. runs the noise-level classifier once (`annotate`), shared by every run that needs sigma_min;
  3. trains and evaluates every (method, setting, training seed) in its own run folder; a run with a `done`
     marker is never recomputed, a half-finished one resumes (training from its latest checkpoint,
     evaluation from its trial log);
  4. writes the table (markdown + CSV) and the plots under results/<study>/.
Steps 1-3 are `Job`s handed to an executor (harness/executor.py), so a cluster engine can run them later.

Folder layout:
    results/<study>/experiment.yaml        the resolved study config
    results/<study>/annotations.zarr       (+ .accuracy.csv, plots) the shared classifier output
    results/<study>/runs/<label>/seed<k>/  run.json (what this run is), train/, eval/, result.json, done
    results/<study>/table.md, table.csv    success per method with Wilson intervals, McNemar vs baseline
    results/<study>/plots/*.png            success per method, success vs alpha, classifier accuracy,
                                           sigma_min histogram, action power spectra
Paths in the YAML are relative to the directory the command runs in.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.data.atomic import atomic_write_text
from harness.data.configs import from_dict, load_config, load_yaml, merge, save_config, to_dict
from harness.data.errors import ConfigError, DatasetError, UserError
from harness.executor import Job, JobResult, make_executor

# ---------------------------------------------------------------------------------------------------
# The study config


@dataclasses.dataclass
class GenerateSpec:
    kind: Literal["gcs", "teleop"]   # gcs: GCS plans replayed (gen-sim); teleop: scripted teleop (gen-teleop)
    num: int | None = None           # episodes to generate (default: the dataset's `episodes`)
    env: str | None = None           # physics preset (default: sim for gcs, target for teleop)
    seed: int = 0                    # first seed; episode k uses seed + k
    workers: int = 2                 # generator worker processes
    config: dict[str, Any] = dataclasses.field(default_factory=dict)  # generator config keys (GenSimConfig
                                     # or TeleopConfig), e.g. {replay: physics}


@dataclasses.dataclass
class StudyDataset:
    name: str                        # short name used in labels and plots
    path: str                        # dataset store (.zarr); generated first when missing and `generate` is set
    role: Literal["clean", "corrupt"]  # clean: target/real demos; corrupt: sim (GCS) demos
    episodes: int | None = None      # use the first N episodes (null = all)
    generate: GenerateSpec | None = None  # how to make it if it is missing or short


@dataclasses.dataclass
class MethodSpec:
    method: Literal["target_only", "cotrain", "ambient", "ambient_rescaled", "truncated"]  # objective.method
    label: str | None = None         # row name in the table (default: method and its settings)
    alphas: list[float | str] | None = None  # cotrain: one setting per P(clean); a number or "natural"
    # ambient / ambient_rescaled / truncated: sigma_n (sigma_min) of the corrupt data. A number: the same for
    # every corrupt dataset; per_dataset: one value per dataset, the median of the classifier's per-window
    # sigma_min over that dataset; per_datapoint: every window its own sigma_min from the classifier.
    sigma_min: float | Literal["per_dataset", "per_datapoint"] | None = None
    locality_sigma_max: float | None = None  # + locality: corrupt data also used below this sigma
    sigma_mixing: list[list[float]] | Literal["classifier"] | None = None  # alpha(sigma): [[sigma, alpha], ...]
    objective: dict[str, Any] = dataclasses.field(default_factory=dict)  # any other objective.* keys

    def __post_init__(self):
        if self.alphas is not None and self.method != "cotrain":
            raise ValueError(f"method {self.method}: alphas only apply to cotrain")
        needs_sigma = self.method in ("ambient", "ambient_rescaled", "truncated")
        if needs_sigma and self.sigma_min is None:
            raise ValueError(f"method {self.method} needs sigma_min (a number, per_dataset or per_datapoint)")
        if not needs_sigma and (self.sigma_min is not None or self.locality_sigma_max is not None):
            raise ValueError(f"method {self.method}: sigma_min/locality_sigma_max do not apply")
        for a in self.alphas or []:
            if isinstance(a, str) and a != "natural" or not isinstance(a, str) and not 0 <= a <= 1:
                raise ValueError(f"alphas must be numbers in [0, 1] or 'natural', got {a!r}")


@dataclasses.dataclass
class AnnotateSettings:
    enabled: bool = True             # run the classifier even if no method needs it (for the plots)
    config: str | None = None        # AnnotateConfig YAML; window sizes are taken from the train config
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # AnnotateConfig keys, e.g. steps


@dataclasses.dataclass
class EvalSettings:
    env: str = "target"              # physics preset the policies are scored in
    trials: int = 200                # start seeds seed .. seed + trials - 1, the same for every run
    seed: int = 100_000              # first start seed (keep clear of the datasets' seeds)
    time_limit: float | None = None  # seconds per trial (null: the task's 75 s)
    n_envs: int = 25                 # envs in lockstep per worker (batched inference)
    workers: int = 2                 # evaluation worker processes
    device: str = "cpu"              # torch device for inference
    record: int = 0                  # save the first N rollouts of each run as HTML + video


@dataclasses.dataclass
class ExecutorSettings:
    kind: Literal["local"] = "local"  # the engine that runs jobs (local processes for now)
    max_parallel: int = 1            # jobs at once (generation and evaluation already use `workers` processes)
    threads: int = 1                 # torch threads per training / classifier job; on a small CPU more threads
                                     # than free cores slow training down several times (measured 8x on 2 cores)


@dataclasses.dataclass
class StudyConfig:
    name: str                        # the study's name; results go to results/<name> by default
    datasets: list[StudyDataset]     # clean and corrupt datasets
    methods: list[MethodSpec]        # the variants compared
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])  # training seeds
    train_config: str | None = None  # base TrainConfig YAML (network size, budget, ...)
    train: dict[str, Any] = dataclasses.field(default_factory=dict)  # TrainConfig overrides for every run
    annotate: AnnotateSettings = dataclasses.field(default_factory=AnnotateSettings)
    eval: EvalSettings = dataclasses.field(default_factory=EvalSettings)
    baseline: str = "cotrain"        # the table's paired tests compare every row with this method/label
    out_dir: str | None = None       # default results/<name>
    executor: ExecutorSettings = dataclasses.field(default_factory=ExecutorSettings)
    spectra_window: int = 32         # control steps per window for the action power spectra

    def __post_init__(self):
        if not self.datasets:
            raise ValueError("datasets: list at least one dataset")
        if not any(d.role == "clean" for d in self.datasets):
            raise ValueError("datasets: need at least one clean dataset")
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"datasets: names must be unique, got {names}")
        if not self.methods:
            raise ValueError("methods: list at least one method")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: list distinct training seeds")
        if self.eval.trials < 1:
            raise ValueError("eval.trials must be >= 1")

    @property
    def out(self) -> Path:
        return Path(self.out_dir or f"results/{self.name}")


def load_study(path, overrides=()) -> StudyConfig:
    return load_config(StudyConfig, path, overrides)


# ---------------------------------------------------------------------------------------------------
# Runs: one per (method, setting, training seed)


@dataclasses.dataclass
class RunPlan:
    label: str                       # table row
    slug: str                        # folder name of the row
    method: str
    setting: str                     # "" or e.g. "alpha=0.5"
    alpha: float | None              # for the success-versus-alpha plot
    seed: int
    dir: Path
    train_config: dict               # resolved TrainConfig as a plain dict (out_dir set to <dir>/train)

    @property
    def key(self) -> str:
        return f"{self.slug}/seed{self.seed}"


def slugify(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=_-]+", "-", text.replace("=", "")).strip("-").lower()


def method_settings(m: MethodSpec, natural_alpha: float) -> list[tuple[str, float | None, dict]]:
    """(setting label, alpha for plots, objective dict) for each setting of one method entry."""
    obj = dict(m.objective)
    obj["method"] = m.method
    out = []
    if m.method == "cotrain":
        for a in (m.alphas or ["natural"]):
            o = {**obj, "alpha": a}
            setting = f"alpha={a}" if m.alphas else ""
            if m.sigma_mixing is not None:
                o["alpha_table"] = m.sigma_mixing
                setting = (setting + ", " if setting else "") + "sigma mixing"
            out.append((setting, None if m.sigma_mixing is not None else
                        (natural_alpha if a == "natural" else float(a)), o))
        return out
    if m.method == "target_only":
        return [("", None, obj)]
    parts = [f"sigma_min={m.sigma_min}" if not isinstance(m.sigma_min, str) else m.sigma_min.replace("_", "-")]
    if m.locality_sigma_max is not None:
        obj["locality_sigma_max"] = m.locality_sigma_max
        parts.append(f"locality<{m.locality_sigma_max:g}")
    if m.sigma_mixing is not None:
        obj["alpha_table"] = m.sigma_mixing
        parts.append("sigma mixing")
    return [(", ".join(parts), None, obj)]


def plan_runs(cfg: StudyConfig, annotations_path: Path | None, dry: bool = False) -> list[RunPlan]:
    """Every run of the study with its full, validated TrainConfig.

    dry: before the datasets and annotations exist, with stand-ins for the numbers that come from them
    (natural alpha, per-dataset sigma), so that a config error shows up before any compute.
    """
    from harness.train_config import TrainConfig

    base = load_yaml(cfg.train_config) if cfg.train_config else {}
    base = merge(base, cfg.train)
    if dry:
        natural, per_dataset = 0.5, {d.name: 1.0 for d in cfg.datasets}
    else:
        clean_eps = sum(_episodes_used(d) for d in cfg.datasets if d.role == "clean")
        corrupt_eps = sum(_episodes_used(d) for d in cfg.datasets if d.role == "corrupt")
        natural = clean_eps / max(clean_eps + corrupt_eps, 1)
        per_dataset = _per_dataset_sigma(cfg, annotations_path)
    plans, seen = [], set()
    for m in cfg.methods:
        for setting, alpha, objective in method_settings(m, natural):
            label = m.label or (f"{m.method} ({setting})" if setting else m.method)
            if label in seen:
                raise ConfigError("experiment", "methods", f"two entries give the row {label!r}; set `label`")
            seen.add(label)
            datasets = [{"path": d.path, "role": d.role, "max_episodes": d.episodes} for d in cfg.datasets]
            if m.sigma_min == "per_datapoint" or m.sigma_mixing == "classifier":
                if annotations_path is None:
                    raise ConfigError("experiment", "annotate.enabled",
                                      f"{label} needs the classifier's annotations; there is no corrupt dataset")
                objective["annotations"] = str(annotations_path)
            if m.sigma_min == "per_dataset":
                for spec, d in zip(datasets, cfg.datasets):
                    if d.role == "corrupt":
                        spec["sigma_min"] = per_dataset[d.name]
            elif isinstance(m.sigma_min, (int, float)):
                objective["sigma_min"] = float(m.sigma_min)
            slug = slugify(label)
            for seed in cfg.seeds:
                run_dir = cfg.out / "runs" / slug / f"seed{seed}"
                train = merge(base, {"seed": seed, "out_dir": str(run_dir / "train"),
                                     "data": {"datasets": datasets}, "objective": objective})
                tc = from_dict(TrainConfig, train, f"{cfg.name}: {label} seed {seed}")
                plans.append(RunPlan(label, slug, m.method, setting, alpha, seed, run_dir, to_dict(tc)))
    return plans


def _episodes_used(d: StudyDataset) -> int:
    if d.episodes is not None:
        return d.episodes
    from harness.data.store import EpisodeStore
    return EpisodeStore(d.path).n_episodes


def _per_dataset_sigma(cfg: StudyConfig, annotations_path: Path | None) -> dict[str, float]:
    """Median per-window sigma_min of each corrupt dataset ('never' counts as the top of the grid)."""
    if annotations_path is None or not any(m.sigma_min == "per_dataset" for m in cfg.methods):
        return {}
    from harness.annotations import read_annotations
    ann = read_annotations(annotations_path)
    out = {}
    for d in cfg.datasets:
        if d.role != "corrupt":
            continue
        found = ann.find(d.path)
        if found is None:
            raise DatasetError(annotations_path, None, f"no annotations for {d.path}")
        s = np.where(np.isfinite(found.sigma_min), found.sigma_min, ann.sigma_grid[-1])
        out[d.name] = float(np.median(s))
    return out


# ---------------------------------------------------------------------------------------------------
# Jobs (plain functions of JSON-able arguments: what an executor runs)


def generate_dataset_job(path: str, kind: str, num: int, env: str | None, seed: int, workers: int,
                         config: dict, progress: bool = True) -> dict:
    """Generate (or resume) a dataset with the generators' own functions (what gen-sim / gen-teleop run)."""
    if kind == "gcs":
        from gcs_planner.generate import GenSimConfig, run_generation
        cfg = from_dict(GenSimConfig, merge(config, {"num": num, "seed": seed, "env": env or "sim",
                                                     "workers": workers}), f"generate {path}")
        summary = run_generation(path, cfg, progress=progress)
        return {"path": path, "summary": str(summary)}
    from real_data.teleop.generate import generate
    from real_data.teleop.scripted import TeleopConfig
    cfg = from_dict(TeleopConfig, merge(config, {"env": env or "target"}), f"generate {path}")
    summary = generate(path, num, cfg, seed_start=seed, workers=workers, progress=progress)
    return {"path": path, "summary": summary.lines()}


def annotate_job(clean: list[str], corrupt: list[str], out: str, config: dict, threads: int | None = None) -> dict:
    """Train the noise-level classifier once and annotate the corrupt windows (skipped if `out` exists)."""
    from harness.classifier import AnnotateConfig, annotate, dataset_identity
    want = to_dict(from_dict(AnnotateConfig, config, out))
    if Path(out).exists():
        from harness.annotations import read_annotations
        attrs = read_annotations(out).attrs
        have = dict(attrs.get("config", {}))
        have.pop("progress", None), want.pop("progress", None)
        made_from = [attrs.get("clean_paths"), attrs.get("corrupt_paths")]
        wanted_from = [[dataset_identity(c, "clean") for c in clean], [dataset_identity(c, "corrupt") for c in corrupt]]
        if have != want or made_from != wanted_from:
            raise UserError(f"{out}: was made with another annotate config or other data; restore the experiment file or "
                            "delete it (and the runs that used it) to recompute")
        return {"path": out}
    _set_threads(threads)
    annotate(clean, corrupt, out, from_dict(AnnotateConfig, config, out))
    return {"path": out}


def train_eval_job(run_dir: str, train_config: dict, eval: dict, threads: int | None = None,
                   progress: bool = True) -> dict:
    """Train one run (resuming) and evaluate its final checkpoint (resuming); mark the run done."""
    from eval.evaluation import EvalSpec, run_eval
    from harness.train_config import TrainConfig
    from harness.training import train

    run_dir = Path(run_dir)
    if (run_dir / "done").exists():
        return json.loads((run_dir / "result.json").read_text())
    _set_threads(threads)
    started = time.perf_counter()
    cfg = from_dict(TrainConfig, train_config, str(run_dir / "run.json"))
    checkpoint = train(cfg)
    trained = time.perf_counter()
    spec = EvalSpec(checkpoint=str(checkpoint), env=eval["env"], trials=eval["trials"], seed=eval["seed"],
                    time_limit=eval["time_limit"])
    summary = run_eval(spec, run_dir / "eval", n_envs=eval["n_envs"], workers=eval["workers"],
                       device=eval["device"], record=eval["record"], progress=progress)
    result = {"checkpoint": str(checkpoint), "success": summary.to_dict()["success"],
              "train_seconds_last_session": round(trained - started, 1),
              "eval_seconds_last_session": round(time.perf_counter() - trained, 1)}
    atomic_write_text(run_dir / "result.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(run_dir / "done", "")
    return result


def _set_threads(threads: int | None) -> None:
    if threads:
        from eval.rollouts import limit_threads
        limit_threads(threads)


# ---------------------------------------------------------------------------------------------------
# The study


@dataclasses.dataclass
class StudyResult:
    out: Path
    table_markdown: str
    failed: list[JobResult]
    files: list[Path]


def run_study(cfg: StudyConfig, executor=None, progress: bool = True, log=print) -> StudyResult:
    """Run (or resume) the whole study and write its report; see the module docstring."""
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "experiment.yaml")
    executor = executor or make_executor(cfg.executor.kind, cfg.executor.max_parallel)
    t0 = time.perf_counter()

    # Config errors now, not after an hour of data generation.
    plan_runs(cfg, _annotations_path(cfg), dry=True)
    if _annotations_path(cfg) is not None:
        _annotate_job(cfg, _annotations_path(cfg))

    # 1. datasets
    gen_jobs = _generation_jobs(cfg, progress)
    failed = _run_stage(executor, gen_jobs, "datasets", log)
    if failed:
        return StudyResult(out, "", failed, [])
    _check_datasets(cfg)

    # 2. the shared classifier
    annotations = _annotations_path(cfg)
    if annotations is not None:
        failed = _run_stage(executor, [_annotate_job(cfg, annotations)], "annotate", log)
        if failed:
            return StudyResult(out, "", failed, [])

    # 3. runs
    plans = plan_runs(cfg, annotations)
    eval_identity = {k: getattr(cfg.eval, k) for k in ("env", "trials", "seed", "time_limit")}
    for plan in plans:
        _claim_run(plan, eval_identity)
    todo = [p for p in plans if not (p.dir / "done").exists()]
    log(f"runs       {len(plans)} in total, {len(plans) - len(todo)} finished, {len(todo)} to run")
    eval_kwargs = dataclasses.asdict(cfg.eval)
    threads = cfg.executor.threads
    jobs = [Job(f"train+eval {p.key}", "harness.experiment:train_eval_job",
                {"run_dir": str(p.dir), "train_config": p.train_config, "eval": eval_kwargs,
                 "threads": threads, "progress": progress}) for p in todo]
    failed = _run_stage(executor, jobs, "runs", log)

    # 4. report
    table, files = write_report(cfg, plans, annotations)
    log(f"study      {cfg.name}: {time.perf_counter() - t0:.0f} s this session; results in {out}")
    return StudyResult(out, table, failed, files)


def report_only(cfg: StudyConfig) -> StudyResult:
    """Rewrite the table and plots from the finished runs, computing nothing."""
    annotations = _annotations_path(cfg)
    if annotations is not None and not annotations.exists():
        annotations = None
    plans = plan_runs(cfg, annotations) if annotations is not None or not _needs_annotations(cfg) else []
    table, files = write_report(cfg, plans, annotations)
    return StudyResult(cfg.out, table, [], files)


def _needs_annotations(cfg: StudyConfig) -> bool:
    return any(m.sigma_min in ("per_dataset", "per_datapoint") or m.sigma_mixing == "classifier"
               for m in cfg.methods)


def write_report(cfg: StudyConfig, plans: list[RunPlan], annotations: Path | None) -> tuple[str, list[Path]]:
    """Table and plots from whatever runs have finished (all of them after a complete study)."""
    from eval.study_report import DatasetUse, collect_results, write_study_report

    results, missing = collect_results([{"label": p.label, "method": p.method, "setting": p.setting,
                                         "alpha": p.alpha, "seed": p.seed, "dir": p.dir} for p in plans])
    uses = [DatasetUse(d.name, d.path, d.role, d.episodes) for d in cfg.datasets]
    return write_study_report(cfg.out, results, uses, annotations, cfg.baseline, cfg.spectra_window,
                              title=f"study {cfg.name}", missing=missing)


def _run_stage(executor, jobs: list[Job], stage: str, log) -> list[JobResult]:
    failed = []
    for result in executor.run(jobs):
        if result.ok:
            log(f"{stage:<10} done   {result.key} ({result.seconds:.0f} s)")
        else:
            log(f"{stage:<10} FAILED {result.key}: {result.error.splitlines()[0]}")
            failed.append(result)
    return failed


def _generation_jobs(cfg: StudyConfig, progress: bool = True) -> list[Job]:
    from harness.data.store import EpisodeStore
    jobs = []
    for d in cfg.datasets:
        if d.generate is None:
            continue
        num = d.generate.num or d.episodes
        if num is None:
            raise ConfigError("experiment", f"datasets.{d.name}.generate.num", "say how many episodes to generate")
        if Path(d.path).exists() and EpisodeStore(d.path).n_episodes >= num:
            continue
        g = d.generate
        jobs.append(Job(f"generate {d.name}", "harness.experiment:generate_dataset_job",
                        {"path": d.path, "kind": g.kind, "num": num, "env": g.env, "seed": g.seed,
                         "workers": g.workers, "config": dict(g.config), "progress": progress}))
    return jobs


def _check_datasets(cfg: StudyConfig) -> None:
    from harness.data.store import EpisodeStore
    for d in cfg.datasets:
        if not Path(d.path).exists():
            raise DatasetError(d.path, None, f"dataset {d.name!r} does not exist (add `generate:` to make it)")
        n = EpisodeStore(d.path).n_episodes
        if d.episodes is not None and n < d.episodes:
            raise DatasetError(d.path, None, f"dataset {d.name!r} has {n} episodes, the study uses {d.episodes}")


def _annotations_path(cfg: StudyConfig) -> Path | None:
    if not any(d.role == "corrupt" for d in cfg.datasets):
        return None
    return cfg.out / "annotations.zarr" if (_needs_annotations(cfg) or cfg.annotate.enabled) else None


def _annotate_job(cfg: StudyConfig, out: Path) -> Job:
    """The classifier's windows must match the trainer's, so their sizes come from the train config."""
    from harness.classifier import AnnotateConfig
    from harness.train_config import TrainConfig

    base = merge(load_yaml(cfg.train_config) if cfg.train_config else {}, cfg.train)
    data = from_dict(TrainConfig, base, "experiment: train").data
    acfg = load_config(AnnotateConfig, cfg.annotate.config, base={
        **cfg.annotate.overrides, "n_obs": data.n_obs, "horizon": data.horizon, "n_action": data.n_action})
    return Job("annotate", "harness.experiment:annotate_job", {
        # the classifier sees the same first-N episodes that the runs train on
        "clean": [{"path": d.path, "max_episodes": d.episodes} for d in cfg.datasets if d.role == "clean"],
        "corrupt": [{"path": d.path, "max_episodes": d.episodes} for d in cfg.datasets if d.role == "corrupt"],
        "out": str(out), "config": to_dict(acfg), "threads": cfg.executor.threads})


def _claim_run(plan: RunPlan, eval_identity: dict) -> None:
    """Record what a run folder is for; refuse to reuse a folder made by a different config."""
    want = {"label": plan.label, "method": plan.method, "setting": plan.setting, "alpha": plan.alpha,
            "seed": plan.seed, "eval": eval_identity, "train_config": plan.train_config}
    path = plan.dir / "run.json"
    if path.is_file():
        have = json.loads(path.read_text())
        mine = json.loads(json.dumps(want, default=_json_default))
        if _identity(have) != _identity(mine):
            raise UserError(f"{plan.dir}: was made by a different experiment config (training or evaluation "
                            "settings differ); restore the experiment file, or delete the folder to recompute it")
        return
    atomic_write_text(path, json.dumps(want, indent=2, default=_json_default) + "\n")


# Settings that may change between sessions without changing a run's result.
_IGNORED_TRAIN_KEYS = {("run", "progress"), ("run", "compile"), ("run", "checkpoint_every")}


def _identity(run_json: dict) -> dict:
    train = json.loads(json.dumps(run_json.get("train_config", {})))
    for section, key in _IGNORED_TRAIN_KEYS:
        train.get(section, {}).pop(key, None)
    return {"train": train, "eval": run_json.get("eval")}


def _json_default(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return str(obj)
