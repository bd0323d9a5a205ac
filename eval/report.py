"""The files of one evaluation (eval/study_table.py compares methods across evaluations).

One evaluation folder holds
    trials.jsonl   one line per finished trial, appended as trials finish (the resume log)
    trials.csv     the same records sorted by seed, written when the evaluation is complete
    summary.json   success rate with its Wilson interval, outcome counts, time to success, final errors
    summary.txt    the same, as printed
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Sequence

from eval.metrics import Summary, TrialRecord, summarize
from harness.core.atomic import atomic_write_text

TRIAL_FIELDS = [f.name for f in dataclasses.fields(TrialRecord)]


# ---------------------------------------------------------------------------------------------------
# One evaluation

def trials_csv(records: Sequence[TrialRecord]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=TRIAL_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in sorted(records, key=lambda r: r.seed):
        writer.writerow({k: csv_value(v) for k, v in r.to_dict().items()})
    return buf.getvalue()


def read_trials_csv(path) -> list[TrialRecord]:
    with open(path, newline="") as f:
        return [TrialRecord.from_dict(row) for row in csv.DictReader(f)]


def write_eval_report(out_dir, records: Sequence[TrialRecord], extra: dict | None = None) -> Summary:
    """Write trials.csv, summary.json and summary.txt (each atomically); return the summary."""
    out_dir = Path(out_dir)
    summary = summarize(records)
    atomic_write_text(out_dir / "trials.csv", trials_csv(records))
    payload = {**(extra or {}), **summary.to_dict()}
    atomic_write_text(out_dir / "summary.json", json.dumps(payload, indent=2) + "\n")
    atomic_write_text(out_dir / "summary.txt", "\n".join(summary.lines()) + "\n")
    return summary


def csv_value(v):
    """A CSV cell: floats to 6 significant digits, NaN and inf as empty."""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return v
