"""The checkpoint file: one torch file per checkpoint, written atomically, read back with one-line errors.

Two kinds share the format tag: a training checkpoint (`latest.pt`: model, EMA, optimizer, scheduler, every
rank's random state, for an exact resume) and a policy checkpoint (`final.pt`: EMA weights only). Both hold
what loading a policy needs and nothing else: `ema`, `normalizer`, `sigma_data`, `image_shape` and the full
resolved `config`.

Loading never runs code: the file is read with `torch.load(weights_only=True)`, which accepts tensors and
plain values (dicts, lists, numbers, strings) only, so a checkpoint shared between labs cannot carry a
pickled call. Everything this project writes is of those types. A file that is not (an old one holding
numpy values, or a hostile one) is refused; one the user trusts can be rewritten in the safe form with
`python -m harness.learning.checkpoint TRUSTED.pt OUT.pt`.

Policy snapshots (`step_0001000.pt`, written every `run.snapshot_every` steps when that is set) are policy
checkpoints of earlier steps, for the study's checkpoint protocols (eval/selection.py). Their names are
made and read here only.
"""
from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import torch

from harness.core.atomic import atomic_path
from harness.core.errors import UserError

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
        try:
            torch.save({"format": FORMAT, **state}, tmp)
        except RuntimeError as exc:
            raise _write_failed(exc, path) from None


def _write_failed(exc: RuntimeError, path: Path) -> Exception:
    """torch's zip writer reports a failed write (a full disk) as a RuntimeError of `inline_container`; it
    is an error of the OS at `path`, and becomes one (the CLI and the study's job runner print it in one
    line). Any other RuntimeError is a bug and is kept."""
    text = str(exc)
    if "PytorchStreamWriter" not in text and "inline_container" not in text:
        return exc
    error = OSError(None, f"torch could not write the file ({text.splitlines()[-1].strip()[:120]}); is the "
                          "disk full?")
    error.filename = str(path)
    return error


def read_checkpoint(path, map_location="cpu") -> dict:
    """The checkpoint's contents; a missing, truncated or foreign file is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():   # (torch words it "Unsupported global" or
            # "unsupported GLOBAL", by version) not an object we refuse: a damaged or foreign file
            raise UserError(f"{path}: not a readable checkpoint (UnpicklingError)") from None
        raise UserError(f"{path}: refused: it holds objects other than tensors and plain values, and loading it "
                        "could run code; if you trust it, convert it: python -m harness.learning.checkpoint "
                        f"{path} OUT.pt") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise UserError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not a cotrain policy checkpoint")
    missing = [k for k in POLICY_KEYS if k not in ckpt]
    if missing:
        raise UserError(f"{path}: checkpoint lacks {missing[0]!r}")
    return ckpt


def _plain(value):
    """numpy values as the plain types the safe loader accepts (tensors and containers kept as they are)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def convert_trusted(path, out) -> None:
    """Rewrite a checkpoint the user trusts (it is unpickled in full, so it may run code) in the safe form,
    then read the result back with the safe loader."""
    out = Path(out)
    if out.exists():
        raise UserError(f"{out}: exists; give a new path")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not a cotrain policy checkpoint")
    write_checkpoint(out, _plain(ckpt))
    read_checkpoint(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m harness.learning.checkpoint TRUSTED.pt OUT.pt  (unpickles TRUSTED.pt in full)")
    try:
        convert_trusted(sys.argv[1], sys.argv[2])
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
