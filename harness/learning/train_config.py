"""The training config: one typed dataclass tree, loaded with harness.core.configs.load_config.

Every sigma here (and in annotation stores) is in normalized action units: actions are mapped to [-1, 1]
per dimension before diffusion (harness/learning/normalizer.py).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

from harness.core.configs import MAX_SEED, added_keys, check_bounds, key
from harness.core.identity import register_added_keys
from harness.learning.methods import METHODS, Cotrain, method_class
from harness.learning.normalizer import MODES


# Sizes past these are typos (2e9 for 2e3), not experiments: refused at load instead of exhausting memory
# or threads mid-run (the kernel's OOM killer gives no message; torch segfaults on 1e5 threads).
MAX_BATCH = 1 << 16
MAX_WIDTH = 1 << 14            # an MLP width or a U-Net stage width
MAX_DEPTH = 64
MAX_THREADS = 256
MAX_CLIP_RANGE = 1e3           # a DDPM clip range (normalized action units; the data lie within a few)


def _require(ok: bool, key: str, what: str, value) -> None:
    """One range check: `key must be <what>, got <value>` (from_dict turns it into a one-line ConfigError)."""
    if not ok:
        raise ValueError(f"{key} must be {what}, got {value!r}")


def _check_widths(key: str, widths) -> None:
    _require(len(widths) >= 1 and all(1 <= w <= MAX_WIDTH for w in widths), key,
             f"a non-empty list of widths in [1, {MAX_WIDTH}]", widths)


@dataclasses.dataclass
class DatasetSpec:
    path: str = key(doc="dataset store (.zarr)")
    role: Literal["clean", "corrupt", "auto"] = key("auto", doc="auto: domain target/real -> clean, sim -> corrupt")
    max_episodes: int | None = key(None, doc="use only the first N episodes (null = all)")
    only_success: bool = key(True, doc="skip episodes whose meta/success is false (max_episodes then counts kept "
                             "episodes)")
    sigma_n: float | None = key(None, doc="corrupt only: this dataset's noise level sigma_n (used when "
                                "objective.sigma_n is null)")
    RENAMED: ClassVar[dict] = {"sigma_min": "sigma_n"}

    def __post_init__(self):
        if self.max_episodes is not None and self.max_episodes < 1:
            raise ValueError(f"dataset {self.path}: max_episodes must be >= 1 or null")
        if self.sigma_n is not None and self.sigma_n < 0:
            raise ValueError(f"dataset {self.path}: sigma_n must be >= 0")


@dataclasses.dataclass
class DataConfig:
    datasets: list[DatasetSpec] = key(factory=list, doc="the training stores: {path, role, max_episodes, ...} each")
    n_obs: int = key(2, bound=(1, None), doc="observation history steps")
    horizon: int = key(16, doc="predicted action steps")
    n_action: int = key(8, bound=(1, None), doc="executed action steps")
    use_image: bool = key(False, doc="condition on data/image too, the plain top-down camera (needs the key in "
                          "every store)")
    cameras: list[str] = key(factory=list, since=22, doc="condition on these cameras of a visual preset: "
                             "data/image.<name> in every store (sim_envs/visuals/), one encoder each")
    low_dim: list[str] = key(factory=lambda: ["agent_pos", "slider_pose"], since=22, doc="the low-dim "
                             "observations the policy sees; a pixel policy as published: [agent_pos]")
    val_fraction: float = key(0.05, doc="held-out episodes per dataset for validation losses (0 = none)")
    normalizer: str | None = key(None, doc="normalizer JSON (a study's shared one); null = fit on this run's "
                                 "training data (read when training starts, so it need not exist when the config "
                                 "loads)")
    normalizer_mode: Literal["percentile", "limits"] = key("percentile", since=33, doc="how the normalizer is "
                                   "fitted (harness/learning/normalizer.py): percentile = 0.5..99.5th percentiles of "
                                   "the clean actions -> [-1, 1]; limits = min..max of every source (diffusion_policy's)")

    @property
    def image_keys(self) -> list[str]:
        """The store / observation keys of every camera the policy sees, in the order they are encoded."""
        return (["image"] if self.use_image else []) + [f"image.{name}" for name in self.cameras]

    def __post_init__(self):
        _require(len(set(self.cameras)) == len(self.cameras) and all(self.cameras), "data.cameras",
                 "distinct camera names", self.cameras)
        _require(len(set(self.low_dim)) == len(self.low_dim) and set(self.low_dim) <= {"agent_pos", "slider_pose"},
                 "data.low_dim", "distinct names among agent_pos, slider_pose", self.low_dim)
        _require(bool(self.low_dim) or bool(self.image_keys), "data.low_dim", "not empty for a state policy "
                 "(a policy must see something)", self.low_dim)
        if self.normalizer is not None and not self.normalizer.strip():
            raise ValueError("data.normalizer must be a file path or null, got an empty string")
        _require(self.normalizer_mode in MODES, "data.normalizer_mode", " or ".join(MODES), self.normalizer_mode)
        if not 0 <= self.val_fraction < 1:
            raise ValueError("data.val_fraction must be in [0, 1)")
        check_bounds(self, "data")   # n_obs, n_action
        need = self.n_obs + self.n_action - 1   # harness.learning.windows.WindowSpec: executed steps inside the horizon
        _require(self.horizon >= need, "data.horizon", f">= data.n_obs + data.n_action - 1 = {need}", self.horizon)
        paths = [str(Path(d.path).resolve()) for d in self.datasets]
        twice = next((d.path for d, p in zip(self.datasets, paths) if paths.count(p) > 1), None)
        if twice is not None:   # clean and corrupt at once would train on one demo as both
            raise ValueError(f"data.datasets: {twice} is listed twice; list each store once")


@dataclasses.dataclass
class ImageConfig:
    encoder: str = key("small", since=22, doc="small (a few GroupNorm ResNet stages; widths below) or resnet18 "
                       "(ResNet-18, GroupNorm, spatial softmax: the published diffusion_policy setup)")
    widths: list[int] = key(factory=lambda: [32, 64, 128, 256], doc="small: stage widths")
    feature_dim: int = key(64, bound=(1, None), doc="features per image")
    crop: list[int] | None = key(None, since=22, doc="[h, w]: random crop in training, centre crop at evaluation "
                                 "(diffusion_policy crops 84 of 96); null = the whole image")
    num_keypoints: int = key(32, since=22, bound=(1, MAX_WIDTH),
                             doc="resnet18: spatial-softmax keypoints (each gives an expected x and y)")

    def __post_init__(self):
        _require(self.encoder in ("small", "resnet18"), "policy.image.encoder", "small or resnet18", self.encoder)
        _check_widths("policy.image.widths", self.widths)
        _require(self.crop is None or (len(self.crop) == 2 and all(c >= 8 for c in self.crop)),
                 "policy.image.crop", "[h, w] with both >= 8 (or null)", self.crop)
        check_bounds(self, "policy.image")


@dataclasses.dataclass
class PolicyConfig:
    arch: str = key("unet", since=11, doc="denoising network: unet (temporal U-Net, the published one; images) "
                    "or mlp (residual MLP over the chunk, harness/learning/mlp.py; state policies)")
    down_dims: list[int] = key(factory=lambda: [256, 512, 1024], doc="U-Net widths")
    kernel_size: int = key(5, doc="temporal conv kernel")
    n_groups: int = key(8, bound=(1, None), doc="GroupNorm groups")
    noise_dim: int = key(128, doc="noise-level embedding width")
    mlp_width: int = key(256, since=11, bound=(1, MAX_WIDTH), doc="arch mlp: hidden width of the residual blocks")
    mlp_depth: int = key(4, since=11, bound=(0, MAX_DEPTH), doc="arch mlp: residual blocks")
    image: ImageConfig = key(factory=ImageConfig, doc="the image encoder, used when the policy sees cameras "
                             "(data.use_image, data.cameras)")

    def __post_init__(self):
        _require(self.arch in ("unet", "mlp"), "policy.arch", "unet or mlp", self.arch)
        _check_widths("policy.down_dims", self.down_dims)
        check_bounds(self, "policy")
        # 'same' padding (kernel // 2) keeps the chunk length only for odd kernels
        _require(self.kernel_size >= 1 and self.kernel_size % 2 == 1, "policy.kernel_size", "an odd number >= 1",
                 self.kernel_size)
        # sinusoidal embedding: sin and cos halves fill the width exactly only when it is even
        _require(self.noise_dim >= 2 and self.noise_dim % 2 == 0, "policy.noise_dim", "an even number >= 2",
                 self.noise_dim)


# The samplers of each formulation; the first is the formulation's default.
SAMPLERS = {"edm": ("heun", "heun_churn"), "ddpm": ("ddpm", "ddim")}


@dataclasses.dataclass
class DiffusionConfig:
    kind: Literal["edm", "ddpm"] = key("edm", since=20, doc="formulation: EDM (harness/learning/diffusion.py) or "
                                       "diffusion_policy's DDPM (harness/learning/ddpm.py); every method runs under "
                                       "both (same sigma units)")
    sampler: str | None = key(None, since=20, doc="edm: heun (deterministic) | heun_churn (EDM's stochastic "
                              "Algorithm 2); ddpm: ddpm (fresh noise every step) | ddim (eta 0); null = the first")
    num_steps: int = key(16, bound=(1, None), doc="sampler steps per chunk: Heun steps (2 * steps - 1 network "
                         "calls), or DDPM/DDIM inference steps (diffusion_policy's num_inference_steps)")
    # ---- edm only
    sigma_data: float | None = key(None, doc="edm: null = measured on the normalized training actions")
    P_mean: float = key(-1.2, doc="edm: log-normal training sigma: mean of ln sigma")
    P_std: float = key(1.2, doc="edm: log-normal training sigma: std of ln sigma")
    sampler_sigma_min: float = key(0.002, doc="edm: Heun sampler's schedule bottom")
    sampler_sigma_max: float = key(10.0, doc="edm: Heun sampler's schedule top (20 x sigma_data for actions in "
                                   "[-1, 1])")
    rho: float = key(7.0, doc="edm: schedule curvature")
    S_churn: float = key(40.0, since=20, bound=(0, None),
                         doc="heun_churn: total churn (EDM Table 5, ImageNet-64 settings) ...")
    S_min: float = key(0.05, since=20, doc="... applied at sigma in [S_min, S_max] ...")
    S_max: float = key(50.0, since=20, doc="... (the top of that range) ...")
    S_noise: float = key(1.003, since=20, doc="... with the fresh noise scaled by S_noise")
    # ---- ddpm only (diffusion_policy's noise_scheduler, built with diffusers)
    num_train_timesteps: int = key(100, since=20, bound=(2, None),
                                   doc="T: timesteps t = 0 .. T-1, drawn uniformly in training")
    beta_schedule: str = key("squaredcos_cap_v2", since=20,
                             doc="diffusers beta schedule (squaredcos_cap_v2 | linear | scaled_linear)")
    prediction_type: Literal["epsilon", "sample"] = key("epsilon", since=20, doc="what the network predicts")
    clip_sample: bool = key(True, since=20, doc="clip the predicted x0 to [-clip_sample_range, clip_sample_range] "
                            "at every sampler step (diffusers' clip_sample)")
    clip_sample_range: float | None = key(None, since=33, doc="null = derived when the run starts: the largest "
                                          "|normalized action| of every training source, rounded up to 0.1 (at least "
                                          "1), so the sampler can reach every training action; the checkpoint's "
                                          "config holds the value used (a DDPM checkpoint from before sampled with 1)")
    RENAMED: ClassVar[dict] = {"sigma_min": "sampler_sigma_min", "sigma_max": "sampler_sigma_max",
                               "num_inference_steps": "num_steps"}

    def __post_init__(self):
        if not 0 < self.sampler_sigma_min < self.sampler_sigma_max:
            raise ValueError("diffusion: need 0 < sampler_sigma_min < sampler_sigma_max")
        check_bounds(self, "diffusion")   # num_steps, S_churn, num_train_timesteps
        _require(self.kind in SAMPLERS, "diffusion.kind", "edm or ddpm", self.kind)
        _require(self.sampler is None or self.sampler in SAMPLERS[self.kind], "diffusion.sampler",
                 f"one of {', '.join(SAMPLERS[self.kind])} for diffusion.kind {self.kind} (or null)", self.sampler)
        _require(self.sigma_data is None or self.sigma_data > 0, "diffusion.sigma_data", "> 0 (or null)",
                 self.sigma_data)
        _require(0 < self.P_std <= 10, "diffusion.P_std", "in (0, 10] (a log-normal's spread)", self.P_std)
        _require(abs(self.P_mean) <= 10, "diffusion.P_mean", "in [-10, 10] (log sigma)", self.P_mean)
        _require(self.rho > 0, "diffusion.rho", "> 0", self.rho)
        _require(0 <= self.S_min <= self.S_max, "diffusion.S_min", f"in [0, S_max = {self.S_max}]", self.S_min)
        _require(self.S_noise > 0, "diffusion.S_noise", "> 0", self.S_noise)
        _require(self.beta_schedule in ("squaredcos_cap_v2", "linear", "scaled_linear"), "diffusion.beta_schedule",
                 "squaredcos_cap_v2, linear or scaled_linear", self.beta_schedule)
        _require(self.prediction_type in ("epsilon", "sample"), "diffusion.prediction_type", "epsilon or sample",
                 self.prediction_type)
        _require(self.clip_sample_range is None or 0 < self.clip_sample_range <= MAX_CLIP_RANGE,
                 "diffusion.clip_sample_range", f"in (0, {MAX_CLIP_RANGE}] (or null: derived from the data)",
                 self.clip_sample_range)
        if self.kind == "ddpm":
            _require(self.num_steps <= self.num_train_timesteps, "diffusion.num_steps",
                     f"<= diffusion.num_train_timesteps = {self.num_train_timesteps} under ddpm", self.num_steps)

    @property
    def resolved_sampler(self) -> str:
        return self.sampler or SAMPLERS[self.kind][0]


ALPHA_WORDS = ("natural", "natural_all")   # objective.alpha besides a number


@dataclasses.dataclass
class ObjectiveConfig:
    method: str = key(Cotrain.name, doc="one of harness.learning.methods.METHODS (what each does: that module)")
    alpha: float | str = key("natural", doc="P(clean | sigma) where a corrupt window is valid: a number in [0, 1], "
                             "\"natural\" (ratio by episodes among the sources valid at sigma), or \"natural_all\" "
                             "(ratio by all episodes at every sigma: plain cotraining's)")
    alpha_table: list[list[float]] | str | None = key(None, doc="[[sigma, alpha], ...] (log-interpolated) or "
                                                      "\"classifier\" (from the annotations' accuracy)")
    sigma_n: float | Literal["annotations"] | None = key(None, doc="noise level of the corrupt data: one number for "
                                                         "every corrupt dataset, \"annotations\" (per window, from "
                                                         "`annotations`), or null (each corrupt dataset's own "
                                                         "data.datasets[].sigma_n)")
    annotations: str | None = key(None, doc="annotations store (cotrain annotate): per-window sigma_n, accuracy")
    buffer: float = key(1.0, doc="truncated / ambient: corrupt window valid at sigma > buffer * sigma_n")
    contract: bool = key(True, doc="ambient: add sigma_n noise to corrupt chunks (false: already noisy)")
    locality_sigma_max: float | None = key(None, doc="corrupt data also used (plain loss) at sigma < this")
    sigma_n_floor: float | None = key(None, since=21, doc="per-window sigma_n raised to at least this "
                                      "(docs/objectives.md §15)")
    sigma_n_buckets: int | None = key(None, since=21, doc="per-window sigma_n coarsened to K equal-count buckets, "
                                      "each window taking its bucket's largest value (docs/objectives.md §15)")
    sigma_n_scale: float = key(1.0, since=34, doc="per-window sigma_n multiplied by this before floor and "
                               "buckets; 0.41 centres the classifier's reading of a known Gaussian level on it "
                               "(s_hat = sqrt(u*) sigma_n, docs/objectives.md §16), which moves half the windows "
                               "below it and costs success (docs/results/positive_control.md)")
    RENAMED: ClassVar[dict] = {"sigma_min": "sigma_n"}
    # the keys that reshape per-window sigma_n, each with its value when unset
    PER_WINDOW_RESHAPING: ClassVar[tuple] = (("sigma_n_scale", 1.0), ("sigma_n_floor", None), ("sigma_n_buckets", None))

    def per_window_reshaping(self) -> list[str]:
        """The per-window sigma_n keys this objective sets (they need per-window sigma_n)."""
        return [name for name, unset in self.PER_WINDOW_RESHAPING if getattr(self, name) != unset]

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
        if self.locality_sigma_max is not None and not self.locality_sigma_max > 0:
            raise ValueError(f"objective.locality_sigma_max must be > 0 (or null), got {self.locality_sigma_max}")
        if self.sigma_n_floor is not None and not 0 <= self.sigma_n_floor < float("inf"):
            raise ValueError(f"objective.sigma_n_floor must be >= 0 (or null), got {self.sigma_n_floor}")
        if not 0 < self.sigma_n_scale < float("inf"):
            raise ValueError(f"objective.sigma_n_scale must be > 0, got {self.sigma_n_scale}")
        if self.sigma_n_buckets is not None and self.sigma_n_buckets < 1:
            raise ValueError(f"objective.sigma_n_buckets must be >= 1 (or null), got {self.sigma_n_buckets}")
        if isinstance(self.alpha, str) and self.alpha not in ALPHA_WORDS:
            raise ValueError(f"objective.alpha must be a number in [0, 1], 'natural' or 'natural_all', "
                             f"got {self.alpha!r}")
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
    batch_size: int = key(256, bound=(1, MAX_BATCH), doc="global batch (split across DDP ranks)")
    lr: float = key(1e-4, doc="AdamW peak learning rate")
    weight_decay: float = key(1e-6, doc="AdamW weight decay")
    betas: list[float] = key(factory=lambda: [0.95, 0.999], doc="AdamW betas")
    warmup_steps: int = key(500, bound=(0, None), doc="linear warm-up, then cosine decay to 0")
    grad_clip: float = key(1.0, doc="max gradient norm (0 = off)")
    ema_decay: float = key(0.9999, doc="EMA decay cap (ramped up as min(cap, (1 + k) / (10 + k)))")
    ema_power: float | None = key(None, since=20, doc="null: that ramp; p: diffusion_policy's EMAModel warm-up, "
                                  "decay = min(cap, 1 - (1 + k)^-p) (0.75 in every published config)")

    def __post_init__(self):
        check_bounds(self, "optim")   # batch_size, warmup_steps
        _require(0 < self.lr < float("inf"), "optim.lr", "> 0", self.lr)
        _require(0 <= self.weight_decay < float("inf"), "optim.weight_decay", ">= 0", self.weight_decay)
        _require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optim.betas",
                 "two numbers in [0, 1)", self.betas)
        _require(0 <= self.grad_clip < float("inf"), "optim.grad_clip", ">= 0 (0 = off)", self.grad_clip)
        _require(0 <= self.ema_decay < 1, "optim.ema_decay", "in [0, 1)", self.ema_decay)
        _require(self.ema_power is None or self.ema_power > 0, "optim.ema_power", "> 0 (or null)", self.ema_power)


@dataclasses.dataclass
class RunConfig:
    steps: int = key(100_000, bound=(1, None), doc="training budget in optimizer steps")
    log_every: int = key(50, bound=(1, None), doc="metrics.csv / TensorBoard row every N steps")
    val_every: int = key(1000, bound=(1, None), doc="per-source validation losses every N steps (and at the end)")
    val_windows: int = key(256, bound=(1, None), doc="held-out windows per source for validation")
    checkpoint_every: int = key(2000, free=True, bound=(1, None), doc="checkpoints/latest.pt every N steps")
    bf16: bool = key(True, doc="bf16 autocast on CUDA")
    compile: bool = key(False, free=True, doc="torch.compile the network (CUDA)")
    progress: bool = key(True, free=True, doc="tqdm progress bar")
    threads: int = key(0, free=True, doc="CPU threads for torch (0 = torch's default, usually all cores); a CPU run "
                       "resumed with another effective count is refused in Trainer.load")
    snapshot_every: int = key(0, since=10, doc="checkpoints/step_<step>.pt (EMA policy) every N steps before the "
                              "last (0 = none); the study's checkpoint protocols select among them")
    note: str = key("", free=True, since=38, doc="free text kept with the run in config.yaml and its checkpoints "
                    "(what the run is for); changes nothing, so it may change when the run resumes")

    def __post_init__(self):
        check_bounds(self, "run")   # steps, log_every, val_every, val_windows, checkpoint_every
        _require(0 <= self.threads <= MAX_THREADS, "run.threads", f"in [0, {MAX_THREADS}] (0 = torch's default)",
                 self.threads)
        _require(self.snapshot_every >= 0, "run.snapshot_every", ">= 0 (0 = no snapshots)", self.snapshot_every)


@dataclasses.dataclass
class TrainConfig:
    out_dir: str = key("runs/train", free="own",
                       doc="run folder: config.yaml, metrics.csv, tensorboard/, checkpoints/, done")
    seed: int = key(0, bound=(0, MAX_SEED), doc="everything random derives from this")
    data: DataConfig = key(factory=DataConfig, doc="what the policy is trained on and sees")
    policy: PolicyConfig = key(factory=PolicyConfig, doc="the denoising network")
    diffusion: DiffusionConfig = key(factory=DiffusionConfig, doc="the diffusion formulation and its sampler")
    objective: ObjectiveConfig = key(factory=ObjectiveConfig, doc="how clean and corrupt data are used (the method)")
    optim: OptimConfig = key(factory=OptimConfig, doc="optimizer, learning-rate schedule and EMA")
    run: RunConfig = key(factory=RunConfig, doc="budget, logging, validation and checkpoints")
    device: Literal["auto", "cpu", "cuda"] = key("auto", doc="auto = cuda when present")

    def __post_init__(self):
        if self.run.steps < 1:
            raise ValueError("run.steps must be >= 1")
        check_bounds(self)   # seed
        # the U-Net halves the chunk len(down_dims) - 1 times and doubles it back: skips must line up
        factor = 2 ** (len(self.policy.down_dims) - 1)
        _require(self.data.horizon % factor == 0, "data.horizon",
                 f"divisible by {factor} (2 ** (len(policy.down_dims) - 1) downsamplings)", self.data.horizon)


# Outputs recorded before a key existed resume at the value its declaration gives (harness.core.identity).
register_added_keys(added_keys(TrainConfig))
