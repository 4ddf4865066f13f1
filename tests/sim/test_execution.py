"""The executors that run a policy's graphs (``sim.chunking``, ``sim.execution``), numpy only:
the runtime runs them over onnxruntime sessions, training-time evaluation over torch."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from sim.chunking import RecedingHorizon, TemporalEnsemble
from sim.contract import PolicyContract, TensorSpec
from sim.evaluate import evaluate_agent
from sim.execution import ChunkPolicy, HierarchicalPolicy, StepPolicy, goal_env_inputs, make_agent
from tests.sim.toy import TOY_SPEC

OBS, GOAL = TensorSpec("observation", (1, 2)), TensorSpec("goal", (1, 1))


class FakeGraph:
    """A numpy graph: ``run()`` writes ``fn(inputs)`` into the first output and records its inputs."""

    def __init__(
        self,
        inputs: tuple[TensorSpec, ...],
        outputs: tuple[TensorSpec, ...],
        fn: Callable[[dict[str, np.ndarray]], np.ndarray],
    ) -> None:
        self.inputs = {t.name: np.zeros(t.shape, np.float32) for t in inputs}
        self.outputs = {t.name: np.zeros(t.shape, np.float32) for t in outputs}
        self.first_output = self.outputs[outputs[0].name]
        self.fn, self.seen = fn, []

    def run(self) -> None:
        self.seen.append({k: v.copy() for k, v in self.inputs.items()})
        self.first_output[...] = self.fn(self.inputs)


def contract(**fields: object) -> PolicyContract:
    target = TensorSpec("joint_target", (1, 2))
    return dataclasses.replace(PolicyContract("toy", TOY_SPEC, (OBS, GOAL), (target,), 10.0), **fields)


def chunk_graph(chunk_length: int = 4) -> FakeGraph:
    """``chunk[h] = observation + goal + h + noise[h]`` for ``(1, H, 2)`` chunks."""
    noise, out = TensorSpec("noise", (1, chunk_length, 2)), TensorSpec("joint_target", (1, chunk_length, 2))
    steps = np.arange(chunk_length, dtype=np.float32)[None, :, None]
    return FakeGraph((OBS, GOAL, noise), (out,), lambda b: b["observation"] + b["goal"] + steps + b["noise"])


def test_receding_horizon_executes_the_first_steps_then_asks_for_a_plan() -> None:
    q = RecedingHorizon(execute_steps=3, n_joints=2)
    assert q.due()
    with pytest.raises(RuntimeError, match="empty"):
        q.pop()
    chunk = np.arange(10.0).reshape(5, 2)
    q.push(chunk)
    out = [q.pop().copy() for _ in range(3)]
    np.testing.assert_array_equal(out, chunk[:3])
    assert q.due()
    q.push(chunk + 100)
    q.reset()
    assert q.due()


def test_temporal_ensemble_averages_overlapping_plans_with_act_weights() -> None:
    ens = TemporalEnsemble(chunk_length=3, every=1, decay=0.5)
    a, b = np.full((3, 1), 1.0), np.full((3, 1), 3.0)
    assert ens.due()
    ens.push(a)
    assert ens.pop()[0] == 1.0
    assert ens.due()
    ens.push(b)  # tick 1: a[1] (oldest, weight 1) and b[0] (weight e^-0.5)
    w = np.exp(-0.5)
    np.testing.assert_allclose(ens.pop(), [(1.0 + 3.0 * w) / (1 + w)])
    every2 = TemporalEnsemble(chunk_length=4, every=2)
    every2.push(np.zeros((4, 1)))
    every2.pop()
    assert not every2.due()
    with pytest.raises(ValueError, match="every"):
        TemporalEnsemble(chunk_length=2, every=3)


def test_make_agent_runs_what_the_contract_describes() -> None:
    step = FakeGraph(
        (OBS, GOAL), (TensorSpec("joint_target", (1, 2)),), lambda b: b["observation"] + b["goal"]
    )
    agent = make_agent(contract(), step)
    assert isinstance(agent, StepPolicy)
    np.testing.assert_array_equal(agent(observation=np.array([1.0, 2.0]), goal=np.array([0.5])), [1.5, 2.5])
    chunked = make_agent(contract(chunk_length=4, execute_steps=2), chunk_graph())
    assert isinstance(chunked, ChunkPolicy) and chunked.executor.execute_steps == 2
    with pytest.raises(ValueError, match="no high-level graph"):
        make_agent(contract(high_level_inputs=(OBS, GOAL), high_level_every=3), step)


def test_chunk_noise_comes_from_the_seeded_numpy_generator() -> None:
    """The noise of plan ``k`` is the ``k``-th float32 standard-normal draw of ``default_rng(seed)``;
    ``reset`` starts the chunk queue again but draws on (episodes differ)."""
    graph = chunk_graph()
    agent = ChunkPolicy(graph, execute_steps=2, seed=11)
    obs, goal = np.zeros(2), np.zeros(1)
    cmds = [agent(observation=obs, goal=goal) for _ in range(5)]
    agent.reset()
    cmds.append(agent(observation=obs, goal=goal))
    want = np.random.default_rng(11).standard_normal((4, 1, 4, 2), dtype=np.float32)
    np.testing.assert_array_equal([s["noise"] for s in graph.seen], want)  # plans at ticks 0, 2, 4, 5
    np.testing.assert_array_equal(cmds[1], want[0, 0, 1] + 1.0)  # second target of the first chunk
    np.testing.assert_array_equal(cmds[5], want[3, 0, 0])


def test_hierarchical_policy_holds_the_subgoal_and_says_which() -> None:
    high = FakeGraph((OBS, GOAL), (TensorSpec("subgoal_rep", (1, 2)),), lambda b: b["observation"] * 10)
    low_in = (OBS, TensorSpec("subgoal_rep", (1, 2)))
    low = FakeGraph(
        low_in, (TensorSpec("joint_target", (1, 2)),), lambda b: b["observation"] + b["subgoal_rep"]
    )
    agent = make_agent(contract(inputs=low_in, high_level_inputs=(OBS, GOAL), high_level_every=3), low, high)
    assert isinstance(agent, HierarchicalPolicy) and agent.held is None
    cmds = [agent(observation=np.full(2, t, float), goal=np.zeros(1)) for t in range(4)]
    assert len(high.seen) == 2 and len(low.seen) == 4  # high level at ticks 0 and 3
    np.testing.assert_array_equal(cmds[2], [2.0, 2.0])  # subgoal 0 held for ticks 0..2
    np.testing.assert_array_equal(cmds[3], [33.0, 33.0])
    np.testing.assert_array_equal(agent.held, [[30.0, 30.0]])
    agent.reset()
    assert agent.held is None


def test_contract_fills_high_level_every_of_old_contracts_from_the_rates() -> None:
    new = contract(high_level_inputs=(OBS, GOAL), high_level_every=5, high_level_hz=2.0)
    data = new.to_dict()
    del data["high_level_every"]  # as written before the field existed
    assert PolicyContract.from_dict(data).high_level_every == 5
    assert PolicyContract.from_dict(contract().to_dict()).high_level_every == 1


class GoalEnv:
    """Two-step episodes; the goal is the seed, success when the last action reached it."""

    def reset(self, seed: int) -> tuple[dict[str, np.ndarray], dict]:
        self.goal, self.t = float(seed), 0
        return {"observation": np.zeros(2), "desired_goal": np.array([self.goal])}, {}

    def step(self, action: np.ndarray) -> tuple:
        self.t += 1
        info = {
            "cost": {},
            "is_success": bool(action[0] == self.goal),
            "distance": abs(action[0] - self.goal),
        }
        obs = {"observation": np.asarray(action, float), "desired_goal": np.array([self.goal])}
        return obs, 0.0, False, self.t == 2, info


def test_evaluate_agent_feeds_goal_env_observations_and_resets_each_episode() -> None:
    step = FakeGraph((OBS, GOAL), (TensorSpec("joint_target", (1, 2)),), lambda b: b["goal"].repeat(2, -1))
    result = evaluate_agent(GoalEnv(), make_agent(contract(), step), episodes=3, seed=4)
    assert result.success_rate == 1.0 and len(step.seen) == 6
    assert goal_env_inputs({"observation": np.ones(2), "desired_goal": np.zeros(1)}).keys() == {
        "observation",
        "goal",
    }
