"""The executor interface: JSON-able jobs, results per job, failures reported without stopping the rest."""
import json

import pytest

from harness.study.executor import Job, LocalExecutor, make_executor, run_job

JOBS = [Job("ok", "json:dumps", {"obj": [1, 2]}), Job("bad", "json:loads", {"s": "{"}),
        Job("ok2", "json:dumps", {"obj": {"a": 1}})]


@pytest.mark.parametrize("parallel", [1, 2])
def test_local_executor_reports_each_job(parallel):
    results = {r.key: r for r in LocalExecutor(parallel).run(JOBS)}
    assert set(results) == {"ok", "bad", "ok2"}
    assert results["ok"].ok and results["ok"].value == "[1, 2]"
    assert results["ok2"].value == '{"a": 1}'
    assert not results["bad"].ok and results["bad"].error.startswith("JSONDecodeError")


def test_jobs_are_plain_json_for_other_engines():
    job = JOBS[0]
    again = Job(**json.loads(job.to_json()))
    assert again == job and run_job(again) == "[1, 2]"
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("slurm")
