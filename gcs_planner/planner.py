"""Plan one start pose: graph of convex sets -> polish -> timed plan -> verify, with fallbacks.

`Planner` caches what does not depend on the start pose (faces, free-space graph). `plan_start` is the
entry point the CLI, the generator and the benchmark use.
"""
from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from gcs_planner.config import PlannerConfig
from gcs_planner.free_space import FreeSpace
from gcs_planner.gcs import solve_modes
from gcs_planner.mechanics import contact_faces
from gcs_planner.plan import Plan, assemble
from gcs_planner.polish import polish
from gcs_planner.verify import Verdict, verify
from sim_envs.geometry import TASK


@dataclasses.dataclass
class PlanResult:
    plan: Plan | None         # None when every attempt failed
    verdict: Verdict | None   # verification of the returned plan (always ok when plan is not None)
    solve_time: float         # wall seconds for the whole call
    attempts: list[str]       # one line per attempt: what was tried and how it ended
    failure: str = ""         # reason of the last failure ("" on success)

    @property
    def ok(self) -> bool:
        return self.plan is not None


def _drop_still(knots: np.ndarray, faces: list[int], tol: float = 1e-6) -> tuple[np.ndarray, list[int]]:
    """Remove pushes that do not move the slider (unused sub-segments, pass-through vertices)."""
    keep_knots, keep_faces = [knots[0]], []
    for j, f in enumerate(faces):
        if np.max(np.abs(knots[j + 1] - keep_knots[-1])) > tol:
            keep_knots.append(knots[j + 1])
            keep_faces.append(f)
    keep_knots[-1] = knots[-1]
    return np.array(keep_knots), keep_faces


class Planner:
    def __init__(self, cfg: PlannerConfig | None = None):
        # Drake logs one INFO line per GCS solve; thousands of plans would drown the progress bar.
        logging.getLogger("drake").setLevel(max(logging.getLogger("drake").level, logging.WARNING))
        self.cfg = cfg or PlannerConfig()
        self.faces = contact_faces(convex_margin=self.cfg.convex_margin,
                                   concave_clearance=self.cfg.concave_clearance)
        self.free = FreeSpace(clearance=self.cfg.clearance)

    def attempts(self) -> list[PlannerConfig]:
        """The base config, then fallbacks that trade speed for robustness."""
        base = self.cfg
        return [
            base,
            # The same graph on a grid shifted by half an interval: other linearisation points.
            dataclasses.replace(base, interval_offset=base.interval_offset + 0.5),
            # Cheaper face switches: sequences that use more faces instead of one face for a long way.
            dataclasses.replace(base, w_pusher_free=base.w_pusher_free / 3),
            # A motion cone that must hold across half of each interval: sequences whose exact arcs
            # stay feasible more often.
            dataclasses.replace(base, robust_samples=3, robust_fraction=0.5,
                                max_rounded_paths=2 * base.max_rounded_paths),
            dataclasses.replace(base, interval_deg=base.interval_deg / 2, robust_samples=3,
                                robust_fraction=0.5, interval_margin=base.interval_margin + 1,
                                max_rounded_paths=2 * base.max_rounded_paths),
        ]

    def plan(self, start_pose, info: dict | None = None) -> PlanResult:
        """Plan from slider pose (x, y, theta) to the goal, pusher from and back to home.

        For each attempt (graph variant): solve the relaxation, polish its candidate mode sequences in
        order, and return the first plan that verifies. `info` scalars are stored in plan.info.
        """
        start = np.asarray(start_pose, dtype=float)
        goal = np.asarray(TASK.goal, dtype=float)
        t0 = time.perf_counter()
        log, failure = [], ""
        for i, cfg in enumerate(self.attempts()):
            try:
                modes = solve_modes(start, self.faces, cfg, self.free, goal)
            except RuntimeError as exc:   # no free path from home: the slider covers the pusher's home
                log.append(f"attempt {i}: {exc}")
                return PlanResult(None, None, time.perf_counter() - t0, log, str(exc))
            if modes is None:
                failure = "gcs: relaxation failed"
                log.append(f"attempt {i}: {failure}")
                continue
            reasons = []
            for rank, seq in enumerate(modes.paths):
                polished = polish(start, goal, seq, self.faces, cfg)
                if polished is None:   # more pushes per mode give the exact arcs room to bend
                    polished = polish(start, goal, seq, self.faces,
                                      dataclasses.replace(cfg, subsegments=2 * cfg.subsegments))
                if polished is None:
                    reasons.append("polish failed")
                    continue
                knots, faces = _drop_still(*polished)
                if not faces:
                    reasons.append("empty plan")
                    continue
                extra = dict(info or {}, relaxed_cost=modes.relaxed_cost, gcs_time=modes.solve_time,
                             attempt=i, path_rank=rank)
                plan = assemble(knots, faces, self.faces, cfg, self.free, info=extra)
                verdict = verify(plan, start, self.faces, cfg)
                if verdict.ok:
                    elapsed = time.perf_counter() - t0
                    plan.info["solve_time"] = elapsed
                    log.append(f"attempt {i}: ok with path {rank} (gcs {modes.solve_time:.2f} s, "
                               f"{modes.n_vertices} vertices, {modes.n_edges} edges)")
                    return PlanResult(plan, verdict, elapsed, log)
                reasons.append("verify: " + verdict.problems[0])
            failure = reasons[-1] if reasons else "gcs: no path in the relaxation's flow"
            log.append(f"attempt {i}: {len(modes.paths)} paths failed ({'; '.join(sorted(set(reasons)))}) "
                       f"(gcs {modes.solve_time:.2f} s)")
        return PlanResult(None, None, time.perf_counter() - t0, log, failure)


def plan_start(start_pose, cfg: PlannerConfig | None = None, info: dict | None = None) -> PlanResult:
    return Planner(cfg).plan(start_pose, info)
