"""The training config: one typed dataclass tree, loaded with harness.data.configs.load_config.

Every sigma here (and in annotation stores) is in normalized action units: actions are mapped to [-1, 1]
per dimension before diffusion (harness/normalizer.py).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from harness.methods import METHODS, Cotrain, method_class


@dataclasses.dataclass
class DatasetSpec:
    path: str                                             # dataset store (.zarr)
    role: Literal["clean", "corrupt", "auto"] = "auto"    # auto: domain target/real -> clean, sim -> corrupt
    max_episodes: int | None = None                       # use only the first N episodes (null = all)
    only_success: bool = True                             # skip episodes whose meta/success is false
                                                          # (max_episodes then counts kept episodes)
    sigma_n: float | None = None                          # corrupt only: this dataset's noise level sigma_n
                                                          # (used when objective.sigma_n is null)
    RENAMED: ClassVar[dict] = {"sigma_min": "sigma_n"}

    def __post_init__(self):
        if self.max_episodes is not None and self.max_episodes < 1:
            raise ValueError(f"dataset {self.path}: max_episodes must be >= 1 or null")
        if self.sigma_n is not None and self.sigma_n < 0:
            raise ValueError(f"dataset {self.path}: sigma_n must be >= 0")


@dataclasses.dataclass
class DataConfig:
    datasets: list[DatasetSpec] = dataclasses.field(default_factory=list)  # {path, role, max_episodes}
    n_obs: int = 2                 # observation history steps
    horizon: int = 16              # predicted action steps
    n_action: int = 8              # executed action steps
    use_image: bool = False        # condition on data/image too (needs the key in every store)
    val_fraction: float = 0.05     # held-out episodes per dataset for validation losses (0 = none)

    def __post_init__(self):
        if not 0 <= self.val_fraction < 1:
            raise ValueError("data.val_fraction must be in [0, 1)")


@dataclasses.dataclass
class ImageConfig:
    widths: list[int] = dataclasses.field(default_factory=lambda: [32, 64, 128, 256])  # ResNet stage widths
    feature_dim: int = 64          # features per image


@dataclasses.dataclass
class PolicyConfig:
    down_dims: list[int] = dataclasses.field(default_factory=lambda: [256, 512, 1024])  # U-Net widths
    kernel_size: int = 5           # temporal conv kernel
    n_groups: int = 8              # GroupNorm groups
    noise_dim: int = 128           # noise-level embedding width
    image: ImageConfig = dataclasses.field(default_factory=ImageConfig)  # used when data.use_image


@dataclasses.dataclass
class DiffusionConfig:
    sigma_data: float | None = None  # null = measured on the normalized training actions
    P_mean: float = -1.2           # log-normal training sigma: mean of ln sigma
    P_std: float = 1.2             # ... and its std
    sampler_sigma_min: float = 0.002  # Heun sampler's schedule bottom
    sampler_sigma_max: float = 10.0   # Heun sampler's schedule top (20 x sigma_data for actions in [-1, 1])
    rho: float = 7.0               # schedule curvature
    num_steps: int = 16            # Heun steps at inference (2 * steps - 1 network calls)
    RENAMED: ClassVar[dict] = {"sigma_min": "sampler_sigma_min", "sigma_max": "sampler_sigma_max"}

    def __post_init__(self):
        if not 0 < self.sampler_sigma_min < self.sampler_sigma_max:
            raise ValueError("diffusion: need 0 < sampler_sigma_min < sampler_sigma_max")
        if self.num_steps < 1:
            raise ValueError("diffusion.num_steps must be >= 1")


@dataclasses.dataclass
class ObjectiveConfig:
    method: str = Cotrain.name      # one of harness.methods.METHODS (what each does: that module)
    alpha: float | str = "natural"  # P(clean | sigma); a number in [0, 1] or "natural" (ratio by episodes)
    alpha_table: list[list[float]] | str | None = None  # [[sigma, alpha], ...] (log-interpolated) or
                                                         # "classifier" (from the annotations' accuracy)
    sigma_n: float | Literal["annotations"] | None = None  # noise level of the corrupt data: one number for
                                    # every corrupt dataset, "annotations" (per window, from `annotations`),
                                    # or null (each corrupt dataset's own data.datasets[].sigma_n)
    annotations: str | None = None  # annotations store (cotrain annotate): per-window sigma_n, accuracy
    buffer: float = 1.0             # truncated / ambient: corrupt window valid at sigma > buffer * sigma_n
    contract: bool = True           # ambient: add sigma_n noise to corrupt chunks (false: already noisy)
    locality_sigma_max: float | None = None  # corrupt data also used (plain loss) at sigma < this
    RENAMED: ClassVar[dict] = {"sigma_min": "sigma_n"}

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"objective.method must be one of {list(METHODS)}, got {self.method!r}")
        problem = method_class(self.method).settings_error(self)
        if problem:
            raise ValueError(problem)
        if isinstance(self.sigma_n, float) and self.sigma_n < 0:
            raise ValueError("objective.sigma_n must be >= 0")
        if self.sigma_n == "annotations" and not self.annotations:
            raise ValueError("objective.sigma_n 'annotations' needs objective.annotations")
        if self.buffer < 1:
            raise ValueError("objective.buffer must be >= 1")
        if isinstance(self.alpha, str) and self.alpha != "natural":
            raise ValueError(f"objective.alpha must be a number in [0, 1] or 'natural', got {self.alpha!r}")
        if not isinstance(self.alpha, str) and not 0 <= self.alpha <= 1:
            raise ValueError(f"objective.alpha must be in [0, 1], got {self.alpha}")
        if isinstance(self.alpha_table, str) and self.alpha_table != "classifier":
            raise ValueError("objective.alpha_table must be a list of [sigma, alpha] pairs or 'classifier'")
        if isinstance(self.alpha_table, list) and any(len(row) != 2 for row in self.alpha_table):
            raise ValueError("objective.alpha_table rows must be [sigma, alpha]")
        if self.alpha_table == "classifier" and not self.annotations:
            raise ValueError("objective.alpha_table 'classifier' needs objective.annotations")


@dataclasses.dataclass
class OptimConfig:
    batch_size: int = 256          # global batch (split across DDP ranks)
    lr: float = 1e-4               # AdamW peak learning rate
    weight_decay: float = 1e-6     # AdamW weight decay
    betas: list[float] = dataclasses.field(default_factory=lambda: [0.95, 0.999])  # AdamW betas
    warmup_steps: int = 500        # linear warm-up, then cosine decay to 0
    grad_clip: float = 1.0         # max gradient norm (0 = off)
    ema_decay: float = 0.9999      # EMA decay cap (ramped up as min(cap, (1 + k) / (10 + k)))


@dataclasses.dataclass
class RunConfig:
    steps: int = 100_000           # training budget in optimizer steps
    log_every: int = 50            # metrics.csv / TensorBoard row every N steps
    val_every: int = 1000          # per-source validation losses every N steps (and at the end)
    val_windows: int = 256         # held-out windows per source for validation
    checkpoint_every: int = 2000   # checkpoints/latest.pt every N steps
    bf16: bool = True              # bf16 autocast on CUDA
    compile: bool = False          # torch.compile the network (CUDA)
    progress: bool = True          # tqdm progress bar
    threads: int = 0               # CPU threads for torch (0 = torch's default, usually all cores)


@dataclasses.dataclass
class TrainConfig:
    out_dir: str = "runs/train"    # run folder: config.yaml, metrics.csv, tensorboard/, checkpoints/, done
    seed: int = 0                  # everything random derives from this
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    policy: PolicyConfig = dataclasses.field(default_factory=PolicyConfig)
    diffusion: DiffusionConfig = dataclasses.field(default_factory=DiffusionConfig)
    objective: ObjectiveConfig = dataclasses.field(default_factory=ObjectiveConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = cuda when present

    def __post_init__(self):
        if self.run.steps < 1:
            raise ValueError("run.steps must be >= 1")
