"""Spine's reach task (``sim/tasks/reach.py``) as an Isaac Lab 3 direct-workflow environment.

Runs in the Isaac Lab environment, kit-less, on Newton (MuJoCo Warp). Everything the task is
made of comes from Spine's own task and robot: the task spec (``ReachEnv(robot=...).task_spec``:
fields, goal, action bound, rates, episode length, success threshold, workspace, cost
thresholds) and the arm (``isaac.robots.arm_model``). One control step is
``physics_hz / control_hz`` physics steps, as in Spine.

- Observations: two groups, as Spine's ``ppo`` family feeds rsl_rl (``policies.ppo_rsl``):
  ``observation`` = the spec's fields in order (``joint_pos`` (n) rad, ``joint_vel`` (n) rad/s,
  ``ee_pos`` (3) m, world frame of the arm's base) and ``goal`` (3) m. ``policy`` is the two
  concatenated (Isaac Lab's default group).
- Action ``a`` (n), a normalized step in [-1, 1] (clamped): the joint targets
  ``q + max_delta * a`` around the measured positions ``q``, clipped to the servo ranges; the
  action map of Spine's ``ppo`` family (``policies.ppo_rsl.step_targets``), whose rsl_rl actor
  samples ``a`` from a Beta distribution and whose exported graph commands its mean.
- Reward ``-distance`` (m) per control step; never terminates; truncated after
  ``episode_steps``. Reset: HOME + uniform noise (clipped to the limits), at rest, goal uniform
  in the workspace box.
- Costs, as Spine's ``info["cost"]`` (0/1 per env and step): ``joint_limit`` (a joint nearer
  than ``joint_limit_threshold`` to a limit), ``speed`` (end-effector faster than
  ``speed_threshold``), ``collision`` (a contact on the arm's bodies). ``self.costs`` holds the
  last step's; their means, success and distance go to ``extras["log"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, asdict
from pathlib import Path
from typing import Any

import isaaclab.sim as sim_utils
import torch
from isaaclab.actuators import ImplicitActuatorCfg
from isaaclab.assets import ArticulationCfg
from isaaclab.envs import DirectRLEnv, DirectRLEnvCfg
from isaaclab.scene import InteractiveSceneCfg
from isaaclab.sensors import ContactSensorCfg
from isaaclab.sim import SimulationCfg
from isaaclab.sim.converters import MjcfConverter, MjcfConverterCfg
from isaaclab.utils import configclass
from isaaclab.utils.math import quat_apply
from isaaclab_newton.physics import MJWarpSolverCfg, NewtonCfg
from pxr import Sdf

from isaac.robots import ArmModel, arm_model
from sim.spec import TaskSpec

CACHE = Path(__file__).resolve().parents[1] / "runs" / "isaac" / "assets"  # MJCF and USD, generated
OBS_GROUPS = ("observation", "goal")  # rsl_rl observation groups, in the graphs' input order
COSTS = ("joint_limit", "collision", "speed")
CONVERTER_GRAVCOMP, NEWTON_GRAVCOMP = "mjc:body:gravcomp", "mjc:gravcomp"


def spine_reach(robot: str) -> tuple[TaskSpec, dict[str, Any], tuple[list[float], list[float]]]:
    """Spine's reach task on ``robot``: its spec, its config (thresholds, noise) and the servo
    ranges the targets are clipped to (the action space of Spine's env)."""
    from sim.tasks.reach import ReachEnv

    env = ReachEnv(robot=robot)
    try:
        low, high = env.action_space.low.tolist(), env.action_space.high.tolist()
        return env.task_spec, asdict(env.config), (low, high)
    finally:
        env.close()


@configclass
class SpineReachSceneCfg(InteractiveSceneCfg):
    """The arm (with whatever its model file holds around it, e.g. arm7's table) per env."""

    robot: ArticulationCfg = MISSING
    contacts: ContactSensorCfg = MISSING


@configclass
class SpineReachEnvCfg(DirectRLEnvCfg):
    """Spine's reach task on ``robot`` (a name in ``configs/robot/``); ``__post_init__`` fills
    in everything else from Spine's task and arm."""

    robot: str = "arm7"
    """Spine robot config: ``configs/robot/<name>.yaml``."""

    # filled by __post_init__ from Spine's task spec
    task_spec: dict = MISSING
    task_config: dict = MISSING
    arm: dict = MISSING
    ctrl_low: list = MISSING
    ctrl_high: list = MISSING

    decimation: int = 20
    episode_length_s: float = 4.0
    action_space: int = 7
    observation_space: int = 20
    state_space: int = 0
    sim: SimulationCfg = SimulationCfg(dt=0.002, device="cpu")
    scene: SpineReachSceneCfg = SpineReachSceneCfg(num_envs=64, env_spacing=2.5, replicate_physics=True)

    def __post_init__(self) -> None:
        spec, config, (low, high) = spine_reach(self.robot)
        arm = arm_model(self.robot, CACHE / "mjcf")
        self.task_spec, self.task_config, self.arm = spec.to_dict(), config, _as_dict(arm)
        self.ctrl_low, self.ctrl_high = low, high
        self.decimation = round(spec.physics_hz / spec.control_hz)
        self.episode_length_s = spec.episode_steps / spec.control_hz
        self.action_space = spec.n_joints
        self.observation_space = spec.obs_size + spec.goal.size
        self.sim.dt = 1.0 / spec.physics_hz
        self.sim.physics = NewtonCfg(
            solver_cfg=MJWarpSolverCfg(
                integrator=arm.integrator,
                cone="pyramidal",
                njmax=64,
                nconmax=32,
            ),
            num_substeps=1,
            use_cuda_graph=False,
        )
        self.scene.robot = _articulation(arm)
        self.scene.contacts = ContactSensorCfg(prim_path="{ENV_REGEX_NS}/Robot/.*", history_length=0)


def _as_dict(arm: ArmModel) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(arm).items()}


def convert_mjcf(arm: ArmModel) -> Path:
    """The arm's MJCF as USD, converted once (kit-less) by Isaac Lab's ``MjcfConverter``, as its
    ``scripts/tools/convert_mjcf.py`` does; with the MuJoCo physics variant selected."""
    cfg = MjcfConverterCfg(
        asset_path=str(arm.mjcf),
        usd_dir=str(arm.mjcf.parent / "usd"),
        fix_base=True,
        self_collision=True,
        physics_variant="mujoco",
    )
    usd = Path(MjcfConverter(cfg).usd_path)
    for layer_path in usd.parent.rglob("*.usd*"):
        _newton_gravcomp(layer_path)
    return usd


def _newton_gravcomp(layer_path: Path) -> None:
    """Author Newton's ``mjc:gravcomp`` where the converter wrote ``mjc:body:gravcomp``.

    mujoco-usd-converter 0.6.1 (pinned by isaacsim-asset-isolated 6.2) names MuJoCo's body
    gravity compensation ``mjc:body:gravcomp``; Newton 1.6.1 reads ``mjc:gravcomp``. Without
    this the arms Spine compensates sag under gravity in Newton.
    """
    layer = Sdf.Layer.FindOrOpen(str(layer_path))
    found: list[Sdf.Path] = []
    layer.Traverse(Sdf.Path.absoluteRootPath, lambda p: p.name == CONVERTER_GRAVCOMP and found.append(p))
    changed = False
    for path in found:
        prim, value = layer.GetPrimAtPath(path.GetPrimPath()), layer.GetAttributeAtPath(path).default
        if NEWTON_GRAVCOMP not in prim.attributes:
            float_ = Sdf.ValueTypeNames.Float
            attr = Sdf.AttributeSpec(prim, NEWTON_GRAVCOMP, float_, Sdf.VariabilityVarying, True)
            attr.default = float(value)
            changed = True
    if changed:
        layer.Save()


def _articulation(arm: ArmModel) -> ArticulationCfg:
    """The arm from its USD, servos as implicit drives with Spine's gains."""
    names = list(arm.joint_names)
    effort = {j: f for j, f in zip(names, arm.force_max, strict=True) if f != float("inf")}
    return ArticulationCfg(
        prim_path="{ENV_REGEX_NS}/Robot",
        spawn=sim_utils.UsdFileCfg(usd_path=str(convert_mjcf(arm)), activate_contact_sensors=True),
        init_state=ArticulationCfg.InitialStateCfg(joint_pos=dict(zip(names, arm.home, strict=True))),
        actuators={
            "servos": ImplicitActuatorCfg(
                joint_names_expr=names,
                stiffness=dict(zip(names, arm.kp, strict=True)),
                damping=dict(zip(names, arm.kv, strict=True)),
                effort_limit_sim=effort or None,
            )
        },
        joint_ordering=tuple(names),
    )


class SpineReachEnv(DirectRLEnv):
    """Spine's reach on Isaac Lab; see the module docstring for what it observes and costs."""

    cfg: SpineReachEnvCfg

    def __init__(self, cfg: SpineReachEnvCfg, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(cfg, render_mode, **kwargs)
        self.task_spec = TaskSpec.from_dict(cfg.task_spec)
        self.robot = self.scene["robot"]
        self.contacts = self.scene["contacts"]
        dev, spec, arm = self.device, self.task_spec, cfg.arm
        self.joint_ids, _ = self.robot.find_joints(list(spec.joint_names), preserve_order=True)
        self.ee_body = self.robot.find_bodies(arm["ee_body"])[0][0]
        tensor = lambda x: torch.tensor(x, dtype=torch.float32, device=dev)  # noqa: E731
        self.ee_offset = tensor(arm["ee_offset"])
        self.max_delta = tensor(spec.action.max_delta)
        self.ctrl_low, self.ctrl_high = tensor(cfg.ctrl_low), tensor(cfg.ctrl_high)
        self.pos_min, self.pos_max = tensor(spec.joint_pos_min), tensor(spec.joint_pos_max)
        self.home = tensor(arm["home"])
        self.ws_low, self.ws_high = tensor(spec.workspace_low), tensor(spec.workspace_high)
        self.goal = torch.zeros(self.num_envs, spec.goal.size, device=dev)
        self.targets = self.home.repeat(self.num_envs, 1)
        self.costs = {k: torch.zeros(self.num_envs, device=dev) for k in COSTS}
        self.distance = torch.zeros(self.num_envs, device=dev)

    @property
    def max_episode_length(self) -> int:
        return self.task_spec.episode_steps

    # --- named state -------------------------------------------------------------------
    def joint_pos(self) -> torch.Tensor:
        """(N, n) rad, command order."""
        return self.robot.data.joint_pos.torch[:, self.joint_ids]

    def joint_vel(self) -> torch.Tensor:
        """(N, n) rad/s."""
        return self.robot.data.joint_vel.torch[:, self.joint_ids]

    def ee_pos(self) -> torch.Tensor:
        """(N, 3) m, in each env's frame (the arm's base at its origin, as in Spine)."""
        pose = self.robot.data.body_link_pose_w.torch[:, self.ee_body]
        point = pose[:, :3] + quat_apply(pose[:, 3:7], self.ee_offset.expand(self.num_envs, 3))
        return point - self.scene.env_origins

    def ee_vel(self) -> torch.Tensor:
        """(N, 3) m/s, linear velocity of the end-effector point."""
        pose = self.robot.data.body_link_pose_w.torch[:, self.ee_body]
        vel = self.robot.data.body_link_vel_w.torch[:, self.ee_body]
        arm = quat_apply(pose[:, 3:7], self.ee_offset.expand(self.num_envs, 3))
        return vel[:, :3] + torch.cross(vel[:, 3:6], arm, dim=-1)

    def state(self) -> dict[str, torch.Tensor]:
        """Named raw state, Spine's field names: joint_pos, joint_vel, ee_pos, goal."""
        return {
            "joint_pos": self.joint_pos(),
            "joint_vel": self.joint_vel(),
            "ee_pos": self.ee_pos(),
            "goal": self.goal,
        }

    # --- DirectRLEnv hooks -------------------------------------------------------------
    def _pre_physics_step(self, actions: torch.Tensor) -> None:
        step = self.max_delta * actions.clamp(-1.0, 1.0)
        self.targets = torch.clamp(self.joint_pos() + step, self.ctrl_low, self.ctrl_high)

    def _apply_action(self) -> None:
        self.robot.set_joint_position_target_index(target=self.targets, joint_ids=self.joint_ids)

    def _get_observations(self) -> dict[str, torch.Tensor]:
        state = self.state()
        observation = torch.cat([state[f.name] for f in self.task_spec.observation], dim=-1)
        goal = state[self.task_spec.goal.name]
        return {"observation": observation, "goal": goal, "policy": torch.cat([observation, goal], dim=-1)}

    def _get_rewards(self) -> torch.Tensor:
        cfg, q = self.cfg.task_config, self.joint_pos()
        self.distance = torch.linalg.norm(self.ee_pos() - self.goal, dim=-1)
        margin = torch.minimum(q - self.pos_min, self.pos_max - q).min(dim=-1).values
        self.costs["joint_limit"] = (margin < cfg["joint_limit_threshold"]).float()
        self.costs["speed"] = (torch.linalg.norm(self.ee_vel(), dim=-1) > cfg["speed_threshold"]).float()
        forces = self.contacts.data.net_forces_w.torch  # (N, bodies, 3)
        self.costs["collision"] = (torch.linalg.norm(forces, dim=-1).amax(dim=-1) > 0).float()
        log = self.extras.setdefault("log", {})
        for kind, cost in self.costs.items():
            log[f"Costs/{kind}"] = cost.mean()
        log["Metrics/distance"] = self.distance.mean()
        log["Metrics/success"] = (self.distance < self.task_spec.success_threshold).float().mean()
        return -self.distance

    def _get_dones(self) -> tuple[torch.Tensor, torch.Tensor]:
        truncated = self.episode_length_buf >= self.max_episode_length
        return torch.zeros_like(truncated), truncated

    def _reset_idx(self, env_ids: Sequence[int] | torch.Tensor | None) -> None:
        if env_ids is None:
            env_ids = self.robot._ALL_INDICES
        super()._reset_idx(env_ids)
        n, noise = len(env_ids), self.cfg.task_config["init_noise"]
        q0 = self.home + (2 * torch.rand(n, self.task_spec.n_joints, device=self.device) - 1) * noise
        q0 = torch.clamp(q0, self.pos_min, self.pos_max)
        goal = self.ws_low + torch.rand(n, 3, device=self.device) * (self.ws_high - self.ws_low)
        self.start(env_ids, q0, goal)

    def start(self, env_ids: Sequence[int] | torch.Tensor, q0: torch.Tensor, goal: torch.Tensor) -> None:
        """Put envs ``env_ids`` at rest at ``q0`` (len, n) rad with targets there, goal (len, 3) m."""
        self.robot.write_joint_state_to_sim_index(
            position=q0, velocity=torch.zeros_like(q0), joint_ids=self.joint_ids, env_ids=env_ids
        )
        self.targets[env_ids] = q0
        self.robot.set_joint_position_target_index(target=q0, joint_ids=self.joint_ids, env_ids=env_ids)
        self.goal[env_ids] = goal


@configclass
class SpineReachArm7EnvCfg(SpineReachEnvCfg):
    """Reach on arm7 (``configs/robot/arm7.yaml``: Spine's own arm, ``sim/robots/arm7/arm7.xml``)."""

    robot: str = "arm7"


@configclass
class SpineReachPandaEnvCfg(SpineReachEnvCfg):
    """Reach on the Franka Panda (``configs/robot/panda.yaml``, MuJoCo Menagerie's model)."""

    robot: str = "panda"


@configclass
class SpineReachUR5eEnvCfg(SpineReachEnvCfg):
    """Reach on the UR5e (``configs/robot/ur5e.yaml``, MuJoCo Menagerie's model)."""

    robot: str = "ur5e"
