"""Quasi-static pushing mechanics of the T: contact faces, limit surface, motion cones, SE(2) arcs.

The model (see docs/gcs_planner.md):
- Ellipsoidal limit surface: the slider's body twist v = (vx, vy, w) is proportional to
  (fx, fy, tau / c^2) for a body wrench (fx, fy, tau), where c = tau_max / f_max is the mean distance of
  the support area from the centre of mass (uniform pressure).
- A point pusher on face f at arc parameter s in [s_lo, s_hi] with sticking contact applies a force in the
  friction cone. Because the contact point only moves along the face, the set of all wrenches a face can
  apply is exactly the convex cone spanned by four wrenches (two ends of the face x two cone edges); the
  bilinear term s * lambda_n becomes one variable. So the set of feasible body twists of a face (its
  "motion cone") is a polyhedral cone {v : A v <= 0}: linear, hence convex per mode.
- A constant body twist moves the slider along an exact circular arc (SE(2) exponential), with the pusher
  fixed in the body frame. Any two poses are joined by exactly one such arc (SE(2) logarithm), so the
  planner only needs knot poses; each arc is a valid push iff its twist lies in the face's motion cone.

Twists are handled in scaled coordinates (vx, vy, c * w) so all components have units of length.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from sim_envs.geometry import PUSHER, T_SLIDER, Pusher, TSlider, rotation


@dataclasses.dataclass(frozen=True)
class Face:
    """One straight face of the T's outline, in the body frame, with the usable contact range."""
    index: int
    start: np.ndarray        # (2,) first vertex (counter-clockwise order)
    direction: np.ndarray    # (2,) end - start
    normal: np.ndarray       # (2,) outward unit normal
    s_lo: float              # usable arc parameter range in [0, 1]: trimmed near corners so the
    s_hi: float              #   pusher disc never touches a neighbouring face

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.direction))

    @property
    def tangent(self) -> np.ndarray:
        return self.direction / self.length

    def point(self, s: float) -> np.ndarray:
        return self.start + s * self.direction

    def pusher_center(self, s: float, radius: float, gap: float = 0.0) -> np.ndarray:
        """Body-frame pusher centre touching the face at s (or `gap` metres off it)."""
        return self.point(s) + (radius + gap) * self.normal


def contact_faces(slider: TSlider = T_SLIDER, pusher: Pusher = PUSHER, convex_margin: float = 0.008,
                  concave_clearance: float = 0.003) -> list[Face]:
    """The eight faces with their usable range.

    At a convex corner we keep `convex_margin` (m) from the corner (contact at a corner is ill defined).
    At a concave corner the pusher disc would hit the neighbouring face, so we keep radius +
    `concave_clearance` from it.
    """
    outline = slider.outline()
    n = len(outline)
    concave = []
    for i in range(n):
        a, b, c = outline[i - 1], outline[i], outline[(i + 1) % n]
        turn = (b - a)[0] * (c - b)[1] - (b - a)[1] * (c - b)[0]
        concave.append(turn < 0)
    faces = []
    for i in range(n):
        a, b = outline[i], outline[(i + 1) % n]
        d = b - a
        length = float(np.linalg.norm(d))
        normal = np.array([d[1], -d[0]]) / length
        lo = (pusher.radius + concave_clearance) if concave[i] else convex_margin
        hi = (pusher.radius + concave_clearance) if concave[(i + 1) % n] else convex_margin
        faces.append(Face(i, a, d, normal, lo / length, 1.0 - hi / length))
    return faces


@functools.lru_cache(maxsize=4)
def limit_surface_c(slider: TSlider = T_SLIDER, n: int = 400) -> float:
    """c = tau_max / f_max for uniform pressure: mean distance of the T's area from its origin (m)."""
    total, weight = 0.0, 0.0
    for box in slider.boxes:
        hx, hy = box.half
        xs = box.center[0] + (np.arange(n) + 0.5) / n * 2 * hx - hx
        ys = box.center[1] + (np.arange(n) + 0.5) / n * 2 * hy - hy
        X, Y = np.meshgrid(xs, ys)
        area = 4 * hx * hy
        total += np.hypot(X, Y).mean() * area
        weight += area
    return float(total / weight)


def cross2(a, b) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def face_generators(face: Face, mu: float, c: float, s_margin: float = 0.0) -> np.ndarray:
    """(4, 3) scaled twists spanning the face's motion cone: ends of the face x edges of the cone.

    `s_margin` (m) shrinks the usable range at both ends (planning keeps a margin the verifier does not).
    """
    gens = []
    ds = s_margin / face.length
    for s in (face.s_lo + ds, face.s_hi - ds):
        p = face.point(s)
        for sign in (-1.0, 1.0):
            f = -face.normal + sign * mu * face.tangent
            gens.append([f[0], f[1], cross2(p, f) / c])
    return np.array(gens)


def cone_facets(generators: np.ndarray) -> np.ndarray:
    """(K, 3) rows A of the pointed cone spanned by the generators, as {v : A v <= 0}."""
    rows = []
    m = len(generators)
    for i in range(m):
        for j in range(i + 1, m):
            n = np.cross(generators[i], generators[j])
            if np.linalg.norm(n) < 1e-12:
                continue
            n = n / np.linalg.norm(n)
            dots = generators @ n
            if np.all(dots >= -1e-9):
                rows.append(-n)
            elif np.all(dots <= 1e-9):
                rows.append(n)
    # Drop duplicates (coplanar generator pairs give the same facet).
    unique = []
    for r in rows:
        if not any(np.allclose(r, u, atol=1e-9) for u in unique):
            unique.append(r)
    return np.array(unique)


def motion_cone(face: Face, mu: float, c: float, s_margin: float = 0.0) -> np.ndarray:
    return cone_facets(face_generators(face, mu, c, s_margin))


# ---------------------------------------------------------------------------------------------------
# SE(2): poses (x, y, theta); a constant body twist traces an arc.

def se2_log(q0, q1) -> np.ndarray:
    """Body twist (vx, vy, w) that carries pose q0 to q1 in unit time (theta is NOT wrapped)."""
    dth = float(q1[2] - q0[2])
    dp_body = rotation(q0[2]).T @ (np.asarray(q1[:2]) - np.asarray(q0[:2]))
    return np.array([*_v_inverse(dth) @ dp_body, dth])


def se2_exp(q0, twist, tau: float) -> np.ndarray:
    """Pose after moving from q0 with constant body twist for time tau."""
    vx, vy, w = twist
    phi = w * tau
    dp_body = _v_matrix(phi) @ (np.array([vx, vy]) * tau)
    p = np.asarray(q0[:2]) + rotation(q0[2]) @ dp_body
    return np.array([p[0], p[1], q0[2] + phi])


def _v_matrix(phi: float) -> np.ndarray:
    if abs(phi) < 1e-9:
        return np.eye(2)
    s, c = math.sin(phi), math.cos(phi)
    return np.array([[s / phi, -(1 - c) / phi], [(1 - c) / phi, s / phi]])


def _v_inverse(phi: float) -> np.ndarray:
    return np.linalg.inv(_v_matrix(phi))


# ---------------------------------------------------------------------------------------------------
# From a twist back to the push that produces it.

@dataclasses.dataclass
class Push:
    """The sticking push that produces a given body twist on a face."""
    s: float                 # contact parameter along the face
    force: np.ndarray        # (2,) body-frame force direction (scale free: the quasi-static model is)
    friction_ratio: float    # |f_t| / f_n (must be <= mu)
    normal_force: float      # f_n > 0 when pushing
    residual: float          # relative twist error of the nearest feasible push (0 = exact)


def push_for_twist(face: Face, twist: np.ndarray, mu: float, c: float) -> Push:
    """Invert the limit surface: twist -> wrench (f, tau) -> contact parameter s, friction ratio.

    The residual projects (f, s) onto the feasible set (friction cone, usable face range), maps back to a
    twist and returns |v - v_feasible| / |v| in scaled coordinates: the quasi-static residual.
    """
    v = np.asarray(twist, dtype=float)
    f = v[:2].copy()
    tau = v[2] * c * c
    fn = float(-f @ face.normal)
    ft = float(f @ face.tangent)
    a, d = face.start, face.direction
    denom = cross2(d, f)
    s = (tau - cross2(a, f)) / denom if abs(denom) > 1e-12 else float("nan")
    ratio = abs(ft) / fn if fn > 1e-12 else float("inf")
    # Nearest feasible push: clip the friction ratio and s, rebuild the twist.
    fn_c = max(fn, 0.0)
    ft_c = float(np.clip(ft, -mu * fn_c, mu * fn_c))
    f_c = -fn_c * face.normal + ft_c * face.tangent
    s_c = float(np.clip(s if math.isfinite(s) else 0.5, face.s_lo, face.s_hi))
    tau_c = cross2(face.point(s_c), f_c)
    v_c = np.array([f_c[0], f_c[1], tau_c / c / c])
    scale = np.array([1.0, 1.0, c])
    norm = np.linalg.norm(v * scale)
    residual = float(np.linalg.norm((v - v_c) * scale) / norm) if norm > 1e-12 else 0.0
    return Push(float(s), f, ratio, fn, residual)
