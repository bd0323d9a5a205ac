"""One process at a time per output, and outputs checked writable before any work starts.

Every output a command writes into over time (a dataset store, a training run folder, an evaluation
folder, a study folder) is held with an exclusive `flock` on a lock file inside it for as long as the
command writes; a second command on the same output is refused with one line instead of interleaving its
work. The OS releases the lock when the process exits, however it exits, so a crash never leaves a stale
lock behind.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from harness.core.errors import UserError


def acquire_lock(lock_file, busy: str | UserError):
    """An exclusive lock on `lock_file` (created if need be), held until the returned handle is closed.
    `busy`: the one-line message (or the error) raised when another process holds it."""
    lock_file = Path(lock_file)
    try:
        handle = open(lock_file, "a")
    except OSError as exc:
        raise UserError(f"{lock_file.parent}: cannot write there ({exc.strerror})") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise (busy if isinstance(busy, UserError) else UserError(busy)) from None
    return handle


@contextlib.contextmanager
def hold_lock(lock_file, busy: str | UserError) -> Iterator[None]:
    handle = acquire_lock(lock_file, busy)
    try:
        yield
    finally:
        handle.close()


@contextlib.contextmanager
def hold_output_lock(out, kind: str) -> Iterator[None]:
    """Hold the lock of an output that is built beside its place and renamed into it (an import, an
    annotations store), so that two commands on one output cannot both build it and lose one result.

    The lock is a file `.<name>.lock` beside the output. It is removed when the block ends, before the
    lock is released: a process that then makes a new lock file finds the work finished (or not begun).
    The inode check below skips a lock file removed between our open and our lock."""
    out = Path(out)
    lock_file = out.with_name(f".{out.name}.lock")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot write there ({exc.strerror})") from None
    busy = f"{out}: another process is writing this {kind}; wait for it to finish"
    while True:
        handle = acquire_lock(lock_file, busy)
        try:
            if os.stat(lock_file).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    try:
        yield
    finally:
        lock_file.unlink(missing_ok=True)
        handle.close()


NAME_MAX = 255   # bytes of one file name on Linux file systems (ext4, xfs, tmpfs)


def check_writable(path, inputs: Iterable = ()) -> None:
    """The one check of an output path that every command makes before any work (directly, or through
    `check_output_file`, `claim_output` / `hold_output`, `EpisodeWriter`): refuse a path the OS could
    not make (a NUL byte, a name over NAME_MAX bytes), a link to nowhere on its way (a dangling symlink
    as the output or a folder above it: mkdir would fail with FileExistsError or NotADirectoryError
    after work was done), an output inside one of its `inputs` or holding one (an export into its own
    store), and a place that cannot be written (read-only, not a folder).

    The write check is a real write (a temporary file) in `path` if it is a folder, else in its nearest
    existing parent: permission bits alone say nothing when running as root.
    """
    path = Path(path)
    _check_path_text(path)
    _check_no_dangling_link(path)
    for source in inputs:
        _check_apart(path, Path(source))
    probe = path if path.is_dir() else next((p for p in path.parents if p.exists()), Path("."))
    if not probe.is_dir():
        raise UserError(f"{path}: {probe} is not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".cotrain-write-check-", dir=probe)
    except OSError as exc:
        raise UserError(f"{path}: cannot write in {probe} ({exc.strerror})") from None
    os.close(fd)
    os.unlink(name)


def _check_path_text(path: Path) -> None:
    if "\0" in str(path):
        raise UserError(f"{path}: holds a NUL byte; remove it")
    long = next((part for part in path.parts if len(os.fsencode(part)) > NAME_MAX), None)
    if long is not None:
        raise UserError(f"{path}: the name {long[:24]}... is {len(os.fsencode(long))} bytes long; a file "
                        f"system allows {NAME_MAX} bytes")


def _check_no_dangling_link(path: Path) -> None:
    """The output, or a missing folder above it, is a symbolic link to a place that does not exist."""
    for place in (path, *path.parents):
        if place.exists():
            return
        if place.is_symlink():
            raise UserError(f"{path}: {place} is a symbolic link to {os.readlink(place)}, which does not exist; "
                            "remove the link or give another path")


def _check_apart(out: Path, source: Path) -> None:
    """An output may neither lie inside an input nor hold one (it would write into what it reads, or
    replace it)."""
    out_r, src_r = out.resolve(), source.resolve()
    if out_r == src_r or src_r in out_r.parents:
        raise UserError(f"{out}: is inside the input {source}; write the output somewhere else")
    if out_r in src_r.parents:
        raise UserError(f"{out}: holds the input {source}; write the output somewhere else")


def check_output_file(path, flag: str) -> None:
    """An output *file* a command will write (named by `flag`): new, not a folder, and its place writable.

    A file already there is refused: single-file outputs carry no record of who made them, so the one
    rule (never replace an output the command did not make) leaves nothing else to do."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder, expected a file name")
    if path.exists() or path.is_symlink():
        raise UserError(f"{flag} {path}: exists; give a new file name (an existing file is never replaced)")
    try:
        check_writable(path)
    except UserError as exc:
        raise UserError(f"{flag}: {exc}") from None
