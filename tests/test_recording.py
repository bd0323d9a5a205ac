"""Video writing: MP4 and GIF read back with the right frame count and size; bad names fail early."""
from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from harness.core.errors import UserError
from sim_envs.recording import save_video


def frames(n=6, h=31, w=45):
    return [np.full((h, w, 3), 20 * i, np.uint8) for i in range(n)]


def test_mp4_pads_odd_sizes_and_keeps_every_frame(tmp_path):
    path = save_video(frames(), tmp_path / "a.mp4")
    video = iio.imread(path)
    assert video.shape == (6, 32, 46, 3)
    assert video[-1].mean() > video[0].mean() + 50       # frames are in order, not duplicated
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]   # no temporary files left


def test_gif(tmp_path):
    video = iio.imread(save_video(frames(4), tmp_path / "a.gif", fps=5))
    assert video.shape[:3] == (4, 31, 45)


def test_bad_video_requests(tmp_path):
    with pytest.raises(UserError, match="a.avi: video must end in .mp4 or .gif"):
        save_video(frames(), tmp_path / "a.avi")
    with pytest.raises(ValueError, match="no frames"):
        save_video([], tmp_path / "a.gif")
