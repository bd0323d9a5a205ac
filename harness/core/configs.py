"""Typed configs: dataclasses loaded from YAML, with `key=value` overrides and unknown keys rejected.

Every config in the project (physics presets, generators, training, experiments) goes through
`load_config`, so every config error reads the same way: `file: key: problem`. A dataclass may list keys
it renamed in a class attribute `RENAMED = {"old": "new"}`; an old key is then refused with its new name. A key
that is a Python keyword (`from`) is read into the field its `ALIASES = {"from": "from_"}` names. This module lives in the
bottom layer so that every package can use it.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, TypeVar, Union

import yaml

from harness.core.atomic import atomic_write_text
from harness.core.errors import ConfigError

# Bounds that every part of the harness shares (a typo such as 1e15, not an experiment, lies past them).
MAX_SEED = 2**31 - 1            # torch, numpy and Drake all take it
MAX_EPISODES = 1_000_000        # episodes a generator is asked for
MAX_WORKERS = 256               # worker processes of one command

MAX_CONFIG_BYTES = 4 << 20       # a config, mapping or record file (the largest shipped one is a few kB)
MAX_NESTING = 100               # levels of nested mappings and lists (a config has fewer than 10)

T = TypeVar("T")


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (plain YAML keeps the last, silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":   # `<<: *defaults` is not a key of its own
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)

    def compose_node(self, parent, index):
        """Count the nesting while the document is composed (recursively, node by node), so text nested
        100,000 deep is one line at MAX_NESTING, not a RecursionError with thousands of lines."""
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_NESTING:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_NESTING} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml_text(text: str):
    """YAML text -> Python values, with every rule of a config: no key twice, nesting within MAX_NESTING."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


def read_text_bounded(path, limit: int = MAX_CONFIG_BYTES) -> str:
    """A config or record file's text, refused in one line when it is over `limit` bytes (before reading it:
    a 36 MB list of numbers would take minutes to parse) or not UTF-8."""
    path = Path(path)
    size = path.stat().st_size
    if size > limit:
        raise ConfigError(path, None, f"{size} bytes, more than a config may hold ({limit}); is it the right file?")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})") from None


def read_json(path, limit: int = MAX_CONFIG_BYTES):
    """A JSON file (a normalizer, an identity record, a LeRobot meta file) with the bounds of a config: size
    before reading, nesting while decoding (json's RecursionError), and bad JSON, each one line."""
    import json
    text = read_text_bounded(path, limit)
    try:
        return json.loads(text)
    except RecursionError:
        raise ConfigError(path, None, "nested too deep to be a config or record") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(path, None, f"line {exc.lineno}: invalid JSON ({exc.msg})") from None


def load_yaml(path) -> dict:
    """Read a YAML mapping; a missing file or bad syntax becomes a one-line ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, None, "file not found")
    try:
        data = parse_yaml_text(read_text_bounded(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(path, None, f"{line}invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(path, None, f"expected a mapping at the top level, got {type(data).__name__}")
    return data


def parse_overrides(overrides: Sequence[str], source: str = "command line") -> dict:
    """Turn ["train.lr=1e-4", "seed=3"] into a nested dict; values are parsed as YAML scalars/lists."""
    result: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(source, item, "override must look like key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(source, item, "override key is empty")
        try:
            value = parse_yaml_text(raw) if raw.strip() else ""
        except yaml.composer.ComposerError as exc:   # nested past MAX_NESTING
            raise ConfigError(source, key, str(exc.problem)) from None
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(source, key, "conflicting overrides")
        node[parts[-1]] = value
    return result


def merge(base: Mapping, update: Mapping) -> dict:
    """Recursive dict merge: nested mappings merge, everything else is replaced."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(cls: type[T], path=None, overrides: Sequence[str] = (), base: Mapping | None = None) -> T:
    """Build `cls` from (defaults <- base <- YAML file <- overrides), checking every key and type."""
    data: dict = dict(base or {})
    source = "command line" if overrides else "defaults"
    if path is not None:
        data = merge(data, load_yaml(path))
        source = str(path)
    if overrides:
        data = merge(data, parse_overrides(overrides))
    return from_dict(cls, data, source)


def from_dict(cls: type[T], data: Mapping, source: str = "config", prefix: str = "") -> T:
    """Construct dataclass `cls` from a mapping; unknown keys and wrong types raise ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError(source, prefix or None, f"expected a mapping, got {type(data).__name__}")
    aliases = getattr(cls, "ALIASES", {})   # {YAML key: field name}, for a key that is a Python keyword (`from`)
    data = {aliases.get(k, k): v for k, v in data.items()}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields), key=str)   # a YAML key may be a number: `1: x` beside `seed: 0`
    renamed = getattr(cls, "RENAMED", {})   # {old key: new key} of keys renamed in this config
    for name in unknown:
        if name in renamed:
            raise ConfigError(source, _join(prefix, str(name)), f"renamed to {_join(prefix, renamed[name])}")
    if unknown:
        key = _join(prefix, str(unknown[0]))
        raise ConfigError(source, key, f"unknown key (allowed: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, source, _join(prefix, name))
    missing = [
        n for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(source, _join(prefix, missing[0]), "required key is missing")
    try:
        obj = cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ checks
        message = str(exc)
        named = prefix and message.split(" ", 1)[0].rstrip(":").startswith(prefix)  # it names its key already
        raise ConfigError(source, None if named else prefix or None, message) from None
    return obj


def to_dict(cfg) -> dict:
    """Plain-Python dict of a config (tuples become lists), suitable for YAML and JSON."""
    return _plain(dataclasses.asdict(cfg))


def dump_yaml(cfg) -> str:
    return yaml.safe_dump(to_dict(cfg) if dataclasses.is_dataclass(cfg) else _plain(cfg), sort_keys=False)


def save_config(cfg, path) -> None:
    """Write the resolved config atomically, so a run folder always has a complete one."""
    atomic_write_text(path, dump_yaml(cfg))


# ---------------------------------------------------------------- declaring a key
# A config key is declared once, on its dataclass field: `name: type = key(default, "doc", ...)`. Its
# default, one-line doc, bound and resume behaviour sit there together; the tables that other modules used
# to keep by hand (identity.ADDED_KEYS, the *_FREE_KEYS of each output kind) are read from these
# declarations (`free_keys`, `added_keys`). Adding a key is then one line in its dataclass (and its test).
_DECLARED = "cotrain"   # the field-metadata entry that holds a key's declaration
_AS_DEFAULT = object()  # `was` not given: the default reproduces old outputs


def key(default: Any = dataclasses.MISSING, doc: str = "", *, factory=None, free: bool | str = False,
        since: int | None = None, was: Any = _AS_DEFAULT, bound: tuple | None = None):
    """Declare one config key (a dataclass field with its declaration in the field's metadata).

    free   True: the key may change between sessions of one output without changing its result (thread
           counts, progress bars, how many items to make in total); it is a free key of every output whose
           identity record holds it. "own": the output's own place (out_dir), free only in the record the
           output keeps inside itself (a moved folder resumes), not where another output records the config.
    since  the issue that added the key after outputs were made without it. An identity recorded before
           then resumes when the key holds `was` (default: the key's default), the value that reproduces
           what those outputs did; any other value is a difference.
    bound  (lo, hi), either may be None: the value (when not None) must lie in [lo, hi]. Checked by
           `check_bounds`, which the dataclass's __post_init__ calls; other checks stay in __post_init__.
    """
    declaration = {"doc": doc, "free": free, "since": since, "bound": bound,
                   "was": default if was is _AS_DEFAULT else was}
    if factory is not None:
        if was is _AS_DEFAULT and since is not None:   # only an added key needs it (a section is not built on import)
            declaration["was"] = factory()
        return dataclasses.field(default_factory=factory, metadata={_DECLARED: declaration})
    return dataclasses.field(default=default, metadata={_DECLARED: declaration})


def declaration(field: dataclasses.Field) -> dict:
    """A field's declaration (empty for a plain dataclass field; every key of a parsed config has one)."""
    return field.metadata.get(_DECLARED, {})


def check_bounds(cfg, section: str = "") -> None:
    """Refuse a value outside its declared bound, in `_require`'s words: `section.key must be in [lo, hi], got v`."""
    for field in dataclasses.fields(cfg):
        bound = declaration(field).get("bound")
        value = getattr(cfg, field.name)
        if bound is None or value is None:
            continue
        lo, hi = bound
        # `not lo <= value`, not `value < lo`: NaN lies in no bound
        if (lo is not None and not lo <= value) or (hi is not None and not value <= hi):
            what = f"in [{lo}, {hi}]" if lo is not None and hi is not None else (f">= {lo}" if hi is None else f"<= {hi}")
            raise ValueError(f"{_join(section, field.name)} must be {what}, got {value!r}")


def free_keys(cls, prefix: str = "", own: bool = True) -> tuple[str, ...]:
    """The dotted keys of config `cls` declared free, each under `prefix` (the name the record gives the
    config: "train_config" in a study's run.json). own: the record is the output's own (its out_dir is free).
    A free section frees everything below it, so it is not descended into."""
    out = []
    for field in dataclasses.fields(cls):
        name = _join(prefix, field.name)
        free = declaration(field).get("free", False)
        if free is True or (free == "own" and own):
            out.append(name)
        elif _is_config(field):
            out += free_keys(_field_type(cls, field), name, own)
    return tuple(out)


def added_keys(cls, prefix: str = "") -> dict[str, Any]:
    """{dotted key: the value that reproduces outputs made before it} for every key of config `cls` (and the
    configs inside it) declared `since` an issue; identity.register_added_keys takes this table."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        name = _join(prefix, field.name)
        if declaration(field).get("since") is not None:
            out[name] = declaration(field)["was"]
        if _is_config(field):
            out.update(added_keys(_field_type(cls, field), name))
    return out


def _field_type(cls, field: dataclasses.Field):
    return typing.get_type_hints(cls)[field.name]


def _is_config(field: dataclasses.Field) -> bool:
    """A field whose value is itself a config section (a dataclass), not a list or a scalar."""
    return field.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(field.default_factory)


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    return obj


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _coerce(tp, value: Any, source: str, key: str):
    """Check (and gently convert) one value against a type annotation."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = {}
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, source, key)
            except ConfigError as exc:
                errors[arg] = exc.problem
        numeric = next((errors[a] for a in (float, int) if a in errors), None)
        if numeric is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ConfigError(source, key, numeric)   # a number: what is wrong with it as a number
        problems = list(errors.values())
        raise ConfigError(source, key, problems[0] if len(problems) == 1 else f"does not match {tp}: {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(source, key, f"must be one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value if value is not None else {}, source, key)
    if origin in (list, tuple, Sequence, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(source, key, f"expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(source, key, f"expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, source, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item_tp = args[0] if args else Any
        items = [_coerce(item_tp, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin in (dict, Mapping, typing.Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(source, key, f"expected a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(vt, v, source, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(source, key, f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(source, key, f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(source, key, f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(source, key, f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            out = float(value)
        elif isinstance(value, str):
            try:
                out = float(value)
            except ValueError:
                raise ConfigError(source, key, f"expected a number, got {value!r}") from None
        else:
            raise ConfigError(source, key, f"expected a number, got {value!r}")
        if not math.isfinite(out):   # no setting means anything at NaN or infinity
            raise ConfigError(source, key, f"must be a finite number, got {out}")
        return out
    if tp in (str, Path) and isinstance(value, str) and "\0" in value:   # no file name, label or text holds one
        raise ConfigError(source, key, f"holds a NUL byte: {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(source, key, f"expected a string, got {value!r}")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(source, key, f"expected a path, got {value!r}")
    return value
