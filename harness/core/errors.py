"""Errors caused by what a user gave us: the CLI prints them on one line and exits with status 2."""
from __future__ import annotations

import contextlib
import errno
import re


class UserError(Exception):
    """Bad input (file, key, value). The message must name where and what, in one line, no traceback."""


def _where(path, key) -> str:
    parts = [str(p) for p in (path, key) if p not in (None, "")]
    return ": ".join(parts)


class ConfigError(UserError):
    def __init__(self, path, key, problem: str):
        self.path, self.key, self.problem = path, key, problem
        where = _where(path, key)
        super().__init__(f"{where}: {problem}" if where else problem)


class DatasetError(UserError):
    def __init__(self, path, key, problem: str):
        self.path, self.key, self.problem = path, key, problem
        where = _where(path, key)
        super().__init__(f"{where}: {problem}" if where else problem)

@contextlib.contextmanager
def named_config_errors(path, generic: str = "config"):
    """A ConfigError raised while a loaded config is used (not while it is read) names a generic place:
    "config", or for a study "experiment" ("experiment: train", "experiment: <row> seed 0"). Inside this
    block it names the file the user wrote instead, so every error of one config starts with its path."""
    try:
        yield
    except ConfigError as exc:
        where = str(exc.path)
        if path is None or not (where == generic or where.startswith(generic + ": ")):
            raise
        raise ConfigError(f"{path}{where[len(generic):]}", exc.key, exc.problem) from None


def one_line(text: str) -> str:
    """A message as one line: control characters (a newline or a NUL in a key, a label or a path) are shown
    escaped, as `\\n` and `\\x00`, so a message never breaks into lines that read as two errors."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(
        m.group(), f"\\x{ord(m.group()):02x}"), text)


# errno -> what the user can do about it, added to the operating system's own words
_OS_HINTS = {
    errno.ENOSPC: "the disk is full; free space and re-run (finished work is kept)",
    errno.EDQUOT: "the disk quota is used up; free space and re-run (finished work is kept)",
    errno.EFBIG: "the file grew past the size this process may write (ulimit -f); raise it and re-run",
    errno.ENAMETOOLONG: "a name in the path is longer than the file system allows (255 bytes); shorten it",
    errno.EROFS: "the file system is read-only; choose another place",
}


@contextlib.contextmanager
def at_path(path):
    """An OSError raised inside the block without a path (zarr and pyarrow write from worker threads and
    report a full disk as a bare `[Errno 28]`) names `path`, the output being written, so that its one
    line says where."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def os_error_line(exc: OSError) -> str:
    """An error of the operating system (disk full, a name too long, a link to nowhere, no permission) as
    the one line a user reads: the path it happened at, the system's words, and what to do."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(paths)
    words = exc.strerror or str(exc) or type(exc).__name__
    hint = _OS_HINTS.get(exc.errno)
    return one_line(f"{where + ': ' if where else ''}{words}{'; ' + hint if hint else ''}")
