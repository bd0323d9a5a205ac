"""Data-parallel training through torchrun with two CPU processes (gloo backend)."""
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_stores import write_store  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_cpu_ranks(tmp_path):
    target = write_store(tmp_path / "target.zarr", "target", 4, seed=1)
    sim = write_store(tmp_path / "sim.zarr", "sim", 6, wiggle=0.01, seed=2)
    out = tmp_path / "run"
    cfg = {
        "out_dir": str(out), "device": "cpu",
        "data": {"datasets": [{"path": str(target)}, {"path": str(sim)}], "val_fraction": 0.25},
        "policy": {"down_dims": [16, 32], "noise_dim": 16},
        "objective": {"method": "ambient", "sigma_n": 0.2},
        "optim": {"batch_size": 32, "warmup_steps": 5},
        "run": {"steps": 12, "log_every": 4, "val_every": 6, "val_windows": 8, "checkpoint_every": 6,
                "progress": False},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run([str(bin_dir / "torchrun"), "--nproc_per_node", "2", "--master_port", str(_free_port()),
                           str(bin_dir / "cotrain"), "train", str(tmp_path / "cfg.yaml")],
                          capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1",
                                                                             "PATH": str(bin_dir)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "done").exists()
    ckpt = torch.load(out / "checkpoints" / "latest.pt", weights_only=False)
    assert ckpt["world_size"] == 2 and len(ckpt["rng_numpy"]) == 2
    assert ckpt["rng_numpy"][0] != ckpt["rng_numpy"][1]   # each rank draws its own half batch
    rows = (out / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["4", "6", "8", "12"]   # log rows and validation rows
