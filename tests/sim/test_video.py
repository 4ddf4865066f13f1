"""Videos of rollouts through MuJoCo's offscreen renderer, and the GL backend choice."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import sim
from sim import video

STEPS = 6
W, H = 160, 120


@pytest.fixture(scope="module")
def gl() -> str:
    """The working backend, or a skip that says what to install."""
    try:
        return video.ensure_gl()
    except video.GLUnavailableError as e:
        pytest.skip(str(e))


def _read_frames(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    if path.suffix == ".gif":
        return iio.imread(path, index=None)[..., :3]
    import imageio.v2 as iio2

    with iio2.get_reader(path, format="FFMPEG") as reader:  # its len() is inf: iterate
        return np.stack([frame for frame in reader.iter_data()])


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_record_reach_rollout(gl: str, tmp_path: Path, suffix: str) -> None:
    env = sim.make("reach", render_mode="rgb_array", episode_steps=STEPS)
    env.action_space.seed(0)
    out = video.record_video(
        env, lambda obs: env.action_space.sample(), tmp_path / f"reach{suffix}", episodes=2, width=W, height=H
    )
    frames = _read_frames(out)
    assert frames.shape == (2 * (STEPS + 1), H, W, 3)  # one after each reset and each step
    first = frames[0].reshape(-1, 3)
    assert len(np.unique(first, axis=0)) > 20  # the arm and table, not one flat colour
    assert frames.std(axis=0).max() > 10  # and the arm moves
    env.close()


def test_frames_show_the_scene_and_track_the_state(gl: str) -> None:
    env = sim.make("reach", render_mode="rgb_array")
    env.reset(seed=0)
    a = env.render(width=W, height=H)
    assert a.shape == (H, W, 3) and a.dtype == np.uint8
    env.reset(seed=1)  # another arm pose and goal: another picture
    assert not np.array_equal(a, env.render(width=W, height=H))
    assert env.render().shape == (480, 640, 3)  # default size, renderer rebuilt
    env.close()


def test_dmc_frames_equal_dm_controls_own_render(gl: str) -> None:
    env = sim.make("dmc", domain="cartpole", task="swingup", render_mode="rgb_array")
    env.reset(seed=0)
    ours = env.render(width=W, height=H)
    assert len(np.unique(ours.reshape(-1, 3), axis=0)) > 20
    from dm_control import _render

    if _render.BACKEND == gl:  # dm_control chose its backend on import: the same one here
        np.testing.assert_array_equal(ours, env.physics.render(H, W, camera_id=0))
    env.close()


def test_no_render_mode_and_bad_paths_raise(gl: str, tmp_path: Path) -> None:
    env = sim.make("reach", episode_steps=STEPS)
    with pytest.raises(ValueError, match="render_mode"):
        video.record_video(env, lambda obs: env.action_space.sample(), tmp_path / "x.mp4")
    with pytest.raises(ValueError, match=r"\.mp4 or \.gif"):
        video.VideoWriter(tmp_path / "x.avi", fps=10)
    writer = video.VideoWriter(tmp_path / "odd.mp4", fps=10)
    with pytest.raises(ValueError, match="even"):
        writer.append(np.zeros((121, 160, 3), np.uint8))


def test_no_gl_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(video, "_chosen", None)
    monkeypatch.setattr(video, "_failures", {})
    monkeypatch.setattr(video, "probe_gl", lambda backend: "cannot load library")
    monkeypatch.setattr(video.sys, "platform", "linux")
    with pytest.raises(video.GLUnavailableError) as err:
        video.ensure_gl()
    for package in (*video.GL_PACKAGES["egl"], *video.GL_PACKAGES["osmesa"]):
        assert package in str(err.value)
    assert "egl: cannot load library" in str(err.value)
    assert "MUJOCO_GL" not in os.environ


def test_spine_run_video_renders_the_first_episode(gl: str, tiny_bundle: Path, tmp_path: Path) -> None:
    from deploy.offline.run import run

    path = tmp_path / "episode0.mp4"
    run(tiny_bundle, "reach", 2, 0, tmp_path / "run", {"episode_steps": STEPS}, video=path)
    assert _read_frames(path).shape == (STEPS + 1, 480, 640, 3)
