"""The teleoperator's figure and style table for docs/teleop.md, beside GCS plans of the same starts.

    python docs/scripts/teleop_episodes.py --seeds 1 3 9 --out docs/teleop_episodes.png

Top row: a scripted-teleop episode per seed (pusher path, slider outlines over time, goal) with the GCS
plan's pusher path for the same start, when the planner solves it. Bottom row: commanded speed over time,
teleop vs plan. Prints the style numbers of style.py for both.
"""
from __future__ import annotations

import argparse

import numpy as np

from real_data.teleop.scripted import TeleopConfig, run_episode
from real_data.teleop.style import plan_actions, style_stats
from sim_envs.geometry import T_SLIDER, TASK, to_world


def gcs_plan(seed: int):
    """The GCS plan for this seed's start, or None (planner missing or no plan found)."""
    try:
        from gcs_planner.planner import plan_start
    except ImportError:
        return None
    from sim_envs.initial_states import sample_initial_pose
    result = plan_start(sample_initial_pose(seed))
    return result.plan if result.ok else None


def main(argv=None) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 3, 9])
    parser.add_argument("--out", default="docs/teleop_episodes.png")
    args = parser.parse_args(argv)

    fig, axes = plt.subplots(2, len(args.seeds), figsize=(4.2 * len(args.seeds), 7.5), squeeze=False)
    rows = []
    for col, seed in enumerate(args.seeds):
        data, meta = run_episode(seed, TeleopConfig())
        plan = gcs_plan(seed)
        ax = axes[0, col]
        poses = data["slider_pose"]
        for k in np.linspace(0, len(poses) - 1, 6).astype(int):
            outline = to_world(poses[k], T_SLIDER.outline())
            ax.fill(*outline.T, color=(0.3, 0.45, 0.8), alpha=0.12 + 0.5 * k / len(poses), lw=0)
        goal = to_world(TASK.goal, T_SLIDER.outline())
        ax.fill(*goal.T, facecolor="none", edgecolor="green", lw=1.5, label="goal")
        ax.plot(*data["action"].T, color="tab:red", lw=0.9, label="teleop action")
        if plan is not None:
            ax.plot(*plan.pusher.T, color="k", lw=0.9, ls="--", label="GCS plan pusher")
        ax.set_aspect("equal")
        ax.set_title(f"seed {seed}: {meta['outcome']} in {meta['length'] / 10:.1f} s, "
                     f"{meta['reapproaches']} re-approaches", fontsize=9)
        if col == 0:
            ax.legend(fontsize=7, loc="upper left")
        ax2 = axes[1, col]
        speed = np.linalg.norm(np.diff(data["action"], axis=0), axis=1) / TASK.control_dt
        ax2.plot(np.arange(len(speed)) * TASK.control_dt, speed, color="tab:red", lw=0.8, label="teleop")
        rows.append(("teleop", seed, style_stats(data["action"])))
        if plan is not None:
            pa = plan_actions(plan)
            ps = np.linalg.norm(np.diff(pa, axis=0), axis=1) / TASK.control_dt
            ax2.plot(np.arange(len(ps)) * TASK.control_dt, ps, color="k", lw=0.8, ls="--", label="GCS plan")
            rows.append(("gcs_plan", seed, style_stats(pa)))
        ax2.set_xlabel("time (s)")
        ax2.set_ylabel("commanded speed (m/s)")
        ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    print(f"{'source':<10} {'seed':>4} {'mean_speed':>10} {'speed_cv':>9} {'pause_frac':>10} {'hf_power':>9}")
    for name, seed, s in rows:
        print(f"{name:<10} {seed:>4} {s['mean_speed']:>10.3f} {s['speed_cv']:>9.2f} {s['pause_fraction']:>10.2f} "
              f"{s['hf_power']:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
