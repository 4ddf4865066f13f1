"""rsl_rl's PPO settings for the Spine reach tasks: Isaac Lab's ``RslRlOnPolicyRunnerCfg``.

The same network and algorithm as Spine's own ``ppo`` family (``policies/ppo.py``,
``PPOConfig`` defaults), so an actor trained here is that family's checkpoint after
``isaac.import_policy``: an MLP of 3 x 128 ELU layers on the ``observation`` and ``goal``
groups, with rsl_rl's empirical normalization inside the model, and rsl_rl's Beta distribution
over the normalized step ``a`` in [-1, 1] (the env commands ``q + max_delta * a``).
"""

from __future__ import annotations

from isaaclab.utils import configclass
from isaaclab_rl.rsl_rl import RslRlMLPModelCfg, RslRlOnPolicyRunnerCfg, RslRlPpoAlgorithmCfg

from isaac.reach_env import OBS_GROUPS

HIDDEN, LAYERS, ACTIVATION = 128, 3, "elu"


@configclass
class BetaDistributionCfg(RslRlMLPModelCfg.DistributionCfg):
    """rsl_rl's ``BetaDistribution`` (Isaac Lab 3 ships configs for the Gaussians only)."""

    class_name: str = "BetaDistribution"
    action_range: tuple[float, float] = (-1.0, 1.0)
    """Samples in [0, 1] are rescaled to this interval: the env's normalized step."""


@configclass
class SpineReachPPORunnerCfg(RslRlOnPolicyRunnerCfg):
    """PPO on ``Spine-Reach-*``; CPU by default (``--device``/``agent.device`` to change)."""

    seed = 0
    device = "cpu"
    num_steps_per_env = 24
    max_iterations = 300
    save_interval = 50
    experiment_name = "spine_reach"
    obs_groups = {"actor": list(OBS_GROUPS), "critic": list(OBS_GROUPS)}  # noqa: RUF012 (configclass copies)
    actor = RslRlMLPModelCfg(
        hidden_dims=[HIDDEN] * LAYERS,
        activation=ACTIVATION,
        obs_normalization=True,
        distribution_cfg=BetaDistributionCfg(),
    )
    critic = RslRlMLPModelCfg(hidden_dims=[HIDDEN] * LAYERS, activation=ACTIVATION, obs_normalization=True)
    algorithm = RslRlPpoAlgorithmCfg(
        value_loss_coef=1.0,
        use_clipped_value_loss=True,
        clip_param=0.2,
        entropy_coef=0.005,
        num_learning_epochs=5,
        num_mini_batches=4,
        learning_rate=1.0e-3,
        schedule="adaptive",
        gamma=0.99,
        lam=0.95,
        desired_kl=0.01,
        max_grad_norm=1.0,
    )
