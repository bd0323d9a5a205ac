"""The pixel study's rows with and without the visual gap, paired on their shared evaluation starts.

    python docs/scripts/pixel_gap.py --out docs/figures/pixels/gap_table.csv

`experiments/pixels_no_gap.yaml` is a study of its own (its GCS frames are rendered in the target look), so
`cotrain compare` pairs its row with nothing. Every row here was evaluated on the same 200 starts (seeds
100000..100199, batch-invariant trials), so any two of them pair start by start. Also the state-observation
control with the slider pose observed through noise of the size of the pixel encoder's probe error
(results/pixels/pose_noise, `cotrain eval ... --env docs/scripts/presets/target_pose_noise_*.yaml`).
Prints a Markdown table (success with its Wilson interval, then wins / losses and McNemar's exact p against
pixel target_only and pixel cotrain) and writes it as CSV.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from eval.metrics import paired_test, wilson_interval
from eval.report import read_trials_csv

ROWS = [   # (label, trials.csv)
    ("target_only (pixels)", "results/pixels/runs/target_only/seed0/eval/trials.csv"),
    ("cotrain (pixels, GCS in the sim look)", "results/pixels/runs/cotrain/seed0/eval/trials.csv"),
    ("truncated per-datapoint (pixels, GCS in the sim look)",
     "results/pixels/runs/truncated-per-datapoint/seed0/eval/trials.csv"),
    ("cotrain (pixels, GCS in the target look)",
     "results/pixels_no_gap/runs/cotrain-gcs-in-the-target-look/seed0/eval/trials.csv"),
    ("target_only (state)", "results/pixels/runs/target_only-state/seed0/eval/trials.csv"),
    ("cotrain (state)", "results/pixels/runs/cotrain-state/seed0/eval/trials.csv"),
    ("cotrain (state, pose noise of the pixel encoder's probe error)",
     "results/pixels/pose_noise/cotrain-state-pixel_encoder/trials.csv"),
    ("cotrain (state, pose noise of the supervised encoder's probe error)",
     "results/pixels/pose_noise/cotrain-state-supervised_encoder/trials.csv"),
]
AGAINST = ("target_only (pixels)", "cotrain (pixels, GCS in the sim look)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures/pixels/gap_table.csv")
    args = parser.parse_args()
    outcomes = {}
    for label, path in ROWS:
        if Path(path).exists():
            outcomes[label] = {r.seed: r.outcome == "success" for r in read_trials_csv(path)}
        else:
            print(f"(missing, left out: {path})")
    header = ["row", "trials", "success [95% Wilson CI]"]
    for other in AGAINST:
        header += [f"vs {other}: wins / losses", "p (McNemar exact)"]
    table = []
    for label, trials in outcomes.items():
        row = [label, len(trials), wilson_interval(sum(trials.values()), len(trials)).fmt(1)]
        for other in AGAINST:
            if other == label or other not in outcomes:
                row += ["", ""]
                continue
            test = paired_test(trials, outcomes[other])
            row += [f"{test.a_only} / {test.b_only}", f"{test.p_value:.2g}"]
        table.append(row)
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in table:
        print("| " + " | ".join(str(v) for v in row) + " |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        csv.writer(f).writerows([header, *table])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
