"""The reach task over Warp worlds: ``sim.tasks.reach``'s resets, state, reward and costs, batched.

Built from the task's own CPU env (``sim.make("reach", **overrides)``): its config, spec, model
and robot constants (arm7 or any configured arm, ``robot=``), so there is one definition of
the task. Per world, with tensors ``(N, ...)`` float32 on the device:

- reset: joints at ``start_pose`` + uniform noise (clipped to the joint range), at rest, targets
  there; goal uniform in the workspace box. World ``i`` draws these on the host from its own
  numpy stream, the one ``sim.make(task).reset(seed=seed + i)`` draws from on the CPU backend,
  so both backends start every episode alike (one draw per resetting world, then one copy to
  the device).
- state: ``joint_pos``, ``joint_vel``, ``ee_pos``, ``goal`` (by name, as ``ReachEnv.state``).
- reward ``-distance``; ``is_success``: distance below ``success_threshold``.
- costs: ``joint_limit`` (a joint within ``joint_limit_threshold`` of a limit), ``collision`` (an
  arm geom in contact, where the task has that cost), ``speed`` (end-effector speed above
  ``speed_threshold``); the end-effector velocity is the site Jacobian of the arm's joints
  times their velocities, as on the CPU.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from sim.tasks.reach import (
    COST_COLLISION,
    COST_JOINT_LIMIT,
    COST_SPEED,
    EE_POS,
    GOAL_FIELD,
    JOINT_POS,
    JOINT_VEL,
    ReachEnv,
)
from sim.warp.backend import WarpPhysics, chain_mask, torch
from sim.warp.registry import register_warp_task

_HINGE, _SLIDE = int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)


@register_warp_task("reach", "widowx_reach")
class ReachWarp:
    """Reach (and ``widowx_reach``, the same task on the WidowX) over ``physics``' worlds.

    Args:
        env: the task's CPU env, whose definition this follows (read, never stepped).
        physics: the worlds, built from ``env.physics.model``.
    """

    def __init__(self, env: ReachEnv, physics: WarpPhysics) -> None:
        if not isinstance(env, ReachEnv) or env.scene_options or type(env).reset is not ReachEnv.reset:
            raise ValueError(f"ReachWarp follows ReachEnv; {type(env).__name__} adds to it")
        self.env, self.physics, self.spec = env, physics, env.task_spec
        cfg, r, m = env.config, env.robot, physics.mj_model
        dev = self.device = physics.device
        self.cost_kinds = env.cost_kinds
        self.substeps = env.substeps
        joints = np.array([m.joint(name).id for name in r.JOINT_NAMES])
        self._qpos_adr = torch.as_tensor(m.jnt_qposadr[joints], device=dev)
        self._dof_adr = torch.as_tensor(m.jnt_dofadr[joints], device=dev)
        self._act = torch.as_tensor([m.actuator(name).id for name in r.ACTUATOR_NAMES], device=dev)
        self._site = m.site(r.EE_SITE).id
        self._mocap = int(m.body(r.GOAL_MOCAP_BODY).mocapid[0])
        self._joints = torch.as_tensor(joints, device=dev)
        types = m.jnt_type[joints]
        if not np.isin(types, (_HINGE, _SLIDE)).all():
            raise ValueError(f"{r.ROBOT_NAME}: the arm's joints must be hinges or slides")
        self._hinge = torch.as_tensor(types == _HINGE, device=dev)[None, :, None]
        self._moves_ee = torch.as_tensor(chain_mask(m, joints, int(m.site_bodyid[self._site])), device=dev)
        f64 = np.float64
        self.pos_min, self.pos_max = m.jnt_range[joints, 0].astype(f64), m.jnt_range[joints, 1].astype(f64)
        ctrl = m.actuator_ctrlrange[[m.actuator(name).id for name in r.ACTUATOR_NAMES]]
        self._ctrl_min, self._ctrl_max = self._t(ctrl[:, 0]), self._t(ctrl[:, 1])
        self._pos_min, self._pos_max = self._t(self.pos_min), self._t(self.pos_max)
        self._start_pose = np.asarray(env.start_pose, dtype=f64)
        self._low, self._high = np.asarray(cfg.workspace_low, f64), np.asarray(cfg.workspace_high, f64)
        if COST_COLLISION in self.cost_kinds:
            arm = [m.body(name).id for name in r.ARM_BODY_NAMES]
            colliding = (m.geom_contype | m.geom_conaffinity) > 0
            self._geom_is_arm = torch.as_tensor(np.isin(m.geom_bodyid, arm) & colliding, device=dev)
        self.goal = torch.zeros(physics.num_worlds, 3, device=dev)
        self.rngs = [np.random.default_rng() for _ in range(physics.num_worlds)]

    # --- resets --------------------------------------------------------------------------
    def seed(self, rows: np.ndarray, seeds: list[int]) -> None:
        """Restart the streams of worlds ``rows`` from ``seeds`` (as ``env.reset(seed=s)``)."""
        for i, s in zip(rows, seeds, strict=True):
            self.rngs[i] = np.random.default_rng(int(s))

    def reset(self, rows: np.ndarray) -> None:
        """Start new episodes in worlds ``rows``: draw, write their state, recompute all worlds."""
        cfg, n = self.env.config, self.spec.n_joints
        q0 = np.empty((len(rows), n))
        goal = np.empty((len(rows), 3))
        for k, i in enumerate(rows):  # the draws, in order, of ``ReachEnv.reset``
            rng = self.rngs[i]
            noise = rng.uniform(-cfg.init_noise, cfg.init_noise, n)
            q0[k] = np.clip(self._start_pose + noise, self.pos_min, self.pos_max)
            goal[k] = rng.uniform(self._low, self._high)
        p, idx = self.physics, torch.as_tensor(rows, device=self.device)
        mask = torch.zeros(p.num_worlds, dtype=torch.bool, device=self.device)
        mask[idx] = True
        p.reset(mask)
        q0_t = self._t(q0)
        p.qpos[idx[:, None], self._qpos_adr[None, :]] = q0_t
        p.ctrl[idx[:, None], self._act[None, :]] = q0_t.clamp(self._ctrl_min, self._ctrl_max)
        self.goal[idx] = self._t(goal)
        p.mocap_pos[idx, self._mocap] = self.goal[idx]
        p.forward()

    # --- stepping ------------------------------------------------------------------------
    def apply(self, target: torch.Tensor) -> None:
        """Servo targets ``(N, n)`` (rad), clipped to the servo ranges, for the next steps."""
        self.physics.ctrl[:, self._act] = target.clamp(self._ctrl_min, self._ctrl_max)

    def state(self) -> dict[str, torch.Tensor]:
        """Named state ``(N, size)``: joint_pos (rad), joint_vel (rad/s), ee_pos (m), goal (m)."""
        p = self.physics
        return {
            JOINT_POS.name: p.qpos[:, self._qpos_adr],
            JOINT_VEL.name: p.qvel[:, self._dof_adr],
            EE_POS.name: p.site_xpos[:, self._site].clone(),
            GOAL_FIELD.name: self.goal.clone(),
        }

    def ee_vel(self, joint_vel: torch.Tensor) -> torch.Tensor:
        """End-effector linear velocity ``(N, 3)`` (m/s): the site Jacobian of the arm's joints
        (hinge: axis x (site - anchor); slide: axis) times their velocities."""
        p = self.physics
        axis, anchor = p.xaxis[:, self._joints], p.xanchor[:, self._joints]
        lever = p.site_xpos[:, self._site][:, None, :] - anchor
        cols = torch.where(self._hinge, torch.linalg.cross(axis, lever, dim=-1), axis)
        return torch.einsum("njk,nj->nk", cols, joint_vel * self._moves_ee)

    def info(self, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Costs (kind -> (N,) 0/1) and diagnostics of the current state, as ``ReachEnv``'s."""
        cfg = self.env.config
        q = state[JOINT_POS.name]
        margin = torch.minimum(q - self._pos_min, self._pos_max - q).amin(dim=1)
        ee_speed = torch.linalg.vector_norm(self.ee_vel(state[JOINT_VEL.name]), dim=1)
        distance = torch.linalg.vector_norm(state[EE_POS.name] - state[GOAL_FIELD.name], dim=1)
        cost = {COST_JOINT_LIMIT: (margin < cfg.joint_limit_threshold).float()}
        info: dict[str, Any] = {"cost": cost, "joint_limit_margin": margin}
        if COST_COLLISION in self.cost_kinds:
            contacts = self._arm_contacts()
            cost[COST_COLLISION], info["contacts"] = (contacts > 0).float(), contacts
        cost[COST_SPEED] = (ee_speed > cfg.speed_threshold).float()
        success = distance < cfg.success_threshold
        return {**info, "ee_speed": ee_speed, "distance": distance, "is_success": success}

    def reward(self, info: dict[str, Any]) -> torch.Tensor:
        """``-distance`` ``(N,)``."""
        return -info["distance"]

    # --- internals -----------------------------------------------------------------------
    def _arm_contacts(self) -> torch.Tensor:
        """Active contacts ``(N,)`` int32 that involve an arm geom, per world (no host sync)."""
        p = self.physics
        slots = torch.arange(len(p.contact_world), device=self.device)
        ngeom = len(self._geom_is_arm)
        geom = p.contact_geom.long().clamp(0, ngeom - 1)
        arm = self._geom_is_arm[geom].any(dim=1)
        active = (slots < p.nacon[0]) & ((p.contact_type & 1) != 0) & arm
        world = p.contact_world.long().clamp(0, p.num_worlds - 1)
        counts = torch.zeros(p.num_worlds, dtype=torch.int32, device=self.device)
        return counts.index_add_(0, world, active.to(torch.int32))

    def _t(self, a: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), dtype=torch.float32, device=self.device)
