"""The checkpoint file: one torch file per checkpoint, written atomically, read back with one-line errors.

Two kinds share the format tag: a training checkpoint (`latest.pt`: model, EMA, optimizer, scheduler, every
rank's random state, for an exact resume) and a policy checkpoint (`final.pt`: EMA weights only). Both hold
what loading a policy needs and nothing else: `ema`, `normalizer`, `sigma_data`, `image_shape` and the full
resolved `config`.

Policy snapshots (`step_0001000.pt`, written every `run.snapshot_every` steps when that is set) are policy
checkpoints of earlier steps, for the study's checkpoint protocols (eval/selection.py). Their names are
made and read here only.
"""
from __future__ import annotations

from pathlib import Path

import torch

from harness.data.atomic import atomic_path
from harness.data.errors import UserError

FORMAT = "cotrain-policy-v1"
POLICY_KEYS = ("config", "ema", "normalizer", "sigma_data", "image_shape")


SNAPSHOT_PREFIX = "step_"           # checkpoints/step_0001000.pt: the EMA policy after 1000 steps


def snapshot_name(step: int) -> str:
    """File name of the policy snapshot after `step` optimizer steps (zero-padded: names sort by step)."""
    return f"{SNAPSHOT_PREFIX}{step:07d}.pt"


def list_snapshots(checkpoint_dir) -> list[tuple[int, Path]]:
    """(step, path) of every policy snapshot in a run's checkpoints folder, oldest first."""
    found = []
    for path in Path(checkpoint_dir).glob(f"{SNAPSHOT_PREFIX}*.pt"):
        digits = path.stem[len(SNAPSHOT_PREFIX):]
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)


def write_checkpoint(path, state: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def read_checkpoint(path, map_location="cpu") -> dict:
    """The checkpoint's contents; a missing, truncated or foreign file is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise UserError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not a cotrain policy checkpoint")
    missing = [k for k in POLICY_KEYS if k not in ckpt]
    if missing:
        raise UserError(f"{path}: checkpoint lacks {missing[0]!r}")
    return ckpt
