"""The plan of a study: methods x settings x training seeds -> runs, each with its full, validated TrainConfig.

What a method row sweeps and needs is read from its class in harness/learning/methods.py (`sweeps_alpha`,
`needs_sigma_n`), never from its name, so a new method needs no change here.

A study row speaks of rows; the trainer's objective (train_config.ObjectiveConfig) of one run. The only
place one becomes the other is `method_settings` + `_rows` below:

    study row (MethodSpec)          objective of each run (ObjectiveConfig)
    alphas: [a, b, ...]             one row per entry, alpha: a   ("matched_to <row>": that run's realised
                                                                    clean fraction, same seed)
    sigma_mixing: classifier | [[sigma, alpha], ...]   alpha_table: the same
    sigma_n: per_datapoint          sigma_n: annotations, annotations: <the row's annotations store>
    sigma_n: per_dataset            data.datasets[corrupt].sigma_n: the dataset's rule from the store
    sigma_n: 0.1                    sigma_n: 0.1
    sigma_n: known                  sigma_n: the gaussian level its corrupt datasets were made with
                                    (`generate: {kind: corrupt}`; known_sigma_n)
    datasets: [names]               data.datasets: those datasets only (default: all)
    locality_sigma_max, objective   the same keys
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from eval.evaluation import EvalSettings
from harness.core.configs import from_dict, merge, to_dict
from harness.core.errors import ConfigError, DatasetError
from harness.core.store import open_group
from harness.learning.annotations import read_annotations
from harness.learning.methods import method_class
from harness.learning.normalizer import Affine, load_normalizer, same_affine
from harness.learning.train_config import SAMPLERS, TrainConfig
from harness.study.config import matched_label, MATCHED_TO, MethodSpec, StudyConfig
from harness.study.run_spec import RunFolder, RunSpec
from real_data.corruption.generate import GENERATOR

# The alpha a matched run is validated with while the run it is matched to has not finished (dry plans too).
MATCHED_STAND_IN = 0.5


@dataclasses.dataclass
class _Row:
    """One table row before its seeds are expanded."""
    label: str
    method: str
    setting: str
    alpha: float | None
    objective: dict
    datasets: list[dict]
    matched_to: str | None
    train: dict                      # the row's own TrainConfig overrides
    eval: dict                       # the row's own EvalSettings sampling keys (sampler, num_steps, visual)
    baseline: str | None
    seeds: list[int]                 # its training seeds


MAX_SLUG = 100    # characters of a run folder's name (a file name holds at most 255 bytes)


def slugify(text: str) -> str:
    """Letters, digits, `.`, `_` and `-`, in lower case: a label as a file name (see run_slug)."""
    return re.sub(r"[^A-Za-z0-9.=_-]+", "-", text.replace("=", "")).strip("-").lower()


def run_slug(label: str) -> str:
    """The one rule from a row label to the name of its run folder, runs/<slug>/seed<k>.

    A label it cannot map to a folder of its own inside runs/ is refused, in one line: one holding a
    control character (NUL, a newline: it would also be written into table.md, table.csv and the plots),
    one whose slug has no letter or digit (`***` maps to nothing, so two such rows would share runs/), one
    whose slug starts with a dot (`.` is runs/ itself, `..` the study folder) or is over MAX_SLUG long.
    Two rows with one slug are refused where the rows are listed (`_rows`), before any work."""
    if any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise ConfigError("experiment", "methods", f"row label {label!r} holds a control character; use "
                          "letters, digits and punctuation")
    slug = slugify(label)
    if not re.search(r"[a-z0-9]", slug) or slug.startswith("."):
        raise ConfigError("experiment", "methods", f"row label {label!r} gives no usable run folder name "
                          f"({slug!r}); use a label with a letter or digit that does not start with '.'")
    if len(slug) > MAX_SLUG:
        raise ConfigError("experiment", "methods", f"row label {label[:40]!r}...: longer than {MAX_SLUG} "
                          "characters as a run folder name; use a shorter label")
    return slug


def method_settings(m: MethodSpec) -> list[tuple[str, float | None, dict]]:
    """(setting label, alpha for plots, objective dict) for each setting of one method entry. A natural
    alpha is None here: the trainer measures it (train_summary.json alpha_natural; study/report.py)."""
    cls = method_class(m.method)
    obj = {**m.objective, "method": m.method}
    mixing = ["sigma mixing"] if m.sigma_mixing is not None else []
    if m.sigma_mixing is not None:
        obj["alpha_table"] = m.sigma_mixing
    if cls.sweeps_alpha:
        out = []
        for a in (m.alphas or ["natural"]):
            target = matched_label(a)
            shown = f"matched to {target}" if target else a
            setting = ", ".join(([f"alpha={shown}"] if m.alphas else []) + mixing)
            # a matched alpha is known per seed only once the named run has finished (plan_runs)
            alpha = None if mixing or target or a == "natural" else float(a)
            out.append((setting, alpha, {**obj, "alpha": a}))
        return out
    if not cls.needs_sigma_n:
        return [("", cls.fixed_alpha if cls.fixed_alpha is not None and not mixing else None, obj)]
    parts = [f"sigma_n={m.sigma_n}" if not isinstance(m.sigma_n, str) else m.sigma_n.replace("_", "-")]
    if m.locality_sigma_max is not None:
        obj["locality_sigma_max"] = m.locality_sigma_max
        parts.append(f"locality<{m.locality_sigma_max:g}")
    return [(", ".join(parts + mixing), None, obj)]


def plan_runs(cfg: StudyConfig, annotations_path: Path | None, dry: bool = False) -> list[RunSpec]:
    """Every run of the study with its full, validated TrainConfig.

    dry: before the datasets and annotations exist, with stand-ins for the numbers that come from them
    (per-dataset sigma_n), so that a config error shows up before any compute. A matched
    row's runs (alphas "matched_to <label>") have a stand-in alpha and `pending` set until the named row's
    run of the same seed has finished training; the runner trains them in a second wave.
    Every run normalizes with the study's one normalizer (cfg.normalizer_path; it need not exist yet).
    """
    _refuse_run_keys(cfg)
    base = with_snapshots(cfg, cfg.train_base())
    per_dataset = {d.name: 1.0 for d in cfg.datasets} if dry else per_dataset_sigma_n(cfg, annotations_path)
    rows = _rows(cfg, per_dataset, annotations_path, dry)
    _check_matched(rows)
    # every row's first seed, then every row's second seed, ...: one seed of the whole table comes first
    depth = max(len(row.seeds) for row in rows)
    plans = [_run_plan(cfg, base, row, row.seeds[i]) for i in range(depth) for row in rows if i < len(row.seeds)]
    return with_matched_alphas(cfg, share_training(plans))


def share_training(plans: list[RunSpec]) -> list[RunSpec]:
    """A run whose TrainConfig equals an earlier run's in everything but its out_dir is not trained again:
    it evaluates that run's weights (trained_by). Rows that differ only in how they are evaluated (a row's
    `eval`, e.g. DDIM-16 beside DDPM-100) so cost one training, and their pairs differ in the sampler alone.

    Not for matched runs (their alpha, so their config, is known only later), and not for a run whose own
    train/ folder exists already (made before this rule): it keeps its own weights, and its run.json."""
    owners: dict[str, RunSpec] = {}
    shared = []
    for p in plans:
        if p.matched_to is not None:
            shared.append(p)
            continue
        owner = owners.setdefault(json.dumps({**to_dict(p.train), "out_dir": None}, sort_keys=True), p)
        if owner is p or p.folder.train.exists():
            shared.append(p)
            continue
        shared.append(dataclasses.replace(p, train=dataclasses.replace(p.train, out_dir=owner.train.out_dir),
                                          trained_by=owner.key))
    return shared


# TrainConfig keys the study sets for each run, so an experiment's own value would be silently replaced
RUN_KEYS = {"seed": "list training seeds in `seeds` (or a row's `seeds`)",
            "out_dir": "the study writes each run to <out_dir>/runs/<label>/seed<k>; set the study's `out_dir`"}


def _refuse_run_keys(cfg: StudyConfig) -> None:
    """An experiment's `train` (or a row's) giving a key the study sets per run is refused, naming it (a
    train_config file may hold them: that file is shared with `cotrain train`)."""
    places = [("train", cfg.train)] + [(f"methods[{i}].train", m.train) for i, m in enumerate(cfg.methods)]
    for where, train in places:
        for key, instead in RUN_KEYS.items():
            if key in train:
                raise ConfigError("experiment", f"{where}.{key}", f"is set by the study for each run: {instead}")


def _run_plan(cfg: StudyConfig, base: dict, row: _Row, seed: int) -> RunSpec:
    """One run: the row's objective and data at one training seed, its TrainConfig validated; a matched
    row's alpha is the named row's realised clean fraction at this seed (a stand-in until it exists)."""
    slug = run_slug(row.label)
    folder = RunFolder.of(cfg.out, slug, seed)
    objective, alpha, pending = row.objective, row.alpha, row.matched_to is not None
    if pending:   # validated with a stand-in alpha; with_matched_alpha puts in the real one once it is known
        alpha = MATCHED_STAND_IN
        objective = {**objective, "alpha": alpha}
    train = merge(merge(base, row.train), {"seed": seed, "out_dir": str(folder.train), "objective": objective,
                                           "data": {"datasets": row.datasets, "normalizer": str(cfg.normalizer_path)}})
    tc = from_dict(TrainConfig, train, f"experiment: {row.label!r} seed {seed}")
    return RunSpec(row.label, slug, row.method, row.setting, alpha, seed, folder, tc, _row_eval(cfg, row, tc),
                   row.matched_to, pending, row.baseline)


def _row_eval(cfg: StudyConfig, row: _Row, train: TrainConfig) -> EvalSettings:
    """The study's evaluation with the row's own sampling keys on top (a sampler of its formulation)."""
    if not row.eval:
        return cfg.eval
    try:
        settings = dataclasses.replace(cfg.eval, **row.eval)
    except (TypeError, ValueError) as exc:
        raise ConfigError("experiment", "methods", f"{row.label}: eval: {exc}") from None
    samplers = SAMPLERS[train.diffusion.kind]
    if settings.sampler is not None and settings.sampler not in samplers:
        raise ConfigError("experiment", "methods", f"{row.label}: eval.sampler {settings.sampler!r} is not a "
                          f"sampler of diffusion.kind {train.diffusion.kind} ({', '.join(samplers)})")
    return settings


def with_matched_alphas(cfg: StudyConfig, plans: list[RunSpec]) -> list[RunSpec]:
    """The plan again with every pending matched run's alpha put in where the run it is matched to has
    finished training since: the runner's second wave (the matched-alpha controls), without planning anew."""
    summaries = {(p.label, p.seed): p.train_summary for p in plans}
    return [with_matched_alpha(p, summaries[(p.matched_to, p.seed)])
            if p.pending and (p.matched_to, p.seed) in summaries else p for p in plans]


def with_matched_alpha(spec: RunSpec, summary: Path) -> RunSpec:
    """A matched run with its alpha: the named row's realised clean fraction at the same seed (its training's
    `summary`); unchanged (still pending, with the stand-in alpha) while that run has not finished training."""
    fraction = realised_clean_fraction(summary)
    if fraction is None:
        return spec
    train = dataclasses.replace(spec.train, objective=dataclasses.replace(spec.train.objective, alpha=fraction))
    return dataclasses.replace(spec, alpha=fraction, setting=f"alpha={fraction:.4f} (matched to {spec.matched_to})",
                               train=train, pending=False)


def with_snapshots(cfg: StudyConfig, base: dict) -> dict:
    """The study's train settings plus run.snapshot_every when a checkpoint protocol needs policy snapshots
    (eval.checkpoints last_k / every); refused when no snapshot would come before the final checkpoint."""
    if cfg.eval.checkpoints == "final":
        return base
    steps = from_dict(TrainConfig, base, "experiment: train").run.steps
    if cfg.eval.snapshot_every >= steps:
        raise ConfigError("experiment", "eval.snapshot_every", f"must be < run.steps = {steps}, or no "
                          f"checkpoint but the final one is left to select from; got {cfg.eval.snapshot_every}")
    return merge(base, {"run": {"snapshot_every": cfg.eval.snapshot_every}})


def realised_clean_fraction(path: Path) -> float | None:
    """The overall realised clean fraction of a finished training (its train_summary.json); None before."""
    if not path.is_file():
        return None
    try:
        return float(json.loads(path.read_text())["clean_fraction"])
    except (ValueError, KeyError, TypeError):
        raise DatasetError(path, "clean_fraction", "unreadable; delete the run folder to retrain it") from None


def _check_matched(rows: list[_Row]) -> None:
    """A matched row names another row of the study, which is not itself matched (one line otherwise)."""
    by_label = {row.label: row for row in rows}
    for row in rows:
        if row.matched_to is None:
            continue
        target = by_label.get(row.matched_to)
        if target is None:
            raise ConfigError("experiment", "methods", f"{row.label}: '{MATCHED_TO} {row.matched_to}' names no "
                              f"row of the study; rows: {', '.join(repr(r) for r in by_label)}")
        if target.matched_to is not None:
            raise ConfigError("experiment", "methods", f"{row.label}: '{MATCHED_TO} {row.matched_to}' names a "
                              "matched row; name a row with its own alpha")


def _rows(cfg: StudyConfig, per_dataset: dict, annotations_path: Path | None,
          dry: bool = False) -> list[_Row]:
    """Every table row: label, setting, objective and datasets of each setting of each method entry."""
    rows, seen, slugs = [], set(), {}
    for m in cfg.methods:
        for setting, alpha, objective in method_settings(m):
            label = m.label or (f"{m.method} ({setting})" if setting else m.method)
            if label in seen:
                raise ConfigError("experiment", "methods", f"two entries give the row {label!r}; set `label`")
            slug = run_slug(label)
            if slug in slugs:   # one run folder for two rows
                raise ConfigError("experiment", "methods", f"rows {slugs[slug]!r} and {label!r} share the "
                                  f"run folder runs/{slug}; make the labels differ in a letter or digit")
            seen.add(label)
            slugs[slug] = label
            used = [d for d in cfg.datasets if m.datasets is None or d.name in m.datasets]   # the row's data
            datasets = [{"path": d.path, "role": d.role, "max_episodes": d.episodes} for d in used]
            # a row with its own annotate settings reads its own store; every other row the shared one
            row_annotations = cfg.row_annotations_path(m) if m.annotate or m.datasets is not None else annotations_path
            if m.sigma_n == "per_datapoint" or m.sigma_mixing == "classifier":
                if row_annotations is None:
                    raise ConfigError("experiment", "annotate.enabled",
                                      f"{label} needs the classifier's annotations; there is no corrupt dataset")
                objective["annotations"] = str(row_annotations)
            # Where sigma_n goes: one number in the objective, per window from the annotations, or one
            # value per corrupt dataset (harness.learning.training_data reads exactly one of these).
            if m.sigma_n == "per_datapoint":
                objective["sigma_n"] = "annotations"
            elif m.sigma_n == "per_dataset":
                values = per_dataset if row_annotations == annotations_path or dry \
                    else per_dataset_sigma_n(cfg, row_annotations, used)
                for spec, d in zip(datasets, used):
                    if d.role == "corrupt":
                        spec["sigma_n"] = values[d.name]
            elif m.sigma_n == "known":
                levels = {d.name: known_sigma_n(cfg, d, label, dry) for d in used if d.role == "corrupt"}
                if not levels:
                    raise ConfigError("experiment", "methods", f"{label}: sigma_n: known needs a corrupt dataset")
                if len(set(levels.values())) == 1:      # one level: a number, as a row with a fixed sigma_n
                    objective["sigma_n"] = next(iter(levels.values()))
                else:                                    # several: each corrupt dataset its own
                    for spec, d in zip(datasets, used):
                        if d.role == "corrupt":
                            spec["sigma_n"] = levels[d.name]
            elif m.sigma_n is not None:
                objective["sigma_n"] = float(m.sigma_n)
            matched_to = matched_label(objective.get("alpha"))
            rows.append(_Row(label, m.method, setting, alpha, objective, datasets, matched_to, m.train, m.eval,
                             m.baseline, m.seeds or cfg.seeds))
    by_label = {row.label: row for row in rows}
    study_base = by_label.get(cfg.baseline) or next((r for r in rows if r.method == cfg.baseline), None)
    if study_base is None and cfg.baseline != StudyConfig.baseline:   # the default may be absent: no pairs
        raise ConfigError("experiment", "baseline", f"{cfg.baseline!r} names no row or method of the study; rows: "
                          f"{', '.join(repr(r.label) for r in rows)}")
    for row in rows:
        if row.baseline is not None and row.baseline not in by_label:
            raise ConfigError("experiment", "methods", f"{row.label}: baseline {row.baseline!r} names no row of the "
                              f"study; rows: {', '.join(repr(r.label) for r in rows)}")
        base = by_label[row.baseline] if row.baseline is not None else study_base
        missing = [s for s in row.seeds if base is not None and s not in base.seeds]
        if missing:
            raise ConfigError("experiment", "methods", f"{row.label}: its baseline {base.label!r} has no run at "
                              f"training seed(s) {missing}; give the baseline those seeds too")
    return rows


def known_sigma_n(cfg: StudyConfig, d, label: str, dry: bool = False) -> float:
    """The level of a corrupt dataset made by `cotrain corrupt --transform gaussian` (its `generate` spec,
    and the generator record of its store once it exists): there sigma_n is known, not estimated.

    The level is in the action units the store records; a study whose normalizer's action fit differs
    (another `data.normalizer_mode`) would read it as another noise, so that is refused in one line.
    """
    g = d.generate
    record = None
    if Path(d.path).exists():
        record = dict(open_group(d.path).attrs).get("generator")
    elif g is None and dry:
        return 1.0   # a stand-in: the store must exist before the runs (runner._check_datasets)
    spec = {"generator": GENERATOR, "transform": g.transform, "level": g.level} \
        if g is not None and g.kind == "corrupt" else None
    made = record if isinstance(record, dict) and record.get("generator") == GENERATOR else spec
    if made is None or made.get("transform") != "gaussian":
        what = "not made by `cotrain corrupt`" if made is None else f"made by the {made.get('transform')} transform"
        raise ConfigError("experiment", "methods", f"{label}: sigma_n: known needs corrupt datasets made by "
                          f"`corrupt --transform gaussian`; {d.name} is {what}")
    if spec is not None and record is not None and float(record.get("level", -1)) != float(spec["level"]):
        raise DatasetError(d.path, "attrs.generator.level", f"is {record.get('level')}, the study says "
                           f"{spec['level']}; use another path for another level")
    if not dry and record is not None and cfg.normalizer_path.is_file():
        if not same_affine(load_normalizer(cfg.normalizer_path).action, Affine.from_state(record["units"])):
            raise ConfigError("experiment", "methods", f"{label}: sigma_n: known: {d.name}'s level is in other "
                              f"action units than {cfg.normalizer_path} (the study fits actions another way); "
                              "give the row a numeric sigma_n instead")
    return float(made["level"])


def per_dataset_sigma_n(cfg: StudyConfig, annotations_path: Path | None, datasets=None) -> dict[str, float]:
    """Each corrupt dataset's sigma_n by the per-dataset rule of the annotations (harness/learning/sigma_n_rule.py:
    the first grid sigma where its held-out accuracy against the clean data is within tol of chance)."""
    if annotations_path is None or not any(m.sigma_n == "per_dataset" for m in cfg.methods):
        return {}
    ann = read_annotations(annotations_path)
    out = {}
    for d in cfg.datasets if datasets is None else datasets:   # (a row's own store: its row's datasets)
        if d.role != "corrupt":
            continue
        found = ann.find(d.path)
        if found is None:
            raise DatasetError(annotations_path, None, f"no annotations for {d.path}")
        if found.sigma_n_dataset is None or not np.isfinite(found.sigma_n_dataset):
            raise DatasetError(annotations_path, f"corrupt/{d.name}",
                               "the classifier tells this dataset from the clean data at every grid sigma "
                               "(per-dataset sigma_n: never); raise annotate sigma_hi or drop sigma_n: per_dataset")
        out[d.name] = float(found.sigma_n_dataset)
    return out
