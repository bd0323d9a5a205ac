"""Remove the fixed-rotation approximation on the chosen mode path by a few convex re-linearisations.

In the graph every push is checked with its interval's rotation R(theta_k). The exact arc through two
knots q0, q1 has body twist v = (k R(theta_mid)^T dp, dtheta) with theta_mid = (theta0 + theta1) / 2 and
k = (phi / 2) / sin(phi / 2), phi = dtheta (the SE(2) logarithm). On the fixed face sequence we solve a
small convex program (SOCP) for the knots (the end pose free in the goal box) with R(theta_mid) and k taken from the previous iterate,
inside a trust region on theta, until theta_mid stops moving (sequential convex programming). Cone
violations are allowed through penalised slacks, so a graph solution that is slightly infeasible for the
exact arcs is pulled back in; the result counts only if the slacks reach zero. The last iterate's
rotation change is below `polish_tol_deg` (the trust region halves each
iteration), which the planning friction margin (mu_margin) absorbs; the
verifier checks the exact arcs.
"""
from __future__ import annotations

import math

import numpy as np
from pydrake.solvers import MathematicalProgram

from gcs_planner.config import PlannerConfig
from gcs_planner.gcs import goal_box, interval_center, make_solver
from gcs_planner.mechanics import Face, limit_surface_c, motion_cone
from sim_envs.geometry import TASK, rotation

SLACK_WEIGHT = 1e3
ACCEPT_VIOLATION = 0.01   # normalised exact-arc cone violation (at mu * mu_margin) still handed on


def polish(start, goal, sequence: list[tuple[int, int]], all_faces: list[Face],
           cfg: PlannerConfig) -> tuple[np.ndarray, list[int]] | None:
    """Knots (M + 1, 3) and the face of each push for a mode sequence, or None if none was found.

    The first knot is the start; the last may end anywhere in the goal box (gcs.goal_box).

    Each mode (face, interval k) gets `subsegments` pushes. Iteration 0 is the GCS convex restriction:
    rotations fixed at the interval centres, knots inside the intervals. Later iterations linearise at
    the previous knots inside a halving trust region.
    """
    c = limit_surface_c()
    w = math.radians(cfg.interval_deg)
    faces = [f for f, _ in sequence for _ in range(cfg.subsegments)]
    nominal = [interval_center(k, cfg) for _, k in sequence for _ in range(cfg.subsegments)]
    m = len(faces)
    if m == 0:
        return None
    cones = {f: motion_cone(all_faces[f], cfg.mu * cfg.mu_margin, c, cfg.s_margin) for f in set(faces)}
    solver = make_solver(cfg.solver)
    x0, x1, y0, y1 = TASK.workspace
    start, goal = np.asarray(start, dtype=float), np.asarray(goal, dtype=float)
    g_lo, g_hi = goal_box(goal, cfg)
    current = None
    best = None   # (exact-arc violation, knots) of the best iterate so far
    trust = math.radians(cfg.polish_trust_deg)
    for it in range(cfg.polish_iterations + 1):
        prog = MathematicalProgram()
        Q = prog.NewContinuousVariables(m, 3, "q")          # knots 1..m; knot m is the end pose
        slack = prog.NewContinuousVariables(m, "slack")
        prog.AddBoundingBoxConstraint(0.0, np.inf, slack)
        prog.AddLinearCost(SLACK_WEIGHT * np.ones(m), 0.0, slack)
        rows = [start] + [Q[i] for i in range(m)]
        prog.AddBoundingBoxConstraint(g_lo, g_hi, Q[m - 1])
        if cfg.w_goal > 0:
            e = prog.NewContinuousVariables(1, "e")[0]
            prog.AddLorentzConeConstraint([e, Q[m - 1, 0] - goal[0], Q[m - 1, 1] - goal[1], c * (Q[m - 1, 2] - goal[2])])
            prog.AddLinearCost(cfg.w_goal * e)
        for i in range(m - 1):
            if current is None:   # knot i+1 ends push i and starts push i+1: inside both intervals
                lo = max(nominal[i], nominal[i + 1]) - w / 2
                hi = min(nominal[i], nominal[i + 1]) + w / 2
            else:
                lo, hi = current[i + 1, 2] - trust, current[i + 1, 2] + trust
            prog.AddBoundingBoxConstraint([x0, y0, lo], [x1, y1, hi], Q[i])
        for j, f in enumerate(faces):
            a, b = rows[j], rows[j + 1]
            if current is None:
                R, k = rotation(nominal[j]), 1.0
            else:
                R, k = _linearisation(current[j], current[j + 1])
            for facet in cones[f]:
                axy = R @ facet[:2]
                # facet . (R^T dp, c dtheta / k) <= slack_j
                expr = axy[0] * (b[0] - a[0]) + axy[1] * (b[1] - a[1]) + facet[2] * c / k * (b[2] - a[2])
                prog.AddLinearConstraint(expr <= slack[j])
            if cfg.w_translation > 0:
                s = prog.NewContinuousVariables(1, "s")[0]
                prog.AddLorentzConeConstraint([s, b[0] - a[0], b[1] - a[1]])
                prog.AddLinearCost(cfg.w_translation * s)
            if cfg.w_rotation > 0:
                r = prog.NewContinuousVariables(1, "r")[0]
                prog.AddLinearConstraint(r >= b[2] - a[2])
                prog.AddLinearConstraint(r >= a[2] - b[2])
                prog.AddLinearCost(cfg.w_rotation * r)
        result = solver.Solve(prog)
        if not result.is_success():
            return None
        new = np.vstack([start, np.atleast_2d(result.GetSolution(Q)).reshape(m, 3)])
        if current is None and np.max(result.GetSolution(slack)) > 1e-6:
            return None   # infeasible even as the graph's own restriction: try the next candidate path
        if current is not None:
            moved = np.max(np.abs((new[:-1, 2] + new[1:, 2]) - (current[:-1, 2] + current[1:, 2]))) / 2
            trust *= 0.5   # shrinking trust region: the iterates settle instead of oscillating
        else:
            moved = np.inf
        current = new
        violation = _violation(current, faces, cones, c)
        if best is None or violation < best[0]:
            best = (violation, current)
        if moved < math.radians(cfg.polish_tol_deg):
            break
    # Small leftovers of the linearisation are inside the planning margins (mu_margin, s_margin); the
    # verifier has the last word.
    if best[0] > ACCEPT_VIOLATION:
        return None
    return best[1], faces


def _linearisation(q0, q1) -> tuple[np.ndarray, float]:
    phi = q1[2] - q0[2]
    k = (phi / 2) / math.sin(phi / 2) if abs(phi) > 1e-9 else 1.0
    return rotation(0.5 * (q0[2] + q1[2])), k


def _violation(knots, faces, cones, c) -> float:
    """Largest exact-arc cone violation (scaled twist units, per unit of twist length)."""
    worst = 0.0
    for j, f in enumerate(faces):
        R, k = _linearisation(knots[j], knots[j + 1])
        v = np.concatenate([R.T @ (knots[j + 1, :2] - knots[j, :2]), [c * (knots[j + 1, 2] - knots[j, 2]) / k]])
        n = np.linalg.norm(v)
        if n > 1e-12:
            worst = max(worst, float(np.max(cones[f] @ v)) / n)
    return worst
