"""Videos of task rollouts, and the offscreen OpenGL that MuJoCo's renderer needs.

    env = sim.make("reach", render_mode="rgb_array")
    record_video(env, lambda obs: env.action_space.sample(), "runs/x/reach.mp4")

MuJoCo reads ``MUJOCO_GL`` when it is imported. On a headless Linux machine its default
(GLFW) has no display to open, so ``ensure_gl()`` picks a backend that can render offscreen
(EGL, then OSMesa, then GLFW where there is a display; each tried once in a child process,
where a failure cannot take this one down), sets ``MUJOCO_GL`` if the user did not, and points
an already imported MuJoCo at it.
``./spine.sh setup`` installs the Debian packages; ``GL_PACKAGES`` lists them.
"""

from __future__ import annotations

import atexit
import importlib
import inspect
import os
import subprocess
import sys
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

GL_PACKAGES: dict[str, tuple[str, ...]] = {
    "egl": ("libegl1", "libegl-mesa0", "libgl1-mesa-dri", "libopengl0"),
    "osmesa": ("libosmesa6",),
}
"""Debian packages each headless backend needs (Mesa's software rasterizer; no GPU needed)."""
HEADLESS_BACKENDS = ("egl", "osmesa")
_PROBE = """
import mujoco
model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='.1'/></worldbody></mujoco>")
renderer = mujoco.Renderer(model, 16, 16)
renderer.update_scene(mujoco.MjData(model))
assert renderer.render().shape == (16, 16, 3)
renderer.close()
print("ok")
"""
_chosen: str | None = None
_failures: dict[str, str] = {}  # backend -> why its probe failed


class GLUnavailableError(RuntimeError):
    """No OpenGL backend can render offscreen; the message says what to install."""


def _install_hint() -> str:
    egl, osmesa = " ".join(GL_PACKAGES["egl"]), " ".join(GL_PACKAGES["osmesa"])
    return (
        f"install EGL (Debian/Ubuntu: apt-get install {egl}) or OSMesa (apt-get install {osmesa}); "
        "./spine.sh setup does this when run as root"
    )


def probe_gl(backend: str, timeout_s: float = 60.0) -> str | None:
    """Try ``MUJOCO_GL=backend`` in a child process; ``None`` if it renders, else why not."""
    env = {**os.environ, "MUJOCO_GL": backend}
    env.pop("PYOPENGL_PLATFORM", None)
    try:
        out = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout_s:.0f} s"
    if out.returncode == 0 and out.stdout.strip().endswith("ok"):
        return None
    lines = (out.stderr or out.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit code {out.returncode}"


def select_gl() -> str | None:
    """The offscreen backend to use, or ``None`` if none works; sets ``MUJOCO_GL`` if unset.

    A ``MUJOCO_GL`` set by the user is kept as is (not probed). Cheap after the first call.
    """
    global _chosen
    if _chosen is None:
        requested = os.environ.get("MUJOCO_GL", "").strip().lower()
        if requested or not sys.platform.startswith("linux"):
            _chosen = requested
        else:
            desktop = ("glfw",) if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") else ()
            _chosen = ""
            for backend in (*HEADLESS_BACKENDS, *desktop):
                if (why := probe_gl(backend)) is None:
                    _chosen = os.environ["MUJOCO_GL"] = backend
                    break
                _failures[backend] = why
    return _chosen or None


def ensure_gl() -> str:
    """Make MuJoCo able to render offscreen; returns the backend, e.g. ``"egl"``.

    Raises:
        GLUnavailableError: no backend works; the message names the packages to install.
    """
    backend = select_gl()
    if backend is None and sys.platform.startswith("linux"):
        reasons = "; ".join(f"{b}: {why}" for b, why in _failures.items())
        raise GLUnavailableError(f"no OpenGL backend can render offscreen ({reasons}); {_install_hint()}")
    _point_mujoco_at(backend or "")
    return backend or "default"


def _point_mujoco_at(backend: str) -> None:
    """If MuJoCo was imported before ``MUJOCO_GL`` was set, redo its context choice."""
    gl_context = sys.modules.get("mujoco.rendering.classic.gl_context")
    if gl_context is None or getattr(gl_context, "_MUJOCO_GL", backend) == backend:
        return
    platform = os.environ.get("PYOPENGL_PLATFORM", "")
    if "OpenGL" in sys.modules and platform and platform != backend:
        raise GLUnavailableError(
            f"PyOpenGL was already loaded for {platform!r}; set MUJOCO_GL={backend} before starting Python"
        )
    importlib.reload(gl_context)
    sys.modules["mujoco"].GLContext = gl_context.GLContext


def offscreen_renderer(model: Any, height: int, width: int) -> Any:
    """A ``mujoco.Renderer`` for ``model`` (a raw ``MjModel``) at ``height`` x ``width`` px.

    Grows the model's offscreen buffer when the image is larger than it.
    """
    backend = ensure_gl()
    import mujoco

    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)
    try:
        renderer = mujoco.Renderer(model, height, width)
    except Exception as e:
        raise GLUnavailableError(f"MUJOCO_GL={backend}: cannot render ({e}); {_install_hint()}") from e
    _LIVE.add(renderer)
    close_renderers_first_at_exit()
    return renderer


_LIVE: weakref.WeakSet = weakref.WeakSet()


def _close_renderers() -> None:
    for renderer in list(_LIVE):
        renderer.close()


def close_renderers_first_at_exit() -> None:
    """Close live renderers at exit before any EGL display is terminated.

    MuJoCo and dm_control register ``eglTerminate`` with ``atexit`` when they first open a
    display (dm_control on import); renderers freed after that print errors at shutdown.
    ``atexit`` runs last-registered first, so this moves our closer to the end; call it after
    anything that may register another ``eglTerminate`` (``sim.tasks.dmc`` does).
    """
    atexit.unregister(_close_renderers)
    atexit.register(_close_renderers)


class VideoWriter:
    """Write ``(H, W, 3)`` uint8 frames to ``.mp4`` (H.264, imageio-ffmpeg) or ``.gif``."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.frames = 0
        suffix = self.path.suffix.lower()
        if suffix not in (".mp4", ".gif"):
            raise ValueError(f"video path must end in .mp4 or .gif, got {self.path.name!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._gif: list[np.ndarray] | None = [] if suffix == ".gif" else None
        self._mp4: Any = None

    def append(self, frame: np.ndarray) -> None:
        """Add one frame ``(H, W, 3)`` uint8; every frame has the first one's size."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if self._gif is not None:
            self._gif.append(frame.copy())
        else:
            if self._mp4 is None:
                self._mp4 = self._open_mp4(frame.shape[0], frame.shape[1])
            self._mp4.append_data(frame)
        self.frames += 1

    def _open_mp4(self, height: int, width: int) -> Any:
        if height % 2 or width % 2:
            raise ValueError(f"MP4 (yuv420p) needs an even width and height, got {width}x{height}")
        import imageio.v2 as iio

        return iio.get_writer(
            self.path, format="FFMPEG", fps=self.fps, codec="libx264", pixelformat="yuv420p",
            quality=8, macro_block_size=1,
        )  # fmt: skip

    def close(self) -> Path:
        """Finish the file; returns its path."""
        if self._mp4 is not None:
            self._mp4.close()
            self._mp4 = None
        if self._gif:
            import imageio.v3 as iio

            iio.imwrite(self.path, np.stack(self._gif), duration=1000.0 / self.fps, loop=0)
            self._gif = []
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def render_frame(env: Any, width: int = 640, height: int = 480) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 image from ``env`` (made with ``render_mode="rgb_array"``).

    ``(H, W)`` is ``(height, width)`` when the env's ``render`` takes them as keywords (the
    built-in tasks do), else the env's own size.
    """
    render = env.unwrapped.render
    takes_size = {"width", "height"} <= set(inspect.signature(render).parameters)
    frame = render(width=width, height=height) if takes_size else render()
    if frame is None:
        raise ValueError("env.render() returned None; make the env with render_mode='rgb_array'")
    return frame


def record_video(
    env: Any,
    act: Callable[[Any], np.ndarray],
    path: str | Path,
    episodes: int = 1,
    seed: int = 0,
    fps: float | None = None,
    width: int = 640,
    height: int = 480,
    reset: Callable[[], None] | None = None,
) -> Path:
    """Roll out ``act(obs) -> action`` in ``env`` and write every frame to ``path``.

    ``reset()`` is called after each ``env.reset`` (stateful policies: chunks, subgoals).

    Episode ``i`` starts with ``env.reset(seed=seed + i)``; each episode gives one frame after
    the reset and one per step. ``fps`` defaults to the env's control rate. The file type
    follows the extension: ``.mp4`` or ``.gif``. Returns ``path``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    fps = fps or float(env.unwrapped.metadata.get("render_fps") or env.unwrapped.task_spec.control_hz)
    with VideoWriter(path, fps) as writer:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            if reset is not None:
                reset()
            writer.append(render_frame(env, width, height))
            done = False
            while not done:
                obs, _, terminated, truncated, _ = env.step(act(obs))
                writer.append(render_frame(env, width, height))
                done = terminated or truncated
    return writer.path
