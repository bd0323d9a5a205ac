"""A trained diffusion policy for closed-loop use: `load_policy(path).act(obs_history)`.

act() takes the last n_obs observations of B environments, normalizes them, samples a whole action chunk
(horizon steps) with the config's sampler (`ChunkSampler`: EDM's Heun, deterministic or with churn, or the
diffusers DDPM / DDIM schedulers), un-normalizes it and returns the n_action steps that start at the current
step (index n_obs - 1 of the chunk, as diffusion_policy does).

Randomness: the initial noise (B, horizon, 2), and for a stochastic sampler (heun_churn, ddpm) fresh noise
at every step. Give the initial noise explicitly (`noise=`) and the per-step noise as one seed per sample
(`step_seeds=`), or give one seed per sample (`seeds=`): sample b's noise, initial then per step, is then
drawn from its own generator seeded with seeds[b]. Either way sample b depends on its own seeds only, so a
batched call returns the same actions as B unbatched calls (up to float round-off of batched matrix
products, ~1e-6). Without seeds, noise comes from the policy's own generator, seeded with `policy.seed` at
load time and advanced by every call.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from harness.learning.checkpoint import read_checkpoint
from harness.core.configs import from_dict
from harness.core.errors import UserError
from harness.learning.ddpm import scheduler_sample
from harness.learning.diffusion import Churn, heun_churn_sample, heun_sample, karras_schedule
from harness.learning.model import PolicyNet, build_model
from harness.learning.normalizer import Normalizer
from harness.learning.train_config import SAMPLERS, DiffusionConfig, TrainConfig
from harness.learning.windows import ACTION_DIM, WindowSpec, obs_features
from sim_envs.visual import CameraSetup, VisualConfig

STOCHASTIC_SAMPLERS = ("heun_churn", "ddpm")   # draw fresh noise at every step


@dataclasses.dataclass
class ChunkSampler:
    """One of the four samplers with its settings: `sampler(denoiser, cond, noise, generators)` -> chunk."""
    name: str                               # heun | heun_churn (EDM) | ddpm | ddim (DDPM)
    num_steps: int
    schedule: torch.Tensor | None = None    # EDM: (num_steps + 1,) sigmas ending in 0 (karras_schedule)
    churn: Churn | None = None              # heun_churn's settings
    scheduler: object = None                # DDPM: the diffusers scheduler the steps run on

    @classmethod
    def from_config(cls, d: DiffusionConfig, formulation, num_steps: int | None = None,
                    sampler: str | None = None) -> "ChunkSampler":
        name, steps = sampler or d.resolved_sampler, num_steps or d.num_steps
        if name not in SAMPLERS[d.kind]:
            raise UserError(f"sampler {name} does not apply to a diffusion.kind {d.kind} policy; "
                            f"use one of {', '.join(SAMPLERS[d.kind])}")
        if d.kind == "ddpm":
            if steps > d.num_train_timesteps:
                raise UserError(f"{steps} sampler steps: a DDPM policy has only {d.num_train_timesteps} timesteps")
            return cls(name, steps, scheduler=formulation.scheduler(name))
        return cls(name, steps, schedule=karras_schedule(steps, d.sampler_sigma_min, d.sampler_sigma_max, d.rho),
                   churn=Churn(d.S_churn, d.S_min, d.S_max, d.S_noise) if name == "heun_churn" else None)

    @property
    def stochastic(self) -> bool:
        return self.name in STOCHASTIC_SAMPLERS

    def __call__(self, denoiser, cond, noise, generators=None) -> torch.Tensor:
        # noise (B, T, 2) unit, generators: one per row (stochastic samplers) -> (B, T, 2) normalized chunk
        if self.name == "heun":
            return heun_sample(denoiser, cond, noise, self.schedule)
        if self.name == "heun_churn":
            return heun_churn_sample(denoiser, cond, noise, self.schedule, self.churn, generators)
        return scheduler_sample(denoiser, cond, noise, self.scheduler, self.num_steps, generators)


class DiffusionPolicy:
    def __init__(self, net: PolicyNet, normalizer: Normalizer, spec: WindowSpec, sampler: ChunkSampler,
                 device="cpu", seed: int = 0, config: TrainConfig | None = None,
                 image_shapes: dict[str, tuple] | None = None, visual: dict | None = None):
        self.net = net.eval().requires_grad_(False).to(device)
        self.normalizer = normalizer
        self.spec = spec
        self.sampler = sampler
        self.device = torch.device(device)
        self.seed = seed
        self.config = config
        self.image_shapes = dict(image_shapes or {})   # camera key -> (H, W, 3) it was trained on; {} = state only
        # The look an evaluation renders by default: the plain camera at its size, the clean data's visual preset
        self.cameras = None
        if self.image_shapes:
            size = tuple(self.image_shapes["image"][:2]) if "image" in self.image_shapes else None
            look = from_dict(VisualConfig, visual, "checkpoint: visual") if visual else None
            self.cameras = CameraSetup(size, look)
        self._gen = torch.Generator().manual_seed(seed)

    n_obs = property(lambda self: self.spec.n_obs)
    horizon = property(lambda self: self.spec.horizon)
    n_action = property(lambda self: self.spec.n_action)

    @property
    def stochastic(self) -> bool:
        """Does a chunk need per-step noise (so a caller that wants per-trial randomness gives step_seeds)?"""
        return self.sampler.stochastic

    @property
    def schedule(self) -> torch.Tensor | None:
        return self.sampler.schedule

    def _randomness(self, batch: int, noise, seeds, step_seeds) -> tuple[torch.Tensor, list | None]:
        """(initial noise (B, horizon, 2), per-row generators of the per-step noise or None)."""
        shape = (self.spec.horizon, ACTION_DIM)
        for name, given in (("seeds", seeds), ("step_seeds", step_seeds)):
            if given is not None and len(given) != batch:
                raise ValueError(f"got {len(given)} {name} for a batch of {batch}")
        gens = None
        if seeds is not None:   # each row's generator draws its initial noise, then its per-step noise
            gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
            if noise is None:
                noise = torch.stack([torch.randn(shape, generator=g) for g in gens])
        if noise is None:
            noise = torch.randn((batch, *shape), generator=self._gen)
        if not self.stochastic:
            return noise, None
        if step_seeds is not None:
            gens = [torch.Generator().manual_seed(int(s)) for s in step_seeds]
        elif gens is None:
            gens = [torch.Generator().manual_seed(int(s)) for s in torch.randint(2 ** 62, (batch,), generator=self._gen)]
        return noise, gens

    @torch.no_grad()
    def predict_chunk(self, obs_history: dict[str, np.ndarray], noise=None, seeds: Sequence[int] | None = None,
                      step_seeds: Sequence[int] | None = None) -> np.ndarray:
        """The whole predicted chunk in world frame, (B, horizon, 2)."""
        agent = np.asarray(obs_history["agent_pos"], np.float32)
        slider = np.asarray(obs_history["slider_pose"], np.float32)
        if agent.ndim != 3 or agent.shape[1] != self.n_obs or slider.shape[:2] != agent.shape[:2]:
            raise ValueError(f"obs_history needs agent_pos (B, {self.n_obs}, 2) and slider_pose "
                             f"(B, {self.n_obs}, 3); got {agent.shape} and {slider.shape}")
        b = agent.shape[0]
        obs = self.normalizer.obs.normalize(obs_features(agent, slider)).astype(np.float32)
        obs_t = torch.from_numpy(obs).to(self.device)
        images = None
        if self.net.image_encoder is not None:
            missing = [key for key in self.image_shapes if key not in obs_history]
            if missing:
                raise ValueError(f"obs_history needs the cameras {list(self.image_shapes)}; {missing} missing")
            images = {key: torch.from_numpy(np.asarray(obs_history[key], np.uint8)).to(self.device)
                      for key in self.image_shapes}                                  # {key: (B, n_obs, H, W, 3)}
        noise, generators = self._randomness(b, noise, seeds, step_seeds)
        noise = torch.as_tensor(noise, dtype=torch.float32).to(self.device)
        cond = self.net.encode(obs_t, images)
        x = self.sampler(self.net.denoiser, cond, noise, generators)   # (B, horizon, 2)
        return self.normalizer.action.unnormalize(x.float().cpu().numpy())

    def act(self, obs_history: dict[str, np.ndarray], noise=None, seeds: Sequence[int] | None = None,
            step_seeds: Sequence[int] | None = None) -> np.ndarray:
        """(B, n_action, 2) world-frame pusher targets to execute, starting at the current step."""
        chunk = self.predict_chunk(obs_history, noise=noise, seeds=seeds, step_seeds=step_seeds)
        start = self.n_obs - 1
        return chunk[:, start: start + self.n_action]


def load_policy(path, device="cpu", num_steps: int | None = None, seed: int = 0,
                sampler: str | None = None) -> DiffusionPolicy:
    """Rebuild the EMA policy from one checkpoint file (latest.pt or final.pt); needs nothing else.

    num_steps / sampler override the config's diffusion.num_steps / diffusion.sampler (same formulation)."""
    ckpt = read_checkpoint(path)
    net, formulation, cfg = load_denoiser(path, ckpt)
    spec = WindowSpec(cfg.data.n_obs, cfg.data.horizon, cfg.data.n_action)
    chunk_sampler = ChunkSampler.from_config(cfg.diffusion, formulation, num_steps, sampler)
    shapes = ckpt["image_shape"] or {}
    if not isinstance(shapes, dict):     # a checkpoint from before cameras were named: the plain camera only
        shapes = {"image": shapes}
    return DiffusionPolicy(net, _normalizer(path, ckpt["normalizer"]), spec, chunk_sampler, device, seed, cfg,
                           image_shapes={k: tuple(v) for k, v in shapes.items()}, visual=ckpt.get("visual"))


def load_denoiser(path, ckpt: dict | None = None):
    """(EMA denoiser, formulation, config) of one checkpoint file: the network load_policy samples with, and
    the formulation (EDM or DDPM) whose loss weighting scores it (harness/learning/held_out.py)."""
    ckpt = read_checkpoint(path) if ckpt is None else ckpt
    cfg = from_dict(TrainConfig, ckpt["config"], str(path))
    net, formulation = build_model(cfg, float(ckpt["sigma_data"]))
    try:
        net.load_state_dict(ckpt["ema"])
    except RuntimeError as exc:   # weights of another network size than the config says
        raise UserError(f"{path}: its weights do not match its config ({str(exc).splitlines()[0][:120]})") from None
    _check_finite_weights(path, ckpt["ema"])
    return net, formulation, cfg


def _check_finite_weights(path, state: dict) -> None:
    """NaN or inf in a policy's weights gives NaN actions, which fail only inside the rollouts, after an
    evaluation folder was made: refuse such a file when it is loaded."""
    bad = next((name for name, t in state.items() if torch.is_tensor(t) and t.is_floating_point()
                and not torch.isfinite(t).all()), None)
    if bad is not None:
        raise UserError(f"{path}: ema.{bad}: the policy's weights hold NaN or inf (did training diverge?)")


def _normalizer(path, state) -> Normalizer:
    """The checkpoint's normalizer, or one line naming the file when it is not one (a KeyError otherwise)."""
    try:
        return Normalizer.from_state(state)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise UserError(f"{path}: normalizer: not a normalizer's state ({type(exc).__name__}: "
                        f"{str(exc)[:80]})") from None
