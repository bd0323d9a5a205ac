"""The one run-identity rule for every resumable output (dataset stores, run folders, evaluations, studies).

An output records the resolved config that made it (its *identity*) when it is created. A later command
pointed at the same output compares its own resolved config with the recorded one:
  - the same identity: it continues (resumes) the work;
  - a different one: it is refused with one line naming the first differing key, and nothing is written.
Each kind of output declares which keys may change between sessions without changing the result (thread
and worker counts, progress bars, how many items to make in total): its *free keys*. A free key frees
everything below it too ("run.progress" frees only that key, "run" the whole section).

A folder that exists, is not empty and holds no identity record was not made by us: it is refused too,
so no command writes into (or replaces) an output it did not make. `hold_output` adds the lock: one
command at a time per output.
"""
from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import yaml

from harness.core.atomic import atomic_write_text
from harness.core.errors import ConfigError, UserError
from harness.core.locks import check_writable, hold_lock

LOCK_FILE = ".lock"   # inside an output folder while a command writes it (harness/core/locks.py)

_MISSING = "<absent>"

# Keys added to a config after outputs were made without them, with the value that reproduces what those
# outputs did. An identity recorded before the key existed matches a wanted one holding exactly that value,
# so an upgrade does not orphan finished work; any other value is a difference. Matched on the key's last
# dotted parts (a train config appears whole or nested in study records). The table is not written here:
# each key declares `since=<issue>` on its dataclass field (harness.core.configs.key), and the module that
# defines a recorded config registers `configs.added_keys(ThatConfig)` when it is imported, so every config
# an identity is built from has registered its keys by the time the identity is compared.
ADDED_KEYS: dict[str, Any] = {}


def register_added_keys(table: Mapping[str, Any]) -> None:
    """Add {dotted key: value that reproduces old outputs} to ADDED_KEYS (configs.added_keys gives it).
    One key declared twice with two old values would make the rule ambiguous: refused."""
    for name, value in table.items():
        if name in ADDED_KEYS and _plain(ADDED_KEYS[name]) != _plain(value):
            raise ValueError(f"{name}: declared as added at {ADDED_KEYS[name]!r} and at {value!r}")
        ADDED_KEYS[name] = value


def _added_default(key: str) -> Any:
    parts = key.split(".")
    for name, value in ADDED_KEYS.items():
        n = name.count(".") + 1
        if ".".join(parts[-n:]) == name:
            return value
    return _MISSING


def first_difference(recorded: Mapping, wanted: Mapping, free_keys: Iterable[str] = ()) -> tuple[str, Any, Any] | None:
    """(dotted key, recorded value, wanted value) of the first differing key in sorted order, or None.

    Free keys (and everything below them) are skipped. Lists and scalars compare by value after a JSON
    round trip, so tuples equal lists and ints equal the same floats written by YAML.
    """
    free = set(free_keys)
    return _walk(_plain(recorded), _plain(wanted), "", free)


def check_same_identity(recorded: Mapping, wanted: Mapping, free_keys: Iterable[str], where) -> None:
    """Raise a one-line ConfigError naming the first differing key, if the identities differ."""
    diff = first_difference(recorded, wanted, free_keys)
    if diff is not None:
        key, old, new = diff
        raise ConfigError(where, key, f"was {_show(old)} when this output was made, is {_show(new)} now; "
                          "use another output, or the same settings to resume")


def claim_output(folder, record_name: str, identity: Mapping, free_keys: Iterable[str] = (),
                 kind: str = "output") -> bool:
    """Make `folder` an output with this identity, or check that it already is one; True if newly made.

    The identity is written to `folder/record_name` (JSON, or YAML when the name ends in .yaml). A folder
    that exists and is not empty but has no such record is refused: it is not an output of this `kind`.
    """
    folder = Path(folder)
    record = folder / record_name
    if record.is_file():
        check_same_identity(read_identity(record), identity, free_keys, record)
        return False
    _refuse_foreign(folder, record_name, kind)
    check_writable(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_identity(record, identity)
    return True


@contextlib.contextmanager
def hold_output(folder, record_name: str, identity: Mapping, free_keys: Iterable[str] = (),
                kind: str = "output") -> Iterator[bool]:
    """`claim_output`, then hold the output's lock (LOCK_FILE inside it) until the block ends, so a second
    command on the same output is refused instead of interleaving its work. Yields claim_output's answer."""
    folder = Path(folder)
    if not (folder / record_name).is_file():
        _refuse_foreign(folder, record_name, kind)
        check_writable(folder)
        folder.mkdir(parents=True, exist_ok=True)
    with hold_lock(folder / LOCK_FILE, f"{folder}: another process is using this {kind}; wait for it to finish"):
        yield claim_output(folder, record_name, identity, free_keys, kind)


def _refuse_foreign(folder: Path, record_name: str, kind: str) -> None:
    """A folder holding anything but our lock file, and no identity record, was not made by us."""
    if folder.exists() and (not folder.is_dir() or any(p.name != LOCK_FILE for p in folder.iterdir())):
        raise UserError(f"{folder}: exists and holds no {record_name}, so it is not a {kind} made by cotrain; "
                        "choose another output")


def read_identity(record) -> dict:
    record = Path(record)
    try:
        text = record.read_text()
        data = yaml.safe_load(text) if record.suffix in (".yaml", ".yml") else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise UserError(f"{record}: unreadable identity record ({type(exc).__name__}); "
                        "delete the output to start over") from None
    if not isinstance(data, dict):
        raise UserError(f"{record}: identity record is not a mapping; delete the output to start over")
    return data


def write_identity(record, identity: Mapping) -> None:
    record = Path(record)
    plain = _plain(identity)
    text = (yaml.safe_dump(plain, sort_keys=False) if record.suffix in (".yaml", ".yml")
            else json.dumps(plain, indent=2) + "\n")
    atomic_write_text(record, text)


def _walk(a, b, prefix: str, free: set[str]):
    if prefix and _is_free(prefix, free):
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            name = f"{prefix}.{k}" if prefix else str(k)
            found = _walk(a.get(k, _MISSING), b.get(k, _MISSING), name, free)
            if found is not None:
                return found
        return None
    if a == _MISSING and b != _MISSING and b == _plain(_added_default(prefix)):
        return None   # recorded before this key existed, wanted at the value that reproduces it
    return None if a == b else (prefix or "(whole record)", a, b)


def _is_free(key: str, free: set[str]) -> bool:
    parts = key.split(".")
    return any(".".join(parts[:i]) in free for i in range(1, len(parts) + 1))


def _plain(obj):
    """Plain JSON-like values: tuples become lists, ints that are whole floats compare equal, paths and
    other objects become strings, non-finite floats become the strings "inf", "-inf", "nan"."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _plain(obj.item())
    return str(obj)


def _show(value) -> str:
    return "absent" if value == _MISSING else repr(value)
