"""How well the pixel study's image encoders know where the T is: a linear probe of their features.

    python docs/scripts/pixel_probe.py --out docs/figures/pixels/probe.png

A pixel policy can only push the T to the goal if its camera features say where the T is, in the look it
is evaluated in. This script renders the overhead camera at evaluation-like starts (`PushTEnv.reset(seed)`,
seeds 200000 on, none of them a training or evaluation start) in both looks of the study, target_96 (the
clean demos' and the evaluation's) and sim_96 (the GCS demos', its camera jittered per seed), encodes them
with each snapshot's image encoder (EMA weights, centre crop, as `cotrain eval` does), and fits a ridge
regression from the features to the slider's pose (x, y, cos theta, sin theta) on 1500 starts; the errors
are medians over 500 other starts, always seen in the target look. Two probes:
  - within the target look: fit on target frames. What the features know about the pose.
  - from the sim look: fit on sim frames of the same starts, tested on target frames. Whether the features
    mean the same in both looks, as a policy trained mostly on GCS frames needs them to.
References: the mean pose (no features); the encoder architecture at its initial, untrained weights (random
features); and the same architecture trained for --supervised-steps to regress the pose from the 1500 target
fit frames (random crops, as the policies train): what 96x96 frames through this CNN give when the training
signal is the pose itself. A CSV beside the PNG holds the points.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

RUNS = {   # label -> run folder
    "target_only": Path("results/pixels/runs/target_only"),
    "cotrain": Path("results/pixels/runs/cotrain"),
    "truncated-per-datapoint": Path("results/pixels/runs/truncated-per-datapoint"),
    "cotrain, GCS in the target look": Path("results/pixels_no_gap/runs/cotrain-gcs-in-the-target-look"),
}
LOOKS = ("target_96", "sim_96")    # the evaluation's look first
FIRST_SEED, N_FIT, N_TEST = 200_000, 1500, 500
RIDGE = 1e-2     # ridge penalty on standardized features, relative to the number of frames


def render_starts(look: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 96, 96, 3) uint8 frames of the overhead camera at n start states in `look`, and (n, 3) slider
    poses (the same for every look: the start is a function of the seed)."""
    from sim_envs.env import PushTEnv
    from sim_envs.visual import load_visual
    env = PushTEnv("target", visual=load_visual(look))
    frames, poses = [], []
    for i in range(n):
        obs = env.reset(FIRST_SEED + i)
        frames.append(obs["image.overhead"])
        poses.append(env.true_state()[0])
    env.close()
    return np.stack(frames), np.stack(poses)


@torch.no_grad()
def features(encoder, frames: np.ndarray) -> np.ndarray:
    """(N, F) features of one camera's encoder, in eval mode (centre crop), 250 frames at a time."""
    encoder.eval()
    images = torch.from_numpy(frames)
    return torch.cat([encoder({"image.overhead": images[i:i + 250]}) for i in range(0, len(images), 250)]).numpy()


def pose_targets(poses: np.ndarray) -> np.ndarray:
    """(N, 3) poses -> (N, 4) regression targets x, y, cos theta, sin theta (no wrap-around in theta)."""
    return np.column_stack([poses[:, 0], poses[:, 1], np.cos(poses[:, 2]), np.sin(poses[:, 2])])


def probe_errors(fit_feats: np.ndarray | None, test_feats: np.ndarray | None, poses: np.ndarray) -> tuple[float, float]:
    """Median position error (cm) and angle error (deg) on the test starts (N_FIT on) of a ridge probe fit on
    fit_feats of the first N_FIT starts and applied to test_feats; None predicts the mean fit pose."""
    target = pose_targets(poses)                                                                       # (N, 4)
    fit, test = slice(0, N_FIT), slice(N_FIT, N_FIT + N_TEST)
    if fit_feats is None:
        pred = np.repeat(target[fit].mean(0, keepdims=True), N_TEST, axis=0)
    else:
        mu, sd = fit_feats[fit].mean(0), fit_feats[fit].std(0) + 1e-8
        design = lambda feats: np.column_stack([(feats - mu) / sd, np.ones(len(feats))])   # noqa: E731 (N, F + 1)
        x = design(fit_feats[fit])
        w = np.linalg.solve(x.T @ x + RIDGE * N_FIT * np.eye(x.shape[1]), x.T @ target[fit])         # (F + 1, 4)
        pred = design(test_feats[test]) @ w
    position = np.linalg.norm(pred[:, :2] - target[test, :2], axis=1) * 100
    angle = np.degrees(np.abs(np.angle(np.exp(1j * (np.arctan2(pred[:, 3], pred[:, 2]) - poses[test, 2])))))
    return float(np.median(position)), float(np.median(angle))


def both_probes(encoder, frames: dict[str, np.ndarray], poses: np.ndarray) -> tuple[float, ...]:
    """(position, angle) within the target look, then (position, angle) fit on the sim look."""
    target, sim = (features(encoder, frames[look]) for look in LOOKS)
    return (*probe_errors(target, target, poses), *probe_errors(sim, target, poses))


def train_supervised(encoder, frames: np.ndarray, poses: np.ndarray, steps: int, seed: int = 0):
    """Train `encoder` (+ a linear head) to regress the standardized pose (x, y, cos, sin) of the fit frames."""
    torch.manual_seed(seed)
    target = pose_targets(poses)[:N_FIT]
    target = torch.from_numpy((target - target.mean(0)) / target.std(0)).float()      # (N_FIT, 4)
    images = torch.from_numpy(frames[:N_FIT])
    head = torch.nn.Linear(encoder.feature_dim, 4)
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-6)
    encoder.train()
    for _ in range(steps):
        batch = torch.randint(0, N_FIT, (64,))
        loss = torch.nn.functional.mse_loss(head(encoder({"image.overhead": images[batch]})), target[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return encoder


def main() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.learning.model import build_model
    from harness.learning.policy import load_policy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures/pixels/probe.png")
    parser.add_argument("--supervised-steps", type=int, default=1000, help="steps of the supervised reference")
    args = parser.parse_args()
    torch.set_num_threads(1)
    frames, poses = {}, None
    for look in LOOKS:
        frames[look], poses = render_starts(look, N_FIT + N_TEST)
    rows = [("mean pose (no features)", 0, *probe_errors(None, None, poses), *probe_errors(None, None, poses))]
    for run, folder in RUNS.items():
        checkpoints = sorted((folder / "seed0/train/checkpoints").glob("step_*.pt"))
        checkpoints.append(folder / "seed0/train/checkpoints/final.pt")
        for path in checkpoints:
            policy = load_policy(path)
            if len(rows) == 1:   # the references: the architecture at its initial weights, then pose-trained
                torch.manual_seed(policy.config.seed)
                net, _ = build_model(policy.config, 0.5)
                rows.append(("untrained encoder", 0, *both_probes(net.image_encoder, frames, poses)))
                trained = train_supervised(net.image_encoder, frames[LOOKS[0]], poses, args.supervised_steps)
                rows.append(("supervised encoder", args.supervised_steps, *both_probes(trained, frames, poses)))
            step = int(policy.config.run.steps) if path.name == "final.pt" else int(path.stem.split("_")[1])
            rows.append((run, step, *both_probes(policy.net.image_encoder, frames, poses)))
    print("| encoder | step | position cm | angle deg | position cm, fit on sim | angle deg, fit on sim |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.1f} | {r[4]:.2f} | {r[5]:.1f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["encoder", "step", "position_cm", "angle_deg", "position_cm_fit_on_sim",
                         "angle_deg_fit_on_sim"])
        writer.writerows([(r[0], r[1], *(f"{v:.3f}" for v in r[2:])) for r in rows])
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    panels = [(2, "median position error (cm)", "within the target look"), (3, "median angle error (deg)", "within the target look"),
              (4, "median position error (cm)", "probe fit on the sim look"), (5, "median angle error (deg)", "probe fit on the sim look")]
    for ax, (column, unit, title) in zip(axes.flat, panels):
        for run in RUNS:
            ax.plot(*zip(*[(r[1], r[column]) for r in rows if r[0] == run]), "o-", label=run)
        for label, style in (("mean pose (no features)", ":"), ("untrained encoder", "--"),
                             ("supervised encoder", "-.")):
            ax.axhline(next(r[column] for r in rows if r[0] == label), color="gray", linestyle=style, label=label)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.set_ylim(bottom=0)
    for ax in axes[1]:
        ax.set_xlabel("training step")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"linear probe of the slider pose from the encoder's features ({N_FIT} fit / {N_TEST} test "
                 "starts, tested in the target look)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out} and {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
