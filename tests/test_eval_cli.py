"""`cotrain eval` and `cotrain compare` on the command line: outputs, resume guard, one-line errors."""
import json

from harness.cli import main
from tests.helpers import tree_digest


def test_eval_scripted_writes_report_and_refuses_a_different_eval_in_the_same_folder(tmp_path, capsys):
    out = tmp_path / "ev"
    args = ["eval", "scripted", "--trials", "2", "--time-limit", "0.3", "--out", str(out), "--workers", "1",
            "--n-envs", "2", "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_trials"] == 2 and summary["outcomes"]["timeout"] == 2
    assert summary["success"]["high"] > 0.5            # 0 of 2: a wide Wilson interval
    assert (out / "trials.csv").read_text().count("\n") == 3
    assert "success    0.0%" in capsys.readouterr().out
    assert main(args) == 0                               # same evaluation again: resumes, nothing to run
    spec = (out / "eval_spec.json").read_text()
    assert main([*args[:3], "3", *args[4:]]) == 2        # different trials in the same folder: refused
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "eval_spec.json: trials: was 2" in err and "is 3 now" in err
    assert (out / "eval_spec.json").read_text() == spec



def test_eval_refuses_an_out_that_is_not_an_evaluation_folder_and_leaves_it_untouched(tmp_path, capsys):
    from tests.helpers import write_store
    store = tmp_path / "data.zarr"
    write_store(store, n_episodes=2)                     # a dataset store: not ours to write into
    trials_only = tmp_path / "old_eval"
    trials_only.mkdir()
    (trials_only / "trials.jsonl").write_text('{"seed": 0}\n')   # trials but no eval_spec.json
    for out in (store, trials_only):
        before = tree_digest(out)
        assert main(["eval", "scripted", "--trials", "1", "--time-limit", "0.3", "--out", str(out),
                     "--workers", "1", "--n-envs", "1", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(out) in err and "eval_spec.json" in err, err
        assert tree_digest(out) == before


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    for argv, message in [
        (["eval", str(tmp_path / "missing.pt")], "no such checkpoint"),
        (["eval", "scripted", "--trials", "0"], "--trials must be in [1, "),
        (["eval", "scripted", "--env", "nowhere"], "nowhere"),
        (["eval", "scripted", "--num-steps", "0"], "--num-steps"),
        (["compare", str(tmp_path / "missing.yaml")], "file not found"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    corrupt = tmp_path / "corrupt" / "bad.pt"
    corrupt.parent.mkdir()
    corrupt.write_text("not a checkpoint")
    assert main(["eval", str(corrupt), "--no-progress"]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert sorted(p.name for p in corrupt.parent.iterdir()) == ["bad.pt"]   # nothing half written beside it
    bad = tmp_path / "study.yaml"
    bad.write_text("name: x\ndatasets: [{name: a, path: a.zarr, role: clean}]\nmethods: [{method: cotrain}]\n"
                   "evaluation: {trials: 3}\n")
    assert main(["compare", str(bad)]) == 2
    assert "evaluation: unknown key" in capsys.readouterr().err


def test_sigterm_stops_a_parallel_eval_like_ctrl_c_with_one_line(tmp_path):
    """SIGTERM to `cotrain eval --workers 2` mid-run: exit 130 and one line, finished trials kept; killed
    outright it left both workers printing BrokenPipeError tracebacks and the resource tracker's
    leaked-semaphore warning."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "ev"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "eval", "scripted", "--out", str(out),
                             "--trials", "200", "--time-limit", "5", "--workers", "2", "--n-envs", "2",
                             "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while not ((out / "trials.jsonl").exists() and (out / "trials.jsonl").read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)                                # the workers are running trials now
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["cotrain eval: interrupted; finished work is kept, re-run to resume"]
    assert (out / "trials.jsonl").read_text().strip()  # the trials finished before the signal are kept
