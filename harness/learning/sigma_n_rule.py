"""From the classifier's P(corrupt) to sigma_n: calibration, smoothing, the per-window and per-dataset rules,
and the checks that tell a user when the estimate is not to be trusted (numpy + scipy, no torch).

The rules (docs/objectives.md, section 6):
  per window   sigma_n = the smallest grid sigma where the calibrated, smoothed mean P(corrupt) over the
               noise draws is <= 0.5 + eps (0 if already at sigma = 0; inf if never).
  per dataset  sigma_n = the smallest grid sigma where the smoothed held-out balanced accuracy of that
               dataset against the clean data is <= 0.5 + accuracy_tol.

Why calibrate: a cross-fitted classifier that memorises training episodes (by their observations, or by
where an action chunk lies in the workspace) scores a held-out corrupt window whose clean twin it was
trained on as clean, and the other way round, so its held-out accuracy falls *below* chance once the noise
has drowned the real difference (measured: 0.37 at sigma >= 1 on clean + Gaussian-noise copies). Its raw
P(corrupt) then stays far from 0.5 and windows that are indistinguishable by construction are marked
"never". Per fold and per grid sigma we fit P_cal = sigmoid(a + b * logit(P)) on that fold's held-out
windows with equal class weights and b >= 0: where the scores carry no held-out information (or
anti-information) b = 0 and P_cal = 0.5, i.e. "cannot tell them apart", which is what held-out data say.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

_P_CLIP = 1e-6   # logit(P) is taken of P clipped to [_P_CLIP, 1 - _P_CLIP]


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _P_CLIP, 1 - _P_CLIP)
    return np.log(p) - np.log1p(-p)


def fit_calibration(p_clean: np.ndarray, p_corrupt: np.ndarray) -> np.ndarray:
    """(G, 2) rows (a, b): per grid sigma, P_cal = sigmoid(a + b * logit(P)), b >= 0.

    p_clean (N, G), p_corrupt (M, G): held-out P(corrupt) of windows the classifier was not trained on.
    Balanced weighted logistic regression (each class weighs one half), so a score without information
    calibrates to exactly 0.5 whatever the class sizes.
    """
    z_clean, z_corrupt = logit(p_clean), logit(p_corrupt)
    out = np.zeros((z_clean.shape[1], 2))
    for j in range(z_clean.shape[1]):
        zc, zr = z_clean[:, j], z_corrupt[:, j]

        def loss(ab, zc=zc, zr=zr):
            a, b = ab
            # -log P(label): softplus(a + b z) for clean (label 0), softplus(-(a + b z)) for corrupt
            return 0.5 * np.mean(np.logaddexp(0, a + b * zc)) + 0.5 * np.mean(np.logaddexp(0, -(a + b * zr)))

        res = minimize(loss, x0=np.array([0.0, 1.0]), method="L-BFGS-B", bounds=[(-50, 50), (0, 50)])
        out[j] = res.x
    return out


def identity_calibration(n: int) -> np.ndarray:
    """(n, 2) rows (a, b) = (0, 1): raw scores unchanged (`calibrate: false`)."""
    return np.column_stack([np.zeros(n), np.ones(n)])


def apply_calibration(p: np.ndarray, calibration: np.ndarray) -> np.ndarray:
    """(N, G) calibrated P(corrupt) of raw scores p (N, G) with per-sigma (a, b) rows (G, 2)."""
    z = calibration[:, 0] + calibration[:, 1] * logit(p)
    return (1 / (1 + np.exp(-z))).astype(np.float32)


def smooth_along_grid(values: np.ndarray, width: int) -> np.ndarray:
    """Moving average over `width` neighbouring nonzero grid sigmas (last axis; column 0 is sigma = 0 and is
    left alone). Near the ends the window shrinks. Smoothing removes the draw-to-draw wiggle of a curve
    that crosses the threshold slowly, so one low point does not decide sigma_n. A value whose window
    holds a NaN (a sigma the annotate search did not score) is NaN, and no other."""
    values = np.asarray(values, np.float64)
    if width <= 1 or values.shape[-1] <= 2:
        return values
    return np.stack([values[..., 0]] + [smoothed_at(values, m, width) for m in range(1, values.shape[-1])], axis=-1)


def smoothed_at(values: np.ndarray, m: int, width: int) -> np.ndarray:
    """(...,) the moving average of `smooth_along_grid` at grid column m >= 1 alone."""
    half, g = width // 2, values.shape[-1]
    return np.asarray(values[..., max(1, m - half): min(g - 1, m + half) + 1], np.float64).mean(axis=-1)


def first_at_or_below(curve: np.ndarray, grid: np.ndarray, level: float) -> np.ndarray:
    """(...,) the smallest grid sigma where curve (..., G) <= level; inf where it never is."""
    ok = np.asarray(curve) <= level
    return np.where(ok.any(axis=-1), grid[np.argmax(ok, axis=-1)], np.inf)


def sigma_n_from_p(p: np.ndarray, grid: np.ndarray, eps: float, smooth: int = 1) -> np.ndarray:
    """(N,) per-window sigma_n: the smallest grid sigma where the smoothed mean P(corrupt) <= 0.5 + eps."""
    return first_at_or_below(smooth_along_grid(p, smooth), grid, 0.5 + eps)


def dataset_sigma_n(accuracy: np.ndarray, grid: np.ndarray, tol: float, smooth: int = 1) -> float:
    """One dataset's sigma_n: the smallest grid sigma where its smoothed held-out balanced accuracy
    against the clean data is <= 0.5 + tol (the two can no longer be told apart); inf if never."""
    return float(first_at_or_below(smooth_along_grid(accuracy, smooth), grid, 0.5 + tol))


def balanced_accuracy(p_clean: np.ndarray, p_corrupt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per grid sigma: (balanced accuracy, accuracy on clean, accuracy on corrupt); inputs (N, G).
    A score of exactly 0.5 (no information) counts as half right for either class."""
    acc_clean = np.mean(p_clean < 0.5, axis=0) + 0.5 * np.mean(p_clean == 0.5, axis=0)
    acc_corrupt = np.mean(p_corrupt > 0.5, axis=0) + 0.5 * np.mean(p_corrupt == 0.5, axis=0)
    return (acc_clean + acc_corrupt) / 2, acc_clean, acc_corrupt


def sigma_n_stats(sigma_n: np.ndarray) -> dict:
    """Median, 'never' and 'zero' fractions of per-window sigma_n ('never' = inf sorts above every value)."""
    s = np.asarray(sigma_n, float)
    return {"windows": int(len(s)), "median": float(np.median(s)) if len(s) else float("nan"),
            "never": float(np.mean(np.isinf(s))) if len(s) else 0.0,
            "zero": float(np.mean(s == 0)) if len(s) else 0.0}


# A held-out accuracy this far below 0.5 is not sampling noise (about 4 standard errors at 500 windows
# per class): the classifier anti-learns, and its raw scores must not be read as P(corrupt).
BELOW_CHANCE = 0.08
# Folds whose median sigma_n differ by more than this factor, or whose 'never' fractions differ by more
# than NEVER_GAP, do not agree on the answer: the estimate depends on which classifier scored a window.
FOLD_MEDIAN_FACTOR = 2.0
NEVER_GAP = 0.10


# Held-out accuracy still this far above chance at the largest grid sigma: the noise never made the data
# indistinguishable, so 'never' fractions mean "sigma_hi too small" or "the observations give it away".
STILL_APART = 0.10


def annotation_warnings(folds: list[dict], grid: np.ndarray, accuracy: np.ndarray | None = None) -> list[str]:
    """One line per reason not to trust the annotations, from the per-fold records written by annotate
    and the pooled held-out accuracy curve."""
    out = []
    if accuracy is not None and accuracy[-1] > 0.5 + STILL_APART:
        out.append(f"WARNING held-out accuracy is still {accuracy[-1]:.2f} at the largest sigma {grid[-1]:.3g}: "
                   "noise never hides the difference (with use_obs: true the observations alone may give the "
                   "domain away; else raise sigma_hi)")
    for f in folds:
        raw = np.asarray(f["accuracy_raw"], float)
        j = int(np.argmin(raw))
        if raw[j] < 0.5 - BELOW_CHANCE:
            out.append(f"WARNING fold {f['fold']}: held-out accuracy of the raw classifier falls to {raw[j]:.2f} "
                       f"at sigma {grid[j]:.3g} (below chance: it recognises training episodes; its scores are "
                       "calibrated on held-out windows, which sets P(corrupt) = 0.5 where they carry no information)")
    medians = [f["median"] for f in folds]
    finite = [m for m in medians if np.isfinite(m) and m > 0]
    if len(finite) == len(medians) and len(finite) > 1 and max(finite) > FOLD_MEDIAN_FACTOR * min(finite):
        out.append("WARNING folds disagree: median sigma_n " + ", ".join(f"{m:.3g}" for m in medians)
                   + f" (more than {FOLD_MEDIAN_FACTOR:g}x apart); the estimate depends on the classifier")
    elif len(finite) != len(medians) and len({np.isinf(m) for m in medians}) > 1:
        out.append("WARNING folds disagree: median sigma_n " + ", ".join(f"{m:.3g}" for m in medians))
    nevers = [f["never"] for f in folds]
    if max(nevers) - min(nevers) > NEVER_GAP:
        out.append("WARNING folds disagree: 'never' fraction " + ", ".join(f"{n:.1%}" for n in nevers))
    return out
