"""GCS planner: mechanics pieces, a verified plan for an easy start, and the verifier catching a bad plan."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gcs_planner.config import PlannerConfig
from gcs_planner.free_space import FreeSpace
from gcs_planner.mechanics import contact_faces, face_generators, limit_surface_c, motion_cone, push_for_twist, \
    se2_exp, se2_log
from gcs_planner.plan import Plan
from gcs_planner.planner import Planner
from gcs_planner.verify import verify
from sim_envs.geometry import PUSHER, TASK, is_success, signed_distance_body

EASY_START = np.array([TASK.goal[0] + 0.06, TASK.goal[1] + 0.04, 0.35])


def test_se2_log_exp_round_trip():
    q0, q1 = np.array([0.5, 0.1, 0.3]), np.array([0.62, -0.05, -0.9])
    assert np.allclose(se2_exp(q0, se2_log(q0, q1), 1.0), q1, atol=1e-12)


def test_motion_cone_contains_its_generators_and_inverts_to_the_push():
    c = limit_surface_c()
    face = contact_faces()[4]                 # top of the bar
    gens = face_generators(face, 0.3, c)
    A = motion_cone(face, 0.3, c)
    assert np.all(A @ gens.T <= 1e-9)
    assert np.any(A @ np.array([0.0, 1.0, 0.0]) > 0)    # pulling the top face away is not a push
    # The middle of the cone is a push from inside the face range with friction inside the cone.
    twist = gens.mean(axis=0) * [1.0, 1.0, 1.0 / c]      # back from scaled to plain twist
    push = push_for_twist(face, twist, 0.3, c)
    assert face.s_lo < push.s < face.s_hi and push.friction_ratio < 0.3 and push.residual < 1e-12


def test_free_paths_go_around_the_t():
    free = FreeSpace()
    a = contact_faces()[0].pusher_center(0.5, PUSHER.radius, 0.01)    # below the stem
    b = contact_faces()[4].pusher_center(0.5, PUSHER.radius, 0.01)    # above the bar
    path = free.shortest_path(a, b)
    assert len(path) > 2
    for p, q in zip(path[:-1], path[1:]):
        for u in np.linspace(0, 1, 40):
            assert signed_distance_body(p + u * (q - p)) >= PUSHER.radius


def test_free_space_tests_many_points_and_segments_at_once_as_one_at_a_time():
    """The visibility graph tests every point and segment of a query in one array pass: each answer must be
    the one a point-in-polygon test (matplotlib's) gives, and a batch must answer as its members alone."""
    from matplotlib.path import Path as PolygonPath

    from gcs_planner.free_space import _boundary_distance, _inside_each, _visible
    poly = FreeSpace().poly
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.2, 0.2, size=(4000, 2))
    clear = _boundary_distance(poly, points) > 1e-6                # away from the edge, where both are exact
    inside = PolygonPath(poly).contains_points(points)
    assert inside[clear].any() and (~inside[clear]).any()
    assert np.array_equal(_inside_each(poly, points)[clear], inside[clear])
    p, q = rng.uniform(-0.2, 0.2, size=(2, 300, 2))
    together = _visible(poly, p, q)
    assert together.any() and (~together).any()
    assert [bool(_visible(poly, a, b)[0]) for a, b in zip(p, q)] == together.tolist()


@pytest.fixture(scope="module")
def easy_plan():
    planner = Planner()
    return planner, planner.plan(EASY_START, {"seed": -1})


def test_easy_start_is_planned_and_verified(easy_plan, tmp_path):
    planner, result = easy_plan
    assert result.ok, result.attempts
    plan = result.plan
    assert result.verdict.ok
    assert np.allclose(plan.slider[0], EASY_START) and is_success(plan.slider[-1])
    assert np.allclose(plan.pusher[0], PUSHER.home) and np.allclose(plan.pusher[-1], PUSHER.home)
    assert (plan.face >= 0).any() and result.verdict.metrics["max_friction_ratio"] <= planner.cfg.mu
    # Round trip through the file keeps everything the verifier needs.
    plan.save(tmp_path / "p.npz")
    again = Plan.load(tmp_path / "p.npz")
    assert verify(again, EASY_START, planner.faces, planner.cfg).ok
    assert again.info["seed"] == -1


def test_verifier_rejects_penetration(easy_plan):
    planner, result = easy_plan
    plan = result.plan
    bad = dataclasses.replace(plan, pusher=plan.pusher.copy())
    free = np.flatnonzero(plan.face < 0)
    i = free[len(free) // 2]
    bad.pusher[i] = bad.slider[i, :2]               # pusher centre at the slider's origin: deep inside
    verdict = verify(bad, EASY_START, planner.faces, planner.cfg)
    assert not verdict.ok
    assert any("penetrates" in p for p in verdict.problems)


def test_verifier_rejects_friction_outside_the_cone(easy_plan):
    planner, result = easy_plan
    strict = dataclasses.replace(planner.cfg, mu=0.05, tol_friction=0.0)
    verdict = verify(result.plan, EASY_START, planner.faces, strict)
    assert not verdict.ok and any("friction" in p for p in verdict.problems)


def test_bad_planner_config_is_rejected():
    with pytest.raises(ValueError):
        PlannerConfig(mu_margin=1.5)
    with pytest.raises(ValueError):
        PlannerConfig(standoff=0.001, clearance=0.002)
