"""The plan of a study: methods x settings x training seeds -> runs, each with its full, validated TrainConfig.

What a method row sweeps and needs is read from its class in harness/methods.py (`sweeps_alpha`,
`needs_sigma_n`), never from its name, so a new method needs no change here.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from harness.data.configs import from_dict, load_yaml, merge, to_dict
from harness.data.errors import ConfigError, DatasetError
from harness.methods import method_class
from harness.study.config import MethodSpec, StudyConfig, StudyDataset


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
    cls = method_class(m.method)
    obj = {**m.objective, "method": m.method}
    mixing = ["sigma mixing"] if m.sigma_mixing is not None else []
    if m.sigma_mixing is not None:
        obj["alpha_table"] = m.sigma_mixing
    if cls.sweeps_alpha:
        out = []
        for a in (m.alphas or ["natural"]):
            setting = ", ".join(([f"alpha={a}"] if m.alphas else []) + mixing)
            alpha = None if mixing else (natural_alpha if a == "natural" else float(a))
            out.append((setting, alpha, {**obj, "alpha": a}))
        return out
    if not cls.needs_sigma_n:
        return [("", cls.fixed_alpha if cls.fixed_alpha is not None and not mixing else None, obj)]
    parts = [f"sigma_n={m.sigma_n}" if not isinstance(m.sigma_n, str) else m.sigma_n.replace("_", "-")]
    if m.locality_sigma_max is not None:
        obj["locality_sigma_max"] = m.locality_sigma_max
        parts.append(f"locality<{m.locality_sigma_max:g}")
    return [(", ".join(parts + mixing), None, obj)]


def plan_runs(cfg: StudyConfig, annotations_path: Path | None, dry: bool = False) -> list[RunPlan]:
    """Every run of the study with its full, validated TrainConfig.

    dry: before the datasets and annotations exist, with stand-ins for the numbers that come from them
    (natural alpha, per-dataset sigma_n), so that a config error shows up before any compute.
    """
    from harness.train_config import TrainConfig

    base = merge(load_yaml(cfg.train_config) if cfg.train_config else {}, cfg.train)
    if dry:
        natural, per_dataset = 0.5, {d.name: 1.0 for d in cfg.datasets}
    else:
        clean_eps = sum(episodes_used(d) for d in cfg.datasets if d.role == "clean")
        corrupt_eps = sum(episodes_used(d) for d in cfg.datasets if d.role == "corrupt")
        natural = clean_eps / max(clean_eps + corrupt_eps, 1)
        per_dataset = per_dataset_sigma_n(cfg, annotations_path)
    plans, seen = [], set()
    for m in cfg.methods:
        for setting, alpha, objective in method_settings(m, natural):
            label = m.label or (f"{m.method} ({setting})" if setting else m.method)
            if label in seen:
                raise ConfigError("experiment", "methods", f"two entries give the row {label!r}; set `label`")
            seen.add(label)
            datasets = [{"path": d.path, "role": d.role, "max_episodes": d.episodes} for d in cfg.datasets]
            if m.sigma_n == "per_datapoint" or m.sigma_mixing == "classifier":
                if annotations_path is None:
                    raise ConfigError("experiment", "annotate.enabled",
                                      f"{label} needs the classifier's annotations; there is no corrupt dataset")
                objective["annotations"] = str(annotations_path)
            # Where sigma_n goes: one number in the objective, per window from the annotations, or one
            # value per corrupt dataset (harness.training_data reads exactly one of these).
            if m.sigma_n == "per_datapoint":
                objective["sigma_n"] = "annotations"
            elif m.sigma_n == "per_dataset":
                for spec, d in zip(datasets, cfg.datasets):
                    if d.role == "corrupt":
                        spec["sigma_n"] = per_dataset[d.name]
            elif m.sigma_n is not None:
                objective["sigma_n"] = float(m.sigma_n)
            slug = slugify(label)
            for seed in cfg.seeds:
                run_dir = cfg.out / "runs" / slug / f"seed{seed}"
                train = merge(base, {"seed": seed, "out_dir": str(run_dir / "train"),
                                     "data": {"datasets": datasets}, "objective": objective})
                tc = from_dict(TrainConfig, train, f"{cfg.name}: {label} seed {seed}")
                plans.append(RunPlan(label, slug, m.method, setting, alpha, seed, run_dir, to_dict(tc)))
    return plans


def episodes_used(d: StudyDataset) -> int:
    if d.episodes is not None:
        return d.episodes
    from harness.data.store import EpisodeStore
    return EpisodeStore(d.path).n_episodes


def per_dataset_sigma_n(cfg: StudyConfig, annotations_path: Path | None) -> dict[str, float]:
    """Median per-window sigma_n of each corrupt dataset ('never' counts as the top of the grid)."""
    if annotations_path is None or not any(m.sigma_n == "per_dataset" for m in cfg.methods):
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
        s = np.where(np.isfinite(found.sigma_n), found.sigma_n, ann.sigma_grid[-1])
        out[d.name] = float(np.median(s))
    return out
