"""Flags that set config keys: each bound is stated once, in the config dataclass, and a value that breaks it
is reported under the flag the user typed."""
from __future__ import annotations

import contextlib

from harness.core.errors import ConfigError, UserError


@contextlib.contextmanager
def flag_names(flags: dict[str, str]):
    """Inside the block, a config error whose problem starts with one of `flags`' keys (the dataclass's
    own message, e.g. "seed must be in [0, ...]") names the flag instead ("--seed must be in [0, ...]")."""
    try:
        yield
    except ConfigError as exc:
        for key, flag in flags.items():
            if exc.problem.startswith((key + " ", key + ":")):
                raise UserError(flag + exc.problem[len(key):]) from None
        raise
