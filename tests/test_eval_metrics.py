"""Success intervals and paired tests: known values, edge cases, and that scipy computes them."""
import math

import numpy as np
import pytest

from eval import metrics
from eval.metrics import TrialRecord, mcnemar_exact, paired_test, summarize, wilson_interval


def test_wilson_matches_published_values():
    # Wilson 95% interval for 7/10 (e.g. Newcombe 1998, Table I: 0.3968 to 0.8922).
    ci = wilson_interval(7, 10)
    assert ci.rate == pytest.approx(0.7)
    assert ci.low == pytest.approx(0.3968, abs=1e-4)
    assert ci.high == pytest.approx(0.8922, abs=1e-4)


def test_wilson_edges_stay_inside_unit_interval():
    zero, full = wilson_interval(0, 20), wilson_interval(20, 20)
    assert zero.low == pytest.approx(0.0) and 0 < zero.high < 0.2
    assert full.high == pytest.approx(1.0) and 0.8 < full.low < 1
    empty = wilson_interval(0, 0)
    assert math.isnan(empty.rate) and (empty.low, empty.high) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_intervals_and_tests_come_from_scipy(monkeypatch):
    calls = []
    real = metrics.binomtest

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(metrics, "binomtest", spy)
    wilson_interval(3, 9)
    mcnemar_exact([1, 0, 1], [0, 0, 0])
    assert calls == [(3, 9), (2, 2, 0.5)]


def test_mcnemar_exact_known_value():
    # 1 vs 9 discordant pairs: two-sided exact p = 2 * (1 + 10) / 2**10.
    a = [True] * 1 + [False] * 9 + [True] * 5 + [False] * 5
    b = [False] * 1 + [True] * 9 + [True] * 5 + [False] * 5
    test = mcnemar_exact(a, b)
    assert (test.n_pairs, test.a_only, test.b_only) == (20, 1, 9)
    assert test.p_value == pytest.approx(22 / 1024)
    assert test.difference == pytest.approx(-8 / 20)
    # Identical outcomes: no evidence of a difference.
    assert mcnemar_exact(a, a).p_value == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])


def _rec(seed, outcome, t=math.nan):
    return TrialRecord(seed=seed, outcome=outcome, steps=10, time_to_success=t, final_xy_error=0.01,
                       final_theta_error=0.02)


def test_paired_test_uses_only_shared_seeds():
    a = [_rec(0, "success", 3.0), _rec(1, "timeout"), _rec(2, "success", 4.0)]
    b = [_rec(1, "success", 5.0), _rec(2, "success", 2.0), _rec(7, "success", 1.0)]
    test = paired_test({r.seed: r.success for r in a}, {r.seed: r.success for r in b})
    assert (test.n_pairs, test.a_only, test.b_only) == (2, 0, 1)


def test_summary_counts_and_time_to_success():
    recs = [_rec(0, "success", 3.0), _rec(1, "timeout"), _rec(2, "success", 5.0), _rec(3, "left_workspace")]
    s = summarize(recs)
    assert s.n_trials == 4 and s.success.successes == 2
    assert s.outcomes == {"success": 2, "timeout": 1, "left_workspace": 1, "error": 0}
    assert s.mean_time_to_success == pytest.approx(4.0)
    assert s.seeds == (0, 3)
    d = s.to_dict()
    assert d["success"]["rate"] == 0.5
    none = summarize([_rec(0, "timeout")]).to_dict()
    assert none["mean_time_to_success"] is None  # NaN becomes JSON null
    back = TrialRecord.from_dict({k: ("" if isinstance(v, float) and np.isnan(v) else v)
                                  for k, v in recs[1].to_dict().items()})
    assert back.outcome == "timeout" and math.isnan(back.time_to_success)
