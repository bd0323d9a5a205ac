"""Run a per-seed worker over many seeds, in this process or in worker processes, for the generators.

Workers ignore Ctrl-C: the parent gets it (or SIGTERM, handled the same way), keeps every finished
episode, and tears the pool down. Processes are spawned, not forked, because Drake's state is not
fork-safe.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from typing import Callable, Iterator, Sequence


@contextlib.contextmanager
def map_seeds(fn: Callable, seeds: Sequence[int], workers: int) -> Iterator:
    """Yield an iterator of fn(seed) for each seed, in order. `fn` must pickle (a module-level function,
    a functools.partial of one, or an instance of a module-level class) when workers > 1."""
    if workers <= 1:
        yield (fn(seed) for seed in seeds)
        return
    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_leave_sigint_to_parent)
    try:
        with _sigterm_as_keyboard_interrupt():
            yield pool.imap(fn, seeds, chunksize=1)
    finally:
        pool.terminate()
        pool.join()


@contextlib.contextmanager
def _sigterm_as_keyboard_interrupt():
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
