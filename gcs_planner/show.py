"""A matplotlib picture of a plan: the T at its knots and over time, the pusher's path, contacts marked."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gcs_planner.plan import Plan
from harness.core.atomic import atomic_path
from sim_envs.geometry import PUSHER, T_SLIDER, TASK, to_world


def plot_plan(plan: Plan, path=None, title: str = "") -> None:
    """Draw the plan; write a PNG to `path`, or open a window when path is None."""
    import matplotlib
    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    fig, (ax, ax_t) = plt.subplots(1, 2, figsize=(12, 5.5), gridspec_kw={"width_ratios": [1.2, 1]})
    outline = np.vstack([T_SLIDER.outline(), T_SLIDER.outline()[:1]])
    cmap = plt.get_cmap("viridis")
    n_frames = 12
    for i, k in enumerate(np.linspace(0, len(plan.t) - 1, n_frames).astype(int)):
        pts = to_world(plan.slider[k], outline)
        ax.plot(pts[:, 0], pts[:, 1], color=cmap(i / (n_frames - 1)), lw=1, alpha=0.7)
    goal = to_world(TASK.goal, outline)
    ax.fill(goal[:, 0], goal[:, 1], color="green", alpha=0.15, label="goal")
    start = to_world(plan.slider[0], outline)
    ax.fill(start[:, 0], start[:, 1], color="grey", alpha=0.2, label="start")
    segs = np.stack([plan.pusher[:-1], plan.pusher[1:]], axis=1)
    colors = np.where(plan.face[:-1, None] >= 0, [[0.85, 0.1, 0.1, 1.0]], [[0.3, 0.3, 0.9, 0.6]])
    ax.add_collection(LineCollection(segs, colors=colors, linewidths=1.5))
    ax.add_patch(plt.Circle(PUSHER.home, PUSHER.radius, color="k", fill=False))
    ax.plot([], [], color=(0.85, 0.1, 0.1), label="pusher, pushing")
    ax.plot([], [], color=(0.3, 0.3, 0.9), label="pusher, free")
    ax.set_aspect("equal")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title or "plan (T outlines coloured by time)")
    ax_t.plot(plan.t, plan.slider[:, 0] - TASK.goal[0], label="slider x - goal")
    ax_t.plot(plan.t, plan.slider[:, 1] - TASK.goal[1], label="slider y - goal")
    ax_t.plot(plan.t, plan.slider[:, 2] / 10, label="slider theta / 10 (rad)")
    contact = plan.face >= 0
    ax_t.fill_between(plan.t, -0.2, 0.2, where=contact, color="red", alpha=0.08, label="in contact")
    ax_t.set_xlabel("time (s)")
    ax_t.legend(fontsize=8)
    ax_t.set_title(f"{len(plan.push_face)} pushes, {plan.duration:.1f} s")
    fig.tight_layout()
    if path is None:
        plt.show()
    else:
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
