"""Evaluations of different policies on the same start seeds, in one table: `cotrain eval ... --versus FOLDER`.

Each row is one evaluation folder (eval/evaluation.py): its success rate with the Wilson interval, and
McNemar's exact test against the baseline row on the start seeds both were scored on (the study's table,
eval/study_table.py, with one "training seed" per row). Because a trial is a function of (policy, start seed),
a LeRobot policy (eval/lerobot_policy.py) and one of ours pair trial by trial.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from eval.evaluation import LOG_FILE, SPEC_FILE
from eval.metrics import TrialRecord
from eval.rollouts import read_trial_log
from eval.study_table import RunResult, study_table, table_markdown
from harness.core.errors import UserError
from harness.core.identity import read_identity

def read_versus(folder, env: str, seeds: Sequence[int]) -> tuple[str, list[TrialRecord]]:
    """(label, records on `seeds`) of the evaluation folder `folder`; UserError (one line naming the folder)
    unless it is an evaluation in the same env preset that scored at least one of `seeds`."""
    folder = Path(folder)
    record = folder / SPEC_FILE
    if not record.is_file():
        raise UserError(f"{folder}: no {SPEC_FILE}; --versus takes the folder of another `cotrain eval`")
    spec = read_identity(record)
    if spec.get("env") != env:
        raise UserError(f"{record}: env: {spec.get('env')!r}, but this evaluation runs in {env!r}; trials pair "
                        "only in the same env preset")
    wanted = set(int(s) for s in seeds)
    records = [r for r in read_trial_log(folder / LOG_FILE) if r.seed in wanted]
    if not records:
        raise UserError(f"{folder / LOG_FILE}: no trial on start seeds {min(wanted)}..{max(wanted)}; "
                        "evaluate it on the same --seed and --trials")
    return label(spec.get("checkpoint", folder.name)), records


def label(checkpoint: str) -> str:
    """A row's name: the policy's file or folder, with its run folder (runs/x/checkpoints/final.pt -> x/final.pt)."""
    path = Path(str(checkpoint))
    parent = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return f"{parent.name}/{path.name}" if parent.name else path.name


def paired_table(rows: Sequence[tuple[str, Sequence[TrialRecord]]], baseline: str) -> str:
    """Markdown table of (label, records) rows, each paired by start seed with the row labelled `baseline`."""
    results, seen = [], {}
    for name, records in rows:          # two policies of one name: the second is "name [2]"
        seen[name] = seen.get(name, 0) + 1
        name = name if seen[name] == 1 else f"{name} [{seen[name]}]"
        results.append(RunResult(method=name, setting="", seed=0, records=list(records), name=name))
    table, base_label = study_table(results, baseline)
    return table_markdown(table, base_label)
