"""Planner configuration: one typed dataclass, loadable from YAML with key=value overrides."""
from __future__ import annotations

import dataclasses
from typing import Literal

from harness.core.configs import check_bounds, key


@dataclasses.dataclass
class PlannerConfig:
    # --- mechanics assumed by the plan ----------------------------------------------------------------
    mu: float = key(0.3, doc="pusher-slider friction the plan must respect (verifier uses this; 0.3 = the target "
                    "preset, the sim preset has 0.5)")
    mu_margin: float = key(0.8, doc="plan with mu * mu_margin so small recovery errors stay inside mu")
    s_margin: float = key(0.003, doc="plan contacts this far (m) inside each face's usable range")
    # --- the graph ------------------------------------------------------------------------------------
    interval_deg: float = key(30.0, doc="width of one orientation interval (one fixed rotation per mode)")
    robust_samples: int = key(1, doc="rotations across an interval the motion cone must hold at (>= 1)")
    robust_fraction: float = key(0.5, bound=(0, 1), doc="robust_samples spread over this fraction of the "
                             "interval's half-width")
    gcs_subsegments: int = key(1, doc="pushes one mode vertex holds in the graph (vertex dimension 3 (n + 1))")
    subsegments: int = key(2, doc="pushes (arcs) per mode when polishing a mode sequence")
    switch_graph: Literal["hub", "pairwise"] = key("hub", doc="face switches: via one non-contact hub per interval, or "
                                                   "all pairs")
    interval_offset: float = key(0.0, doc="shift of the interval grid, as a fraction of one width")
    interval_margin: int = key(1, bound=(0, None), doc="extra intervals beyond the start..goal orientation range")
    workspace_margin: float = key(0.0, doc="shrink the slider-origin workspace box by this (m)")
    # --- costs ----------------------------------------------------------------------------------------
    w_translation: float = key(1.0, doc="per metre of slider translation")
    w_rotation: float = key(0.02, doc="per radian of slider rotation")
    w_force: float = key(0.0, doc="per unit of |(dx, dy, c dtheta)| (integrated contact force)")
    w_pusher_free: float = key(0.1, doc="per metre of non-contact pusher travel between faces")
    w_goal: float = key(5.0, doc="per unit of final |(dx, dy, c dtheta)| from the exact goal")
    w_mode: float = key(0.01, doc="constant per contact mode entered (a proxy for time)")
    goal_box_fraction: float = key(0.5, doc="the plan may end within this fraction of the success tolerance")
    # --- solving --------------------------------------------------------------------------------------
    solver: Literal["clarabel", "scs"] = key("clarabel", doc="convex solver for the GCS relaxation and polish")
    max_rounded_paths: int = key(10, doc="candidate mode sequences drawn from the relaxation's flows")
    polish_iterations: int = key(6, bound=(0, None), doc="re-linearisations of the rotation on the chosen mode path")
    polish_trust_deg: float = key(10.0, doc="max change of a knot's orientation per polish iteration")
    polish_tol_deg: float = key(0.05, doc="stop when mid-arc orientations move less than this")
    # --- geometry of contact and free motion ----------------------------------------------------------
    convex_margin: float = key(0.008, doc="keep contacts this far (m) from a convex corner")
    concave_clearance: float = key(0.003, doc="extra clearance (m) beyond the pusher radius at concave corners")
    clearance: float = key(0.01, doc="free moves keep the pusher this far (m) from the T (tracking slack)")
    standoff: float = key(0.015, doc="approach / retreat distance (m) normal to a face (at least)")
    same_contact_tol: float = key(0.01, doc="consecutive pushes on one face closer than this (m) slide over at zero "
                                  "force")
    # --- timing ---------------------------------------------------------------------------------------
    contact_speed: float = key(0.05, doc="pusher speed while pushing (m/s)")
    free_speed: float = key(0.15, doc="pusher speed when not touching (m/s)")
    max_rotation_speed_deg: float = key(45.0, doc="slider angular speed limit while pushing (deg/s)")
    sample_dt: float = key(0.01, doc="resolution of the stored dense trajectory (s)")
    # --- verification tolerances ----------------------------------------------------------------------
    tol_friction: float = key(0.0, doc="friction ratio may exceed mu by this (absolute)")
    tol_residual: float = key(0.02, doc="max relative quasi-static twist residual")
    tol_penetration: float = key(0.0005, doc="max pusher-slider overlap (m)")
    tol_contact_gap: float = key(0.0005, doc="max gap (m) while a push is supposed to be in contact")

    def __post_init__(self):
        for name in ("mu", "interval_deg", "contact_speed", "free_speed", "max_rotation_speed_deg",
                    "sample_dt", "standoff"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.goal_box_fraction < 1:
            raise ValueError(f"goal_box_fraction must be in [0, 1), got {self.goal_box_fraction}")
        if not 0 < self.mu_margin <= 1:
            raise ValueError(f"mu_margin must be in (0, 1], got {self.mu_margin}")
        if self.robust_samples < 1 or self.subsegments < 1 or self.gcs_subsegments < 1 or self.max_rounded_paths < 1:
            raise ValueError("robust_samples, subsegments and max_rounded_paths must be >= 1")
        if self.standoff <= self.clearance:
            raise ValueError("standoff must exceed clearance (the approach point must be in free space)")
        inf = float("inf")
        for name in ("mu", "contact_speed", "free_speed", "max_rotation_speed_deg", "sample_dt", "standoff",
                    "polish_trust_deg", "polish_tol_deg"):
            if not getattr(self, name) < inf:
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}")
        for name in ("s_margin", "workspace_margin", "w_translation", "w_rotation", "w_force", "w_pusher_free",
                    "w_goal", "w_mode", "convex_margin", "concave_clearance", "clearance", "same_contact_tol",
                    "tol_friction", "tol_residual", "tol_penetration", "tol_contact_gap"):
            if not 0 <= getattr(self, name) < inf:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("polish_trust_deg", "polish_tol_deg"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.interval_deg <= 180:
            raise ValueError(f"interval_deg must be in (0, 180], got {self.interval_deg}")
        check_bounds(self)   # robust_fraction, interval_margin, polish_iterations
        if not abs(self.interval_offset) < inf:
            raise ValueError(f"interval_offset must be finite, got {self.interval_offset}")
