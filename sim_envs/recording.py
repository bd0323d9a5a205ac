"""Save a rollout: a Meshcat HTML recording (replayable in any browser, no server) or a video of the
rendered camera frames (MP4 through imageio-ffmpeg, GIF through Pillow). Files appear atomically."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from harness.core.atomic import atomic_path, atomic_write_text
from harness.core.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".gif")


def check_video_path(path) -> Path:
    """Fail early (before a long rollout) on a video name we cannot write."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"{path}: video must end in {' or '.join(VIDEO_SUFFIXES)}")
    return path


def save_video(frames: Sequence[np.ndarray], path, fps: float = 10.0) -> Path:
    """Write (H, W, 3) uint8 frames as MP4 (H.264) or GIF, chosen by the file's suffix."""
    path = check_video_path(path)
    if len(frames) == 0:
        raise ValueError("no frames to save; create the env with image_size=(H, W) and record=True")
    stack = np.stack([np.asarray(f, dtype=np.uint8) for f in frames])   # (T, H, W, 3)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        # The writers pick their format from the name, so write `<tmp><suffix>` and move it onto tmp.
        named = Path(f"{tmp}{suffix}")
        try:
            _write(named, stack, suffix, fps)
            os.replace(named, tmp)
        finally:
            named.unlink(missing_ok=True)
    return path


def _write(path: Path, stack: np.ndarray, suffix: str, fps: float) -> None:
    import imageio.v3 as iio

    if suffix == ".mp4":
        # H.264 wants even sizes: pad one pixel row/column if needed rather than let ffmpeg rescale.
        pad_h, pad_w = stack.shape[1] % 2, stack.shape[2] % 2
        if pad_h or pad_w:
            stack = np.pad(stack, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        _write_mp4(path, stack, fps)
    else:
        iio.imwrite(path, stack, duration=1000.0 / fps, loop=0)


def save_meshcat_html(meshcat, path) -> Path:
    """Snapshot of the Meshcat scene, including a published animation, as one self-contained HTML file."""
    path = Path(path)
    atomic_write_text(path, meshcat.StaticHtml())
    return path


def _write_mp4(path, stack: np.ndarray, fps: float) -> None:
    import imageio.v2 as iio2

    with iio2.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=7,
                         macro_block_size=1, ffmpeg_log_level="error") as writer:
        for frame in stack:
            writer.append_data(frame)
