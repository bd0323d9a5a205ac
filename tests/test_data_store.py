"""The dataset format: round trip, validation of each kind of broken store, interrupted writers."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import zarr

from harness.cli import main
from harness.core import DatasetError, EpisodeStore, EpisodeWriter, validate
from tests.helpers import episode, write_store


def test_round_trip_keeps_episodes_meta_and_attrs(tmp_path):
    path = tmp_path / "s.zarr"
    write_store(path, n_episodes=3)
    store = EpisodeStore(path)
    assert store.n_episodes == 3 and store.n_steps == 4 + 5 + 6
    assert list(store.episode_lengths) == [4, 5, 6]
    ep = store.episode(2)
    assert ep["action"].shape == (6, 2) and np.all(ep["action"] == 2.0)
    assert list(store.meta("seed")) == [0, 1, 2]
    assert list(store.meta("success")) == [False, True, False]
    assert store.attrs["domain"] == "target" and store.attrs["env_params"] == {"mu": 0.5}
    # in-memory mode reads the same values
    assert np.array_equal(EpisodeStore(path, in_memory=True).data("slider_pose"), store.data("slider_pose"))


def test_reopening_appends_and_refuses_another_domain(tmp_path):
    path = tmp_path / "s.zarr"
    write_store(path, n_episodes=2)
    with EpisodeWriter(path, domain="target", source="teleop_scripted", env="target", env_params={},
                       generator={}) as writer:
        assert list(writer.meta("seed")) == [0, 1]
        writer.add_episode(episode(3, 7.0), {"seed": 9, "success": True})
    assert EpisodeStore(path).n_episodes == 3
    with pytest.raises(DatasetError, match="attrs.domain"):
        EpisodeWriter(path, domain="sim", source="teleop_scripted", env="target", env_params={}, generator={})


@pytest.mark.parametrize("bad, message", [
    ({"action": np.full((4, 2), np.nan)}, "NaN"),
    ({"action": np.zeros((3, 2))}, "differ in length"),
    ({"action": np.zeros((4, 3))}, "must be"),
])
def test_writer_rejects_bad_episodes(tmp_path, bad, message):
    with EpisodeWriter(tmp_path / "s.zarr", domain="sim", source="gcs_kinematic", env="sim", env_params={},
                       generator={}) as writer:
        with pytest.raises(ValueError, match=message):
            writer.add_episode({**episode(4), **bad}, {"seed": 0})
        assert writer.n_episodes == 0


# Each breaker damages a valid store in one way; validate must name the problem.
def _set_attr(key, value):
    return lambda root: root.attrs.update({key: value})


def _del_attr(key):
    return lambda root: root.attrs.__delitem__(key)


def _replace_data(key, array):
    def breaker(root):
        del root["data"][key]
        root["data"].create_array(key, data=array)
    return breaker


def _replace_ends(values, dtype="int64"):
    def breaker(root):
        del root["meta"]["episode_ends"]
        root["meta"].create_array("episode_ends", data=np.asarray(values, dtype=dtype))
    return breaker


def _nan_at(key, step):
    def breaker(root):
        arr = root["data"][key]
        arr[step, 0] = np.nan
    return breaker


BREAKERS = {
    "missing attribute": (_del_attr("source"), "attrs.source"),
    "bad domain": (_set_attr("domain", "mars"), "attrs.domain"),
    "bad source": (_set_attr("source", "dreams"), "attrs.source"),
    "future schema": (_set_attr("schema_version", 99), "attrs.schema_version"),
    "env_params not a mapping": (_set_attr("env_params", [1, 2]), "attrs.env_params"),
    "missing data key": (lambda r: r["data"].__delitem__("action"), "data/action: missing"),
    "missing episode_ends": (lambda r: r["meta"].__delitem__("episode_ends"), "meta/episode_ends: missing"),
    "ends not int64": (_replace_ends([4, 9, 15], "float64"), "meta/episode_ends: must be 1-D int64"),
    "ends not monotone": (_replace_ends([4, 3, 15]), "not strictly increasing at episode 1"),
    "empty first episode": (_replace_ends([0, 9, 15]), "first episode is empty"),
    "data shorter than ends": (_replace_ends([4, 9, 20]), "ends at 20"),
    "wrong per-step shape": (_replace_data("action", np.zeros((15, 3), np.float32)), "per-step shape must be (2,)"),
    "integer actions": (_replace_data("action", np.zeros((15, 2), np.int32)), "must be floating point"),
    "image not uint8": (_replace_data("image", np.zeros((15, 4, 4, 3), np.float32)), "data/image: must be uint8"),
    "image wrong shape": (_replace_data("image", np.zeros((15, 4, 4), np.uint8)), "(H, W, 3)"),
    "NaN in data": (_nan_at("slider_pose", 10), "NaN or inf at step 10 (episode 2)"),
    # (meta shorter than the episodes is valid: episodes appended by another tool; tests/test_store_interop.py)
    "meta a scalar": (lambda r: (r["meta"].__delitem__("seed"), r["meta"].create_array("seed", shape=(), dtype="i8")),
                      "meta/seed: must have one value per episode"),
}


@pytest.mark.parametrize("name", list(BREAKERS))
def test_validate_rejects_each_kind_of_broken_store(tmp_path, capsys, name):
    path = tmp_path / "s.zarr"
    write_store(path, n_episodes=3)
    if name.startswith("image"):
        zarr.open_group(str(path), mode="r+")["data"].create_array("image", data=np.zeros((15, 4, 4, 3), np.uint8))
        validate(path)  # a good image key passes
    breaker, message = BREAKERS[name]
    breaker(zarr.open_group(str(path), mode="r+"))
    with pytest.raises(DatasetError) as info:
        validate(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    # The CLI prints the same problem on one line and exits 2, no traceback.
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and "Traceback" not in err


def test_validate_rejects_missing_and_non_store_paths(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.zarr")]) == 2
    assert "no such store" in capsys.readouterr().err
    (tmp_path / "file.txt").write_text("hello")
    assert main(["validate", str(tmp_path / "file.txt")]) == 2
    assert "not a zarr group" in capsys.readouterr().err


def test_validate_prints_summary(tmp_path, capsys):
    path = tmp_path / "s.zarr"
    write_store(path, n_episodes=3)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "episodes   3   steps 15" in out and "domain     target" in out and "data/action" in out


WRITER_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    from harness.core import EpisodeWriter
    from tests.helpers import episode
    w = EpisodeWriter(sys.argv[1], domain="sim", source="gcs_kinematic", env="sim", env_params={}, generator={})
    i = w.n_episodes
    while True:
        w.add_episode(episode(50 + i % 7, float(i)), {"seed": i})
        i += 1
        if i == 1:
            print("ready", flush=True)   # one whole episode in: the test's interrupt then finds some, however slow the machine
""")


def _assert_whole_episodes(path):
    store = EpisodeStore(path)
    assert store.n_episodes > 0
    for i in range(store.n_episodes):
        ep = store.episode(i)
        assert len(ep["action"]) == 50 + i % 7, f"episode {i} has the wrong length"
        assert np.all(ep["action"] == float(i)) and np.all(ep["slider_pose"] == float(i))
    assert list(store.meta("seed")) == list(range(store.n_episodes))
    return store.n_episodes


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_store_survives_an_interrupted_writer(tmp_path, sig):
    path = tmp_path / "s.zarr"
    # SIG_DFL for SIGINT in the child, so that Python turns it into KeyboardInterrupt even where the test
    # runner ignores it (pytest-xdist's workers do, and a child inherits an ignored signal)
    proc = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(path)], stdout=subprocess.PIPE,
                            cwd=str(__import__("pathlib").Path(__file__).parents[1]),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(1.0)
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:   # a writer that did not stop must not outlive the test (it would write on, on a shared core)
        proc.kill()
        proc.wait()
    validate(path)
    first = _assert_whole_episodes(path)
    # Reopening repairs any uncommitted tail and appends after the last whole episode.
    with EpisodeWriter(path, domain="sim", source="gcs_kinematic", env="sim", env_params={}, generator={}) as w:
        w.add_episode(episode(50 + first % 7, float(first)), {"seed": first})
    assert _assert_whole_episodes(path) == first + 1
    assert validate(path).uncommitted_steps == 0


def test_one_writer_at_a_time(tmp_path):
    """Two appenders would interleave episodes: the second is refused until the first closes."""
    path = tmp_path / "s.zarr"
    kwargs = dict(domain="sim", source="gcs_kinematic", env="sim", env_params={}, generator={})
    first = EpisodeWriter(path, **kwargs)
    with pytest.raises(DatasetError, match="another writer has this store open"):
        EpisodeWriter(path, **kwargs)
    first.close()
    with EpisodeWriter(path, **kwargs) as second:
        second.add_episode(episode(3), {"seed": 0})
    assert validate(path).n_episodes == 1


def test_a_store_stopped_before_its_first_episode_reopens(tmp_path):
    path = tmp_path / "s.zarr"
    kwargs = dict(domain="sim", source="gcs_kinematic", env="sim", env_params={}, generator={})
    EpisodeWriter(path, **kwargs).close()
    assert validate(path).n_episodes == 0
    with EpisodeWriter(path, **kwargs) as writer:          # resume appends the first episode
        writer.add_episode(episode(3), {"seed": 0})
    assert validate(path).n_episodes == 1


def test_a_torn_episode_ends_commit_is_not_an_episode(tmp_path):
    """Killed between growing episode_ends and writing its value: the slot reads 0 and is no episode."""
    path = tmp_path / "s.zarr"
    write_store(path, n_episodes=3)
    zarr.open_group(str(path), mode="r+")["meta/episode_ends"].resize((4,))   # shape written, value not
    assert validate(path).n_episodes == 3
    assert list(EpisodeStore(path).episode_ends) == [4, 9, 15]
    with EpisodeWriter(path, domain="target", source="teleop_scripted", env="target", env_params={},
                       generator={}) as writer:                              # reopening repairs it
        assert writer.n_episodes == 3
        writer.add_episode(episode(2, 3.0), {"seed": 3, "success": True})
    assert list(EpisodeStore(path).episode_ends) == [4, 9, 15, 17]


def test_reopen_with_resume_free_keys_refuses_another_generator_before_touching_the_store(tmp_path):
    from harness.core.errors import ConfigError
    from tests.helpers import tree_digest

    def digest():
        return tree_digest(path)

    path = tmp_path / "s.zarr"
    write_store(path, n_episodes=2)                      # generator {"seed": 0}
    root = zarr.open_group(str(path), mode="r+")
    root["data/action"].resize((20, 2))                 # uncommitted steps, and a torn commit
    root["meta/episode_ends"].resize((3,))
    before = digest()
    kwargs = dict(domain="target", source="teleop_scripted", env="target", env_params={})
    with pytest.raises(ConfigError) as err:
        EpisodeWriter(path, generator={"seed": 1, "num": 9}, resume_free_keys=("num",), **kwargs)
    assert str(err.value).startswith(f"{path}: attrs.generator: seed: was 0") and len(str(err.value).splitlines()) == 1
    assert digest() == before                            # not repaired, not trimmed, not locked
    # The same identity up to free keys reopens (and then repairs); None skips the generator check.
    with EpisodeWriter(path, generator={"seed": 0, "num": 9}, resume_free_keys=("num",), **kwargs) as writer:
        assert dict(zarr.open_group(str(path), mode="r").attrs["generator"]) == {"seed": 0}
        assert writer.n_episodes == 2
    with EpisodeWriter(path, generator={"other": True}, **kwargs):   # the recorded identity stays
        assert dict(zarr.open_group(str(path), mode="r").attrs["generator"]) == {"seed": 0}
    assert validate(path).n_episodes == 2


def _open_new_store_at_once(path, barrier, results):
    """One of two writers started at the same instant on a store that does not exist yet."""
    barrier.wait()
    try:
        with EpisodeWriter(path, domain="target", source="teleop_scripted", env="target", env_params={},
                           generator={}) as w:
            w.add_episode(episode(3, 0.0), {"seed": 0, "success": True})
            time.sleep(0.3)                       # hold the store while the other writer tries
        results.put("ok")
    except DatasetError as exc:
        results.put("busy" if "another writer" in str(exc) else repr(exc))
    except Exception as exc:  # noqa: BLE001 - what the test looks for
        results.put(repr(exc))


def test_two_writers_creating_one_store_at_once_give_one_store_and_one_refusal(tmp_path):
    """Creation is claim-then-build: the loser of the race is refused in one line (another writer), never
    an OSError, and no temporary folder is left beside the store."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    for round_ in range(4):
        path = tmp_path / f"s{round_}.zarr"
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_open_new_store_at_once, args=(path, barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        got = sorted(results.get(timeout=5) for _ in procs)
        assert got in (["busy", "ok"], ["ok", "ok"]), got
        assert EpisodeStore(path).n_episodes == got.count("ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"s{i}.zarr" for i in range(4)]
