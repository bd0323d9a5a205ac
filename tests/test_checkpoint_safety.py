"""Loading a checkpoint never runs code; a trusted file in an unsafe form can be converted and then loads."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from harness.learning.checkpoint import FORMAT, convert_trusted, read_checkpoint
from harness.core.errors import UserError


def _numpy_checkpoint(path):
    """What an older writer could have left: numpy values beside the tensors (not loadable safely)."""
    torch.save({"format": FORMAT, "config": {"seed": 3}, "step": np.int64(7), "ema": {"w": torch.arange(3.0)},
                "normalizer": {"obs": {"offset": np.zeros(2, np.float32)}}, "sigma_data": np.float64(0.5),
                "image_shape": None}, path)


def test_a_numpy_checkpoint_is_refused_then_converted(tmp_path):
    src, out = tmp_path / "old.pt", tmp_path / "new.pt"
    _numpy_checkpoint(src)
    with pytest.raises(UserError, match="could run code; if you trust it, convert it"):
        read_checkpoint(src)
    convert_trusted(src, out)
    ckpt = read_checkpoint(out)
    assert ckpt["step"] == 7 and ckpt["sigma_data"] == 0.5 and ckpt["config"] == {"seed": 3}
    assert torch.equal(ckpt["ema"]["w"], torch.arange(3.0))
    assert torch.equal(ckpt["normalizer"]["obs"]["offset"], torch.zeros(2))
    with pytest.raises(UserError, match="exists"):      # never replaces a file
        convert_trusted(src, out)


def test_the_converter_is_a_command_with_one_line_errors(tmp_path):
    src = tmp_path / "old.pt"
    _numpy_checkpoint(src)
    ok = subprocess.run([sys.executable, "-m", "harness.learning.checkpoint", str(src), str(tmp_path / "new.pt")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    again = subprocess.run([sys.executable, "-m", "harness.learning.checkpoint", str(src), str(tmp_path / "new.pt")],
                           capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "exists" in again.stderr


def test_a_write_clears_the_temporaries_of_dead_writers_only(tmp_path):
    """SIGKILL during a checkpoint write leaves `.latest.pt.tmp-<pid>`; the next write removes those of dead
    processes (a killed-and-resumed run does not pile them up) and leaves a live writer's alone."""
    from harness.learning.checkpoint import write_checkpoint
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".latest.pt.tmp-{dead}"
    live = tmp_path / f".latest.pt.tmp-{os.getppid()}"
    other = tmp_path / f".final.pt.tmp-{dead}"          # another output's: not this write's business
    for p in (stale, live, other):
        p.write_bytes(b"half a checkpoint")
    write_checkpoint(tmp_path / "latest.pt", {"config": {}, "ema": {}, "normalizer": {}, "sigma_data": 1.0,
                                             "image_shape": None})
    assert not stale.exists() and live.exists() and other.exists()
    assert read_checkpoint(tmp_path / "latest.pt")["sigma_data"] == 1.0
