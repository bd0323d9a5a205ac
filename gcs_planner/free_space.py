"""Non-contact pusher motion: shortest collision-free paths around the T, in the slider's body frame.

While the pusher is not touching it, the slider does not move (quasi-static), so a non-contact move is a
path of a point around a fixed obstacle: the T grown by the pusher radius plus a clearance. We grow the T
into a polygon that contains the exact grown shape (convex corners are chamfered, concave corners are
exact), and find the shortest path with a visibility graph (Dijkstra over 12 polygon nodes: about a millisecond).
"""
from __future__ import annotations

import heapq
import math

import numpy as np

from sim_envs.geometry import PUSHER, T_SLIDER, Pusher, TSlider


def grown_polygon(slider: TSlider = T_SLIDER, distance: float = PUSHER.radius + 0.002) -> np.ndarray:
    """(M, 2) counter-clockwise polygon containing every point within `distance` of the T.

    Every corner of the T is a right angle. A convex corner becomes a chamfer tangent to the rounded
    offset (two vertices); a concave corner is the meeting point of the two offset edges (exact).
    """
    outline = slider.outline()
    n = len(outline)
    chamfer = distance * math.tan(math.pi / 8)
    out = []
    for i in range(n):
        a, v, b = outline[i - 1], outline[i], outline[(i + 1) % n]
        t1 = (v - a) / np.linalg.norm(v - a)          # incoming edge direction
        t2 = (b - v) / np.linalg.norm(b - v)          # outgoing edge direction
        n1 = np.array([t1[1], -t1[0]])                # outward normals (CCW polygon)
        n2 = np.array([t2[1], -t2[0]])
        if abs(t1 @ t2) > 1e-9:
            raise ValueError("grown_polygon expects right-angled corners")
        if t1[0] * t2[1] - t1[1] * t2[0] > 0:         # left turn: convex corner
            out.append(v + distance * n1 + chamfer * t1)
            out.append(v + distance * n2 - chamfer * t2)
        else:                                          # concave corner
            out.append(v + distance * n1 + distance * n2)
    return np.array(out)


_SAMPLES = np.linspace(0.05, 0.95, 19)   # where a segment is probed for entering the polygon


def _inside(poly: np.ndarray, p: np.ndarray, tol: float = 1e-9) -> bool:
    """Strictly inside (farther than tol from the boundary)."""
    return bool(_inside_each(poly, np.asarray(p, dtype=float)[None], tol)[0])


def _inside_each(poly: np.ndarray, points: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """(N,) bool: each of `points` (N, 2) strictly inside the polygon (M, 2): even-odd ray casting to +x
    over all points and edges at once, then farther than tol from the boundary."""
    x, y = points[:, :1], points[:, 1:]                       # (N, 1)
    x1, y1 = poly[:, 0], poly[:, 1]                           # (M,) edge i runs from vertex i ...
    x2, y2 = np.roll(poly, -1, axis=0).T                      # ... to vertex i + 1
    straddles = (y1 > y) != (y2 > y)                          # (N, M)
    with np.errstate(divide="ignore", invalid="ignore"):      # horizontal edges never straddle
        xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    inside = (straddles & (xc > x)).sum(axis=1) % 2 == 1      # (N,)
    if inside.any():
        inside[inside] = _boundary_distance(poly, points[inside]) > tol
    return inside


def _boundary_distance(poly: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) distance from each of `points` (N, 2) to the polygon's boundary."""
    d = np.roll(poly, -1, axis=0) - poly                      # (M, 2) edge vectors
    to_point = points[:, None, :] - poly                      # (N, M, 2)
    t = np.clip((to_point * d).sum(-1) / (d * d).sum(-1), 0.0, 1.0)   # (N, M) nearest point's edge fraction
    return np.linalg.norm(to_point - t[..., None] * d, axis=-1).min(axis=1)


def _visible(poly: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(S,) bool: segment p[s]-q[s] does not enter the polygon's interior; p, q are (S, 2) or (2,)."""
    p, q = np.broadcast_arrays(np.atleast_2d(p), np.atleast_2d(q))
    along = p[:, None, :] + _SAMPLES[:, None] * (q - p)[:, None, :]          # (S, 19, 2)
    enters = _inside_each(poly, along.reshape(-1, 2)).reshape(len(p), -1).any(axis=1)
    crosses = _proper_crossings(p, q, poly, np.roll(poly, -1, axis=0)).any(axis=1)
    return ~enters & ~crosses


def _proper_crossings(p1, p2, q1, q2, eps: float = 1e-12) -> np.ndarray:
    """(S, M) bool: segment p1[s]-p2[s] (S, 2) crosses segment q1[m]-q2[m] (M, 2) properly, not just touching."""
    p1, p2 = p1[:, None, :], p2[:, None, :]                   # (S, 1, 2) against (M, 2)

    def orient(a, b, c):   # twice the signed area of triangle a, b, c
        return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])
    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    return (d1 * d2 < -eps) & (d3 * d4 < -eps)


class FreeSpace:
    """Shortest pusher paths around the T in the body frame; polygon and its visibility graph cached."""

    def __init__(self, slider: TSlider = T_SLIDER, pusher: Pusher = PUSHER, clearance: float = 0.002):
        self.poly = grown_polygon(slider, pusher.radius + clearance)
        # Concave vertices never lie on a shortest path; keep the convex (chamfer) ones as graph nodes.
        self.nodes = [v for v in self.poly if not self._is_concave(v)]
        self._node_array = np.array(self.nodes)                          # (k, 2), for the visibility passes
        k = len(self.nodes)
        self._node_edges = {i: [] for i in range(k)}
        i_of, j_of = np.triu_indices(k, 1)                               # every node pair once
        for i, j, visible in zip(i_of.tolist(), j_of.tolist(), _visible(self.poly, self._node_array[i_of],
                                                                      self._node_array[j_of])):
            if visible:
                d = float(np.linalg.norm(self.nodes[i] - self.nodes[j]))
                self._node_edges[i].append((j, d))
                self._node_edges[j].append((i, d))

    def _is_concave(self, v) -> bool:
        m = len(self.poly)
        i = next(i for i in range(m) if np.allclose(self.poly[i], v))
        a, b = self.poly[i - 1], self.poly[(i + 1) % m]
        return (v - a)[0] * (b - v)[1] - (v - a)[1] * (b - v)[0] < 0

    def is_free(self, p) -> bool:
        return not _inside(self.poly, np.asarray(p, dtype=float))

    def shortest_path(self, start, goal) -> np.ndarray:
        """(K, 2) polyline from start to goal (both must be outside the grown polygon)."""
        start, goal = np.asarray(start, dtype=float), np.asarray(goal, dtype=float)
        if _visible(self.poly, start, goal)[0]:
            return np.array([start, goal])
        k = len(self.nodes)
        # Node ids: 0..k-1 polygon nodes, k = start, k+1 = goal.
        pts = self.nodes + [start, goal]
        edges = {i: list(e) for i, e in self._node_edges.items()}
        edges[k], edges[k + 1] = [], []
        seen = {end: _visible(self.poly, pts[end], self._node_array) for end in (k, k + 1)}   # (k,) each, one pass
        for i in range(k):
            for end in (k, k + 1):
                if seen[end][i]:
                    d = float(np.linalg.norm(pts[end] - self.nodes[i]))
                    edges[end].append((i, d))
                    edges[i].append((end, d))
        dist = {k: 0.0}
        prev = {}
        heap = [(0.0, k)]
        while heap:
            d, u = heapq.heappop(heap)
            if u == k + 1:
                break
            if d > dist.get(u, math.inf):
                continue
            for w, dw in edges[u]:
                nd = d + dw
                if nd < dist.get(w, math.inf):
                    dist[w], prev[w] = nd, u
                    heapq.heappush(heap, (nd, w))
        if k + 1 not in dist:
            raise RuntimeError("no collision-free pusher path (start or goal inside the grown T?)")
        path, u = [k + 1], k + 1
        while u != k:
            u = prev[u]
            path.append(u)
        return np.array([pts[i] for i in reversed(path)])


def path_length(path: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
