"""How much faster is `annotate`'s crossing / bracket search than scoring every window at every sigma, and
does it give the same sigma_n? (AnnotateConfig.search)

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/annotate_speed.py --clean data/reference/target_teleop.zarr \
        --corrupt data/reference/sim_gcs.zarr [--windows 8192]   (key=value overrides go before --clean)

Trains the fold-0 classifier of `cotrain annotate` (same settings; pass AnnotateConfig key=value overrides,
e.g. use_obs=false k_draws=8 as the reference study), calibrates it on held-out windows as annotate does,
then scores the same `--windows` held-out corrupt windows with each search, one after the other in this
process, and prints per search: seconds, network calls per window, the share of windows whose sigma_n is
identical to the full search's and the share that moves by more than one grid step, and the projected
wall time of a whole `annotate` of the corrupt stores given (classifier training for every fold + scoring
every window), from the training time and per-window scoring time measured here.
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
from harness.learning.classifier import AnnotateConfig, _Windows, mean_p_corrupt, scan_to_crossing  # noqa: E402
from harness.core.configs import from_dict, parse_overrides  # noqa: E402
from harness.learning.sigma_n_rule import apply_calibration, fit_calibration, sigma_n_from_p  # noqa: E402
from harness.learning.windows import make_windows  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", nargs="+", required=True)
    parser.add_argument("--corrupt", nargs="+", required=True)
    parser.add_argument("--windows", type=int, default=8192, help="held-out corrupt windows scored by each search")
    parser.add_argument("--brackets", nargs="*", default=[], metavar="STRIDE:DRAWS:MARGIN",
                        help="try these bracket settings (default: the config's bracket_stride:bracket_draws:bracket_margin)")
    parser.add_argument("overrides", nargs="*", help="AnnotateConfig key=value, e.g. use_obs=false k_draws=8")
    args = parser.parse_args()
    cfg = from_dict(AnnotateConfig, {"progress": False, **parse_overrides(args.overrides)}, "overrides")
    setup = fold0_classifier(args.clean, args.corrupt, cfg, args.windows, sort=True)
    model, trained, held, device = setup.model, setup.trained_seconds, setup.held, setup.device
    grid = cfg.sigma_grid()
    n_val = cfg.val_windows // cfg.n_folds
    calibration = fit_calibration(*(mean_p_corrupt(model, _Windows(w.obs[:n_val], w.action[:n_val]), grid,
                                                   cfg.k_draws, cfg.annotate_batch, device, 7)
                                    for w in (held["clean"], held["corrupt"])))
    target = held["corrupt"]
    n_windows = sum(len(make_windows(r.episode_ends, setup.spec)) for r in setup.corrupt_raws)
    print(f"device {device}  threads {torch.get_num_threads()}  classifier (one fold, {cfg.steps} steps) trained "
          f"in {trained:.0f} s; {len(target.action)} held-out corrupt windows x {len(grid)} sigmas, "
          f"k_draws {cfg.k_draws}; the stores hold {n_windows} corrupt windows")
    print(f"{'search':<18} {'seconds':>8} {'calls/window':>13} {'same sigma_n':>13} {'moved > 1 step':>15} "
          f"{'zero':>6} {'never':>6} {'projected annotate':>19} {'speed-up':>9}")
    step = np.log2(grid[2] / grid[1])
    reference, full_minutes = None, None
    brackets = args.brackets or [f"{cfg.bracket_stride}:{min(cfg.bracket_draws, cfg.k_draws)}:{cfg.bracket_margin:g}"]
    for search in ["full", "crossing"] + [f"bracket {b}" for b in brackets]:
        calls = _CallCounter(model)
        started = time.perf_counter()
        if search == "full":
            p = apply_calibration(mean_p_corrupt(calls, target, grid, cfg.k_draws, cfg.annotate_batch, device, 1),
                                  calibration)
            sigma_n = sigma_n_from_p(p, grid, cfg.eps, cfg.smooth)
        else:
            stride, draws, margin = search.split()[1].split(":") if search != "crossing" else (0, 0, 0)
            bracket = (int(stride), int(draws), float(margin)) if search != "crossing" else None
            sigma_n, _ = scan_to_crossing(calls, target, grid, cfg.k_draws, cfg.annotate_batch, device, 1,
                                          calibration, cfg.eps, cfg.smooth, bracket)
        seconds = time.perf_counter() - started
        reference = sigma_n if reference is None else reference
        both = np.isfinite(reference) & np.isfinite(sigma_n) & (reference > 0) & (sigma_n > 0)
        ratio = np.abs(np.log2(np.where(both, sigma_n, 1) / np.where(both, reference, 1)))
        moved = (np.isinf(reference) != np.isinf(sigma_n)) | ((reference == 0) != (sigma_n == 0)) | (ratio > 1.01 * step)
        minutes = (cfg.n_folds * trained + seconds / len(target.action) * n_windows) / 60
        full_minutes = full_minutes or minutes
        print(f"{search:<18} {seconds:>8.1f} {calls.rows / len(target.action):>13.1f} "
              f"{np.mean(sigma_n == reference):>13.1%} {np.mean(moved):>15.2%} {np.mean(sigma_n == 0):>6.1%} "
              f"{np.mean(np.isinf(sigma_n)):>6.1%} {minutes:>15.1f} min {full_minutes / minutes:>8.1f}x")
    return 0


class _CallCounter(torch.nn.Module):
    """The classifier, counting the window-evaluations (rows through the network) it is asked for."""

    def __init__(self, model):
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, x, sigma, obs):
        self.rows += len(x)
        return self.model(x, sigma, obs)


if __name__ == "__main__":
    sys.exit(main())
