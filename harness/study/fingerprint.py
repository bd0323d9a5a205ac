"""What a study's numbers were computed from beyond its config: the bytes of the data it uses, and the
software and CPU that ran it (results/<study>/fingerprint.json).

The study's identity is its config, and a dataset is named by its path, so a store regenerated in place
between two sessions (other code, other machine) would silently mix two datasets in one table. The first
session records the data's fingerprint; a later session whose data differ is refused in one line. The
environment is recorded too and compared, not enforced: on a CPU, another torch build or instruction set
changes float round-off in training (docs/results/demo.md, "Across machines"), which matters when two runs of one config
disagree.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import platform
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

from harness.core.atomic import atomic_write_text
from harness.core.errors import ConfigError, DatasetError
from harness.core.store import EpisodeStore
from harness.study.config import StudyConfig

FINGERPRINT_FILE = "fingerprint.json"
META_KEYS = ("seed", "success")   # per-episode values the trainer reads (the success filter) or that name it


def data_fingerprint(cfg: StudyConfig) -> dict:
    """sha256 of every data array, and of the per-episode values that decide what trains (META_KEYS), of
    the episodes each dataset contributes; and of the study's normalizer file."""
    out = {}
    for d in cfg.datasets:
        store = EpisodeStore(d.path)
        n = store.n_episodes if d.episodes is None else min(d.episodes, store.n_episodes)
        stop = int(store.episode_ends[n - 1]) if n else 0
        h = hashlib.sha256()
        for key in sorted(store.data_keys):
            _update(h, key, store.data(key, stop))
        for key in META_KEYS:   # (not e.g. solve_time: a wall-clock time, different at every generation)
            if key in store.meta_keys:
                _update(h, f"meta/{key}", store.meta(key)[:n])
        out[d.name] = {"path": d.path, "episodes": n, "sha256": h.hexdigest()}
    normalizer = Path(cfg.normalizer_path)
    out["normalizer"] = {"path": str(normalizer), "sha256": hashlib.sha256(normalizer.read_bytes()).hexdigest()}
    return out


def _update(h, key: str, values: np.ndarray) -> None:
    values = np.ascontiguousarray(values)
    h.update(f"{key}|{values.dtype.str}|{values.shape}|".encode())
    if values.dtype.kind == "O":       # text metadata
        h.update(json.dumps(values.tolist()).encode())
    else:
        h.update(values.tobytes())


def environment() -> dict:
    """The software and the CPU of this session."""
    import torch
    try:
        from importlib.metadata import version
        drake = version("drake")
    except Exception:  # noqa: BLE001 - a missing distribution record is not an error here
        drake = None
    return {"python": platform.python_version(), "torch": torch.__version__, "drake": drake,
            "numpy": np.__version__, "cpu": cpu_model(), "cpu_family_model": _cpu_family_model(),
            "cpu_flags": _cpu_flags(), "numpy_blas": numpy_blas(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _cpuinfo(field: str) -> str | None:
    """The first value of `field` in /proc/cpuinfo (None off Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name, as studies and benchmarks report it."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def _cpu_family_model() -> str | None:
    """"family/model" of /proc/cpuinfo: two CPUs of one brand name and the same vector flags (an AMD EPYC
    with AVX-512 of two generations) can still pick different kernels."""
    family, model = _cpuinfo("cpu family"), _cpuinfo("model")
    return f"{family}/{model}" if family and model else None


def numpy_blas() -> str | None:
    """numpy's BLAS and the kernel set it picked for this CPU at load time, e.g. "openblas 0.3.31 Haswell".
    That choice, not the CPU's flags, decides the bytes of the data a generator makes: OpenBLAS runs its
    AVX2 (Haswell) kernels on a CPU it does not know, AVX-512 or not (docs/results/demo.md)."""
    np.linalg.inv(np.eye(2))   # the BLAS is loaded (and its kernels chosen) by the first call
    blas = [i for i in threadpool_info() if i.get("internal_api") in ("openblas", "mkl", "blis")]
    return f"{blas[0]['internal_api']} {blas[0].get('version')} {blas[0].get('architecture')}" if blas else None


def _cpu_flags() -> list[str]:
    """The vector extensions (what decides which kernels torch and numpy run)."""
    return sorted(f for f in (_cpuinfo("flags") or "").split() if f.startswith(("avx", "fma", "sse4")))


def check_fingerprint(cfg: StudyConfig, log) -> None:
    """Record the fingerprint at the study's first session; refuse a session whose data differ, and say so
    when the environment differs."""
    path = cfg.out / FINGERPRINT_FILE
    data, env = data_fingerprint(cfg), environment()
    if not path.is_file():
        record = {"data": data, "environment": env,
                  "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        atomic_write_text(path, json.dumps(record, indent=2) + "\n")
        return
    try:
        recorded = json.loads(path.read_text())
        old_data, old_env = recorded["data"], recorded["environment"]
    except (ValueError, KeyError, TypeError):
        raise DatasetError(path, None, "unreadable; it records the data this study started with") from None
    for name, now in data.items():
        before = old_data.get(name)
        if isinstance(before, dict) and "episodes" in now and before.get("episodes") != now["episodes"] \
                and before.get("path") == now["path"]:   # the experiment was edited, not the store
            raise ConfigError("experiment", f"datasets.{name}.episodes", f"the study uses {now['episodes']} "
                              f"episodes of {now['path']} now, {before.get('episodes')} when it started; finished "
                              "runs used those, so restore the value or continue in a new study folder (out_dir)")
        if before is None or before != now:
            raise DatasetError(path, name, f"{now['path']} is not the data this study started with (its "
                               "content changed since the first session); finished runs used the old data, "
                               "so continue in a new study folder (out_dir) or restore the data")
    changed = [k for k in env if env[k] != old_env.get(k)]
    if changed:
        log(f"{'note':<10} this session's {', '.join(changed)} differ from the first session's "
            f"({FINGERPRINT_FILE}); runs trained here may differ from there in float round-off")
