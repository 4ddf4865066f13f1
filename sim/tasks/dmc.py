"""Any ``dm_control.suite`` task as a Spine goal-env: ``sim.make("dmc", domain="walker", task="walk")``.

Observations are dm_control's named observations, flattened, in dm_control's order; actions
are its normalized motor commands (``kind="normalized"``, unit ``"1"``); the reward is its
reward. ``reset(seed=s)`` starts the episode ``suite.load(..., task_kwargs={"random": s})`` does.

Goals: dm_control tasks have none, except where the reward is "geom A within a radius of geom
B" (``GOAL_DOMAINS``: reacher's finger and target). There ``achieved_goal`` / ``desired_goal``
are those xy positions (m) and ``compute_reward`` recomputes dm_control's reward from them, so
HER relabelling is exact. Elsewhere the goal field has size 0, ``compute_reward`` returns the
reward recorded in ``info`` (it depends on no goal), and ``info["distance"]`` is
``1 - reward`` (dm_control rewards lie in [0, 1]). The default task is reacher/easy because
the registry-wide contract test checks that a seed changes the goal, which only a task with a
goal can meet honestly; cartpole and the rest are one keyword away.

Actions (``kind="normalized"``): a normalized command lies in ``[-max_delta, max_delta]``
per component, ``max_delta`` being half the width of dm_control's range for it. Every suite
domain's range is centred on 0 except quadruped's (e.g. ``[-1, 1.1]``); there the adapter
adds the range's centre before passing the command on, so the spec's symmetric range is
exact everywhere. ``state()`` also reports ``joint_pos`` / ``joint_vel``, the actuated
joints' positions and velocities (an actuator on a tendon or site: its length and
velocity), for logs; no observation uses them.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from sim.goal_env import GoalEnv, goal_distance
from sim.registry import register
from sim.spec import ActionSpec, FieldSpec, TaskSpec

TASK_NAME = "dmc"
COST_JOINT_LIMIT, COST_SPEED = "joint_limit", "speed"
JOINT_POS, JOINT_VEL = "joint_pos", "joint_vel"  # state fields for logs (sim.spec.JOINT_POS)
NO_GOAL = FieldSpec("goal", 0, "1", "dm_control tasks have no goal (see sim/tasks/dmc.py)")


class GoalGeoms(NamedTuple):
    """A domain whose reward is 1 when two geoms' xy centres (m, world frame) are within
    their summed radii: ``achieved`` is the achieved goal's geom, ``desired`` the goal's."""

    achieved: str
    desired: str


GOAL_DOMAINS: dict[str, GoalGeoms] = {"reacher": GoalGeoms("finger", "target")}


@dataclass(frozen=True)
class DmcConfig:
    """A dm_control suite task and the adapter's settings; ``DmcEnv(**overrides)`` sets fields."""

    spec_fields: ClassVar[tuple[str, ...]] = ("domain", "task", "action_repeat")
    """Fields that shape the task spec (robot, fields, rates): a bundle runs in sim
    (``spine-run``, the export's sim check) with the values it was trained with."""

    domain: str = "reacher"
    """``dm_control.suite`` domain, e.g. ``"cartpole"``, ``"walker"``, ``"reacher"``."""
    task: str = "easy"
    """Task of that domain, e.g. ``"swingup"``, ``"walk"``, ``"easy"``."""
    episode_steps: int = 1000
    """Control steps per episode (the suite's own episodes are 1000 dm_control steps)."""
    action_repeat: int = 1
    """dm_control steps per control step, same action; the reward is their sum."""
    success_reward: float = 0.9
    """Tasks without a goal: a step whose reward (per dm_control step) reaches this succeeds."""
    speed_threshold: float = 20.0
    """``speed`` cost is 1 when any actuated joint moves faster than this (rad/s or m/s)."""
    joint_limit_threshold: float = 0.05
    """``joint_limit`` cost is 1 when an actuated limited joint is closer than this to a limit."""
    camera: int = 0
    """Camera id ``render`` uses (-1: MuJoCo's free camera)."""

    def __post_init__(self) -> None:
        for name in ("episode_steps", "action_repeat", "speed_threshold", "joint_limit_threshold"):
            if getattr(self, name) <= 0:
                raise ValueError(f"DmcConfig.{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 < self.success_reward <= 1.0:
            raise ValueError(f"DmcConfig.success_reward must be in (0, 1], got {self.success_reward}")


def _load_suite(cfg: DmcConfig) -> Any:
    """``suite.load`` for ``cfg``'s domain and task (no time limit: ``DmcEnv`` truncates)."""
    if "dm_control" not in sys.modules:  # dm_control picks its GL backend on import
        from sim.video import select_gl

        select_gl()
    try:
        from dm_control import suite
    except ImportError as e:
        raise ImportError(f"the dmc task needs dm_control: pip install 'spine[sim]' ({e})") from e
    from sim.video import close_renderers_first_at_exit

    close_renderers_first_at_exit()  # dm_control's import may have registered eglTerminate
    domains = sorted({d for d, _ in suite.ALL_TASKS})
    if cfg.domain not in domains:
        raise ValueError(
            f"DmcConfig.domain={cfg.domain!r} is not a dm_control.suite domain; domains: {domains}"
        )
    tasks = sorted(t for d, t in suite.ALL_TASKS if d == cfg.domain)
    if cfg.task not in tasks:
        raise ValueError(f"DmcConfig.task={cfg.task!r} is not a task of {cfg.domain!r}; tasks: {tasks}")
    return suite.load(cfg.domain, cfg.task, task_kwargs={"time_limit": math.inf})


class Actuated(NamedTuple):
    """What one action component drives."""

    name: str
    low: float  # position limits (rad or m); -inf / inf where unlimited
    high: float
    dof: int | None  # velocity address; None for a tendon or site actuator
    qpos: int | None  # position address; None likewise
    actuator: int  # actuator id (its length and velocity where there is no joint)


def _actuated(model: Any) -> list[Actuated]:
    """One entry per actuator, in dm_control's action order: its joint, or, for an actuator on
    a tendon or site (no single joint), the actuator itself, by name and unlimited."""
    out = []
    for i in range(model.nu):
        if model.actuator_trntype[i] != 0:  # not mjTRN_JOINT
            out.append(Actuated(model.actuator(i).name or f"actuator{i}", -math.inf, math.inf, None, None, i))
            continue
        j = model.joint(int(model.actuator_trnid[i, 0]))
        low, high = (float(x) for x in j.range) if model.jnt_limited[j.id] else (-math.inf, math.inf)
        out.append(Actuated(j.name, low, high, int(j.dofadr[0]), int(j.qposadr[0]), i))
    return out


@register(TASK_NAME, config=DmcConfig)
class DmcEnv(GoalEnv):
    """A dm_control suite task behind the Gymnasium goal-env API, with Spine's task spec."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}  # noqa: RUF012
    task_name = TASK_NAME
    config_class = DmcConfig

    def _load(self) -> None:
        cfg = self.config
        self.dm_env = _load_suite(cfg)
        self.physics = self.dm_env.physics
        self._model, self._data = self.physics.model.ptr, self.physics.data.ptr
        if not -1 <= cfg.camera < self._model.ncam:
            raise ValueError(
                f"DmcConfig.camera={cfg.camera} not in [-1, {self._model.ncam}) for {cfg.domain}"
            )
        self._goal = GOAL_DOMAINS.get(cfg.domain)
        self._obs: dict[str, np.ndarray] = {}
        self._centre = self._action_range()[0]  # added to every command (0 but for quadruped)

    def _action_range(self) -> tuple[np.ndarray, np.ndarray]:
        """dm_control's action range: (centre, half width), float64 ``(n_joints,)``."""
        act = self.dm_env.action_spec()
        low, high = (np.broadcast_to(b, act.shape).astype(np.float64) for b in (act.minimum, act.maximum))
        return (low + high) / 2.0, (high - low) / 2.0

    def _action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``[-max_delta, max_delta]``: dm_control's range less its centre."""
        half = self._action_range()[1].astype(np.float32)
        return -half, half

    def _build_spec(self) -> TaskSpec:
        """Fields, joints and rates read from dm_control's specs and the MuJoCo model."""
        cfg, m = self.config, self._model
        joints = _actuated(m)
        self._dofs = np.array([j.dof for j in joints if j.dof is not None], dtype=int)
        self._joint_rows = [(j.qpos, j.dof, j.actuator) for j in joints]
        limited = [j for j in joints if j.qpos is not None and math.isfinite(j.low)]
        self._lim_qpos = np.array([j.qpos for j in limited], dtype=int)
        self._lim_lo, self._lim_hi = np.array([j.low for j in limited]), np.array([j.high for j in limited])
        observation = tuple(
            FieldSpec(k, int(np.prod(s.shape)), "mixed", f"dm_control observation {k!r} {s.shape}, flattened")
            for k, s in self.dm_env.observation_spec().items()
        )
        if self._goal is None:
            achieved = goal = NO_GOAL
            threshold = round(1.0 - cfg.success_reward, 12)
        else:
            achieved = FieldSpec(f"{self._goal.achieved}_pos", 2, "m", "achieved goal: xy, world frame")
            goal = FieldSpec(f"{self._goal.desired}_pos", 2, "m", "desired goal: xy, world frame")
            self._goal_geoms = (m.geom(self._goal.achieved).id, m.geom(self._goal.desired).id)
            threshold = float(m.geom_size[list(self._goal_geoms), 0].sum())  # reward: within radii
        if clash := {achieved.name, goal.name, JOINT_POS, JOINT_VEL} & {f.name for f in observation}:
            raise ValueError(f"dmc: state field name(s) {sorted(clash)} clash with observations")
        self.achieved_field, self.goal_field = achieved, goal
        half_range = self._action_range()[1]
        physics_hz = round(1.0 / m.opt.timestep, 6)
        substeps = round(self.dm_env.control_timestep() / m.opt.timestep)
        return TaskSpec(
            name=TASK_NAME,
            robot=f"dm_control/{cfg.domain}",
            joint_names=tuple(j.name for j in joints),
            joint_pos_min=tuple(j.low for j in joints),
            joint_pos_max=tuple(j.high for j in joints),
            joint_vel_max=(math.inf,) * len(joints),  # dm_control declares no velocity limits
            observation=observation,
            goal=goal,
            # Normalized commands have no measured position to step from: they lie in
            # [-max_delta, max_delta], half the width of dm_control's range (its centre is
            # added in step), the scale of a tanh policy head and the safety stage's bounds.
            action=ActionSpec("normalized", "1", tuple(float(x) for x in half_range)),
            control_hz=round(physics_hz / (substeps * cfg.action_repeat), 6),
            physics_hz=physics_hz,
            episode_steps=cfg.episode_steps,
            success_threshold=threshold,
            cost_kinds=((COST_JOINT_LIMIT,) if limited else ()) + (COST_SPEED,),
        )

    # --- gymnasium API -----------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode as dm_control does; ``seed`` reseeds the task's RandomState."""
        super().reset(seed=seed)
        if options:
            raise ValueError(f"dmc reset: unknown option(s) {sorted(options)}; it takes none")
        if seed is not None:
            self.dm_env.task.random.seed(seed)
        self._obs = dict(self.dm_env.reset().observation)
        self._steps = 0
        return self._observe(), self._info(float(self.dm_env.task.get_reward(self.physics)))

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply normalized commands ``(n_joints,)`` for ``action_repeat`` dm_control steps.

        Reward: the sum of dm_control's rewards. Terminates where dm_control does (discount
        0); truncates after ``episode_steps``.
        """
        cmd = self._check_action(action) + self._centre
        reward, terminated = 0.0, False
        for _ in range(self.config.action_repeat):
            ts = self.dm_env.step(cmd)
            reward += float(ts.reward or 0.0)
            if ts.last():
                terminated = ts.discount == 0
                break
        self._obs = dict(ts.observation)
        self._steps += 1
        truncated = not terminated and self._steps >= self.config.episode_steps
        return self._observe(), reward, terminated, truncated, self._info(reward)

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> Any:
        """The reward of one dm_control step from goals ``(..., 2)`` (goal domains): 1 within
        ``success_threshold`` m, else 0, like dm_control's (the step reward when
        ``action_repeat`` is 1). Without a goal the reward depends on none: returns
        ``info["reward"]`` (a dict) or an array of them (a sequence of dicts).
        """
        if self._goal is None:
            return info["reward"] if isinstance(info, dict) else np.array([i["reward"] for i in info])
        return (goal_distance(achieved_goal, desired_goal) <= self._spec.success_threshold).astype(np.float64)

    def _render_model(self) -> Any:
        return self._model

    def _render_scene(self) -> tuple[Any, Any]:
        return self._data, self.config.camera

    # --- state, observation, costs -----------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Named raw state (float64): dm_control's observations, flattened, the goal fields
        (xy positions in m for goal domains, empty otherwise), and ``joint_pos`` /
        ``joint_vel`` (n_joints,) of the actuated joints (rad or m, per s), for logs."""
        state = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in self._obs.items()}
        d = self._data
        state[JOINT_POS] = np.array(
            [d.qpos[q] if q is not None else d.actuator_length[a] for q, _, a in self._joint_rows]
        )
        state[JOINT_VEL] = np.array(
            [d.qvel[v] if v is not None else d.actuator_velocity[a] for _, v, a in self._joint_rows]
        )
        if self._goal is None:
            state[NO_GOAL.name] = np.zeros(0)
        else:
            achieved, desired = self._goal_geoms
            state[self.achieved_field.name] = self._data.geom_xpos[achieved, :2].copy()
            state[self._spec.goal.name] = self._data.geom_xpos[desired, :2].copy()
        return state

    def _info(self, reward: float) -> dict[str, Any]:
        """Costs and diagnostics after a step whose (summed) reward was ``reward``."""
        cfg, spec = self.config, self._spec
        speed = float(np.abs(self._data.qvel[self._dofs]).max(initial=0.0))
        cost = {COST_SPEED: float(speed > cfg.speed_threshold)}
        if COST_JOINT_LIMIT in spec.cost_kinds:
            q = self._data.qpos[self._lim_qpos]
            margin = float(np.minimum(q - self._lim_lo, self._lim_hi - q).min())
            cost[COST_JOINT_LIMIT] = float(margin < cfg.joint_limit_threshold)
        if self._goal is None:  # no goal: how far the reward is from dm_control's best, 1
            distance = 1.0 - reward / cfg.action_repeat
            success = reward / cfg.action_repeat >= cfg.success_reward
        else:
            state = self.state()
            distance = float(np.linalg.norm(state[self.achieved_field.name] - state[spec.goal.name]))
            success = distance <= spec.success_threshold
        return {
            "cost": cost,
            "reward": reward,
            "joint_speed_max": speed,
            "distance": distance,
            "is_success": bool(success),
        }
