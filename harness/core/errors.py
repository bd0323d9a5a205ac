"""Errors caused by what a user gave us: the CLI prints them on one line and exits with status 2."""
from __future__ import annotations

import contextlib


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
def named_config_errors(path):
    """A ConfigError raised while a loaded config is used (not while it is read) names the generic place
    "config"; inside this block it names the file the user wrote instead."""
    try:
        yield
    except ConfigError as exc:
        if exc.path != "config" or path is None:
            raise
        raise ConfigError(path, exc.key, exc.problem) from None
