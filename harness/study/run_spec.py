"""One run of a study as one typed object, from the plan to the job that trains and evaluates it.

The plan (harness/study/plan.py) makes a RunSpec per row and training seed; the run folder's identity
record (run.json) is `RunSpec.identity()`; the train+eval job (harness/study/jobs.py) receives the spec as
one JSON document, written by `RunSpec.to_json` and read back by `RunSpec.from_json`. Every path and
file name inside a run folder belongs to RunFolder.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import ClassVar

from eval.evaluation import EvalSettings
from harness.core.atomic import atomic_write_text
from harness.core.configs import from_dict, to_dict
from harness.learning.train_config import TrainConfig
from harness.learning.training import SUMMARY_FILE, training_done


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """results/<study>/runs/<row>/seed<k>/: what a run writes, and where."""
    root: Path

    IDENTITY_FILE: ClassVar[str] = "run.json"   # what the folder is for (harness/core/identity.py)

    @classmethod
    def of(cls, study_out, slug: str, seed: int) -> "RunFolder":
        return cls(Path(study_out) / "runs" / slug / f"seed{seed}")

    @property
    def identity(self) -> Path:
        return self.root / self.IDENTITY_FILE

    @property
    def train(self) -> Path:          # the trainer's out_dir (checkpoints/, metrics.csv, train_summary.json)
        return self.root / "train"

    @property
    def eval(self) -> Path:           # the final checkpoint on the study's eval seeds
        return self.root / "eval"

    @property
    def trials(self) -> Path:         # eval's per-trial outcomes, what the table is made from
        return self.eval / "trials.csv"

    @property
    def result(self) -> Path:         # the job's return value (success, seconds, the protocol's choice)
        return self.root / "result.json"

    @property
    def done(self) -> Path:           # written last: the run is finished
        return self.root / "done"

    @property
    def selection(self) -> Path:      # what the checkpoint protocol did (eval/selection.py)
        return self.root / "selection.json"

    @property
    def selection_evals(self) -> Path:   # <checkpoint stem>-r<round>/: one evaluation per candidate and round
        return self.root / "eval_selection"

    @property
    def selected_eval(self) -> Path:  # the chosen checkpoint on the study's eval seeds (held out from the choice)
        return self.root / "eval_selected"

    @property
    def finished(self) -> bool:
        return self.done.exists()

    @classmethod
    def finished_in(cls, study_out) -> list["RunFolder"]:
        """The finished run folders of a study folder (runs/<row>/seed<k>/ holding `done`), in name order."""
        return [cls(p.parent) for p in sorted((Path(study_out) / "runs").glob("*/seed*/done"))]

    def read_result(self) -> dict:
        return json.loads(self.result.read_text())

    def finish(self, result: dict) -> None:
        """Record the result, then mark the run done (a run killed in between is simply re-finished)."""
        atomic_write_text(self.result, json.dumps(result, indent=2) + "\n")
        atomic_write_text(self.done, "")


@dataclasses.dataclass
class RunSpec:
    label: str                       # table row
    slug: str                        # folder name of the row
    method: str
    setting: str                     # "" or e.g. "alpha=0.5"
    alpha: float | None              # for the success-versus-alpha plot (None: known once trained, or none)
    seed: int                        # training seed
    folder: RunFolder
    train: TrainConfig               # resolved, validated (out_dir = folder.train, or the trained_by run's)
    eval: EvalSettings               # the study's evaluation
    matched_to: str | None = None    # the row whose realised clean fraction (same seed) is this run's alpha
    pending: bool = False            # matched, and that row's run has not finished: alpha is a stand-in
    baseline: str | None = None      # the row it is paired with in the table (None: the study's baseline)
    trained_by: str | None = None    # the run (key) whose training this one shares: the same TrainConfig, so
                                     # it only evaluates those weights its own way (a row's `eval`); None: its own

    @property
    def train_summary(self) -> Path:  # the realised data numbers of the training this run evaluates
        return Path(self.train.out_dir) / SUMMARY_FILE

    @property
    def trained(self) -> bool:        # has the training this run evaluates finished?
        return training_done(self.train.out_dir)

    @property
    def key(self) -> str:
        return f"{self.slug}/seed{self.seed}"

    def identity(self) -> dict:
        """What the run folder is for (run.json): a folder made by another identity is refused."""
        return {"label": self.label, "method": self.method, "setting": self.setting, "alpha": self.alpha,
                "seed": self.seed, "eval": self.eval.identity(), "train_config": to_dict(self.train)}

    def to_json(self) -> str:
        """The job boundary: the whole spec as one JSON document (from_json reads it back)."""
        doc = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        doc.update(folder=str(self.folder.root), train=to_dict(self.train), eval=dataclasses.asdict(self.eval))
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        doc = json.loads(text)
        folder = RunFolder(Path(doc.pop("folder")))
        where = str(folder.identity)
        return cls(**doc | {"folder": folder, "train": from_dict(TrainConfig, doc["train"], where),
                            "eval": from_dict(EvalSettings, doc["eval"], where)})
