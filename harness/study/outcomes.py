"""A study's outcomes without its weights: `cotrain compare EXP --export-outcomes DIR` / `--import-outcomes DIR`.

What a study's table is made from is small: per finished run, its identity (run.json), its per-trial outcomes
(eval/trials.csv), the realised data numbers of its training (train/train_summary.json) and its done marker;
per study, the normalizer and the fingerprint of the data. Export copies those, tens of kB per run and no
weights, so that
  - a reader can recompute every number of table.md, the McNemar pairs included, from the trials alone;
  - a study longer than one machine session goes on in another one: import the outcomes into the study
    folder there, and `cotrain compare EXP` trains only what is missing and reports all of it.
They go into the study folder they were made in (the same out_dir; a run's identity names its files).
Imported runs are checked like any run folder: the study refuses one whose run.json is not the run it plans
(one line naming the first differing key), and refuses data whose bytes differ from the imported
fingerprint.json. They carry no weights, so a row that evaluates another row's weights its own way (a row's
`eval`) needs that row trained where it runs.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from eval.report import read_trials_csv
from harness.core.atomic import atomic_path, atomic_write_text
from harness.core.configs import load_yaml, save_config
from harness.core.errors import DatasetError, UserError
from harness.core.locks import check_writable
from harness.study.config import StudyConfig
from harness.study.fingerprint import FINGERPRINT_FILE
from harness.study.run_spec import RunFolder
from harness.study.runner import check_study_folder, hold_study_lock

STUDY_FILES = ("experiment.yaml", "normalizer.json", FINGERPRINT_FILE, "table.md", "table.csv")
# a run's files, relative to its folder; `done` last, so that an import interrupted halfway leaves no run
# that looks finished (the held-out trials of a checkpoint protocol are added from selection.json)
RUN_FILES = ("run.json", "result.json", "selection.json", "eval/summary.json", "eval/trials.csv",
             "train/train_summary.json", "done")
MUST_MATCH = ("normalizer.json", FINGERPRINT_FILE)   # a study folder's files that an import must not contradict


def run_files(folder: RunFolder) -> list[str]:
    """The files of a finished run that an export carries, relative to the run folder."""
    names = [n for n in RUN_FILES if (folder.root / n).is_file()]
    if folder.selection.is_file():   # the checkpoint protocol's row: its chosen checkpoint's held-out trials
        heldout = json.loads(folder.selection.read_text())["heldout_dir"]
        names.insert(-1, f"{heldout}/trials.csv")
    return names


def export_outcomes(cfg: StudyConfig, dest: Path) -> tuple[int, Path]:
    """Copy the study's files and every finished run's outcomes into the new folder `dest`; (runs, dest)."""
    study = cfg.out
    if not (study / "experiment.yaml").is_file():
        raise UserError(f"{study}: no study here yet (no experiment.yaml); run `cotrain compare` first")
    runs = RunFolder.finished_in(study)
    if not runs:
        raise UserError(f"{study}: no finished run to export yet")
    if dest.exists() or dest.is_symlink():
        raise UserError(f"--export-outcomes {dest}: exists; give a new folder (an output is never replaced)")
    check_writable(dest, inputs=[study])
    with atomic_path(dest) as tmp:    # all of it or nothing
        for name in STUDY_FILES:
            if (study / name).is_file():
                _copy(study / name, tmp / name)
        for folder in runs:
            for name in run_files(folder):
                _copy(folder.root / name, tmp / folder.root.relative_to(study) / name)
    return len(runs), dest


def import_outcomes(cfg: StudyConfig, source: Path) -> tuple[int, int]:
    """Put the exported outcomes in `source` into the study's folder; (runs imported, runs already here).

    A run folder that exists here, finished or not, is left as it is. The study's normalizer and data
    fingerprint are taken from `source` when the folder has none, and must be the same when it has them."""
    runs = _check_export(source)
    study = cfg.out
    made_in = _study_folder(source)
    if made_in is not None and made_in != study:   # a run's identity names its study folder's files
        raise UserError(f"--import-outcomes {source}: these runs belong to the study folder {made_in}, not "
                        f"{study}; import them with out_dir={made_in}")
    check_study_folder(study)
    check_writable(study, inputs=[source])
    study.mkdir(parents=True, exist_ok=True)
    with hold_study_lock(study):
        for name in MUST_MATCH:
            ours, theirs = study / name, source / name
            if ours.is_file() and theirs.is_file() and not _same_record(ours, theirs):
                raise DatasetError(theirs, None, f"differs from the study's own {ours}: these outcomes were "
                                   "computed from other data; move that study folder aside to import them")
        if not (study / "experiment.yaml").is_file():
            save_config(cfg, study / "experiment.yaml")
        for name in MUST_MATCH:
            if not (study / name).is_file() and (source / name).is_file():
                atomic_write_text(study / name, (source / name).read_text())
        imported = 0
        for folder in runs:
            target = study / folder.root.relative_to(source)
            if target.exists():
                continue
            with atomic_path(target) as tmp:
                for name in run_files(folder):
                    _copy(folder.root / name, tmp / name)
            imported += 1
    return imported, len(runs) - imported


def _check_export(source: Path) -> list[RunFolder]:
    """The runs of an exported folder, each checked for what the study reads (one line naming the file)."""
    if not source.is_dir():
        raise UserError(f"--import-outcomes {source}: not a folder")
    runs = RunFolder.finished_in(source)
    if not runs:
        raise UserError(f"--import-outcomes {source}: holds no finished run (runs/<row>/seed<k>/done)")
    for folder in runs:
        for need in (folder.identity, folder.trials):
            if not need.is_file():
                raise DatasetError(need, None, "missing: an exported run holds run.json and eval/trials.csv")
        try:
            json.loads(folder.identity.read_text())
            read_trials_csv(folder.trials)
        except (ValueError, KeyError, OSError) as exc:
            raise DatasetError(folder.root, None, f"unreadable run record ({exc})") from None
    return runs


def _study_folder(source: Path) -> Path | None:
    """The study folder an export was made from, as its experiment.yaml names it (None without one)."""
    if not (source / "experiment.yaml").is_file():
        return None
    saved = load_yaml(source / "experiment.yaml")
    return Path(saved.get("out_dir") or f"results/{saved.get('name')}")


def _same_record(a: Path, b: Path) -> bool:
    """Two normalizers are the same file; two fingerprints record the same data (their environment, the
    CPU of the first session, may differ: the study notes that, it does not refuse it)."""
    if a.name != FINGERPRINT_FILE:
        return a.read_bytes() == b.read_bytes()
    try:
        return json.loads(a.read_text())["data"] == json.loads(b.read_text())["data"]
    except (ValueError, KeyError, TypeError):
        raise DatasetError(b, None, "unreadable fingerprint") from None


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
