"""How many noise draws does a stable per-window sigma_n need? (the default of AnnotateConfig.k_draws)

    .venv/bin/python benchmarks/annotate_k_draws.py --clean data/target.zarr --corrupt data/sim.zarr
    .venv/bin/python benchmarks/annotate_k_draws.py --clean C --corrupt S --windows 1000 --ks 1 2 4 8 16 --ref 32

Trains the fold-0 classifier of `cotrain annotate` (same settings: pass key=value overrides), then scores
held-out windows with `--ref` independent noise draws per grid sigma and keeps every draw. For each k the
per-window sigma_n is computed from the mean of the first k draws, with the calibration and smoothing of
the real rule, and compared with sigma_n from all `--ref` draws. Prints one row per (k, smoothing): the
fraction of windows whose sigma_n moves by more than one grid step, the median |log2 ratio| over windows
with a finite positive value in both, the 'never' fraction and the median sigma_n.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.fold0 import fold0_classifier  # noqa: E402
from harness.learning.classifier import AnnotateConfig, mean_p_corrupt  # noqa: E402
from harness.core.configs import from_dict, parse_overrides  # noqa: E402
from harness.learning.sigma_n_rule import apply_calibration, fit_calibration, sigma_n_from_p  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", nargs="+", required=True)
    parser.add_argument("--corrupt", nargs="+", required=True)
    parser.add_argument("--windows", type=int, default=1000, help="held-out windows per class scored")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--ref", type=int, default=32, help="draws of the reference estimate")
    parser.add_argument("--smooth", type=int, nargs="+", default=[1, 3], help="smoothing widths compared")
    parser.add_argument("overrides", nargs="*", help="AnnotateConfig key=value, e.g. steps=1000 use_obs=false")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = from_dict(AnnotateConfig, {"progress": False, **parse_overrides(args.overrides)}, "overrides")
    setup = fold0_classifier(args.clean, args.corrupt, cfg, args.windows)
    model, trained, held, device = setup.model, setup.trained_seconds, setup.held, setup.device
    grid = cfg.sigma_grid()
    started = time.perf_counter()
    draws = {name: np.stack([mean_p_corrupt(model, w, grid, 1, cfg.annotate_batch, device, seed=1 + d)
                             for d in range(args.ref)]) for name, w in held.items()}   # (ref, N, G)
    scored = time.perf_counter() - started
    print(f"classifier trained in {trained:.0f} s; {args.ref} draws of {len(held['clean'].action)} + "
          f"{len(held['corrupt'].action)} windows x {len(grid)} sigmas in {scored:.0f} s")
    step = np.log2(grid[2] / grid[1])

    def sigma_n(k: int, smooth: int, first: int = 0) -> np.ndarray:
        mean = {name: d[first: first + k].mean(axis=0) for name, d in draws.items()}
        calibration = fit_calibration(mean["clean"], mean["corrupt"])
        return sigma_n_from_p(apply_calibration(mean["corrupt"], calibration), grid, cfg.eps, smooth)

    print(f"{'k_draws':>7} {'smooth':>6} {'moved > 1 step':>15} {'median |log2|':>14} {'never':>7} "
          f"{'median sigma_n':>15}")
    for smooth in args.smooth:
        ref = sigma_n(args.ref, smooth)
        for k in args.ks:
            got = sigma_n(k, smooth)
            both = np.isfinite(ref) & np.isfinite(got) & (ref > 0) & (got > 0)
            log_ratio = np.abs(np.log2(got[both] / ref[both]))
            moved = np.mean((np.isinf(ref) != np.isinf(got)) | ((ref == 0) != (got == 0))
                            | (np.abs(np.log2(np.where(both, got, 1) / np.where(both, ref, 1))) > 1.01 * step))
            print(f"{k:>7} {smooth:>6} {moved:>15.1%} {np.median(log_ratio) if len(log_ratio) else 0:>14.3f} "
                  f"{np.mean(np.isinf(got)):>7.1%} {np.median(got):>15.4g}")
        print(f"{args.ref:>7} {smooth:>6} {'(reference)':>15} {'':>14} {np.mean(np.isinf(ref)):>7.1%} "
              f"{np.median(ref):>15.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
