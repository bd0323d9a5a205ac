"""Run a per-seed worker over many seeds, in this process or in worker processes, for the generators.

Workers ignore Ctrl-C: the parent gets it (or SIGTERM, handled the same way), keeps every finished
episode, and tears the pool down. Processes are spawned, not forked, because Drake's state is not
fork-safe.

engine="ray" runs each seed as a Ray task instead (on a running cluster when RAY_ADDRESS is set, else on a
local Ray started for the call); results still come back to this process in seed order, so the one writer
here makes the same store either way. Ray is imported only then.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from typing import Callable, Iterator, Sequence
from harness.core.errors import UserError


@contextlib.contextmanager
def map_seeds(fn: Callable, seeds: Sequence[int], workers: int, engine: str = "local") -> Iterator:
    """Yield an iterator of fn(seed) for each seed, in order. `fn` must pickle (a module-level function,
    a functools.partial of one, or an instance of a module-level class) when workers > 1 or engine="ray"
    (then at most 2 * workers seeds are in flight)."""
    if engine == "ray":
        with _ray_map(fn, seeds, workers) as results:
            yield results
        return
    if engine != "local":
        raise ValueError(f"unknown engine {engine!r} (available: local, ray)")
    if workers <= 1:
        yield (fn(seed) for seed in seeds)
        return
    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_leave_sigint_to_parent)
    try:
        with sigterm_as_keyboard_interrupt():
            yield pool.imap(fn, seeds, chunksize=1)
    finally:
        pool.terminate()
        pool.join()


@contextlib.contextmanager
def sigterm_as_keyboard_interrupt():
    """SIGTERM to the parent stops it like Ctrl-C: finished episodes kept, the pool torn down cleanly (a
    parent killed outright leaves its workers writing BrokenPipeError tracebacks and leaked semaphores)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _leave_sigint_to_parent() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_ray(address: str | None = None) -> bool:
    """Connect to Ray unless this process already is: `address` ("auto", "host:port"), else RAY_ADDRESS,
    else a new local Ray with this machine's cores. Returns True when this call started a local Ray (the
    caller shuts it down)."""
    import logging
    import os

    import ray
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet = {"include_dashboard": False, "logging_level": logging.WARNING, "configure_logging": True}
    if address:
        check_ray_address(address)
        ray.init(address=address, **quiet)
        return False
    ray.init(num_cpus=os.cpu_count(), **quiet)
    return True


CONNECT_TIMEOUT_S = 10.0


def check_ray_address(address: str | None) -> None:
    """A "host:port" Ray address must answer within CONNECT_TIMEOUT_S: ray.init retries an unreachable GCS
    for minutes with no word, which looks like a hang. ("auto" and "ray://" addresses are left to Ray.)"""
    import os
    import socket

    address = address or os.environ.get("RAY_ADDRESS")
    if not address or address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"Ray address {address!r}: expected host:port, auto or ray://host:port")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UserError(f"Ray address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
                        "start one with `ray start --head`, or leave the address out for a local Ray") from None


def cancel_ray_tasks(refs, grace_s: float = 10.0) -> None:
    """Cancel Ray tasks politely (KeyboardInterrupt in the task), then by force after `grace_s`."""
    import ray
    refs = list(refs)
    if not refs:
        return
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=False)
    with contextlib.suppress(Exception):
        _, refs = ray.wait(refs, num_returns=len(refs), timeout=grace_s)
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)


def _call_seed(fn: Callable, seed: int):
    return fn(seed)


@contextlib.contextmanager
def _ray_map(fn: Callable, seeds: Sequence[int], workers: int) -> Iterator:
    import collections

    import ray
    started = start_ray()
    in_flight: collections.deque = collections.deque()
    try:
        task = ray.remote(max_retries=3)(_call_seed)
        fn_ref = ray.put(fn)

        def results():
            pending = iter(seeds)
            for seed in pending:
                in_flight.append(task.remote(fn_ref, seed))
                if len(in_flight) >= 2 * max(1, workers):
                    break
            while in_flight:
                value = ray.get(in_flight[0])
                in_flight.popleft()
                for seed in pending:
                    in_flight.append(task.remote(fn_ref, seed))
                    break
                yield value

        with sigterm_as_keyboard_interrupt():
            yield results()
    finally:
        cancel_ray_tasks(in_flight, grace_s=5.0)
        if started:
            ray.shutdown()
