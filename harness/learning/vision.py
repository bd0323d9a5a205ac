"""Optional image encoder: a small ResNet with GroupNorm (BatchNorm's batch statistics interact badly with
EMA weights and tiny batches, which is why diffusion_policy swaps it out too).

Images (B, H, W, 3) uint8 -> features (B, feature_dim). Each observation step is encoded separately and
the features join the low-dim observation vector.
"""
from __future__ import annotations

import torch
from torch import nn

from harness.learning.network import _groups


class BasicBlock(nn.Module):
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

    def forward(self, x):
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
        x = images.permute(0, 3, 1, 2).float() / 255.0 * 2 - 1
        x = self.blocks(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))
