"""``sim.make_vec``: N copies of a task on a chosen backend, behind one vector-env interface.

``make_vec("reach", 16)`` is ``sim.vector.VectorEnv`` (MuJoCo on CPU threads, numpy arrays);
``make_vec("reach", 4096, backend="warp", device="cuda:0")`` is ``sim.warp.vector.WarpVectorEnv``
(MuJoCo Warp over all worlds on one device, torch tensors there). Both: ``reset(seed)``,
``step(actions)`` with same-step auto-reset, ``state()``, ``close()``, ``task_spec``,
``num_envs``, ``single_action_space``. The task definition (config overrides, spec, costs,
resets, randomization) is the same on both.
"""

from __future__ import annotations

from typing import Any

BACKENDS = ("cpu", "warp")


def make_vec(
    task: str,
    num_envs: int,
    backend: str = "cpu",
    device: str | None = None,
    *,
    threads: int | None = None,
    randomization: Any = None,
    **task_kwargs: Any,
) -> Any:
    """Build ``num_envs`` copies of ``task`` on ``backend``.

    Args:
        task: registry name, e.g. ``"reach"`` (``backend="warp"``: ``sim.warp.supported_tasks()``).
        num_envs: number of envs (worlds) N.
        backend: ``"cpu"`` (MuJoCo, numpy out) or ``"warp"`` (MuJoCo Warp, torch out).
        device: ``"warp"``: the Warp/torch device ("cuda:0", "cpu"; None: the GPU if any);
            ``"cpu"``: None or "cpu".
        threads: ``"cpu"`` only: threads that step the physics (default 1).
        randomization: optional ``sim.randomization.RandomizationConfig``.
        **task_kwargs: task config overrides (``robot="panda"``, ``episode_steps=50``, ...).
    """
    if backend == "cpu":
        if device not in (None, "cpu"):
            raise ValueError(f"backend='cpu' runs on the host; device={device!r} needs backend='warp'")
        from sim.vector import VectorEnv

        return VectorEnv(task, num_envs, threads=threads or 1, randomization=randomization, **task_kwargs)
    if backend == "warp":
        if threads is not None:
            raise ValueError("threads applies to backend='cpu'; backend='warp' steps all worlds on a device")
        from sim.warp.vector import WarpVectorEnv

        return WarpVectorEnv(task, num_envs, device=device, randomization=randomization, **task_kwargs)
    raise ValueError(f"unknown backend {backend!r}; backends: {list(BACKENDS)}")
