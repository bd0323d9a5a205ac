"""The CUDA path, on a machine that has one (`pytest -m cuda`; benchmarks/gpu_check.sh runs these first).

Skipped where torch sees no CUDA device, which is every machine this project's CI and developers have; the
GPU check script runs them when a device is lent. What they hold: a tiny run trains on CUDA with bf16
autocast (the published recipe's setting) and with fp32, its losses are finite and fall, and a policy loaded
on CUDA acts as the same checkpoint does on the CPU (fp32 sampling: the same chunk up to float round-off).
"""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_training import TINY_DIFFUSIONS, TINY_NETWORKS, demo_windows, read_metrics, stores, tiny_cfg  # noqa: E402,F401

from harness.learning.policy import load_policy  # noqa: E402
from harness.learning.training import train  # noqa: E402

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (benchmarks/gpu_check.sh)")]


@pytest.mark.parametrize("diffusion", ["edm", "ddpm"])
@pytest.mark.parametrize("bf16", [False, True])
def test_a_tiny_run_trains_on_cuda_and_acts_as_on_the_cpu(stores, tmp_path, diffusion, bf16):
    settings, steps = TINY_DIFFUSIONS[diffusion]
    cfg = tiny_cfg(stores, tmp_path / "run", steps=200, device="cuda",
                   **{"diffusion": settings, "policy": TINY_NETWORKS["mlp"], "run.bf16": bf16})
    ckpt = train(cfg)
    losses = [float(row["loss"]) for row in read_metrics(tmp_path / "run")]
    assert np.all(np.isfinite(losses)) and np.mean(losses[-5:]) < np.mean(losses[:5])
    on_gpu, on_cpu = load_policy(ckpt, device="cuda"), load_policy(ckpt, device="cpu")
    obs, _ = demo_windows(stores["target"], on_cpu.spec)
    obs = {k: v[:8] for k, v in obs.items()}
    seeds = list(range(8))
    np.testing.assert_allclose(on_gpu.act(obs, seeds=seeds), on_cpu.act(obs, seeds=seeds), atol=2e-3)
