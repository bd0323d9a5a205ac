"""Learning curves of the pixel study's rows from pixels and of its state-observation control, one figure.

    python docs/scripts/pixel_curves.py --out docs/figures/pixels/learning_curves.png

Left: success against training steps on the study's first 100 evaluation starts: the policy snapshots
(results/pixels/curve/<run>/step<N>, made by `cotrain eval <snapshot> --trials 100 --seed 100000 ...`) and
each run's final checkpoint (the first 100 trials of its 200-trial evaluation; trials are batch-invariant,
so they are the same trials). Right: the training loss and the loss on the held-out clean demo (the
teleop validation episode) every 2000 steps, from each run's metrics.csv. A CSV beside the PNG holds the points.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from eval.metrics import wilson_interval

RUNS = [("pixels", "target_only", "pixels: target_only"), ("pixels", "cotrain", "pixels: cotrain"),
        ("pixels", "target_only-state", "state: target_only"), ("pixels", "cotrain-state", "state: cotrain")]
FIRST = 100    # evaluation starts per point


def success_points(study: str, run: str) -> list[tuple[int, int, int]]:
    """(step, trials, successes): snapshots that were evaluated, then the final checkpoint."""
    points = []
    for summary in sorted(Path(f"results/{study}/curve/{run}").glob("step*/summary.json")):
        s = json.loads(summary.read_text())["success"]
        points.append((int(summary.parent.name[len("step"):]), s["trials"], s["successes"]))
    trials = Path(f"results/{study}/runs/{run}/seed0/eval/trials.csv")
    if trials.exists():
        rows = sorted(csv.DictReader(trials.open()), key=lambda r: int(r["seed"]))[:FIRST]
        steps = json.loads(Path(f"results/{study}/runs/{run}/seed0/train/train_summary.json").read_text())["steps"]
        points.append((int(steps), len(rows), sum(r["outcome"] == "success" for r in rows)))
    return points


def loss_points(study: str, run: str) -> list[tuple[int, float, float]]:
    """(step, training loss, held-out clean loss) at every validation."""
    path = Path(f"results/{study}/runs/{run}/seed0/train/metrics.csv")
    if not path.exists():
        return []
    rows = [r for r in csv.DictReader(path.open()) if r.get("val_target_teleop")]
    return [(int(r["step"]), float(r["loss"]), float(r["val_target_teleop"])) for r in rows]


def main() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures/pixels/learning_curves.png")
    args = parser.parse_args()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    table = []
    for (study, run, label), color in zip(RUNS, ["tab:blue", "tab:orange", "tab:cyan", "tab:red"]):
        style = "--" if run.endswith("-state") else "-"
        points = success_points(study, run)
        if points:
            xs = [p[0] for p in points]
            rates = [p[2] / p[1] for p in points]
            lows = [r - wilson_interval(p[2], p[1]).low for r, p in zip(rates, points)]
            highs = [wilson_interval(p[2], p[1]).high - r for r, p in zip(rates, points)]
            left.errorbar(xs, rates, yerr=[lows, highs], fmt="o" + style, color=color, label=label, capsize=3)
            table += [(label, "success", x, r, t) for (x, t, _), r in zip(points, rates)]
        losses = loss_points(study, run)
        if losses:
            right.plot([p[0] for p in losses], [p[2] for p in losses], style + "o", color=color,
                       label=f"{label}, held-out clean")
            right.plot([p[0] for p in losses], [p[1] for p in losses], style, color=color, alpha=0.35)
            table += [(label, "val_target_teleop", s, v, "") for s, _, v in losses]
            table += [(label, "train_loss", s, v, "") for s, v, _ in losses]
    left.set(xlabel="training steps (batch 64)", ylabel=f"success ({FIRST} starts, 95% Wilson)", ylim=(0, 1))
    right.set(xlabel="training steps (batch 64)", ylabel="loss (faint: training)")
    left.legend(fontsize=8)
    right.legend(fontsize=7)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "quantity", "step", "value", "trials"])
        writer.writerows(table)
    print(f"wrote {out} and {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
