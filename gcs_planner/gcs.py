"""The contact-mode graph: a shortest path through convex sets, solved with pydrake's GraphOfConvexSets.

Vertex (face f, orientation interval k) holds `gcs_subsegments` pushes in a row: knot poses
q_0 .. q_N (x, y, theta), all with theta inside interval k. Each push q_j -> q_{j+1} must have its body-frame
displacement, computed with the interval's fixed rotation R(theta_k + e) for a few e across the interval,
inside face f's motion cone (mechanics.py). All constraints are linear, so each vertex is a polytope.
Edges join modes: a face switch inside one interval (the pusher walks around the still slider: a
non-contact mode whose cost is the pusher's free path length), or the same face continuing into the next
interval. The source is the start pose, the target a small box around the goal pose; the pusher's free paths from and back to
its home are priced on the first and last edges.

We solve the convex relaxation with Clarabel and round it to a few candidate mode sequences by walks
that follow the flows; polish.py then solves each sequence as a small convex program with the exact
rotations (it doubles as the GCS "convex restriction"), and the first one that verifies is the plan.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
from pydrake.geometry.optimization import GraphOfConvexSets, GraphOfConvexSetsOptions, HPolyhedron, Point
from pydrake.solvers import Binding, ClarabelSolver, Constraint, Cost, L2NormCost, LinearEqualityConstraint, \
    ScsSolver

from gcs_planner.config import PlannerConfig
from gcs_planner.free_space import FreeSpace, path_length
from gcs_planner.mechanics import Face, limit_surface_c, motion_cone
from sim_envs.geometry import PUSHER, TASK, rotation, to_body


@dataclasses.dataclass
class ModePaths:
    """The GCS answer: candidate mode sequences [(face, interval), ...], most promising first."""
    paths: list[list[tuple[int, int]]]
    relaxed_cost: float      # cost of the convex relaxation (a lower bound on any plan's graph cost)
    n_vertices: int
    n_edges: int
    solve_time: float        # seconds in the relaxation solve (graph building excluded)


def make_solver(name: str):
    return {"clarabel": ClarabelSolver, "scs": ScsSolver}[name]()


def interval_center(k: int, cfg: PlannerConfig) -> float:
    return (k + cfg.interval_offset) * math.radians(cfg.interval_deg)


def goal_box(goal, cfg: PlannerConfig) -> tuple[np.ndarray, np.ndarray]:
    """Where a plan may end: the goal +- goal_box_fraction of the success tolerance."""
    tol = cfg.goal_box_fraction * np.array([TASK.success_xy, TASK.success_xy, TASK.success_theta])
    return np.asarray(goal, dtype=float) - tol, np.asarray(goal, dtype=float) + tol


def orientation_intervals(theta_start: float, theta_goal: float, cfg: PlannerConfig) -> list[int]:
    """Interval indices k (centre interval_center(k)) covering start..goal plus a margin."""
    w = math.radians(cfg.interval_deg)
    lo, hi = min(theta_start, theta_goal), max(theta_start, theta_goal)
    return list(range(round(lo / w - cfg.interval_offset) - cfg.interval_margin,
                      round(hi / w - cfg.interval_offset) + cfg.interval_margin + 1))


def _vertex_polytope(face_cone: np.ndarray, theta_k: float, cfg: PlannerConfig, c: float,
                     bounds: tuple) -> HPolyhedron:
    """Polytope over (q_0, ..., q_N) stacked, (3 (N + 1),)."""
    n_sub = cfg.gcs_subsegments
    dim = 3 * (n_sub + 1)
    half = math.radians(cfg.interval_deg) / 2
    rows, rhs = [], []
    spread = cfg.robust_fraction * half
    samples = [0.0] if cfg.robust_samples == 1 else np.linspace(-spread, spread, cfg.robust_samples)
    for eps in samples:
        R = rotation(theta_k + eps)
        for a in face_cone:                         # a . (R^T dp, c dtheta) <= 0
            axy = R @ a[:2]
            for j in range(n_sub):
                row = np.zeros(dim)
                row[3 * j: 3 * j + 2] = -axy
                row[3 * (j + 1): 3 * (j + 1) + 2] = axy
                row[3 * j + 2] = -a[2] * c
                row[3 * (j + 1) + 2] = a[2] * c
                rows.append(row)
                rhs.append(0.0)
    lo = np.tile([bounds[0], bounds[2], theta_k - half], n_sub + 1)
    hi = np.tile([bounds[1], bounds[3], theta_k + half], n_sub + 1)
    A = np.vstack([np.array(rows), np.eye(dim), -np.eye(dim)])
    b = np.concatenate([rhs, hi, -lo])
    return HPolyhedron(A, b)


def _add_segment_costs(vertex, cfg: PlannerConfig, c: float) -> None:
    n_sub = cfg.gcs_subsegments
    dim = 3 * (n_sub + 1)
    x = vertex.x()
    for j in range(n_sub):
        D = np.zeros((3, dim))
        D[:, 3 * j: 3 * j + 3] = -np.eye(3)
        D[:, 3 * (j + 1): 3 * (j + 1) + 3] = np.eye(3)
        if cfg.w_translation > 0:
            vertex.AddCost(Binding[Cost](L2NormCost(cfg.w_translation * D[:2], np.zeros(2)), x))
        if cfg.w_rotation > 0:
            vertex.AddCost(Binding[Cost](L2NormCost(cfg.w_rotation * D[2:], np.zeros(1)), x))
        if cfg.w_force > 0:
            scaled = D * np.array([[1.0], [1.0], [c]])
            vertex.AddCost(Binding[Cost](L2NormCost(cfg.w_force * scaled, np.zeros(3)), x))


def _join(edge, u_dim: int) -> None:
    """Constrain the last pose of u (whose dimension is u_dim) to equal the first pose of v."""
    xu, xv = edge.xu(), edge.xv()
    a = xu[u_dim - 3: u_dim]
    b = xv[:3]
    A = np.hstack([np.eye(3), -np.eye(3)])
    edge.AddConstraint(Binding[Constraint](LinearEqualityConstraint(A, np.zeros(3)), np.concatenate([a, b])))


def _constant_cost(edge, value: float) -> None:
    """A cost paid once when the edge is used (times its flow phi in the relaxation)."""
    if value > 0:
        edge.AddCost(value + 0 * edge.xu()[0])


def solve_modes(start_pose, faces: list[Face], cfg: PlannerConfig, free: FreeSpace,
                goal_pose=TASK.goal, home=PUSHER.home) -> ModePaths | None:
    """Build and solve the graph for one start pose; None if no path was found."""
    c = limit_surface_c()
    start = np.asarray(start_pose, dtype=float)
    goal = np.asarray(goal_pose, dtype=float)
    w = math.radians(cfg.interval_deg)
    x0, x1, y0, y1 = TASK.workspace
    m = cfg.workspace_margin
    bounds = (x0 + m, x1 - m, y0 + m, y1 - m)
    cones = [motion_cone(f, cfg.mu * cfg.mu_margin, c, cfg.s_margin) for f in faces]
    mids = [f.pusher_center(0.5 * (f.s_lo + f.s_hi), PUSHER.radius, cfg.standoff) for f in faces]
    switch, half = _switch_costs(free, mids)
    home_start = to_body(start, np.asarray(home)[None])[0]
    home_goal = to_body(goal, np.asarray(home)[None])[0]
    enter = [path_length(free.shortest_path(home_start, p)) for p in mids]
    leave = [path_length(free.shortest_path(p, home_goal)) for p in mids]

    gcs = GraphOfConvexSets()
    source = gcs.AddVertex(Point(start), "source")
    g_lo, g_hi = goal_box(goal, cfg)
    target = gcs.AddVertex(HPolyhedron.MakeBox(g_lo, g_hi) if cfg.goal_box_fraction > 0 else Point(goal),
                           "target")
    dim = 3 * (cfg.gcs_subsegments + 1)
    ks = orientation_intervals(start[2], goal[2], cfg)
    verts = {}
    for k in ks:
        for f in faces:
            v = gcs.AddVertex(_vertex_polytope(cones[f.index], interval_center(k, cfg), cfg, c, bounds),
                              f"f{f.index}_k{k}")
            _add_segment_costs(v, cfg, c)
            verts[f.index, k] = v

    hubs = {}
    if cfg.switch_graph == "hub":
        for k in ks:
            lo = [bounds[0], bounds[2], interval_center(k, cfg) - w / 2]
            hi = [bounds[1], bounds[3], interval_center(k, cfg) + w / 2]
            hubs[k] = gcs.AddVertex(HPolyhedron.MakeBox(lo, hi), f"hub_k{k}")

    def contains(k, theta):
        return abs(theta - interval_center(k, cfg)) <= w / 2 + 1e-9

    n_edges = 0
    for (fi, k), v in verts.items():
        if contains(k, start[2]):
            e = gcs.AddEdge(source, v)
            _join(e, 3)
            _constant_cost(e, cfg.w_pusher_free * enter[fi] + cfg.w_mode)
            n_edges += 1
        if contains(k, g_lo[2]) or contains(k, g_hi[2]):
            e = gcs.AddEdge(v, target)
            _join(e, dim)
            _constant_cost(e, cfg.w_pusher_free * leave[fi])
            n_edges += 1
        if cfg.switch_graph == "pairwise":
            for fj in range(len(faces)):
                if fj != fi:
                    e = gcs.AddEdge(v, verts[fj, k])
                    _join(e, dim)
                    _constant_cost(e, cfg.w_pusher_free * switch[fi][fj] + cfg.w_mode)
                    n_edges += 1
        else:
            e = gcs.AddEdge(v, hubs[k])
            _join(e, dim)
            _constant_cost(e, cfg.w_pusher_free * half[fi] + cfg.w_mode / 2)
            e = gcs.AddEdge(hubs[k], v)
            _join(e, 3)
            _constant_cost(e, cfg.w_pusher_free * half[fi] + cfg.w_mode / 2)
            n_edges += 2
        for k2 in (k - 1, k + 1):
            if (fi, k2) in verts:
                e = gcs.AddEdge(v, verts[fi, k2])
                _join(e, dim)
                _constant_cost(e, cfg.w_mode)
                n_edges += 1

    options = GraphOfConvexSetsOptions()
    options.convex_relaxation = True
    options.preprocessing = False
    options.max_rounded_paths = 0          # we round ourselves: polish.py is the (exact-rotation) restriction
    options.solver = make_solver(cfg.solver)
    t0 = time.perf_counter()
    result = gcs.SolveShortestPath(source, target, options)
    solve_time = time.perf_counter() - t0
    if not result.is_success():
        return None
    flows = {e: float(result.GetSolution(e.phi())) for e in gcs.Edges()}
    paths = _round(source, target, flows, cfg.max_rounded_paths, np.random.default_rng(0))
    modes = []
    for path in paths:
        seq = []
        for v in path[1:-1]:
            name = v.name()
            if name.startswith("hub"):
                continue
            f, k = name.split("_")
            seq.append((int(f[1:]), int(k[1:])))
        modes.append(seq)
    return ModePaths(modes, float(result.get_optimal_cost()), len(verts) + len(hubs) + 2, n_edges, solve_time)


def _round(source, target, flows: dict, n_paths: int, rng, trials: int = 100) -> list[list]:
    """Distinct source-target vertex paths drawn from the relaxation's flows, best (greedy) first.

    The first walk follows the largest flow at every step; later walks pick the next edge with
    probability proportional to its flow. Walks never revisit a vertex; dead ends are dropped.
    """
    out, seen = [], set()
    for trial in range(trials):
        v, path, visited = source, [source], {source.id()}
        while v.id() != target.id():
            options = [(e, flows[e]) for e in v.outgoing_edges() if e.v().id() not in visited and flows[e] > 1e-6]
            if not options:
                break
            weights = np.array([w for _, w in options])
            pick = int(np.argmax(weights)) if trial == 0 else int(rng.choice(len(options), p=weights / weights.sum()))
            v = options[pick][0].v()
            path.append(v)
            visited.add(v.id())
        if v.id() != target.id():
            continue
        key = tuple(x.id().get_value() for x in path)
        if key not in seen:
            seen.add(key)
            out.append(path)
            if len(out) >= n_paths:
                break
    return out


_SWITCH_CACHE: dict = {}


def _switch_costs(free: FreeSpace, mids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pusher free-path lengths between faces (F, F), and per-face halves h with h_i + h_j ~ d_ij.

    They depend only on the geometry, so they are computed once per process.
    """
    key = (id(free), tuple(np.round(np.concatenate(mids), 9)))
    if key not in _SWITCH_CACHE:
        n = len(mids)
        d = np.array([[path_length(free.shortest_path(mids[i], mids[j])) for j in range(n)] for i in range(n)])
        # Least-squares fit of d_ij = h_i + h_j over i != j: the hub graph's approximation.
        rows, rhs = [], []
        for i in range(n):
            for j in range(n):
                if i != j:
                    r = np.zeros(n)
                    r[i] += 1
                    r[j] += 1
                    rows.append(r)
                    rhs.append(d[i, j])
        h = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
        _SWITCH_CACHE[key] = (d, np.maximum(h, 0.0))
    return _SWITCH_CACHE[key]
