"""gen-sim and gen-teleop with `--executor ray` (a real local Ray, 2 CPUs, one per module) write the same
store as a local run: every array byte for byte, the same attributes except the recorded `executor`."""
import json
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from harness.cli import main  # noqa: E402
from harness.core.store import validate  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


# Timing metadata differs between any two runs, local or not.
TIMING = {"meta/solve_time"}


def _files(store: Path) -> dict[str, bytes]:
    return {str(f.relative_to(store)): f.read_bytes() for f in sorted(store.rglob("*"))
            if f.is_file() and not f.name.endswith(".lock")
            and not any(str(f.relative_to(store)).startswith(t + "/") for t in TIMING)}


def _assert_same_store(local: Path, remote: Path) -> None:
    import zarr
    validate(local)
    validate(remote)
    a, b = zarr.open_group(str(local), mode="r"), zarr.open_group(str(remote), mode="r")
    for group in ("data", "meta"):
        assert sorted(a[group].array_keys()) == sorted(b[group].array_keys())
        for key in a[group].array_keys():
            if f"{group}/{key}" in TIMING:
                continue
            x, y = a[group][key][:], b[group][key][:]
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"), key
    attrs_a, attrs_b = dict(a.attrs), dict(b.attrs)
    assert attrs_a["generator"].pop("executor") == "local" and attrs_b["generator"].pop("executor") == "ray"
    assert json.dumps(attrs_a, sort_keys=True) == json.dumps(attrs_b, sort_keys=True)
    # Byte for byte: every file but the root attributes (which record the executor) and timings is identical.
    fa, fb = _files(local), _files(remote)
    assert sorted(fa) == sorted(fb)
    assert [k for k in fa if fa[k] != fb[k]] == [".zattrs"]


@pytest.mark.slow
def test_gen_sim_with_ray_makes_the_same_store_as_local(tmp_path):
    for engine in ("local", "ray"):
        assert main(["gen-sim", "--out", str(tmp_path / f"{engine}.zarr"), "--num", "2", "--seed", "7",
                     "--workers", "2", "--executor", engine, "--no-progress"]) == 0
    _assert_same_store(tmp_path / "local.zarr", tmp_path / "ray.zarr")
    # executor is a free key: a local run resumes the Ray-made store.
    assert main(["gen-sim", "--out", str(tmp_path / "ray.zarr"), "--num", "3", "--seed", "7",
                 "--workers", "2", "--no-progress"]) == 0


def test_gen_teleop_with_ray_makes_the_same_store_as_local(tmp_path):
    for engine in ("local", "ray"):
        assert main(["gen-teleop", "--out", str(tmp_path / f"{engine}.zarr"), "--num", "2", "--seed", "17",
                     "--workers", "2", "--executor", engine]) == 0
    _assert_same_store(tmp_path / "local.zarr", tmp_path / "ray.zarr")
