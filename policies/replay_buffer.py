"""Replay of whole episodes with hindsight goal relabelling (HER, Andrychowicz et al. 2017).

Transitions arrive from a ``sim.vector.VectorEnv`` one batched step at a time; each env's
episode is staged until it ends (the env terminated or truncated and auto-reset), then
committed whole into a ring of episodes, so every stored transition can see its own
episode's future. ``sample`` draws transitions uniformly and, with probability
``future_p = 1 - 1 / (1 + k)``, replaces the goal with an achieved goal from the same
episode at the same step or later ("future" strategy). Rewards are never stored: they are
computed at sampling time from ``(next achieved goal, goal)`` by one reward function, so
original and relabelled transitions are rewarded alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (B, g), (B, g) -> (B,)


class EpisodeBuffer:
    """A ring of ``capacity`` episodes of at most ``max_steps`` transitions each.

    Stored per transition (float32): ``observation`` (obs,), ``desired_goal`` (g,),
    ``action`` (act,), ``next_observation`` (obs,), ``next_achieved_goal`` (g,) and
    ``terminal`` (1.0 when the env terminated: no bootstrapping past it; truncation is not).

    Args:
        capacity: episodes kept; the oldest is overwritten first.
        max_steps: longest episode (the task's ``episode_steps``).
        num_envs: envs whose episodes are staged in parallel.
        obs_size, goal_size, action_size: feature sizes.
    """

    def __init__(
        self, capacity: int, max_steps: int, num_envs: int, obs_size: int, goal_size: int, action_size: int
    ) -> None:
        sizes = {
            "observation": obs_size,
            "desired_goal": goal_size,
            "action": action_size,
            "next_observation": obs_size,
            "next_achieved_goal": goal_size,
            "terminal": 1,
        }
        self.data = {k: np.zeros((capacity, max_steps, n), np.float32) for k, n in sizes.items()}
        self.stage = {k: np.zeros((num_envs, max_steps, n), np.float32) for k, n in sizes.items()}
        self.lengths = np.zeros(capacity, np.int64)  # 0: empty slot
        self.cursor = np.zeros(num_envs, np.int64)  # next step index of each env's episode
        self.capacity, self.max_steps = capacity, max_steps
        self.next_slot = 0
        self.episodes = 0  # episodes committed so far (all time)

    @property
    def transitions(self) -> int:
        """Transitions currently stored in committed episodes."""
        return int(self.lengths.sum())

    def add(
        self,
        obs: dict[str, np.ndarray],
        action: np.ndarray,
        next_obs: dict[str, np.ndarray],
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> int:
        """Stage one vector step and commit the episodes it ended; returns how many ended.

        Args:
            obs: the observation the action was taken in, key -> (N, ...).
            action: (N, act) the stored action (the family's own action space).
            next_obs: the observation the action led to (``infos["final_obs"]``, not the
                auto-reset one), key -> (N, ...).
            terminated, truncated: (N,) bool.
        """
        rows = {
            "observation": obs["observation"],
            "desired_goal": obs["desired_goal"],
            "action": action,
            "next_observation": next_obs["observation"],
            "next_achieved_goal": next_obs["achieved_goal"],
            "terminal": np.asarray(terminated, np.float32)[:, None],
        }
        envs = np.arange(len(self.cursor))
        for key, value in rows.items():
            self.stage[key][envs, self.cursor] = value
        self.cursor += 1
        ended = np.flatnonzero(terminated | truncated | (self.cursor >= self.max_steps))
        for i in ended:
            self._commit(int(i))
        return len(ended)

    def _commit(self, env: int) -> None:
        length, slot = int(self.cursor[env]), self.next_slot
        for key, stage in self.stage.items():
            self.data[key][slot, :length] = stage[env, :length]
        self.lengths[slot] = length
        self.cursor[env] = 0
        self.next_slot = (slot + 1) % self.capacity
        self.episodes += 1

    def sample(
        self, batch_size: int, rng: np.random.Generator, reward_fn: RewardFn, future_p: float
    ) -> dict[str, np.ndarray]:
        """A batch of transitions, uniform over stored ones, with HER "future" goals.

        Returns:
            ``observation`` (B, obs), ``goal`` (B, g), ``action`` (B, act),
            ``next_observation`` (B, obs), ``reward`` (B,), ``terminal`` (B,), plus
            ``episode`` (B,) slot and ``step`` (B,) index (for inspection), ``relabelled``
            (B,) bool.
        """
        if self.transitions == 0:
            raise RuntimeError("EpisodeBuffer.sample: no complete episode stored yet")
        cum = np.cumsum(self.lengths)
        flat = rng.integers(0, cum[-1], batch_size)
        ep = np.searchsorted(cum, flat, side="right")  # episode slot holding each draw
        t = flat - (cum[ep] - self.lengths[ep])  # step within that episode
        future = t + (rng.random(batch_size) * (self.lengths[ep] - t)).astype(np.int64)  # in [t, len)
        relabel = rng.random(batch_size) < future_p
        goal = np.where(
            relabel[:, None], self.data["next_achieved_goal"][ep, future], self.data["desired_goal"][ep, t]
        )
        achieved = self.data["next_achieved_goal"][ep, t]
        return {
            "observation": self.data["observation"][ep, t],
            "goal": goal,
            "action": self.data["action"][ep, t],
            "next_observation": self.data["next_observation"][ep, t],
            "reward": np.asarray(reward_fn(achieved, goal), np.float32),
            "terminal": self.data["terminal"][ep, t, 0],
            "episode": ep,
            "step": t,
            "relabelled": relabel,
        }

    # --- checkpointing -------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """The committed episodes (slots in use only), their lengths and the ring position,
        for ``safetensors``. Staged (unfinished) episodes are left out: a resumed run restarts
        its envs' episodes."""
        used = min(self.episodes, self.capacity)
        arrays = {f"data.{k}": np.ascontiguousarray(v[:used]) for k, v in self.data.items()}
        arrays["lengths"] = self.lengths[:used].copy()
        arrays["ring"] = np.array([self.next_slot, self.episodes], np.int64)
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray], source: str) -> None:
        """Restore what ``state_arrays`` returned; ``source`` names the file in errors."""
        for key, store in self.data.items():
            name = f"data.{key}"
            if name not in arrays:
                raise ValueError(f"{source}: missing tensor {name!r}")
            got = arrays[name]
            if got.ndim != 3 or got.shape[0] > self.capacity or got.shape[1:] != store.shape[1:]:
                raise ValueError(
                    f"{source}: {name!r} has shape {got.shape}, this replay holds up to "
                    f"{(self.capacity, *store.shape[1:])} (buffer_episodes, episode steps, size)"
                )
        used = arrays["data.observation"].shape[0]
        for key, store in self.data.items():
            store[:used] = arrays[f"data.{key}"]
            store[used:] = 0.0
        self.lengths[:] = 0
        self.lengths[:used] = arrays["lengths"]
        self.next_slot, self.episodes = (int(x) for x in arrays["ring"])
        self.next_slot %= self.capacity
        self.cursor[:] = 0


class RewardEpisodeBuffer(EpisodeBuffer):
    """An ``EpisodeBuffer`` that also stores each transition's reward (``info["reward"]``),
    for tasks without a goal, whose reward no goal can recompute; ``sample`` returns it."""

    def __init__(self, capacity: int, max_steps: int, num_envs: int, *sizes: int) -> None:
        super().__init__(capacity, max_steps, num_envs, *sizes)
        self.data["reward"] = np.zeros((capacity, max_steps, 1), np.float32)
        self.stage["reward"] = np.zeros((num_envs, max_steps, 1), np.float32)

    def stage_rewards(self, reward: np.ndarray) -> None:
        """The rewards (N,) of the vector step about to be ``add``-ed."""
        self.stage["reward"][np.arange(len(self.cursor)), self.cursor, 0] = reward

    def sample(
        self, batch_size: int, rng: np.random.Generator, reward_fn: RewardFn, future_p: float
    ) -> dict[str, np.ndarray]:
        """``EpisodeBuffer.sample`` with the stored rewards (``reward_fn`` is not called)."""
        batch = super().sample(batch_size, rng, lambda achieved, goal: np.zeros(len(achieved)), future_p)
        batch["reward"] = self.data["reward"][batch["episode"], batch["step"], 0]
        return batch
