"""Typed configs: YAML + overrides, unknown keys and wrong types rejected with file and key named."""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

import pytest

from harness.core.configs import (added_keys, check_bounds, declaration, free_keys, key, load_config, parse_overrides,
                                  save_config)
from harness.core.errors import ConfigError


@dataclasses.dataclass
class Optim:
    lr: float = 1e-3          # learning rate
    betas: tuple[float, float] = (0.9, 0.999)


@dataclasses.dataclass
class Run:
    name: str = "run"
    method: Literal["cotrain", "ambient"] = "cotrain"
    steps: int = 10
    alpha: Optional[float] = None
    widths: list[int] = dataclasses.field(default_factory=lambda: [8, 16])
    optim: Optim = dataclasses.field(default_factory=Optim)

    def __post_init__(self):
        if self.steps <= 0:
            raise ValueError("steps must be positive")


def test_yaml_then_overrides_then_types(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: ambient\nsteps: 5\noptim:\n  lr: 0.01\n")
    cfg = load_config(Run, path, ["optim.lr=1e-4", "alpha=0.5", "widths=[1,2,3]", "optim.betas=[0.5, 0.6]"])
    assert cfg.method == "ambient" and cfg.steps == 5
    assert cfg.optim.lr == pytest.approx(1e-4)  # "1e-4" is a YAML string; the float field converts it
    assert cfg.alpha == 0.5 and cfg.widths == [1, 2, 3] and cfg.optim.betas == (0.5, 0.6)


@pytest.mark.parametrize("text, overrides, key, problem", [
    ("stepz: 3\n", [], "stepz", "unknown key"),
    ("optim:\n  momentum: 3\n", [], "optim.momentum", "unknown key"),
    ("steps: many\n", [], "steps", "expected an integer"),
    ("method: sgd\n", [], "method", "must be one of"),
    ("", ["optim.lr=fast"], "optim.lr", "expected a number"),
    ("", ["optim.betas=[1]"], "optim.betas", "expected 2 values"),
    ("", ["steps=0"], None, "steps must be positive"),
    ("", ["steps"], "steps", "key=value"),
    ("steps: [1\n", [], None, "invalid YAML"),
])
def test_bad_configs_name_file_key_and_problem(tmp_path, text, overrides, key, problem):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(Run, path, overrides)
    message = str(info.value)
    assert problem in message
    if key:
        assert key in message
    assert "\n" not in message


def test_missing_file_and_round_trip(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(Run, tmp_path / "missing.yaml")
    cfg = load_config(Run, None, ["alpha=0.25", "optim.lr=0.5"])
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(Run, tmp_path / "resolved.yaml") == cfg


def test_parse_overrides_nests_dotted_keys():
    assert parse_overrides(["a.b.c=1", "a.d=x", "e=[1, 2]"]) == {"a": {"b": {"c": 1}, "d": "x"}, "e": [1, 2]}


# ---------------------------------------------------------------- one declaration per key (configs.key)
@dataclasses.dataclass
class _Inner:
    threads: int = key(0, free=True, doc="threads (free: any count resumes)")
    depth: int = key(4, since=7, bound=(1, 8), doc="added in issue 7")
    mode: str = key("new", since=9, was="old", doc="added in issue 9; old outputs did what 'old' does")

    def __post_init__(self):
        check_bounds(self, "inner")


@dataclasses.dataclass
class _Outer:
    out_dir: str = key("x", free="own", doc="the output's place")
    inner: _Inner = dataclasses.field(default_factory=_Inner)
    plain: int = 3                   # a key declared the plain way has no resume behaviour


def test_free_and_added_keys_are_read_from_the_declarations():
    assert free_keys(_Outer) == ("out_dir", "inner.threads")
    assert free_keys(_Outer, "train_config", own=False) == ("train_config.inner.threads",)   # out_dir: own record only
    assert added_keys(_Outer) == {"inner.depth": 4, "inner.mode": "old"}          # `was`, else the default
    assert declaration(dataclasses.fields(_Inner)[1])["doc"] == "added in issue 7"


def test_a_declared_bound_is_checked_in_the_words_of_the_other_checks(tmp_path):
    assert load_config(_Outer, overrides=["inner.depth=8"]).inner.depth == 8
    with pytest.raises(ConfigError, match=r"inner.depth must be in \[1, 8\], got 9"):
        load_config(_Outer, overrides=["inner.depth=9"])


def test_run_note_is_kept_with_the_run_and_never_blocks_a_resume():
    """run.note (issue 38) was added with one line in train_config.py: its declaration makes it a free key of
    a training run and of a study run, and runs made before it existed resume whatever it says."""
    from harness.core.configs import to_dict
    from harness.core.identity import first_difference
    from harness.learning.train_config import TrainConfig
    from harness.learning.training import RESUME_FREE_KEYS
    from harness.study.runner import RUN_FREE_KEYS

    cfg = load_config(TrainConfig, overrides=["run.note=the baseline of issue 38"])
    assert cfg.run.note == "the baseline of issue 38" and TrainConfig().run.note == ""
    before = to_dict(TrainConfig())
    del before["run"]["note"]                                   # a run made before the key existed
    assert first_difference(before, to_dict(TrainConfig())) is None            # at its default: the same run
    assert first_difference(before, to_dict(cfg), RESUME_FREE_KEYS) is None   # any note: the same run
    assert first_difference({"train_config": before}, {"train_config": to_dict(cfg)}, RUN_FREE_KEYS) is None
    assert first_difference(before, to_dict(cfg)) == ("run.note", "<absent>", "the baseline of issue 38")


def _config_roots():
    """Every config a command parses with load_config / from_dict (the sections below them are walked)."""
    from eval.evaluation import EvalSettings
    from gcs_planner.config import PlannerConfig
    from gcs_planner.generate import GenSimConfig
    from harness.learning.classifier import AnnotateConfig
    from harness.learning.train_config import TrainConfig
    from harness.study.config import StudyConfig
    from real_data.corruption.generate import CorruptConfig
    from real_data.importers.mapping import ImportMapping
    from real_data.teleop.generate import GenTeleopConfig
    from real_data.teleop.scripted import TeleopConfig
    from sim_envs.config import PhysicsConfig
    from sim_envs.visual import VisualConfig
    return [TrainConfig, EvalSettings, StudyConfig, AnnotateConfig, GenSimConfig, PlannerConfig, GenTeleopConfig,
            TeleopConfig, CorruptConfig, ImportMapping, PhysicsConfig, VisualConfig]


def _config_sections(cls, seen: dict) -> dict:
    """`cls` and every dataclass its fields hold (a section, an Optional one, or a list or mapping of them)."""
    import typing

    def dataclasses_in(tp):
        if dataclasses.is_dataclass(tp):
            yield tp
        for arg in typing.get_args(tp):
            yield from dataclasses_in(arg)

    if cls not in seen:
        seen[cls] = None
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            for inner in dataclasses_in(hints[field.name]):
                _config_sections(inner, seen)
    return seen


def test_every_config_key_is_declared_with_a_one_line_doc():
    """Issue 38: each key of every parsed config carries its default, bound, doc and resume behaviour in one
    `key(...)` declaration; none is declared the plain way (a default with a comment)."""
    seen: dict = {}
    for root in _config_roots():
        _config_sections(root, seen)
    assert len(seen) > len(_config_roots())                       # the sections were walked too
    undeclared = [f"{cls.__qualname__}.{field.name}" for cls in seen for field in dataclasses.fields(cls)
                  if not declaration(field).get("doc") or "\n" in declaration(field)["doc"]]
    assert not undeclared, f"declare these with key(default, 'one-line doc'): {', '.join(undeclared)}"
