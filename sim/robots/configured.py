"""A robot config (``sim.robot_config``) -> a MuJoCo model and the constants a task reads.

The model file (MJCF, URDF through MuJoCo's importer, or a Menagerie entry) is edited with
``MjSpec``: an end-effector site (when ``ee`` is a body), a visual-only goal marker (a mocap
body), a camera on the workspace, a light when the model has none, position servos for the
joints without one (or in place of the model's, ``replace_actuators``) and gravity
compensation on the arm's bodies. Where Spine adds servos to a model integrated with Euler, the
integrator becomes ``implicitfast`` (servo damping is then stable at any gain). The constants
namespace has the names the arm tasks, experts and the safety layer read of a robot module
(``sim/robots/arm7/constants.py``). ``configured_robot(robot, obstacles=n)`` also adds a ground
plane at z = 0 (where the arm's base stands) and ``n`` box obstacle slots
(``sim/robots/obstacles.py``), which ``ConfiguredObstaclePhysics`` places per episode.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from types import SimpleNamespace

import mujoco
import numpy as np

from sim.robot_config import RobotConfig, RobotConfigError, load_robot_config
from sim.robots.arm7.physics import Contacts
from sim.robots.obstacles import ObstacleBoxes, add_obstacle_boxes
from sim.robots.servo_arm import ServoArmPhysics

EE_SITE = "spine_ee"
GOAL_BODY = "spine_goal"
CAMERA = "spine_view"
GROUND_GEOM = "spine_ground"  # the plane z = 0 of a scene with obstacles
_MOVING = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


def configured_robot(
    robot: str | Path | RobotConfig, obstacles: int = 0
) -> tuple[mujoco.MjModel, SimpleNamespace]:
    """A fresh copy of the robot's compiled model and its constants (cached per config file).

    Args:
        robot: a robot config, its name in ``configs/robot/`` or a YAML path.
        obstacles: box obstacle slots to add (parked), with a ground plane at z = 0; 0: none.
    """
    cfg = robot if isinstance(robot, RobotConfig) else load_robot_config(robot)
    model, constants = (
        _with_obstacles(cfg, _stamp(cfg), obstacles) if obstacles else _compiled(cfg, _stamp(cfg))[:2]
    )
    return copy.deepcopy(model), constants


def obstacle_body(index: int) -> str:
    """Name of the ``index``-th obstacle's mocap body in a configured arm's scene."""
    return f"spine_obstacle{index}"


def obstacle_geom(index: int) -> str:
    """Name of the ``index``-th obstacle's box geom."""
    return f"spine_obstacle{index}_col"


def _stamp(cfg: RobotConfig) -> float:
    """Modification time of the config and model files: a changed file is compiled again."""
    paths = [Path(cfg.source)] if cfg.source and Path(cfg.source).is_file() else []
    return sum(p.stat().st_mtime for p in [*paths, cfg.model_path()])


@functools.lru_cache(maxsize=16)
def _with_obstacles(cfg: RobotConfig, mtime: float, n: int) -> tuple[mujoco.MjModel, SimpleNamespace]:
    """The robot's scene plus the ground plane and ``n`` obstacle slots (same constants)."""
    _, constants, spec = _compiled(cfg, mtime)
    spec = spec.copy()
    _add_obstacles(spec, n)
    return spec.compile(), constants


@functools.lru_cache(maxsize=16)
def _compiled(cfg: RobotConfig, _mtime: float) -> tuple[mujoco.MjModel, SimpleNamespace, mujoco.MjSpec]:
    """The robot's compiled scene, its constants and the edited spec it was compiled from."""
    where = cfg.source or cfg.name
    path = cfg.model_path()
    try:
        spec = mujoco.MjSpec.from_file(str(path))
        bare = spec.copy().compile()
    except Exception as e:
        raise RobotConfigError(f"{where}: model {path} does not load in MuJoCo: {e}") from None
    ee_body = _ee_body(bare, cfg, where)
    joints = cfg.joints or _chain(bare, ee_body)
    if not joints:
        raise RobotConfigError(f"{where}: no hinge or slide joint between the root and ee {cfg.ee!r}")
    for j in joints:
        if mujoco.mj_name2id(bare, mujoco.mjtObj.mjOBJ_JOINT, j) < 0:
            raise RobotConfigError(f"{where}: joints: {j!r} is not a joint of {path.name}")
    if len(cfg.velocity_limits) != len(joints):
        raise RobotConfigError(
            f"{where}: velocity_limits has {len(cfg.velocity_limits)} values "
            f"for the {len(joints)} joints {joints}"
        )
    actuators = _servos(spec, bare, cfg, joints, where)
    if actuators != [bare.actuator(a).name for a in range(bare.nu) if bare.actuator(a).name in actuators]:
        # servos Spine added: their damping (kv) is stable at any gain only when integrated
        # implicitly (MuJoCo's advice for position actuators with kv)
        if int(spec.option.integrator) == int(mujoco.mjtIntegrator.mjINT_EULER):
            spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    ee_site = cfg.ee if mujoco.mj_name2id(bare, mujoco.mjtObj.mjOBJ_SITE, cfg.ee) >= 0 else EE_SITE
    if ee_site == EE_SITE:
        spec.body(bare.body(ee_body).name).add_site(name=EE_SITE, pos=list(cfg.ee_offset), size=[0.005] * 3)
    arm_bodies = _subtree(bare, bare.jnt_bodyid[bare.joint(joints[0]).id])
    if cfg.gravity_compensation:
        for b in arm_bodies:
            spec.body(bare.body(b).name).gravcomp = 1.0
    _add_scene_parts(spec, bare, cfg)
    model = spec.compile()
    qadr = [model.jnt_qposadr[model.joint(j).id] for j in joints]
    lo, hi = [], []
    for j in joints:
        jid = model.joint(j).id
        if not model.jnt_limited[jid]:
            raise RobotConfigError(f"{where}: joint {j!r} has no position limits in {path.name}: add a range")
        lo.append(float(model.jnt_range[jid, 0]))
        hi.append(float(model.jnt_range[jid, 1]))
    home = _home(model, cfg, qadr, where)
    if any(not lo_ <= h <= hi_ for h, lo_, hi_ in zip(home, lo, hi, strict=True)):
        raise RobotConfigError(f"{where}: home {home} is outside the joint limits {lo} .. {hi}")
    constants = SimpleNamespace(
        ROBOT_NAME=cfg.name,
        XML_PATH=path,
        JOINT_NAMES=tuple(joints),
        ACTUATOR_NAMES=tuple(actuators),
        N_JOINTS=len(joints),
        EE_SITE=ee_site,
        GOAL_MOCAP_BODY=GOAL_BODY,
        CAMERA=CAMERA,
        JOINT_POS_MIN=tuple(lo),
        JOINT_POS_MAX=tuple(hi),
        JOINT_VEL_MAX=tuple(cfg.velocity_limits),
        HOME=home,
        WORKSPACE_LOW=tuple(cfg.workspace_low),
        WORKSPACE_HIGH=tuple(cfg.workspace_high),
        ARM_BODY_NAMES=tuple(model.body(b).name for b in arm_bodies),
    )
    return model, constants, spec


def _ee_body(model: mujoco.MjModel, cfg: RobotConfig, where: str) -> int:
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, cfg.ee)
    if site >= 0:
        if any(cfg.ee_offset):
            raise RobotConfigError(f"{where}: ee_offset applies to a body; {cfg.ee!r} is a site")
        return int(model.site_bodyid[site])
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, cfg.ee)
    if body < 0:
        raise RobotConfigError(f"{where}: ee {cfg.ee!r} is neither a site nor a body of the model")
    return body


def _chain(model: mujoco.MjModel, body: int) -> tuple[str, ...]:
    """Hinge/slide joints from the root down to ``body``, root first."""
    names: list[str] = []
    while body > 0:
        ids = [
            j for j in range(model.njnt) if model.jnt_bodyid[j] == body and int(model.jnt_type[j]) in _MOVING
        ]
        names[:0] = [model.joint(j).name for j in ids]
        body = int(model.body_parentid[body])
    return tuple(names)


def _subtree(model: mujoco.MjModel, root: int) -> list[int]:
    """``root`` and every body below it."""
    out = [root]
    for b in range(root + 1, model.nbody):
        if int(model.body_parentid[b]) in out:
            out.append(b)
    return out


def _is_position_servo(model: mujoco.MjModel, a: int) -> bool:
    kp = float(model.actuator_gainprm[a, 0])
    return (
        int(model.actuator_gaintype[a]) == int(mujoco.mjtGain.mjGAIN_FIXED)
        and int(model.actuator_biastype[a]) == int(mujoco.mjtBias.mjBIAS_AFFINE)
        and int(model.actuator_dyntype[a]) == int(mujoco.mjtDyn.mjDYN_NONE)
        and kp > 0
        and float(model.actuator_biasprm[a, 1]) == -kp
    )


def _servos(
    spec: mujoco.MjSpec, bare: mujoco.MjModel, cfg: RobotConfig, joints: tuple[str, ...], where: str
) -> list[str]:
    """The position servo of each joint: the model's, or one added (``cfg.actuators``)."""
    names = []
    for j in joints:
        jid = bare.joint(j).id
        own = [
            a
            for a in range(bare.nu)
            if int(bare.actuator_trntype[a]) == int(mujoco.mjtTrn.mjTRN_JOINT)
            and bare.actuator_trnid[a, 0] == jid
        ]
        if own and not cfg.replace_actuators:
            bad = [bare.actuator(a).name for a in own if not _is_position_servo(bare, a)]
            if bad or len(own) > 1:
                raise RobotConfigError(
                    f"{where}: joint {j!r} is driven by {[bare.actuator(a).name for a in own]}, not one "
                    "position servo: set replace_actuators: true with actuators: {kp, kv}"
                )
            names.append(bare.actuator(own[0]).name)
            continue
        if cfg.actuators is None:
            raise RobotConfigError(
                f"{where}: joint {j!r} has no actuator in the model: add actuators: {{kp, kv}}"
            )
        for a in own:
            spec.delete(spec.actuator(bare.actuator(a).name))
        servo = cfg.actuators
        act = spec.add_actuator(name=f"{j}_servo", target=j, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=servo.kp, kv=servo.kv)
        act.ctrlrange = list(bare.jnt_range[jid])
        act.ctrllimited = bool(bare.jnt_limited[jid])
        if servo.force_max is not None:
            act.forcerange = [-servo.force_max, servo.force_max]
            act.forcelimited = True
        names.append(f"{j}_servo")
    return names


def _add_scene_parts(spec: mujoco.MjSpec, bare: mujoco.MjModel, cfg: RobotConfig) -> None:
    """Goal marker, workspace camera, a light if there is none, an offscreen buffer for video."""
    world = spec.worldbody
    center = (np.asarray(cfg.workspace_low) + np.asarray(cfg.workspace_high)) / 2
    goal = world.add_body(name=GOAL_BODY, mocap=True, pos=center.tolist())
    goal.add_site(
        name="spine_goal_marker",
        type=mujoco.mjtGeom.mjGEOM_SPHERE,
        size=[0.02] * 3,
        rgba=[0.1, 0.8, 0.2, 0.6],
    )
    span = max(float(np.max(np.asarray(cfg.workspace_high) - np.asarray(cfg.workspace_low))), 0.3)
    eye = center + np.array([1.6, -1.4, 1.0]) * span * 1.6
    forward = (center - eye) / np.linalg.norm(center - eye)
    x = np.cross(forward, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(x, forward)
    cam = world.add_camera(name=CAMERA, pos=eye.tolist())
    cam.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
    cam.alt.xyaxes = [*x.tolist(), *y.tolist()]
    if bare.nlight == 0:
        world.add_light(
            name="spine_light", pos=[0, 0, 3], dir=[0, 0, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
        )
    vis = spec.visual.global_
    vis.offwidth, vis.offheight = max(vis.offwidth, 640), max(vis.offheight, 480)


def _add_obstacles(spec: mujoco.MjSpec, n: int) -> None:
    """A ground plane at z = 0 (its contacts with the arm count) and ``n`` parked box slots."""
    spec.worldbody.add_geom(
        name=GROUND_GEOM, type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2.0, 2.0, 0.05], rgba=[0.5, 0.5, 0.5, 1.0]
    )
    add_obstacle_boxes(spec, [obstacle_body(i) for i in range(n)], [obstacle_geom(i) for i in range(n)])


def _home(model: mujoco.MjModel, cfg: RobotConfig, qadr: list[int], where: str) -> tuple[float, ...]:
    if isinstance(cfg.home, str):
        k = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, cfg.home)
        if k < 0:
            keys = [model.key(i).name for i in range(model.nkey)]
            raise RobotConfigError(
                f"{where}: home {cfg.home!r} is not a keyframe of the model (keyframes: {keys})"
            )
        return tuple(float(model.key_qpos[k, a]) for a in qadr)
    if len(cfg.home) != len(qadr):
        raise RobotConfigError(f"{where}: home has {len(cfg.home)} values for {len(qadr)} joints")
    return tuple(cfg.home)


class ConfiguredArmPhysics(ServoArmPhysics):
    """A configured arm's model and simulation state, plus its contacts (``Contacts``: the arm
    against anything else, and against itself)."""

    def __init__(self, model: mujoco.MjModel, constants: SimpleNamespace) -> None:
        super().__init__(model, constants)
        arm = [model.body(name).id for name in constants.ARM_BODY_NAMES]
        self._geom_is_arm = np.isin(model.geom_bodyid, arm) & (
            model.geom_contype | model.geom_conaffinity > 0
        )
        self.reset()

    def contacts(self) -> Contacts:
        """The arm's active contacts with the scene and with itself."""
        geoms = self.data.contact.geom[: self.data.ncon]
        n_arm = self._geom_is_arm[geoms].sum(axis=1)
        return Contacts(arm_table=int(np.sum(n_arm == 1)), arm_self=int(np.sum(n_arm == 2)))

    def ee_rotation(self) -> np.ndarray:
        """Orientation of the end-effector site ``(3, 3)``, world frame (columns: its axes)."""
        return self.data.site_xmat[self._ee_site].reshape(3, 3).copy()

    def ee_rot_jacobian(self) -> np.ndarray:
        """Rotational Jacobian of the end-effector site ``(3, n)`` (rad/rad), joint order."""
        jacr = np.zeros((3, self.model.nv))
        mujoco.mj_jacSite(self.model, self.data, None, jacr, self._ee_site)
        return jacr[:, self._dof_adr]

    def arm_collision_geoms(self) -> int:
        """How many of the arm's geoms take part in contacts (0: contacts cannot be seen)."""
        return int(self._geom_is_arm.sum())


class ConfiguredObstaclePhysics(ConfiguredArmPhysics):
    """A configured arm in a scene from ``configured_robot(robot, obstacles=n)``: the ground plane
    and ``n`` movable box obstacles (their contacts with the arm count, like any other)."""

    def __init__(self, model: mujoco.MjModel, constants: SimpleNamespace, n_obstacles: int) -> None:
        slots = range(n_obstacles)
        self._obstacles = ObstacleBoxes(
            model, [obstacle_body(i) for i in slots], [obstacle_geom(i) for i in slots]
        )
        super().__init__(model, constants)

    @property
    def n_obstacles(self) -> int:
        return len(self._obstacles)

    def set_obstacles(self, centers: np.ndarray, half_sizes: np.ndarray) -> None:
        """Place axis-aligned boxes: ``centers`` and ``half_sizes`` ``(n_obstacles, 3)`` (m),
        world frame; a row of zero half-sizes parks that slot (no obstacle)."""
        self._obstacles.place(self.data, centers, half_sizes)
        mujoco.mj_forward(self.model, self.data)
