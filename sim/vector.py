"""Batched stepping: N copies of a task stepped together, their physics on C threads.

``VectorEnv("reach", 16, threads=2)`` builds 16 envs with ``sim.make`` and steps them as one.
Every env keeps its own task object and ``MjData``; with ``threads > 1`` the physics of a step
runs on worker threads (MuJoCo releases the GIL) while the caller's thread runs the tasks'
Python (see ``sim.vector_split``): results are bit-identical to stepping the single envs with
the same seeds and actions, at any thread count. Any registered task works; a task whose
physics lacks that interface (``sim.vector_split.splittable``) is stepped on the caller's
thread.

Auto-reset convention ("same step", as Gymnasium's ``AutoresetMode.SAME_STEP``): when env
``i`` terminates or truncates in ``step``, it is reset at once (``env.reset()`` with no seed,
so its own random stream continues) and row ``i`` of the returned observation is the first
observation of its new episode. The observation the action led to is in
``infos["final_obs"]``, whose rows hold the next observation of *every* env (for an env
that did not finish it equals the returned row), so a trainer can store
``(obs, action, reward, infos["final_obs"])`` uniformly; ``infos["_final_obs"]`` (N,) bool
marks the rows that differ. All other ``infos`` keys describe the transition (the last
step's info, costs included), stacked over envs; the info of the reset is not returned.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gymnasium as gym
import numpy as np

import sim
from sim.spec import TaskSpec
from sim.vector_split import SplitStep, splittable

Obs = dict[str, np.ndarray]
StepResult = tuple[Obs, float, bool, bool, dict[str, Any]]


class VectorEnv:
    """``num_envs`` copies of a task, stepped as one; arrays are stacked on a leading axis N.

    Args:
        task: registry name, e.g. ``"reach"`` (positional, as is ``num_envs``: dmc has a config
            field named ``task``, which goes in ``task_kwargs``).
        num_envs: number of envs N.
        threads: threads that step them (the caller's included); 1 steps in the caller.
        randomization: optional ``sim.randomization.RandomizationConfig``; env ``i`` is then
            wrapped in ``Randomized(env, randomization, seed=i)``.
        **task_kwargs: task config overrides, passed to ``sim.make``.
    """

    def __init__(
        self,
        task: str,
        num_envs: int,
        /,
        threads: int = 1,
        randomization: Any = None,
        **task_kwargs: Any,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"VectorEnv: num_envs must be >= 1, got {num_envs}")
        envs = [sim.make(task, **task_kwargs) for _ in range(num_envs)]
        if randomization is not None:
            from sim.randomization import Randomized

            envs = [Randomized(env, randomization, seed=i) for i, env in enumerate(envs)]
        self._setup(envs, threads)

    @classmethod
    def from_envs(cls, envs: Sequence[gym.Env], threads: int = 1) -> VectorEnv:
        """A vector env over already built envs of one task (e.g. wrapped ones)."""
        self = cls.__new__(cls)
        self._setup(list(envs), threads)
        return self

    def _setup(self, envs: list[gym.Env], threads: int) -> None:
        if not envs:
            raise ValueError("VectorEnv: needs at least one env")
        if threads < 1:
            raise ValueError(f"VectorEnv: threads must be >= 1, got {threads}")
        self.envs = envs
        self.num_envs = len(envs)
        self.threads = min(threads, self.num_envs)
        self.single_action_space: gym.spaces.Box = envs[0].action_space
        self.single_observation_space: gym.spaces.Space = envs[0].observation_space
        low, high = self.single_action_space.low, self.single_action_space.high
        self.action_space = gym.spaces.Box(
            np.broadcast_to(low, (self.num_envs, *low.shape)),
            np.broadcast_to(high, (self.num_envs, *high.shape)),
            dtype=self.single_action_space.dtype,
        )
        self._splits: list[SplitStep] = []
        self._pool: ThreadPoolExecutor | None = None
        if self.threads > 1 and all(splittable(env) for env in envs):
            self._splits = [SplitStep(env, self.physics_steps_per_step) for env in envs]
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="vector-physics")

    # --- properties ----------------------------------------------------------------------
    @property
    def task_spec(self) -> TaskSpec:
        """The task spec of the (identical) envs."""
        return self.envs[0].get_wrapper_attr("task_spec")

    @property
    def physics_steps_per_step(self) -> int:
        """Physics steps in one control step of one env: ``physics_hz / control_hz``."""
        spec = self.task_spec
        return round(spec.physics_hz / spec.control_hz)

    @property
    def threaded(self) -> bool:
        """Whether the physics runs on worker threads (``threads > 1`` and a splittable task)."""
        return bool(self._splits)

    # --- API -----------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Obs:
        """Reset every env; env ``i`` gets ``seed + i`` (or no seed when ``seed`` is None).

        Returns:
            Stacked observations: key -> ``(N, ...)`` (``observation`` (N, obs),
            ``achieved_goal`` (N, goal), ``desired_goal`` (N, goal) for goal envs).
        """
        for split in self._splits:
            split.cancel()
        rows = [env.reset(seed=None if seed is None else seed + i)[0] for i, env in enumerate(self.envs)]
        return _stack(rows)

    def step(self, actions: np.ndarray) -> tuple[Obs, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env with its row of ``actions`` ``(N, act)``; finished envs auto-reset.

        Returns:
            ``obs`` key -> (N, ...) (reset observation where an env finished), ``reward``
            (N,) float64, ``terminated`` (N,) bool, ``truncated`` (N,) bool, ``infos``: the
            steps' infos stacked key by key (nested dicts such as ``cost`` stay dicts of
            (N,) arrays), plus ``final_obs`` (key -> (N, ...), the observation after the
            action) and ``_final_obs`` (N,) bool. See the module docstring.

        An exception from a task (e.g. a non-finite action) leaves the other envs
        part-stepped: ``reset`` before stepping again.
        """
        actions = np.asarray(actions)
        expected = (self.num_envs, *self.single_action_space.shape)
        if actions.shape != expected:
            raise ValueError(f"VectorEnv.step: actions must have shape {expected}, got {actions.shape}")
        results: list[StepResult] = [None] * self.num_envs  # type: ignore[list-item]
        finals: dict[int, Obs] = {}

        def finish(i: int) -> None:
            env = self.envs[i]
            obs, reward, terminated, truncated, info = env.step(actions[i])
            if self._splits:
                self._splits[i].check_consumed()
            if terminated or truncated:
                finals[i] = obs
                obs = env.reset()[0]
            results[i] = (obs, reward, terminated, truncated, info)

        if self._splits:
            self._step_split(actions, finish)
        else:
            for i in range(self.num_envs):
                finish(i)
        obs = _stack([r[0] for r in results])
        info = _stack_infos([r[4] for r in results])
        final_obs = {key: value.copy() for key, value in obs.items()}
        for i, row in finals.items():
            for key, value in row.items():
                final_obs[key][i] = value
        info["final_obs"] = final_obs
        info["_final_obs"] = np.array([i in finals for i in range(self.num_envs)])
        reward = np.array([r[1] for r in results], dtype=np.float64)
        terminated = np.array([r[2] for r in results], dtype=bool)
        truncated = np.array([r[3] for r in results], dtype=bool)
        return obs, reward, terminated, truncated, info

    def state(self) -> dict[str, np.ndarray]:
        """Named raw state of every env, stacked: name -> ``(N, size)`` float64."""
        return _stack([env.get_wrapper_attr("state")() for env in self.envs])

    def close(self) -> None:
        """Stop the threads, give the physics their own ``step`` back, close the envs."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for split in self._splits:
            split.remove()
        self._splits = []
        for env in self.envs:
            env.close()

    def __enter__(self) -> VectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------
    def _step_split(self, actions: np.ndarray, finish: Any) -> None:
        """Prepare every env here; the workers and this thread then take envs to advance
        from one shared iterator, and this thread runs ``finish(i)`` (the task's Python)
        for each env whose physics is done, advancing one itself only when none is waiting.

        Measured on 2 cores, this beats a fixed, cost-balanced share for this thread: while
        it runs physics it leaves the GIL to the workers, which then never queue for it.
        Which thread steps an env never changes its result."""
        assert self._pool is not None
        ready = [i for i, split in enumerate(self._splits) if split.prepare(actions[i])]
        todo = iter(ready)  # next() on a list iterator is atomic under the GIL
        done: queue.SimpleQueue[tuple[int, BaseException | None]] = queue.SimpleQueue()
        workers = [self._pool.submit(self._advance, todo, done) for _ in range(self.threads - 1)]
        try:
            for i in sorted(set(range(self.num_envs)) - set(ready)):
                finish(i)  # not split: stepped in full here
            errors: list[BaseException] = []
            for _ in ready:
                try:
                    i, error = done.get_nowait()
                except queue.Empty:
                    i = next(todo, None)
                    if i is None:
                        i, error = done.get()
                    else:
                        self._splits[i].advance()
                        error = None
                if error is not None:
                    errors.append(error)
                elif not errors:
                    finish(i)
            if errors:
                raise errors[0]
        finally:  # never leave a worker running on an env when this part fails
            for future in workers:
                future.exception()

    def _advance(self, todo: Iterator[int], done: queue.SimpleQueue) -> None:
        """Worker: advance envs taken from ``todo`` and report each on ``done``."""
        for i in todo:
            try:
                self._splits[i].advance()
                done.put((i, None))
            except BaseException as error:  # handed to the caller's thread, raised there
                done.put((i, error))


def _stack(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """``[{key: (...)}] * N`` -> ``{key: (N, ...)}``, each key's dtype kept."""
    return {key: np.stack([row[key] for row in rows]) for key in rows[0]}


def _stack_infos(infos: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack info dicts key by key: scalars -> ``(N,)`` arrays, dicts recursively, other
    values -> ``(N, ...)`` arrays where numpy can stack them, else lists."""
    out: dict[str, Any] = {}
    for key in infos[0]:
        values = [info[key] for info in infos]
        if isinstance(values[0], Mapping):
            out[key] = _stack_infos(values)
            continue
        try:
            out[key] = np.asarray(values)
        except ValueError:  # ragged values
            out[key] = values
    return out
