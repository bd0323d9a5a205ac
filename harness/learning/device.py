"""Where torch runs: the device a config names, and how many CPU threads a process may use.

Training, the classifier and the evaluation workers all need these two answers, and they must agree:
on a small CPU more torch threads than free cores slow a run down several times (measured 8x on 2 cores).
"""
from __future__ import annotations

import os

import torch

from harness.core.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda when torch sees one, else cpu; under torchrun, the rank's own GPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config", "device", "cuda requested but torch sees no CUDA device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError("config", "device", f"unknown device {name!r} (cpu, cuda, cuda:N or auto)") from None
    if device.type == "cuda" and not (torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()):
        raise ConfigError("config", "device", f"{name} requested but torch sees no such CUDA device")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError("config", "device", f"device {name!r} is not supported (cpu, cuda, cuda:N or auto)")
    return device


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's or taskset's share)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def limit_threads(threads: int) -> None:
    """Use `threads` CPU threads in this process (torch and OpenMP); 0 leaves torch's default."""
    if threads <= 0:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
