"""N worlds of one ``MjModel`` stepped by MuJoCo Warp, their state read as torch tensors.

``WarpPhysics(model, num_worlds, device="cuda:0")`` copies the model to the device once
(``mujoco_warp.put_model``; fields named in ``batched`` get one row per world, for domain
randomization) and allocates the worlds' data. Its tensors (``qpos``, ``qvel``, ``ctrl``,
``site_xpos``, ...) are torch views of Warp's arrays (``warp.to_torch``): reading or writing
them copies nothing, on a GPU or on Warp's CPU device. ``step(n)`` advances every world ``n``
physics steps and then recomputes the derived quantities (as ``mj_step`` + ``mj_forward`` do
on the CPU backend), replaying a captured graph of those launches (CUDA graphs on a GPU, Warp's
recorded launches on its CPU device). Everything is float32, MuJoCo Warp's precision.

Kernels are compiled on first use (about a minute on Warp's CPU device for arm7) into Warp's
kernel cache, which Warp keeps across runs: ``$WARP_CACHE_PATH``, else the user cache
directory (``~/.cache/warp/<version>`` on Linux); ``kernel_cache_dir()`` says which.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

try:  # the scale extra; ``require`` says what is missing when an env is built without it
    import mujoco_warp as mjw
    import torch
    import warp as wp
except ImportError as _error:  # pragma: no cover - exercised only without the extra
    mjw = torch = wp = None  # type: ignore[assignment]
    _IMPORT_ERROR: ImportError | None = _error
else:
    _IMPORT_ERROR = None


def require() -> None:
    """Raise ``ImportError`` naming the ``scale`` extra when Warp, MuJoCo Warp or torch is absent."""
    if _IMPORT_ERROR is not None:
        raise ImportError(
            f"backend='warp' needs warp-lang, mujoco-warp and torch ({_IMPORT_ERROR}): "
            "pip install -e '.[scale]' (./spine.sh setup installs it)"
        ) from _IMPORT_ERROR


def init_warp() -> None:
    """Start Warp, quietly (no line per loaded module) unless its log level was changed; the
    kernel cache is Warp's own."""
    require()
    if wp.config.log_level == wp.LOG_INFO:
        wp.config.log_level = wp.LOG_WARNING
    wp.init()


def kernel_cache_dir() -> str:
    """Where Warp keeps compiled kernels across runs (``$WARP_CACHE_PATH`` or the user cache)."""
    init_warp()
    return str(wp.config.kernel_cache_dir)


def resolve_device(device: str | None) -> tuple[Any, Any]:
    """``(warp device, torch device)`` for ``device`` ("cuda:0", "cuda", "cpu"; None: Warp's
    default, the first GPU when there is one); ``ValueError`` lists the devices there are."""
    init_warp()
    try:
        wp_device = wp.get_device(device)
    except (RuntimeError, ValueError) as e:
        names = [d.alias for d in wp.get_devices()]
        raise ValueError(f"no Warp device {device!r} here (devices: {names}): {e}") from None
    return wp_device, torch.device(wp.device_to_torch(wp_device))


class WarpPhysics:
    """``num_worlds`` copies of ``model`` on one Warp device; state as torch views (float32).

    Args:
        model: the compiled MuJoCo model (host); it is copied, never changed.
        num_worlds: worlds N.
        device: Warp/torch device name; None: Warp's default.
        batched: ``Model`` fields to hold one row per world (e.g. ``"body_mass"``), written
            through ``model_field``; the others are shared by every world.
        nconmax: contacts allocated per world (None: MuJoCo Warp's guess for the model).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        num_worlds: int,
        device: str | None = None,
        batched: tuple[str, ...] = (),
        nconmax: int | None = None,
    ) -> None:
        if num_worlds < 1:
            raise ValueError(f"WarpPhysics: num_worlds must be >= 1, got {num_worlds}")
        self.wp_device, self.device = resolve_device(device)
        self.num_worlds = num_worlds
        self.mj_model = model
        with wp.ScopedDevice(self.wp_device):
            self.model = mjw.put_model(model, batch_sizes=dict.fromkeys(batched, num_worlds))
            self.data = mjw.make_data(model, nworld=num_worlds, nconmax=nconmax)
        d, view = self.data, wp.to_torch
        self.qpos, self.qvel, self.ctrl = view(d.qpos), view(d.qvel), view(d.ctrl)
        self.site_xpos, self.mocap_pos = view(d.site_xpos), view(d.mocap_pos)
        self.xaxis, self.xanchor = view(d.xaxis), view(d.xanchor)
        contact = d.contact
        self.contact_geom, self.contact_world = view(contact.geom), view(contact.worldid)
        self.contact_type, self.nacon = view(contact.type), view(d.nacon)
        self._graphs: dict[int, Any] = {}
        self._stream = wp.get_stream(self.wp_device) if self.wp_device.is_cuda else None

    def model_field(self, name: str) -> torch.Tensor:
        """A ``Model`` field as a torch view: ``(N, ...)`` when batched, else ``(1, ...)``."""
        return wp.to_torch(getattr(self.model, name))

    def step(self, n: int) -> None:
        """Advance every world ``n`` physics steps, then recompute its derived quantities."""
        if n not in self._graphs:
            self._graphs[n] = self._capture(n)
        with self._on_torch_stream():
            wp.capture_launch(self._graphs[n])

    def forward(self) -> None:
        """Recompute derived quantities (positions, velocities, contacts) of every world."""
        with self._on_torch_stream(), wp.ScopedDevice(self.wp_device):
            mjw.forward(self.model, self.data)

    def reset(self, worlds: torch.Tensor | None = None) -> None:
        """Back to the model's defaults (``mj_resetData``) in the worlds where ``worlds``
        ``(N,)`` bool is True (all when None); call ``forward`` after writing their state."""
        mask = None if worlds is None else wp.from_torch(worlds.to(torch.bool).contiguous())
        with self._on_torch_stream(), wp.ScopedDevice(self.wp_device):
            mjw.reset_data(self.model, self.data, reset=mask)

    def set_const(self) -> None:
        """Recompute the constants derived from masses and inertias (``mj_setConst``), per world."""
        with self._on_torch_stream(), wp.ScopedDevice(self.wp_device):
            mjw.set_const(self.model, self.data)

    def synchronize(self) -> None:
        """Wait for the device's queued work (for timing)."""
        wp.synchronize_device(self.wp_device)

    # --- internals -----------------------------------------------------------------------
    def _advance(self, n: int) -> None:
        for _ in range(n):
            mjw.step(self.model, self.data)
        mjw.forward(self.model, self.data)

    def _capture(self, n: int) -> Any:
        """Record ``n`` steps + forward as a graph; a first plain run compiles (or loads) the
        kernels and leaves the worlds advanced, which the env's ``reset`` undoes."""
        with wp.ScopedDevice(self.wp_device):
            self._advance(n)
            with wp.ScopedCapture(device=self.wp_device) as capture:
                self._advance(n)
        return capture.graph

    def _on_torch_stream(self) -> Any:
        """Order Warp's launches after the torch work queued before them and torch's work after
        them (CUDA: events between Warp's stream and torch's current stream)."""
        return _StreamOrder(self._stream, self.device) if self._stream is not None else _NO_ORDER


class _StreamOrder:
    def __init__(self, warp_stream: Any, torch_device: Any) -> None:
        self.warp_stream, self.torch_device = warp_stream, torch_device

    def __enter__(self) -> None:
        self.torch_stream = wp.stream_from_torch(self.torch_device)
        self.warp_stream.wait_stream(self.torch_stream)

    def __exit__(self, *exc: object) -> None:
        self.torch_stream.wait_stream(self.warp_stream)


class _NoOrder:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_ORDER = _NoOrder()


def chain_mask(model: mujoco.MjModel, joint_ids: np.ndarray, body: int) -> np.ndarray:
    """``(len(joint_ids),)`` bool: whether each joint moves ``body`` (is on its chain to the
    root), i.e. whether its column of ``body``'s Jacobian can be nonzero."""
    ancestors = set()
    while body > 0:
        ancestors.add(body)
        body = int(model.body_parentid[body])
    return np.array([int(model.jnt_bodyid[j]) in ancestors for j in joint_ids])
