"""Simulation data for the safety critic: nominal, perturbed and adversarial behaviour, so that
violations are covered (Recovery RL pre-trains Q_risk offline on data that contains them).

Each episode runs the task's scripted expert, switches to an adversary for a segment, then
back to the expert (so the data also shows recoveries). Adversaries:

- ``noisy``: expert + Gaussian noise (``noise`` rad)
- ``random``: uniform targets within ``random_scale`` action deltas of the measured position
- ``flip``: the expert's step with its sign flipped
- ``straight``: straight-line IK at the goal, through the obstacles
- ``obstacle``: straight-line IK at an obstacle's center (or into the table: arm7's in front
  of it; on a configured arm, the ground under its workspace)
- ``jump``: a target at a joint-limit corner, drawn per step

Costs are the task's (``info["cost"]``, any kind > 0 counts as a violation, ``c = 1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

import sim
from sim.experts.reach_expert import ReachExpert
from sim.observation import build_observation

ADVERSARIES = ("noisy", "random", "flip", "straight", "obstacle", "jump")
TABLE_XY = ((0.3, -0.3), (0.7, 0.3))  # where ``obstacle`` aims into arm7's table (m, xy box)


@dataclass
class CriticDataConfig:
    """How much and what kind of data ``collect_critic_data`` records."""

    episodes: int = 200  # episodes to record
    episode_steps: int = 80  # control steps per episode (shorter than the task's: the
    # interesting part is around the adversarial segment)
    adversarial_fraction: float = 0.8  # episodes with an adversarial segment (rest: expert only)
    segment_min: int = 5  # shortest adversarial segment (steps)
    segment_max: int = 30  # longest adversarial segment (steps)
    noise: float = 0.08  # std of the ``noisy`` adversary's noise (rad)
    expert_noise: float = 0.01  # std of the noise on the expert's own steps (rad)
    random_scale: float = 4.0  # ``random`` draws within this many action deltas (max_delta)
    seed: int = 0  # episode i uses seed + i


@dataclass
class CriticData:
    """Transitions ``(s, a, c, s', a')`` at the control rate, arrays over N steps.

    Attributes:
        obs: ``(N, D)`` float32 policy observations (the task's observation fields).
        act: ``(N, n)`` float32 joint targets applied (rad).
        cost: ``(N,)`` float32, 1 if any safety cost was reported at the end of the step.
        next_obs: ``(N, D)`` float32.
        next_act: ``(N, n)`` float32 the action taken at ``next_obs`` (the same action at an
            episode's last step).
        episode: ``(N,)`` int64 episode index; steps are in order within an episode.
        behavior: ``(N,)`` int64 index into ``("expert", *ADVERSARIES)``.
    """

    obs: np.ndarray
    act: np.ndarray
    cost: np.ndarray
    next_obs: np.ndarray
    next_act: np.ndarray
    episode: np.ndarray
    behavior: np.ndarray

    def __len__(self) -> int:
        return len(self.cost)

    def violation_within(self, horizon: int) -> np.ndarray:
        """``(N,)`` 1 where a violation happens within ``horizon`` steps from each step
        (this one included, within the episode): the Monte Carlo label for calibration."""
        out = np.zeros(len(self), dtype=np.float32)
        for ep in np.unique(self.episode):
            idx = np.flatnonzero(self.episode == ep)
            c = self.cost[idx]
            windows = np.lib.stride_tricks.sliding_window_view(np.pad(c, (0, horizon - 1)), horizon)
            out[idx] = windows.max(axis=1)
        return out

    def split(self, val_fraction: float, seed: int) -> tuple[CriticData, CriticData]:
        """Train / validation split by episode."""
        eps = np.unique(self.episode)
        rng = np.random.default_rng(seed)
        val = rng.choice(eps, max(1, round(len(eps) * val_fraction)), replace=False)
        mask = np.isin(self.episode, val)
        return self._take(~mask), self._take(mask)

    def _take(self, mask: np.ndarray) -> CriticData:
        return CriticData(**{k: v[mask] for k, v in vars(self).items()})

    def save(self, path: str) -> None:
        np.savez_compressed(path, **vars(self))

    @classmethod
    def load(cls, path: str) -> CriticData:
        with np.load(path, allow_pickle=False) as z:
            missing = {"obs", "act", "cost", "next_obs", "next_act", "episode", "behavior"} - set(z.files)
            if missing:
                raise ValueError(f"{path}: critic data lacks {sorted(missing)}")
            return cls(**{k: z[k] for k in z.files})


class _Behaviors:
    """The expert and the adversaries for one env."""

    def __init__(self, env: Any, cfg: CriticDataConfig, rng: np.random.Generator) -> None:
        self.env, self.cfg, self.rng = env, cfg, rng
        self.expert = sim.expert_class(env.task_spec.name)(env)
        self.straight = ReachExpert(env)
        self.physics = env.unwrapped.physics
        self.max_delta = env.unwrapped.config.max_delta
        self.target = np.zeros(3)
        robot = env.unwrapped.robot
        configured = bool(getattr(env.unwrapped.config, "robot", ""))
        self.table_xy = (robot.WORKSPACE_LOW[:2], robot.WORKSPACE_HIGH[:2]) if configured else TABLE_XY

    def start_segment(self, state: dict[str, np.ndarray]) -> None:
        """Draw the ``obstacle`` adversary's target for the coming segment."""
        centers = [state[k] for k in ("obstacle_centers", "obstacle_center") if k in state]
        boxes = np.asarray(centers[0]).reshape(-1, 3) if centers else np.zeros((0, 3))
        boxes = boxes[np.any(boxes != 0, axis=1)]
        if len(boxes) and self.rng.random() < 0.7:
            self.target = boxes[self.rng.integers(len(boxes))].copy()
        else:  # into the table (the ground) in front of the arm
            (x0, y0), (x1, y1) = self.table_xy
            self.target = np.array([self.rng.uniform(x0, x1), self.rng.uniform(y0, y1), -0.05])

    def act(self, name: str, state: dict[str, np.ndarray]) -> np.ndarray:
        q = np.asarray(state["joint_pos"], dtype=np.float64)
        rng, cfg = self.rng, self.cfg
        if name == "expert":
            return self.expert.act(state) + rng.normal(0.0, cfg.expert_noise, q.size)
        if name == "noisy":
            return self.expert.act(state) + rng.normal(0.0, cfg.noise, q.size)
        if name == "random":
            return q + rng.uniform(-1.0, 1.0, q.size) * cfg.random_scale * self.max_delta
        if name == "flip":
            return q - (self.expert.act(state) - q)
        if name == "straight":
            return self.straight.act(state)
        if name == "obstacle":
            return self.straight.act({**state, "goal": self.target})
        if name == "jump":
            return np.where(rng.random(q.size) < 0.5, self.physics.pos_min, self.physics.pos_max)
        raise ValueError(f"unknown behavior {name!r}; known: expert, {', '.join(ADVERSARIES)}")


def collect_critic_data(
    task: str, cfg: CriticDataConfig, task_kwargs: dict[str, Any] | None = None
) -> CriticData:
    """Run ``cfg.episodes`` episodes of ``task`` (its expert + adversarial segments)."""
    env = sim.make(task, **{"episode_steps": cfg.episode_steps, **(task_kwargs or {})})
    spec = env.task_spec
    rng = np.random.default_rng(cfg.seed)
    behaviors = _Behaviors(env, cfg, rng)
    names = ("expert", *ADVERSARIES)
    rows: dict[str, list[Any]] = {k: [] for k in ("obs", "act", "cost", "next_obs", "episode", "behavior")}
    for ep in tqdm(range(cfg.episodes), desc=f"critic data {task}", unit="episode", mininterval=2.0):
        env.reset(seed=cfg.seed + ep)
        state = env.state()
        adversary = ADVERSARIES[rng.integers(len(ADVERSARIES))]
        lo = int(rng.integers(0, max(1, cfg.episode_steps - cfg.segment_min)))
        hi = lo + int(rng.integers(cfg.segment_min, cfg.segment_max + 1))
        if rng.random() >= cfg.adversarial_fraction:
            lo = hi = cfg.episode_steps
        for t in range(cfg.episode_steps):
            if t == lo:
                behaviors.start_segment(state)
            name = adversary if lo <= t < hi else "expert"
            obs = build_observation(state, spec.observation)
            action = np.clip(behaviors.act(name, state), -10.0, 10.0)
            _, _, _, _, info = env.step(action)
            state = env.state()
            rows["obs"].append(obs)
            rows["act"].append(action.astype(np.float32))
            rows["cost"].append(float(any(v > 0 for v in info["cost"].values())))
            rows["next_obs"].append(build_observation(state, spec.observation))
            rows["episode"].append(ep)
            rows["behavior"].append(names.index(name))
    act = np.stack(rows["act"])
    episode = np.asarray(rows["episode"], dtype=np.int64)
    next_act = act.copy()
    same = episode[1:] == episode[:-1]
    next_act[:-1][same] = act[1:][same]
    return CriticData(
        obs=np.stack(rows["obs"]),
        act=act,
        cost=np.asarray(rows["cost"], dtype=np.float32),
        next_obs=np.stack(rows["next_obs"]),
        next_act=next_act,
        episode=episode,
        behavior=np.asarray(rows["behavior"], dtype=np.int64),
    )
