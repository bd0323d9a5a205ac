"""Job functions for the Ray tests: importable by Ray workers (the tests put the repository on their
PYTHONPATH)."""
import os
import time
from pathlib import Path


def double(x: int) -> int:
    return 2 * x


def fail(message: str) -> None:
    raise ValueError(message)


def sleepy(seconds: float, pid_file: str | None = None) -> int:
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    end = time.monotonic() + seconds
    while time.monotonic() < end:          # a heartbeat: the pid file's mtime moves while the task runs
        if pid_file:
            os.utime(pid_file)
        time.sleep(0.05)
    return os.getpid()
