"""Image encoders for image observations, with GroupNorm throughout: BatchNorm's batch statistics interact
badly with EMA weights and tiny batches, which is why diffusion_policy swaps it out too.

Images (B, H, W, 3) uint8 -> features (B, feature_dim). Each observation step is encoded separately and
the features join the low-dim observation vector. Two encoders (`policy.image.encoder`):

- "small": `ImageEncoder`, a stem and one strided BasicBlock per width, global average pool, linear. Cheap;
  enough for the tests and for simple scenes.
- "resnet18": `ResNet18Encoder`, the published diffusion_policy / robomimic setup: a ResNet-18 trunk with
  BatchNorm replaced by GroupNorm (channels // 16 groups), global pooling replaced by a spatial softmax
  (each keypoint is the expected image position of one learned feature map), then a linear layer.

`ImageObsEncoder` wraps one encoder per camera and adds the crop augmentation (`random_crop` in training,
`center_crop` at evaluation), as diffusion_policy's CropRandomizer does.
"""
from __future__ import annotations

import torch
from torch import nn

from harness.learning.network import _groups


def _to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 in [0, 255] -> (B, 3, H, W) float in [-1, 1], channels first for the convolutions."""
    return images.permute(0, 3, 1, 2).float() / 255.0 * 2 - 1


# ---------------------------------------------------------------------------------------------- crops

def _check_crop(images: torch.Tensor, crop_hw) -> tuple[int, int]:
    if images.dim() != 4:
        raise ValueError(f"expected images (N, H, W, C), got shape {tuple(images.shape)}")
    h, w = int(crop_hw[0]), int(crop_hw[1])
    H, W = images.shape[1], images.shape[2]
    if not (1 <= h <= H and 1 <= w <= W):
        raise ValueError(f"crop {h}x{w} does not fit in images of {H}x{W} (crop must be between 1 and the "
                         "image size)")
    return h, w


def random_crop(images: torch.Tensor, crop_hw, generator: torch.Generator | None = None) -> torch.Tensor:
    """(N, H, W, C) -> (N, h, w, C), each sample cropped at its own uniformly random offset.

    The offsets come from `generator` (None: torch's global RNG, so a seeded run crops reproducibly). All
    samples are gathered at once with advanced indexing: a Python loop over a batch of a few hundred
    frames would cost more than the encoder's first layer.
    """
    h, w = _check_crop(images, crop_hw)
    n, H, W = images.shape[:3]
    rng_device = generator.device if generator is not None else torch.device("cpu")
    top = torch.randint(0, H - h + 1, (n,), generator=generator, device=rng_device).to(images.device)   # (N,)
    left = torch.randint(0, W - w + 1, (n,), generator=generator, device=rng_device).to(images.device)  # (N,)
    rows = top[:, None] + torch.arange(h, device=images.device)      # (N, h)
    cols = left[:, None] + torch.arange(w, device=images.device)     # (N, w)
    batch = torch.arange(n, device=images.device)[:, None, None]     # (N, 1, 1)
    # the three index tensors broadcast to (N, h, w); the channel axis comes along whole
    return images[batch, rows[:, :, None], cols[:, None, :]]         # (N, h, w, C)


def center_crop(images: torch.Tensor, crop_hw) -> torch.Tensor:
    """(N, H, W, C) -> (N, h, w, C), the centred window (evaluation's counterpart of random_crop)."""
    h, w = _check_crop(images, crop_hw)
    top = (images.shape[1] - h) // 2
    left = (images.shape[2] - w) // 2
    return images[:, top:top + h, left:left + w]


# ---------------------------------------------------------------------------------------------- small encoder

class BasicBlock(nn.Module):
    """Two 3x3 convolutions with GroupNorm and a residual skip (1x1 projection when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int, n_groups: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(_groups(c_out, n_groups), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(_groups(c_out, n_groups), c_out)
        self.act = nn.ReLU()
        self.skip = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                      nn.GroupNorm(_groups(c_out, n_groups), c_out))

    def forward(self, x):  # (B, C_in, H, W) -> (B, C_out, H / stride, W / stride)
        h = self.act(self.norm1(self.conv1(x)))
        return self.act(self.norm2(self.conv2(h)) + self.skip(x))


class ImageEncoder(nn.Module):
    """Stem, then one BasicBlock per width (each halves the resolution), global average pool, linear."""

    def __init__(self, widths=(32, 64, 128, 256), feature_dim: int = 64, n_groups: int = 8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 5, stride=2, padding=2, bias=False),
                                  nn.GroupNorm(_groups(widths[0], n_groups), widths[0]), nn.ReLU())
        blocks, c = [], widths[0]
        for w in widths:
            blocks.append(BasicBlock(c, w, stride=2, n_groups=n_groups))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c, feature_dim)
        self.feature_dim = feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B, H, W, 3) uint8 -> (B, feature_dim)
        x = self.blocks(self.stem(_to_unit_range(images)))      # (B, C, H', W')
        return self.head(x.mean(dim=(2, 3)))


# ---------------------------------------------------------------------------------------------- ResNet-18

class SpatialSoftmax(nn.Module):
    """Feature maps -> keypoints: where in the image each of `num_keypoints` learned maps is active.

    A 1x1 convolution makes one map per keypoint; a softmax over each map's H * W locations turns it into
    a probability distribution over positions, and the keypoint is the expected (x, y) under it, with x
    running -1 (left) .. 1 (right) over the columns and y -1 (top) .. 1 (bottom) over the rows. Unlike
    average pooling this keeps *where* things are, which is what a pushing policy needs.
    """

    def __init__(self, in_channels: int, num_keypoints: int = 32):
        super().__init__()
        self.keypoint_maps = nn.Conv2d(in_channels, num_keypoints, 1)
        self.num_keypoints = num_keypoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 2 * K): x0, y0, x1, y1, ...
        maps = self.keypoint_maps(x)                               # (B, K, H, W)
        b, k, h, w = maps.shape
        weights = maps.flatten(2).softmax(dim=-1).view(b, k, h, w)  # each map sums to 1 over H * W
        xs = torch.linspace(-1, 1, w, device=x.device, dtype=weights.dtype)  # (W,) column positions
        ys = torch.linspace(-1, 1, h, device=x.device, dtype=weights.dtype)  # (H,) row positions
        expected_x = (weights.sum(dim=2) * xs).sum(dim=-1)         # (B, K): marginal over columns, then mean
        expected_y = (weights.sum(dim=3) * ys).sum(dim=-1)         # (B, K): marginal over rows, then mean
        return torch.stack([expected_x, expected_y], dim=-1).flatten(1)  # (B, 2K)


def _resnet_groups(channels: int) -> int:
    """ResNet-18's GroupNorm group count: one group per 16 channels (diffusion_policy's choice)."""
    return max(1, channels // 16)


class ResNet18Encoder(nn.Module):
    """ResNet-18 trunk (GroupNorm) -> SpatialSoftmax -> Linear: (B, H, W, 3) uint8 -> (B, feature_dim).

    The standard layout: a 7x7 stride-2 stem conv and a 3x3 stride-2 max pool (1/4 resolution), then four
    stages of two BasicBlocks with widths 64/128/256/512, the first block of stages 2-4 halving the
    resolution (1/32 overall: 84x84 images end as 3x3 maps). About 11.2M parameters in the trunk.
    Images need more than 32 pixels along some side, or the last map has a single location and the
    spatial softmax's keypoints cannot move (forward refuses such images).
    """

    WIDTHS = (64, 128, 256, 512)

    def __init__(self, feature_dim: int = 64, num_keypoints: int = 32):
        super().__init__()
        c0 = self.WIDTHS[0]
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 7, stride=2, padding=3, bias=False),
                                  nn.GroupNorm(_resnet_groups(c0), c0), nn.ReLU(),
                                  nn.MaxPool2d(3, stride=2, padding=1))
        stages, c = [], c0
        for i, w in enumerate(self.WIDTHS):
            stride = 1 if i == 0 else 2
            # BasicBlock normalises c_out channels; _groups(w, w // 16) is exactly w // 16 for these widths
            stages.append(nn.Sequential(BasicBlock(c, w, stride, _resnet_groups(w)),
                                        BasicBlock(w, w, 1, _resnet_groups(w))))
            c = w
        self.stages = nn.Sequential(*stages)
        self.pool = SpatialSoftmax(c, num_keypoints)
        self.head = nn.Linear(2 * num_keypoints, feature_dim)
        self.feature_dim = feature_dim
        # torchvision's ResNet initialisation (He-normal, fan-out), which diffusion_policy trains from;
        # PyTorch's default conv init is scaled for linear layers and shrinks activations over 17 convs
        for m in self.stages.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.kaiming_normal_(self.stem[0].weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B, H, W, 3) uint8 -> (B, feature_dim)
        x = self.stages(self.stem(_to_unit_range(images)))       # (B, 512, ~H/32, ~W/32)
        if x.shape[2] * x.shape[3] == 1:
            raise ValueError(f"ResNet18Encoder: images of {images.shape[1]}x{images.shape[2]} leave a 1x1 feature "
                             "map, where every spatial-softmax keypoint is (0, 0); use images (or crops) larger "
                             "than 32 pixels on some side")
        return self.head(self.pool(x))                            # (B, 2K) -> (B, feature_dim)


def make_image_encoder(cfg, n_groups: int) -> nn.Module:
    """The encoder `cfg` (an ImageConfig) names; n_groups is policy.n_groups (the small encoder's GroupNorm)."""
    if cfg.encoder == "small":
        return ImageEncoder(cfg.widths, cfg.feature_dim, n_groups)
    if cfg.encoder == "resnet18":
        return ResNet18Encoder(cfg.feature_dim, cfg.num_keypoints)
    raise ValueError(f"policy.image.encoder must be small or resnet18, got {cfg.encoder!r}")


# ---------------------------------------------------------------------------------------------- cameras

class ImageObsEncoder(nn.Module):
    """One encoder per camera key, the crop augmentation, features concatenated in `keys` order.

    forward({key: (N, H, W, 3) uint8}) -> (N, len(keys) * feature_dim). In training mode each image gets its
    own random crop (torch's global RNG, so a seeded run is reproducible); in eval mode the centre crop,
    so evaluation sees the same field of view on average as training, deterministically.
    """

    def __init__(self, cfg, keys: list[str], n_groups: int):
        super().__init__()
        if not keys:
            raise ValueError("ImageObsEncoder needs at least one image key")
        # nn.ModuleDict refuses names with dots, and camera keys have them ("image.overhead")
        names = [key.replace(".", "__") for key in keys]
        if len(set(names)) != len(names):
            raise ValueError(f"image keys {keys} collide once '.' becomes '__' (module names {names})")
        self.keys = list(keys)
        self._names = dict(zip(keys, names))
        self.encoders = nn.ModuleDict({name: make_image_encoder(cfg, n_groups) for name in names})
        self.crop = None if cfg.crop is None else (int(cfg.crop[0]), int(cfg.crop[1]))
        self.feature_dim = len(keys) * cfg.feature_dim

    def crop_images(self, images: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) -> (N, h, w, 3): the training or evaluation crop (unchanged when cfg.crop is null)."""
        if self.crop is None:
            return images
        return random_crop(images, self.crop) if self.training else center_crop(images, self.crop)

    def forward(self, images: dict[str, torch.Tensor]) -> torch.Tensor:  # {key: (N, H, W, 3)} -> (N, F_total)
        feats = []
        for key in self.keys:
            if key not in images:
                raise KeyError(f"image key {key!r} missing from the observation (got {sorted(images)})")
            feats.append(self.encoders[self._names[key]](self.crop_images(images[key])))  # (N, feature_dim)
        return torch.cat(feats, dim=-1)
