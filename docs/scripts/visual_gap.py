"""The visual sim-to-target gap, one figure: the same scenes rendered in each visual preset.

    python docs/scripts/visual_gap.py --out docs/figures/pixels/visual_gap.png

Columns: scenes (a start pose, the T mid-push, the T at the goal). Rows: each preset's cameras (the
`sim` and `target` looks at the published 128x128, overhead and wrist, then the pixel study's 96x96
overhead). Every scene is the same state in every row, so what differs is the look alone: colours,
lights, and the camera mounting (the sim look's is jittered per episode from the seed).
"""
from __future__ import annotations

import argparse

import numpy as np

from sim_envs.env import PushTEnv
from sim_envs.geometry import TASK

SCENES = [("start (seed 5)", 5, None, None),
          ("mid-push", 5, (0.62, -0.10, 0.6), (0.55, -0.14)),
          ("at the goal", 5, TASK.goal, (0.52, -0.06))]
ROWS = [("sim", "image.overhead"), ("target", "image.overhead"), ("sim", "image.wrist"), ("target", "image.wrist"),
        ("sim_96", "image.overhead"), ("target_96", "image.overhead")]


def main() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures/pixels/visual_gap.png")
    args = parser.parse_args()
    envs = {name: PushTEnv("target", visual=name) for name in {look for look, _ in ROWS}}
    fig, axes = plt.subplots(len(ROWS), len(SCENES), figsize=(2.2 * len(SCENES), 2.2 * len(ROWS)))
    for j, (title, seed, pose, pusher) in enumerate(SCENES):
        for i, (look, key) in enumerate(ROWS):
            obs = envs[look].reset(seed, slider_pose=pose, pusher_xy=pusher)
            ax = axes[i, j]
            ax.imshow(obs[key])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=9)
            if j == 0:
                h, w = obs[key].shape[:2]
                ax.set_ylabel(f"{look}\n{key[len('image.'):]} {h}x{w}", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
