"""Planner configuration: one typed dataclass, loadable from YAML with key=value overrides."""
from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass
class PlannerConfig:
    # --- mechanics assumed by the plan ----------------------------------------------------------------
    mu: float = 0.3                      # pusher-slider friction the plan must respect (verifier uses this;
                                         #   0.3 = the target preset, the sim preset has 0.5)
    mu_margin: float = 0.8               # plan with mu * mu_margin so small recovery errors stay inside mu
    s_margin: float = 0.003              # plan contacts this far (m) inside each face's usable range
    # --- the graph ------------------------------------------------------------------------------------
    interval_deg: float = 30.0           # width of one orientation interval (one fixed rotation per mode)
    robust_samples: int = 1              # rotations across an interval the motion cone must hold at (>= 1)
    robust_fraction: float = 0.5         # ...spread over this fraction of the interval's half-width
    gcs_subsegments: int = 1             # pushes one mode vertex holds in the graph (vertex dimension 3 (n + 1))
    subsegments: int = 2                 # pushes (arcs) per mode when polishing a mode sequence
    switch_graph: Literal["hub", "pairwise"] = "hub"  # face switches: via one non-contact hub per interval, or all pairs
    interval_offset: float = 0.0         # shift of the interval grid, as a fraction of one width
    interval_margin: int = 1             # extra intervals beyond the start..goal orientation range
    workspace_margin: float = 0.0        # shrink the slider-origin workspace box by this (m)
    # --- costs ----------------------------------------------------------------------------------------
    w_translation: float = 1.0           # per metre of slider translation
    w_rotation: float = 0.02             # per radian of slider rotation
    w_force: float = 0.0                 # per unit of |(dx, dy, c dtheta)| (integrated contact force)
    w_pusher_free: float = 0.1           # per metre of non-contact pusher travel between faces
    w_goal: float = 5.0                  # per unit of final |(dx, dy, c dtheta)| from the exact goal
    w_mode: float = 0.01                 # constant per contact mode entered (a proxy for time)
    goal_box_fraction: float = 0.5       # the plan may end within this fraction of the success tolerance
    # --- solving --------------------------------------------------------------------------------------
    solver: Literal["clarabel", "scs"] = "clarabel"  # convex solver for the GCS relaxation and polish
    max_rounded_paths: int = 10          # candidate mode sequences drawn from the relaxation's flows
    polish_iterations: int = 6           # re-linearisations of the rotation on the chosen mode path
    polish_trust_deg: float = 10.0       # max change of a knot's orientation per polish iteration
    polish_tol_deg: float = 0.05         # stop when mid-arc orientations move less than this
    # --- geometry of contact and free motion ----------------------------------------------------------
    convex_margin: float = 0.008         # keep contacts this far (m) from a convex corner
    concave_clearance: float = 0.003     # extra clearance (m) beyond the pusher radius at concave corners
    clearance: float = 0.01              # free moves keep the pusher this far (m) from the T (tracking slack)
    standoff: float = 0.015              # approach / retreat distance (m) normal to a face (at least)
    same_contact_tol: float = 0.01       # consecutive pushes on one face closer than this (m) slide over at zero force
    # --- timing ---------------------------------------------------------------------------------------
    contact_speed: float = 0.05          # pusher speed while pushing (m/s)
    free_speed: float = 0.15             # pusher speed when not touching (m/s)
    max_rotation_speed_deg: float = 45.0  # slider angular speed limit while pushing (deg/s)
    sample_dt: float = 0.01              # resolution of the stored dense trajectory (s)
    # --- verification tolerances ----------------------------------------------------------------------
    tol_friction: float = 0.0            # friction ratio may exceed mu by this (absolute)
    tol_residual: float = 0.02           # max relative quasi-static twist residual
    tol_penetration: float = 0.0005      # max pusher-slider overlap (m)
    tol_contact_gap: float = 0.0005      # max gap (m) while a push is supposed to be in contact

    def __post_init__(self):
        for key in ("mu", "interval_deg", "contact_speed", "free_speed", "max_rotation_speed_deg",
                    "sample_dt", "standoff"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        if not 0 <= self.goal_box_fraction < 1:
            raise ValueError(f"goal_box_fraction must be in [0, 1), got {self.goal_box_fraction}")
        if not 0 < self.mu_margin <= 1:
            raise ValueError(f"mu_margin must be in (0, 1], got {self.mu_margin}")
        if self.robust_samples < 1 or self.subsegments < 1 or self.gcs_subsegments < 1 or self.max_rounded_paths < 1:
            raise ValueError("robust_samples, subsegments and max_rounded_paths must be >= 1")
        if self.standoff <= self.clearance:
            raise ValueError("standoff must exceed clearance (the approach point must be in free space)")
        inf = float("inf")
        for key in ("mu", "contact_speed", "free_speed", "max_rotation_speed_deg", "sample_dt", "standoff",
                    "polish_trust_deg", "polish_tol_deg"):
            if not getattr(self, key) < inf:
                raise ValueError(f"{key} must be finite, got {getattr(self, key)}")
        for key in ("s_margin", "workspace_margin", "w_translation", "w_rotation", "w_force", "w_pusher_free",
                    "w_goal", "w_mode", "convex_margin", "concave_clearance", "clearance", "same_contact_tol",
                    "tol_friction", "tol_residual", "tol_penetration", "tol_contact_gap"):
            if not 0 <= getattr(self, key) < inf:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        for key in ("polish_trust_deg", "polish_tol_deg"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        if not self.interval_deg <= 180:
            raise ValueError(f"interval_deg must be in (0, 180], got {self.interval_deg}")
        if not 0 <= self.robust_fraction <= 1:
            raise ValueError(f"robust_fraction must be in [0, 1], got {self.robust_fraction}")
        if not abs(self.interval_offset) < inf:
            raise ValueError(f"interval_offset must be finite, got {self.interval_offset}")
        for key in ("interval_margin", "polish_iterations"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
