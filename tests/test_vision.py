"""Image encoders and crop augmentation (harness/learning/vision.py): tiny images, CPU, a few seconds."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.learning.train_config import ImageConfig
from harness.learning.vision import (ImageEncoder, ImageObsEncoder, ResNet18Encoder, SpatialSoftmax, center_crop,
                                     make_image_encoder, random_crop)

# ResNet-18's trunk (stem + 4 stages, without the 1000-class fc), counted from the architecture: the
# GroupNorm affine parameters are as many as BatchNorm's
RESNET18_TRUNK_PARAMS = 11_176_512


def coordinate_images(n: int, h: int, w: int) -> torch.Tensor:
    """(n, h, w, 3) uint8 whose pixels say where they are: channel 0 = row, 1 = column, 2 = sample index."""
    rows = torch.arange(h)[None, :, None].expand(n, h, w)
    cols = torch.arange(w)[None, None, :].expand(n, h, w)
    index = torch.arange(n)[:, None, None].expand(n, h, w)
    return torch.stack([rows, cols, index], dim=-1).to(torch.uint8)


def random_images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, h, w, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


# ---------------------------------------------------------------------------------------------- crops

def test_random_crop_is_the_slice_at_each_samples_offset():
    images = coordinate_images(16, 20, 24)
    crops = random_crop(images, (8, 10), torch.Generator().manual_seed(0))
    assert crops.shape == (16, 8, 10, 3) and crops.dtype == torch.uint8
    offsets = []
    for i in range(16):
        r, c = int(crops[i, 0, 0, 0]), int(crops[i, 0, 0, 1])   # the top-left pixel names its own position
        assert 0 <= r <= 20 - 8 and 0 <= c <= 24 - 10
        assert torch.equal(crops[i], images[i, r:r + 8, c:c + 10])
        offsets.append((r, c))
    rows, cols = {r for r, _ in offsets}, {c for _, c in offsets}
    assert len(rows) > 2 and len(cols) > 2   # per-sample offsets along both axes, not one for the whole batch


def test_random_crop_follows_the_generator():
    images = coordinate_images(8, 16, 16)
    a = random_crop(images, (9, 9), torch.Generator().manual_seed(3))
    b = random_crop(images, (9, 9), torch.Generator().manual_seed(3))
    c = random_crop(images, (9, 9), torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    torch.manual_seed(5)   # generator None: the global RNG, reproducible under a seed
    d = random_crop(images, (9, 9), None)
    torch.manual_seed(5)
    assert torch.equal(d, random_crop(images, (9, 9), None))


def test_center_crop_and_full_size_crops():
    images = coordinate_images(2, 10, 13)
    crop = center_crop(images, (6, 8))
    assert torch.equal(crop, images[:, 2:8, 2:10])
    assert torch.equal(center_crop(images, (10, 13)), images)
    assert torch.equal(random_crop(images, (10, 13), None), images)   # one possible offset: (0, 0)


@pytest.mark.parametrize("crop", [(11, 8), (8, 14)])
def test_crop_larger_than_the_image_is_refused(crop):
    images = coordinate_images(2, 10, 13)
    with pytest.raises(ValueError, match=rf"{crop[0]}x{crop[1]}.*10x13"):
        random_crop(images, crop, None)
    with pytest.raises(ValueError, match="10x13"):
        center_crop(images, crop)


# ---------------------------------------------------------------------------------------------- ResNet-18

@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return ResNet18Encoder(feature_dim=16, num_keypoints=32).eval()


def test_resnet18_shape_norms_and_parameter_count(resnet):
    images = random_images(2, 64, 64)
    with torch.no_grad():
        out = resnet(images)
    assert out.shape == (2, 16) and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1], atol=1e-4)   # different images, different features
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in resnet.modules())
    norms = [m for m in resnet.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 1 + 4 * 4 + 3 and all(m.num_groups == m.num_channels // 16 for m in norms)
    head = sum(p.numel() for p in [*resnet.pool.parameters(), *resnet.head.parameters()])
    assert head == (512 * 32 + 32) + (64 * 16 + 16)
    total = sum(p.numel() for p in resnet.parameters())
    assert abs(total - head - RESNET18_TRUNK_PARAMS) <= 0.05 * RESNET18_TRUNK_PARAMS


def test_resnet18_samples_do_not_see_each_other(resnet):
    images = random_images(3, 64, 64, seed=1)
    with torch.no_grad():
        together = resnet(images)
        alone = resnet(images[:1])
    assert torch.allclose(together[:1], alone, atol=1e-5)


def test_resnet18_gradients_reach_the_stem():
    torch.manual_seed(0)
    encoder = ResNet18Encoder(feature_dim=8, num_keypoints=4)
    encoder(random_images(2, 64, 64)).square().sum().backward()
    stem_grad = encoder.stem[0].weight.grad
    assert stem_grad is not None and stem_grad.abs().sum() > 0


def test_resnet18_refuses_images_that_leave_one_location(resnet):
    with pytest.raises(ValueError, match="1x1"):
        resnet(random_images(1, 32, 32))


def test_spatial_softmax_keypoints():
    torch.manual_seed(0)
    pool = SpatialSoftmax(in_channels=3, num_keypoints=3)
    out = pool(torch.randn(2, 3, 5, 7) * 10)
    assert out.shape == (2, 6) and out.abs().max() <= 1
    with torch.no_grad():   # keypoint k reads channel k alone
        pool.keypoint_maps.weight.copy_(torch.eye(3)[:, :, None, None])
        pool.keypoint_maps.bias.zero_()
    maps = torch.zeros(1, 3, 5, 7)
    maps[0, 0, 0, 0] = 50.0    # top-left
    maps[0, 1, 4, 6] = 50.0    # bottom-right
    maps[0, 2, 2, 5] = 50.0    # middle row, column 5 of 0..6 -> x = -1 + 5 * 2 / 6
    keypoints = pool(maps).view(3, 2)
    expected = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-1 + 5 / 3, 0.0]])
    assert torch.allclose(keypoints, expected, atol=1e-3)


# ---------------------------------------------------------------------------------------------- cameras

def small_cfg(**kw) -> ImageConfig:
    return ImageConfig(**{"widths": [4, 8], "feature_dim": 6, "crop": [24, 24], **kw})


def test_obs_encoder_concatenates_cameras_in_key_order():
    torch.manual_seed(0)
    keys = ["image.overhead", "image.wrist"]
    enc = ImageObsEncoder(small_cfg(), keys, n_groups=2).eval()
    assert enc.feature_dim == 12
    images = {"image.wrist": random_images(3, 32, 32, seed=1), "image.overhead": random_images(3, 32, 32, seed=2)}
    with torch.no_grad():
        out = enc(images)
        assert out.shape == (3, 12)
        for i, key in enumerate(keys):   # eval: each camera's centre crop through its own encoder
            own = enc.encoders[key.replace(".", "__")](center_crop(images[key], (24, 24)))
            assert torch.allclose(out[:, 6 * i:6 * (i + 1)], own, atol=1e-6)
        assert not torch.allclose(out[:, :6], out[:, 6:], atol=1e-4)
    with pytest.raises(KeyError, match="image.wrist"):
        enc({"image.overhead": images["image.overhead"]})


def test_obs_encoder_crops_randomly_in_training_and_centrally_in_eval():
    torch.manual_seed(0)
    enc = ImageObsEncoder(small_cfg(), ["image"], n_groups=2)
    images = {"image": random_images(4, 32, 32)}
    with torch.no_grad():
        enc.train()
        first, second = enc(images), enc(images)
        assert not torch.allclose(first, second, atol=1e-4)
        torch.manual_seed(7)
        seeded = enc(images)
        torch.manual_seed(7)
        assert torch.equal(seeded, enc(images))
        enc.eval()
        evaluated = enc(images)
        assert torch.equal(evaluated, enc(images))
        assert torch.allclose(evaluated, enc.encoders["image"](center_crop(images["image"], (24, 24))), atol=1e-6)


def test_obs_encoder_without_crop_and_with_resnet18():
    torch.manual_seed(0)
    enc = ImageObsEncoder(small_cfg(crop=None), ["image"], n_groups=2).train()
    images = {"image": random_images(2, 20, 20)}
    with torch.no_grad():
        assert torch.equal(enc(images), enc(images))   # no crop: training is deterministic too
    resnet = make_image_encoder(ImageConfig(encoder="resnet18", feature_dim=5, num_keypoints=4), n_groups=8)
    assert isinstance(resnet, ResNet18Encoder) and resnet.head.out_features == 5
    assert isinstance(make_image_encoder(small_cfg(), n_groups=2), ImageEncoder)


@pytest.mark.parametrize("bad", [{"encoder": "resnet50"}, {"crop": [8, 7]}, {"crop": [24]}, {"num_keypoints": 0}])
def test_image_config_refuses_bad_values(bad):
    with pytest.raises(ValueError, match="policy.image."):
        ImageConfig(**bad)
