"""The residual-MLP denoiser (harness/learning/mlp.py) and what the trainer's pipeline does around it."""
from __future__ import annotations

import copy

import pytest
import torch

from harness.learning.mlp import ChunkMLP
from harness.learning.training import ema_decay, ema_update


def test_blocks_start_as_the_identity_and_the_condition_acts_after_training():
    """adaLN-Zero: every block's gate starts at 0, so at initialisation the observation cannot move the
    output; one optimizer step on a condition-dependent target makes it matter."""
    torch.manual_seed(0)
    net = ChunkMLP(action_dim=2, horizon=16, cond_dim=12, width=32, depth=3, noise_dim=16)
    x, c_noise = torch.randn(8, 16, 2), torch.zeros(8)
    cond_a, cond_b = torch.randn(8, 12), torch.randn(8, 12)
    torch.testing.assert_close(net(x, c_noise, cond_a), net(x, c_noise, cond_b))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    target = cond_a[:, :2, None].expand(8, 2, 16).transpose(1, 2)           # (B, 16, 2) depends on cond
    for _ in range(5):                                                      # gate, then what it gates
        opt.zero_grad()
        (net(x, c_noise, cond_a) - target).pow(2).mean().backward()
        opt.step()
    assert (net(x, c_noise, cond_a) - net(x, c_noise, cond_b)).abs().max() > 0.05


def test_a_chunk_of_another_shape_is_refused():
    net = ChunkMLP(2, 16, 12, width=8, depth=1, noise_dim=8)
    with pytest.raises(ValueError, match=r"built for \(16, 2\)"):
        net(torch.randn(1, 8, 2), torch.zeros(1), torch.zeros(1, 12))


def test_fused_ema_update_is_the_per_parameter_formula():
    """ema_update's one fused call gives what the per-parameter loop it replaced gave."""
    torch.manual_seed(1)
    model = ChunkMLP(2, 16, 12, width=16, depth=2, noise_dim=8)
    ema = copy.deepcopy(model)
    expected = [p.detach().clone() for p in ema.parameters()]
    for step in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        decay = min(0.999, (1 + step) / (10 + step))
        expected = [e + (1 - decay) * (p.detach() - e) for e, p in zip(expected, model.parameters())]
        ema_update(ema, model, ema_decay(step, 0.999, None))
    for e, got in zip(expected, ema.parameters()):
        torch.testing.assert_close(got, e, rtol=1e-6, atol=1e-6)


def test_ema_power_warmup_is_diffusion_policys_emamodel_rule():
    """power p: decay 0 for the first two updates, then 1 - (1 + k)^-p capped (EMAModel.get_decay)."""
    decays = [ema_decay(step, 0.9999, 0.75) for step in range(4)]
    assert decays[:2] == [0.0, 0.0]
    assert decays[2] == pytest.approx(1 - 2 ** -0.75) and decays[3] == pytest.approx(1 - 3 ** -0.75)
    assert ema_decay(10 ** 9, 0.9999, 0.75) == 0.9999
