"""A Spine robot config as an Isaac Lab articulation, from local files only.

Runs in the Isaac Lab environment (``./spine.sh setup-isaac``). Spine's own MuJoCo model of the
arm (``sim.robots.configured``: ``configs/robot/<name>.yaml``) is the source of truth: the task
spec, the joint order, HOME, the servo gains and the end-effector point all come from it. The
model file is re-written as an arm-only MJCF (the goal marker, a mocap body, removed; gravity
compensation on the arm's bodies as Spine sets it) and converted to USD by Isaac Lab's
``MjcfConverter`` (``isaacsim-asset-isolated``, no Kit), which Newton then imports. The servos
become implicit drives with Spine's gains: MuJoCo's position actuator
``kp (target - q) - kv qd``, clamped to its force range.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import mujoco
import numpy as np

from sim.robots.configured import configured_robot

INTEGRATORS = {  # mjtIntegrator -> MJWarpSolverCfg.integrator
    int(mujoco.mjtIntegrator.mjINT_EULER): "euler",
    int(mujoco.mjtIntegrator.mjINT_IMPLICITFAST): "implicitfast",
    int(mujoco.mjtIntegrator.mjINT_IMPLICIT): "implicit",
}


@dataclass(frozen=True)
class ArmModel:
    """What the Isaac Lab task needs of one Spine arm.

    Attributes:
        name: robot config name (``configs/robot/<name>.yaml``), the contract's ``robot``.
        mjcf: the arm-only MJCF written for the USD converter.
        joint_names: actuated joints in Spine's command order.
        home: start pose (rad), command order.
        kp, kv: servo stiffness (N m/rad) and damping (N m s/rad) per joint.
        force_max: servo torque limit per joint (N m); inf where unlimited.
        ee_body: the body that carries the end-effector point.
        ee_offset: the end-effector point in that body's frame (m).
        arm_bodies: bodies of the arm (contacts among them and with the scene are collisions).
        timestep: physics step (s).
        integrator: MuJoCo integrator name (MJWarp's ``integrator``).
    """

    name: str
    mjcf: Path
    joint_names: tuple[str, ...]
    home: tuple[float, ...]
    kp: tuple[float, ...]
    kv: tuple[float, ...]
    force_max: tuple[float, ...]
    ee_body: str
    ee_offset: tuple[float, float, float]
    arm_bodies: tuple[str, ...]
    timestep: float
    integrator: str


def arm_model(robot: str, cache: Path) -> ArmModel:
    """Spine's arm ``robot`` (a config name or YAML path) read from its MuJoCo model; writes
    the arm-only MJCF under ``cache`` (named by a hash of its text, so edits convert anew)."""
    model, c = configured_robot(robot)
    data = mujoco.MjData(model)
    mujoco.mj_resetData(model, data)
    qadr = [model.joint(j).qposadr[0] for j in c.JOINT_NAMES]
    data.qpos[qadr] = c.HOME
    mujoco.mj_forward(model, data)
    site = model.site(c.EE_SITE)
    body = int(model.body_weldid[model.site_bodyid[site.id]])  # a body without joints merges into its parent
    rot = data.xmat[body].reshape(3, 3)
    offset = rot.T @ (data.site_xpos[site.id] - data.xpos[body])
    acts = [model.actuator(a) for a in c.ACTUATOR_NAMES]
    force = [float(a.forcerange[1]) if model.actuator_forcelimited[a.id] else np.inf for a in acts]
    gravcomp = {b: float(model.body_gravcomp[model.body(b).id]) for b in c.ARM_BODY_NAMES}
    return ArmModel(
        name=c.ROBOT_NAME,
        mjcf=_write_arm_mjcf(c, gravcomp, cache),
        joint_names=tuple(c.JOINT_NAMES),
        home=tuple(float(q) for q in c.HOME),
        kp=tuple(float(a.gainprm[0]) for a in acts),
        kv=tuple(float(-a.biasprm[2]) for a in acts),
        force_max=tuple(force),
        ee_body=model.body(body).name,
        ee_offset=tuple(float(x) for x in offset),
        arm_bodies=tuple(c.ARM_BODY_NAMES),
        timestep=float(model.opt.timestep),
        integrator=INTEGRATORS.get(int(model.opt.integrator), "implicitfast"),
    )


def _write_arm_mjcf(c: SimpleNamespace, gravcomp: dict[str, float], cache: Path) -> Path:
    """The robot's model file without mocap bodies, with the arm bodies' gravity compensation
    of Spine's compiled model (``gravcomp``: body -> value), mesh and texture folders made
    absolute."""
    spec = mujoco.MjSpec.from_file(str(c.XML_PATH))
    folder = Path(c.XML_PATH).parent
    spec.meshdir = str((folder / spec.meshdir).resolve())
    spec.texturedir = str((folder / spec.texturedir).resolve())
    for body in list(spec.bodies):
        if body.mocap:
            spec.delete(body)
    for name, value in gravcomp.items():
        spec.body(name).gravcomp = value
    text = spec.to_xml()
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = cache / f"{c.ROBOT_NAME}_{digest}" / f"{c.ROBOT_NAME}.xml"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path
