"""The run-identity rule (harness.core.identity): first differing key, free keys, and claiming an output folder."""
from __future__ import annotations

import json

import pytest

# The configs whose keys were added after outputs were made register them when imported (their declarations:
# harness.core.configs.key(since=...)); a command that compares an identity has imported its config too.
import eval.evaluation  # noqa: F401  (registers num_steps, sampler, visual of an evaluation)
import gcs_planner.generate  # noqa: F401
import harness.learning.classifier  # noqa: F401
import real_data.teleop.generate  # noqa: F401
from harness.core.errors import ConfigError, UserError
from harness.core.identity import ADDED_KEYS, check_same_identity, claim_output, first_difference, read_identity


def test_first_difference_names_the_first_nested_key_in_sorted_order():
    old = {"b": {"y": 1, "x": {"deep": 2}}, "a": 1, "c": 3}
    new = {"b": {"y": 5, "x": {"deep": 3}}, "a": 1, "c": 4}
    assert first_difference(old, new) == ("b.x.deep", 2, 3)
    assert first_difference(old, old) is None
    # A key present on one side only differs from "absent".
    key, was, now = first_difference({"a": 1}, {"a": 1, "z": {"k": 0}})
    assert key == "z" and now == {"k": 0}


def test_free_keys_free_themselves_and_everything_below():
    old = {"run": {"progress": True, "threads": 2}, "lr": 1e-3, "num": 10}
    new = {"run": {"progress": False, "threads": 8}, "lr": 1e-3, "num": 20}
    assert first_difference(old, new, free_keys=("num", "run")) is None
    assert first_difference(old, new, free_keys=("num", "run.progress")) == ("run.threads", 2, 8)
    # "run" frees run.* but not a key that merely starts with the same letters.
    assert first_difference({"runner": 1}, {"runner": 2}, free_keys=("run",)) == ("runner", 1, 2)


def test_tuples_equal_lists_and_whole_floats_equal_ints():
    assert first_difference({"size": (96, 96), "mu": 1}, {"size": [96, 96], "mu": 1.0}) is None
    assert first_difference({"size": (96, 96)}, {"size": [96, 64]}) == ("size", [96, 96], [96, 64])


def test_check_same_identity_is_one_line_naming_where_and_the_key():
    check_same_identity({"a": 1, "n": 1}, {"a": 1, "n": 2}, ("n",), "store")
    with pytest.raises(ConfigError) as err:
        check_same_identity({"h": {"p": 0.1}}, {"h": {"p": 0.0}}, (), "s.zarr: attrs.generator")
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("s.zarr: attrs.generator: h.p: was 0.1") and "is 0.0 now" in message


def test_claim_output_new_same_different_and_foreign(tmp_path):
    out = tmp_path / "ev"
    identity = {"checkpoint": "x.pt", "trials": 2, "size": (1, 2)}
    assert claim_output(out, "spec.json", identity, kind="evaluation") is True       # new: made and recorded
    assert read_identity(out / "spec.json") == {"checkpoint": "x.pt", "trials": 2, "size": [1, 2]}
    (out / "trials.jsonl").write_text("{}\n")
    assert claim_output(out, "spec.json", identity) is False                          # same: resume
    assert claim_output(out, "spec.json", {**identity, "trials": 3}, free_keys=("trials",)) is False
    before = (out / "spec.json").read_text()
    with pytest.raises(ConfigError, match="trials: was 2"):                           # different: refused
        claim_output(out, "spec.json", {**identity, "trials": 3})
    assert (out / "spec.json").read_text() == before
    # A non-empty folder without the record was not made by us: refused and left alone.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.txt").write_text("mine")
    with pytest.raises(UserError, match="holds no spec.json"):
        claim_output(foreign, "spec.json", identity, kind="evaluation")
    assert [p.name for p in foreign.iterdir()] == ["data.txt"]
    # So is a file in the folder's place; an existing empty folder is claimed.
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError):
        claim_output(tmp_path / "file", "spec.json", identity)
    (tmp_path / "empty").mkdir()
    assert claim_output(tmp_path / "empty", "spec.yaml", identity) is True
    assert read_identity(tmp_path / "empty" / "spec.yaml")["size"] == [1, 2]


def test_an_unreadable_record_is_a_one_line_user_error(tmp_path):
    (tmp_path / "spec.json").write_text("{not json")
    with pytest.raises(UserError, match="unreadable identity record"):
        claim_output(tmp_path, "spec.json", {"a": 1})
    (tmp_path / "spec.json").write_text(json.dumps([1, 2]))
    with pytest.raises(UserError, match="not a mapping"):
        claim_output(tmp_path, "spec.json", {"a": 1})


def test_a_key_added_later_matches_an_old_record_only_at_the_value_that_reproduces_it():
    """Outputs made before policy.arch existed were U-Net runs: they resume under arch unet, not mlp."""
    old = {"policy": {"down_dims": [8, 16]}, "run": {"steps": 4}}
    assert first_difference(old, {"policy": {"down_dims": [8, 16], "arch": "unet", "mlp_width": 256,
                                             "mlp_depth": 4}, "run": {"steps": 4, "snapshot_every": 0}}) is None
    assert first_difference(old, {"policy": {"down_dims": [8, 16], "arch": "mlp"}, "run": {"steps": 4}}) \
        == ("policy.arch", "<absent>", "mlp")
    nested = {"train": old}                                                     # a study run record
    assert first_difference(nested, {"train": {**old, "policy": {"down_dims": [8, 16], "arch": "unet"}}}) is None
    assert first_difference({"checkpoint": "a.pt"}, {"checkpoint": "a.pt", "num_steps": None}) is None
    assert first_difference({"checkpoint": "a.pt"}, {"checkpoint": "a.pt", "num_steps": 8}) is not None
    # a key that is not a registered addition is a difference whatever its value
    assert first_difference({"a": 1}, {"a": 1, "b": None}) == ("b", "<absent>", None)


def test_every_train_key_added_since_an_old_record_is_registered_at_its_default():
    """A study run recorded on 2026-12-06 before the pixel keys existed (data.cameras, policy.image.encoder, ...)
    resumes under today's defaults: every key the config gained since must be in ADDED_KEYS at the value
    that reproduces the old run, or finished studies are orphaned by an upgrade."""
    import dataclasses
    import json
    from pathlib import Path

    from harness.learning.train_config import TrainConfig

    old = json.loads((Path(__file__).parent / "data" / "train_config_before_issue22.json").read_text())

    def overlay(default, recorded):   # today's defaults with every recorded value put back
        if isinstance(default, dict) and isinstance(recorded, dict):
            return {k: overlay(default[k], recorded[k]) if k in recorded else v for k, v in default.items()}
        return recorded

    today = overlay(dataclasses.asdict(TrainConfig()), old)
    assert first_difference(old, today) is None
    # and a pixel setting is still a difference
    today["data"]["cameras"] = ["overhead"]
    assert first_difference(old, today) == ("data.cameras", "<absent>", ["overhead"])


# The table as it was written by hand before issue 38 (key: its last dotted parts, matched as a suffix), frozen:
# every entry must still be derived from a declaration at the same value, or outputs made before the key
# existed stop resuming.
HAND_WRITTEN_BEFORE_ISSUE_38 = {
    "policy.arch": "unet", "policy.mlp_width": 256, "policy.mlp_depth": 4, "run.snapshot_every": 0,
    "num_steps": None, "sampler": None, "diffusion.kind": "edm", "diffusion.S_churn": 40.0, "diffusion.S_min": 0.05,
    "diffusion.S_max": 50.0, "diffusion.S_noise": 1.003, "diffusion.num_train_timesteps": 100,
    "diffusion.beta_schedule": "squaredcos_cap_v2", "diffusion.prediction_type": "epsilon",
    "diffusion.clip_sample": True, "optim.ema_power": None, "objective.sigma_n_floor": None,
    "objective.sigma_n_buckets": None, "config.search": "full", "data.cameras": [],
    "data.low_dim": ["agent_pos", "slider_pose"], "image.encoder": "small", "image.crop": None,
    "image.num_keypoints": 32, "visual": None, "data.normalizer_mode": "percentile",
    "diffusion.clip_sample_range": None,
}


@pytest.mark.parametrize("name, value", HAND_WRITTEN_BEFORE_ISSUE_38.items(), ids=list(HAND_WRITTEN_BEFORE_ISSUE_38))
def test_every_key_of_the_old_hand_written_table_is_still_declared_at_its_old_value(name, value):
    derived = {k: v for k, v in ADDED_KEYS.items() if k == name or k.endswith("." + name)}
    assert derived, f"{name}: no config declares it (key(..., since=...)) any more"
    assert all(v == value for v in derived.values()), derived
    # and an old record without it resumes at that value, but not at another
    *sections, last = max(derived, key=len).split(".")

    def nested(leaf: dict) -> dict:   # {"policy": {"image": leaf}} for policy.image.<last>
        for part in reversed(sections):
            leaf = {part: leaf}
        return leaf

    old = nested({"kept": 1})
    assert first_difference(old, nested({"kept": 1, last: value})) is None
    assert first_difference(old, nested({"kept": 1, last: "something else"})) is not None


def test_the_free_keys_of_each_output_kind_are_derived_as_they_were_written():
    """Every key that was free before issue 38 still is, and no key that existed then became free: a key
    free now and not then must be one added since (declared `since`), which no old record holds."""
    from gcs_planner.generate import RESUME_FREE_KEYS as GEN_SIM
    from harness.learning.classifier import ANNOTATE_FREE_KEYS
    from harness.learning.training import RESUME_FREE_KEYS as TRAIN
    from harness.study.runner import RUN_FREE_KEYS
    from real_data.corruption.generate import RESUME_FREE_KEYS as CORRUPT
    from real_data.teleop.generate import RESUME_FREE_KEYS as GEN_TELEOP
    before_issue_38 = [
        (TRAIN, {"out_dir", "run.progress", "run.compile", "run.checkpoint_every", "run.threads"}, ""),
        (RUN_FREE_KEYS, {"train_config.run.progress", "train_config.run.compile", "train_config.run.checkpoint_every",
                         "train_config.run.threads", "alpha"}, "train_config."),
        (ANNOTATE_FREE_KEYS, {"config.progress"}, ""),
        (GEN_SIM, {"num", "workers", "max_seeds", "executor"}, ""),
        (GEN_TELEOP, {"num", "workers", "executor"}, ""),
        (CORRUPT, {"source"}, ""),
    ]
    for derived, written, prefix in before_issue_38:
        assert written <= set(derived), written - set(derived)
        newer = set(derived) - written
        assert all(k.removeprefix(prefix) in ADDED_KEYS for k in newer), newer
