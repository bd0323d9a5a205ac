"""`cotrain rollout`: a scripted push in a physics preset; watch it live in Meshcat or save a recording."""
from __future__ import annotations

import sys
from pathlib import Path

from harness.core.errors import UserError
from harness.core.locks import check_output_file



def add_arguments(parser) -> None:
    parser.add_argument("--env", default="target", help="physics preset name or YAML path (default target)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset field, e.g. --set mu_slider_table=0.5 (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="initial-state seed (default 0)")
    parser.add_argument("--steps", type=int, default=None, help="stop after N control steps (default: full episode)")
    parser.add_argument("--meshcat", action="store_true", help="show the rollout live in Meshcat (real time)")
    parser.add_argument("--html", default=None, metavar="OUT.html", help="save a Meshcat HTML recording")
    parser.add_argument("--video", default=None, metavar="OUT.mp4|OUT.gif", help="save the camera frames as a video")
    parser.add_argument("--image-size", default="240x320", metavar="HxW",
                        help="video frame size of the plain top-down camera (default 240x320)")
    parser.add_argument("--visual", default=None,
                        help="render with this visual preset (sim_envs/visuals/); the video is then its first "
                             "camera, at the preset's size")


def run(args) -> int:
    # imported when the command runs: its --help loads this module for the flags alone
    from sim_envs.config import load_preset
    from sim_envs.recording import check_video_path, save_meshcat_html, save_video

    from sim_envs.visual import load_visual

    config = load_preset(args.env, args.set)
    try:
        look = load_visual(args.visual) if args.visual else None
    except UserError as exc:
        raise UserError(f"--visual: {exc}") from None
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps: must be >= 1, got {args.steps}")
    if args.seed < 0:
        raise UserError(f"--seed: must be >= 0, got {args.seed}")
    if args.video:
        check_video_path(args.video)
        check_output_file(Path(args.video), "--video")
    if args.html:
        check_output_file(Path(args.html), "--html")
    image_size = _parse_size(args.image_size) if args.video and look is None else None

    # imported when the command runs: its --help loads this module for the flags alone
    from sim_envs.env import PushTEnv
    from sim_envs.rollout import run_episode

    meshcat = None
    if args.meshcat or args.html:
        from pydrake.geometry import StartMeshcat
        meshcat = StartMeshcat()
    recording = bool(args.meshcat or args.html or args.video)
    env = PushTEnv(config, image_size=image_size, meshcat=meshcat, record=recording, visual=look)
    if args.meshcat:
        env.simulator.set_target_realtime_rate(1.0)
        print(f"Meshcat: {meshcat.web_url()}  (the rollout runs in real time)")
        if sys.stdin.isatty():
            input("open that address in a browser, then press Enter to start ")
    print(f"preset {config.name}: {config.description}")
    result = run_episode(env, args.seed, max_steps=args.steps)
    print(result.summary())
    if args.meshcat or args.html:
        env.publish_recording()
    if args.html:
        print(f"wrote {save_meshcat_html(meshcat, args.html)}")
    if args.video:
        print(f"wrote {save_video(env.frames, args.video, fps=1.0 / env.task.control_dt)} ({len(env.frames)} frames)")
    if args.video or args.html:
        print("(recording slows the rollout: the real-time factor above includes rendering)")
    if args.meshcat and sys.stdin.isatty():
        input("recording published in Meshcat (use its Animation controls); press Enter to exit ")
    env.close()
    return 0



def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--image-size: expected HxW like 240x320, got {text!r}") from None
    if not (16 <= h <= 2048 and 16 <= w <= 2048):
        raise UserError(f"--image-size: each side must be 16..2048 pixels, got {text!r}")
    return h, w
