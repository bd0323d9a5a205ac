"""`cotrain info PATH`: the summary plus one row of statistics per episode."""
from __future__ import annotations

import numpy as np

from harness.core.store import EpisodeStore
from sim_envs.geometry import TASK, pose_error



def add_arguments(parser) -> None:
    parser.add_argument("path", help="dataset store (.zarr folder)")
    parser.add_argument("--max-rows", type=int, default=50, help="episodes to list (default 50; 0 = all)")


def episode_stats(store: EpisodeStore) -> list[dict]:
    """Per-episode length, duration, pusher path length, action speed and final pose error."""
    dt = TASK.control_dt
    rows = []
    # Episodes appended by another tool may lack a value (summary.partial_meta): shown as "-".
    has = {k: _with_values(store, k) for k in store.meta_keys}
    meta = {k: store.meta(k, missing=0) for k in store.meta_keys}
    for i, ep in enumerate(store.episodes(["agent_pos", "slider_pose", "action"])):
        err = pose_error(ep["slider_pose"][-1])
        steps = np.linalg.norm(np.diff(ep["action"], axis=0), axis=1)
        row = {
            "episode": i,
            "steps": len(ep["action"]),
            "seconds": len(ep["action"]) * dt,
            "pusher_path_m": float(np.linalg.norm(np.diff(ep["agent_pos"], axis=0), axis=1).sum()),
            "mean_action_speed": float(steps.mean() / dt) if len(steps) else 0.0,
            "final_xy_err_mm": float(np.hypot(err[0], err[1]) * 1000),
            "final_theta_err_deg": float(np.degrees(abs(err[2]))),
        }
        row.update({k: v[i].item() if i < has[k] else "-" for k, v in meta.items()})
        rows.append(row)
    return rows


def _with_values(store: EpisodeStore, key: str) -> int:
    """How many (leading) episodes have a value of meta/key."""
    return store.summary.partial_meta.get(key, store.n_episodes)


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from harness.core.errors import UserError
    if args.max_rows < 0:
        raise UserError(f"--max-rows must be >= 0 (0 = all), got {args.max_rows}")
    store = EpisodeStore(args.path)
    print("\n".join(store.summary.lines()))
    if store.n_episodes == 0:
        return 0
    rows = episode_stats(store)
    lengths = np.array([r["steps"] for r in rows])
    print(f"length     mean {lengths.mean():.1f}  min {lengths.min()}  max {lengths.max()} steps "
          f"({lengths.mean() * TASK.control_dt:.1f} s mean)")
    if "success" in store.meta_keys:
        known = store.meta("success", missing=0)[: _with_values(store, "success")]
        print(f"success    {np.mean(known):.1%} of {len(known)} episodes with a value")
    shown = rows if args.max_rows == 0 else rows[: args.max_rows]
    columns = list(shown[0])
    print()
    print("  ".join(f"{c:>12}" for c in columns))
    for r in shown:
        print("  ".join(f"{_fmt(r[c]):>12}" for c in columns))
    if len(shown) < len(rows):
        print(f"... {len(rows) - len(shown)} more (--max-rows 0 shows all)")
    return 0


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)
