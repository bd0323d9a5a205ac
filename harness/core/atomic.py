"""Write-then-rename helpers so that an interrupted job never leaves a half-written file or folder."""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from harness.core.errors import UserError, at_path


def temporary_sibling(path: Path) -> Path:
    """A path beside `path` (same filesystem, so rename is atomic) that no other process uses."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path; on success rename it onto `path`, on any error remove it.

    Works for files and folders (a zarr store). An existing file at `path` is replaced; an existing
    folder is replaced only after the new one is complete.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:   # a read-only or missing place: the user's input, one line
        raise UserError(f"{path}: cannot write there ({exc.strerror})") from None
    tmp = temporary_sibling(path)
    _remove(tmp)
    remove_stale_temporaries(path)
    try:
        with at_path(path):
            yield tmp
        if path.is_dir() and tmp.is_dir():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def remove_stale_temporaries(path) -> list[Path]:
    """Remove the temporaries of `path` left by writers that died mid-write (SIGKILL, power loss): the
    `.<name>.tmp-<pid>` siblings whose process no longer exists. Each write clears them, so a run killed
    again and again does not pile up copies of its checkpoint. A live pid is left alone (it may be a
    writer now, or a reused pid: keeping a stale file is the safe error)."""
    path = Path(path)
    removed = []
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        pid = stale.name.rsplit("-", 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            _remove(stale)
            removed.append(stale)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's live process
        return True
    return True


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def _remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink()
