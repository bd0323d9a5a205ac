"""The study config: one typed dataclass tree loaded from the experiment YAML (with key=value overrides)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Literal

from eval.evaluation import EvalSettings, check_preset
from harness.core.configs import MAX_SEED, check_bounds, key, load_config, load_yaml, merge
from harness.learning.methods import METHODS, Cotrain, method_class


MAX_SPECTRA_WINDOW = 750   # control steps: one whole episode of the task's 75 s time limit


@dataclasses.dataclass
class GenerateSpec:
    kind: Literal["gcs", "teleop", "corrupt"] = key(doc="gcs: GCS plans replayed (gen-sim); teleop: scripted "
                                                    "teleop (gen-teleop); corrupt: a corrupt copy of another dataset "
                                                    "(`cotrain corrupt`)")
    num: int | None = key(None, doc="episodes the store holds when done (default: the dataset's `episodes`)")
    env: str | None = key(None, doc="physics preset (default: sim for gcs, target for teleop)")
    seed: int = key(0, bound=(0, None), doc="first seed; seeds seed, seed + 1, ... are tried in order")
    workers: int = key(2, bound=(1, None), doc="generator worker processes")
    config: dict[str, Any] = key(factory=dict, doc="generator config keys (GenSimConfig, TeleopConfig or "
                                 "CorruptConfig), e.g. {replay: physics}, {cutoff_hz: 1.0}")
    from_: str | None = key(None, doc="corrupt: the dataset (its name) whose first `num` episodes are corrupted "
                            "(YAML key `from`)")
    transform: str | None = key(None, doc="corrupt: gaussian | jitter | drift | latency | bias (docs/objectives.md "
                                "§16)")
    level: float | None = key(None, doc="corrupt: in the study normalizer's action units (latency: control steps)")
    ALIASES: ClassVar[dict] = {"from": "from_"}   # the YAML key `from` is a Python keyword

    def __post_init__(self):
        corrupt = {"from": self.from_, "transform": self.transform, "level": self.level}
        if self.kind == "corrupt":
            missing = [k for k, v in corrupt.items() if v is None]
            if missing:
                raise ValueError(f"kind corrupt needs {', '.join(missing)}")
            if self.env is not None:
                raise ValueError("env: a corrupt copy keeps its source's env; leave env out")
        elif any(v is not None for v in corrupt.values()):
            raise ValueError(f"from, transform and level apply to kind corrupt only, not {self.kind}")
        if self.num is not None and self.num < 1:
            raise ValueError(f"num must be >= 1 (or null), got {self.num}")
        check_bounds(self)   # seed, workers (the key is named by where the spec sits)
        if self.env is not None:
            check_preset(self.env, "env")


@dataclasses.dataclass
class StudyDataset:
    name: str = key(doc="short name used in labels and plots")
    path: str = key(doc="dataset store (.zarr); generated first when missing and `generate` is set")
    role: Literal["clean", "corrupt"] = key(doc="clean: target/real demos; corrupt: sim (GCS) demos")
    episodes: int | None = key(None, doc="use the first N episodes (null = all)")
    generate: GenerateSpec | None = key(None, doc="how to make it if it is missing or short")

    def __post_init__(self):
        if self.episodes is not None and self.episodes < 1:
            raise ValueError(f"dataset {self.name!r}: episodes must be >= 1 (or null = all), got {self.episodes}")


# alphas entry "matched_to <label>": alpha = the realised clean fraction of row <label> (same seed).
MATCHED_TO = "matched_to"


def matched_label(alpha) -> str | None:
    """The row label a "matched_to <label>" alpha names; None for a number, "natural" or anything else."""
    if not isinstance(alpha, str) or not alpha.startswith(MATCHED_TO + " "):
        return None
    return alpha[len(MATCHED_TO) + 1:].strip() or None


@dataclasses.dataclass
class MethodSpec:
    method: str = key(doc="a name in harness.learning.methods.METHODS (objective.method)")
    label: str | None = key(None, doc="row name in the table (default: method and its settings)")
    alphas: list[float | str] | None = key(None, doc="methods that sweep alpha (cotrain): one row per P(clean); a "
                                           "number, \"natural\", or \"matched_to <label>\": the realised clean "
                                           "fraction of that row's run of the same seed (the matched-alpha control)")
    # methods that need sigma_n (truncated, ambient, ambient_rescaled): the corrupt data's noise level.
    # A number: the same for every corrupt dataset; per_dataset: one value per dataset, where its held-out
    # classifier accuracy reaches chance (harness/learning/sigma_n_rule.py); per_datapoint: every window its own.
    # known: each corrupt dataset's own level, from its gaussian `cotrain corrupt` record (the ambient
    # assumption holds exactly there).
    sigma_n: float | Literal["per_dataset", "per_datapoint", "known"] | None = key(None, doc="the corrupt data's "
                                     "noise level (methods that need it): a number, per_dataset (where the classifier "
                                     "reaches chance), per_datapoint (each window its own) or known (its corrupt "
                                     "record)")
    locality_sigma_max: float | None = key(None, doc="+ locality: corrupt data also used below this sigma")
    sigma_mixing: list[list[float]] | Literal["classifier"] | None = key(None, doc="alpha(sigma): [[sigma, alpha], "
                                                                        "...] or classifier")
    objective: dict[str, Any] = key(factory=dict, doc="any other objective.* keys")
    train: dict[str, Any] = key(factory=dict, doc="TrainConfig overrides of this row alone, on top of the study's "
                                "train (e.g. {diffusion: {kind: ddpm}}); needs a label")
    baseline: str | None = key(None, doc="the row label this row is paired with (default: the study's baseline), "
                               "e.g. the cotrain row of the same formulation")
    annotate: dict[str, Any] = key(factory=dict, doc="AnnotateConfig overrides of this row's own classifier (on top "
                                   "of the study's annotate); its sigma_n then come from its own store, "
                                   "annotations-<overrides>.zarr; needs a label")
    seeds: list[int] | None = key(None, doc="training seeds of this row alone (default: the study's seeds), e.g. "
                                  "more seeds for the rows that decide; its baseline row needs each of them")
    datasets: list[str] | None = key(None, doc="the datasets (names) this row trains on (default: all of them), "
                                     "e.g. an oracle row on the clean source of a corrupt dataset instead of the copy")
    eval: dict[str, Any] = key(factory=dict, doc="how this row alone samples its policy in evaluation: "
                               "EvalSettings sampling keys (sampler, num_steps, visual), e.g. {sampler: ddim, "
                               "num_steps: 16}; a row whose training equals another row's evaluates those weights; "
                               "needs a label")
    RENAMED: ClassVar[dict] = {"sigma_min": "sigma_n"}

    def __post_init__(self):
        if (self.train or self.annotate or self.eval) and not self.label:
            raise ValueError(f"method {self.method}: a row with its own train, annotate or eval settings needs a label")
        other = sorted(set(self.eval) - set(EvalSettings.SAMPLING_KEYS))
        if other:   # every row is scored on the same start seeds, in the same env: the pairs need that
            raise ValueError(f"method {self.method}: eval.{other[0]}: a row's eval may set only "
                             f"{', '.join(EvalSettings.SAMPLING_KEYS)}; the rest is the study's `eval`, the same for "
                             "every row so that trials pair")
        if "objective" in self.train:
            raise ValueError(f"method {self.method}: set objective keys in `objective`, not in `train`")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        cls = method_class(self.method)
        if self.alphas is not None and not cls.sweeps_alpha:
            raise ValueError(f"method {self.method}: alphas only apply to {Cotrain.name}")
        if cls.needs_sigma_n and self.sigma_n is None:
            raise ValueError(f"method {self.method} needs sigma_n (a number, per_dataset, per_datapoint or known)")
        if not cls.needs_sigma_n and (self.sigma_n is not None or self.locality_sigma_max is not None):
            raise ValueError(f"method {self.method}: sigma_n/locality_sigma_max do not apply")
        for a in self.alphas or []:
            if isinstance(a, str) and a != "natural" and matched_label(a) is None \
                    or not isinstance(a, str) and not 0 <= a <= 1:
                raise ValueError(f"alphas must be numbers in [0, 1], 'natural' or '{MATCHED_TO} <row label>', "
                                 f"got {a!r}")
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise ValueError(f"method {self.method}: seeds: list distinct training seeds, got {self.seeds}")
        if self.annotate and not self.uses_classifier:
            raise ValueError(f"method {self.method}: annotate settings of a row need a row that uses the classifier "
                             "(sigma_n per_datapoint or per_dataset, or sigma_mixing classifier)")
        if self.sigma_mixing is not None and any(matched_label(a) for a in self.alphas or []):
            raise ValueError(f"method {self.method}: '{MATCHED_TO}' sets one alpha, sigma_mixing sets alpha(sigma); "
                             "use one")

    @property
    def uses_classifier(self) -> bool:
        return self.sigma_n in ("per_dataset", "per_datapoint") or self.sigma_mixing == "classifier"



@dataclasses.dataclass
class AnnotateSettings:
    enabled: bool = key(True, doc="run the classifier even if no method needs it (for the plots)")
    config: str | None = key(None, doc="AnnotateConfig YAML; window sizes are taken from the train config")
    overrides: dict[str, Any] = key(factory=dict, doc="AnnotateConfig keys, e.g. steps")


@dataclasses.dataclass
class ExecutorSettings:
    kind: Literal["local", "ray"] = key("local", doc="the engine that runs jobs: local processes, or Ray tasks")
    address: str | None = key(None, doc="ray: null starts a local Ray, \"auto\" joins a running cluster, or "
                              "\"host:port\"")
    max_parallel: int = key(1, bound=(1, None), doc="jobs at once (generation and evaluation already use `workers` "
                            "processes)")
    threads: int = key(1, doc="torch threads per training / classifier job (a lone classifier: max_parallel x "
                       "threads); on a small CPU more threads than free cores slow training down several times "
                       "(measured 8x on 2 cores)")
    train_num_gpus: float = key(0, doc="ray: GPUs per train+eval job; a fraction (0.25) lets runs share one GPU")
    train_num_cpus: float = key(1, doc="ray: CPUs per train+eval job (eval jobs also ask for eval.workers CPUs)")

    def __post_init__(self):
        check_bounds(self, "executor")   # max_parallel
        if self.threads < 0:
            raise ValueError(f"executor.threads must be >= 0 (0 = torch's default), got {self.threads}")
        if self.train_num_gpus < 0 or self.train_num_cpus < 0:
            raise ValueError(f"executor.train_num_gpus and train_num_cpus must be >= 0, got "
                             f"{self.train_num_gpus} and {self.train_num_cpus}")


@dataclasses.dataclass
class StudyConfig:
    name: str = key(doc="the study's name; results go to results/<name> by default")
    datasets: list[StudyDataset] = key(doc="clean and corrupt datasets")
    methods: list[MethodSpec] = key(doc="the variants compared")
    seeds: list[int] = key(factory=lambda: [0], doc="training seeds")
    train_config: str | None = key(None, doc="base TrainConfig YAML (network size, budget, ...)")
    train: dict[str, Any] = key(factory=dict, doc="TrainConfig overrides for every run")
    annotate: AnnotateSettings = key(factory=AnnotateSettings, doc="the noise-level classifier's run (cotrain "
                                     "annotate), when corrupt data are present")
    eval: EvalSettings = key(factory=EvalSettings, doc="how every run's checkpoints are evaluated")
    baseline: str = key(Cotrain.name, doc="the table's paired tests compare every row with this method/label")
    out_dir: str | None = key(None, doc="default results/<name>")
    executor: ExecutorSettings = key(factory=ExecutorSettings, doc="where and how many jobs run at once")
    spectra_window: int = key(32, doc="control steps per window for the action power spectra")

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
        if any(not 0 <= s <= MAX_SEED for s in self.seeds + [s for m in self.methods for s in m.seeds or []]):
            raise ValueError(f"seeds: training seeds must be in [0, {MAX_SEED}]")
        if self.eval.record:   # Meshcat needs the main thread of its process; a study's job runs elsewhere
            raise ValueError("eval.record: recording is not done inside a study; record a finished run with "
                             "cotrain eval runs/<row>/seed<k>/train/checkpoints/final.pt --record N")
        if not 2 <= self.spectra_window <= MAX_SPECTRA_WINDOW:
            raise ValueError(f"spectra_window must be in [2, {MAX_SPECTRA_WINDOW}] control steps, got "
                             f"{self.spectra_window}")
        by_name = {d.name: d for d in self.datasets}
        for d in self.datasets:
            g = d.generate
            if g is not None and g.kind == "corrupt" and (g.from_ not in by_name or g.from_ == d.name
                                                           or _is_corrupt_copy(by_name[g.from_])):
                raise ValueError(f"datasets: {d.name}: generate.from must name another dataset of the study that is "
                                 f"not itself a corrupt copy; datasets: {', '.join(names)}")
        for m in self.methods:
            unknown = [n for n in m.datasets or [] if n not in by_name]
            if unknown or (m.datasets is not None and not any(by_name[n].role == "clean" for n in m.datasets)):
                raise ValueError(f"methods: {m.label or m.method}: datasets must name datasets of the study, at least "
                                 f"one clean; got {m.datasets} (datasets: {', '.join(names)})")

    @property
    def out(self) -> Path:
        return Path(self.out_dir or f"results/{self.name}")

    def train_base(self) -> dict:
        """The runs' common train config as a dict: the `train_config` file with the `train` keys on top."""
        return merge(load_yaml(self.train_config) if self.train_config else {}, self.train)

    @property
    def normalizer_path(self) -> Path:
        """The study's one normalizer (harness/learning/normalizer.py), fitted on every episode the study uses."""
        return self.out / "normalizer.json"

    @property
    def annotations_path(self) -> Path | None:
        """Where the shared classifier output goes; None when there is no corrupt data or no use for it."""
        if not any(d.role == "corrupt" for d in self.datasets):
            return None
        needed = any(m.uses_classifier and not m.annotate and m.datasets is None for m in self.methods) \
            or self.annotate.enabled
        return self.out / "annotations.zarr" if needed else None

    def row_annotations_path(self, m: MethodSpec) -> Path | None:
        """The store a row reads its sigma_n from: the shared one, or its own for rows with annotate settings
        or their own `datasets`. Why its own for its own data: a classifier trained on the clean data against
        the union of several corrupt datasets calls a window "clean" as soon as *its* dataset is lost in the
        noise while the others are not, so its sigma_n would depend on which other datasets the study holds."""
        if not m.annotate and m.datasets is None or not any(d.role == "corrupt" for d in self.datasets):
            return self.annotations_path
        corrupt = [d.name for d in self.row_datasets(m) if d.role == "corrupt"]
        if not corrupt:
            return None
        parts = ([annotate_slug(m.annotate)] if m.annotate else []) + \
            ([annotate_slug({"data": "-".join(corrupt)})] if m.datasets is not None else [])
        return self.out / f"annotations-{'-'.join(parts)}.zarr"

    def row_datasets(self, m: MethodSpec) -> list[StudyDataset]:
        """The datasets a row trains on, in the study's order."""
        return [d for d in self.datasets if m.datasets is None or d.name in m.datasets]

    def annotation_datasets(self, store: Path) -> list[StudyDataset]:
        """The datasets an annotations store classifies: a row's own store its row's, the shared one all."""
        for m in self.methods:
            if m.datasets is not None and m.uses_classifier and self.row_annotations_path(m) == store:
                return self.row_datasets(m)
        return list(self.datasets)

    def annotation_stores(self) -> dict[Path, dict]:
        """Every annotations store the study makes -> the AnnotateConfig overrides on top of the study's."""
        stores = {self.annotations_path: {}} if self.annotations_path is not None else {}
        if any(d.role == "corrupt" for d in self.datasets):
            for m in self.methods:
                if (m.annotate or m.datasets is not None and m.uses_classifier) \
                        and self.row_annotations_path(m) is not None:
                    stores[self.row_annotations_path(m)] = m.annotate
        return stores


def _is_corrupt_copy(d: StudyDataset) -> bool:
    return d.generate is not None and d.generate.kind == "corrupt"


def annotate_slug(overrides: dict) -> str:
    """A store name for annotate overrides, e.g. {sigma_hi: 40, grid_size: 40} -> grid_size40-sigma_hi40."""
    import re
    return "-".join(re.sub(r"[^A-Za-z0-9._]+", "", f"{k}{v}") for k, v in sorted(overrides.items()))


def load_study(path, overrides=()) -> StudyConfig:
    return load_config(StudyConfig, path, overrides)
