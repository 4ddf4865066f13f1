"""MuJoCo Warp backend: a task's N worlds stepped together on a Warp device (GPU or CPU).

``sim.make_vec("reach", 4096, backend="warp", device="cuda:0")`` builds a ``WarpVectorEnv``:
the same task (MJCF, spec, costs, resets, domain randomization) as ``sim.VectorEnv``, its
physics stepped by MuJoCo Warp over all worlds at once, its observations, rewards and costs
computed batched in torch on that device (views of Warp's arrays: no host copy on a GPU).

Layout: ``backend`` (Warp start-up, kernel cache, the batched physics), ``randomization``
(domain randomization over per-world model arrays), ``reach`` (the reach task, batched),
``vector`` (the vector env: resets, auto-reset, latency, noise), ``registry`` (which tasks
have a Warp twin). Importing these modules needs neither Warp nor torch; building an env needs
the ``scale`` extra (``pip install -e .[scale]``). docs/scale.md has the commands and limits.
"""

from sim.warp.registry import supported_tasks

__all__ = ["supported_tasks"]
