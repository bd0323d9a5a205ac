"""One status view for a stage whose jobs run in parallel: each job's state in a block of lines.

States: queued, running (with what its progress bars last said, e.g. "train cotrain 120/1500"), done,
failed. On a terminal the block is redrawn in place and log lines are printed above it; elsewhere (a log
file) only "start" lines are added to the log, the runner logs done and FAILED itself.
"""
from __future__ import annotations

import shutil
import sys
import time

STATES = ("running", "failed", "queued", "done")   # the order jobs are listed in


class StatusView:
    def __init__(self, stage: str, keys, log=print, stream=None, live: bool | None = None,
                 max_jobs: int = 16, min_interval: float = 0.5):
        self.stage = stage
        self.states = {key: ("queued", "") for key in keys}
        self.log = log
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)()) if live is None else live
        self.max_jobs = max_jobs
        self.min_interval = min_interval
        self._drawn = 0
        self._last = 0.0

    def update(self, key: str, state: str, detail: str = "") -> None:
        if state not in STATES:
            raise ValueError(f"unknown job state {state!r}")
        old = self.states.get(key, ("queued", ""))[0]
        self.states[key] = (state, detail)
        if self.live:
            self._draw(force=state != old)
        elif state == "running" and old != "running":
            self.log(f"{self.stage:<10} start  {key}")

    def lines(self) -> list[str]:
        counts = {s: sum(1 for st, _ in self.states.values() if st == s) for s in STATES}
        head = f"{self.stage}: " + ", ".join(f"{counts[s]} {s}" for s in ("done", "failed", "running", "queued")
                                             if counts[s])
        ordered = sorted(self.states.items(), key=lambda kv: STATES.index(kv[1][0]))
        shown, rest = ordered[:self.max_jobs], ordered[self.max_jobs:]
        lines = [head] + [f"  {state:<8} {key}" + (f"  {detail}" if detail and state == "running" else "")
                          for key, (state, detail) in shown]
        if rest:
            left = {s: sum(1 for _, (st, _) in rest if st == s) for s in STATES}
            lines.append("  ... and " + ", ".join(f"{n} more {s}" for s, n in left.items() if n))
        return lines

    def text(self) -> str:
        return "\n".join(self.lines())

    def write(self, line: str) -> None:
        """A log line, printed above the view."""
        self._clear()
        self.log(line)
        if self.live:
            sys.stdout.flush()
            self._draw(force=True)

    def close(self) -> None:
        self._clear()

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self.stream.flush()
            self._drawn = 0

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        width = max(shutil.get_terminal_size().columns - 1, 20)
        lines = self.lines()
        erase = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
        self.stream.write(erase + "".join(line[:width] + "\n" for line in lines))
        self.stream.flush()
        self._drawn = len(lines)
