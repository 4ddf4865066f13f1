"""Every family's declared graphs, run in torch by the executor that ships: the contract they
imply, ``act``, and training-time evaluation with its chunk noise seeded from the evaluation seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sim
from policies.graphs import POLICY, family_contract, graph_map
from policies.registry import policy_names
from policies.torch_graph import policy_agent
from policies.trainer import evaluate_policy
from sim.execution import ChunkPolicy, HierarchicalPolicy, StepPolicy
from tests.deploy.test_export import SMALL, small_policy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("family", policy_names())
def test_each_family_declares_its_graphs_and_acts_through_the_executor(family: str) -> None:
    policy = small_policy(family).eval()
    spec = policy.spec
    c = family_contract(policy)
    c.check_robot(spec)  # tensors, chunk length, execute_steps and rates fit together
    assert (c.inputs, c.outputs) == policy.io_spec()
    assert graph_map(policy)[POLICY].reference == policy.forward
    agent = policy_agent(policy)
    kind = HierarchicalPolicy if c.hierarchical else ChunkPolicy if c.chunk_length > 1 else StepPolicy
    assert type(agent) is kind
    assert c.execute_steps == SMALL[family].get("execute_steps", 1)
    assert c.high_level_every == SMALL[family].get("high_level_every", 1)
    env = sim.make("reach")
    obs, _ = env.reset(seed=0)
    policy.reset()
    action = policy.act(obs)
    assert action.shape == (spec.n_joints,) and action.dtype == np.float64 and np.all(np.isfinite(action))
    env.close()


def test_evaluation_noise_comes_from_the_evaluation_seed_not_torchs() -> None:
    policy = small_policy("diffusion")
    env = sim.make("reach", episode_steps=12)
    runs = []
    for torch_seed in (0, 1):
        torch.manual_seed(torch_seed)  # the global torch stream plays no part
        runs.append(evaluate_policy(policy, env, 2, seed=7))
    assert runs[0] == runs[1]
    agent = policy_agent(policy, seed=7)
    agent(observation=np.zeros(policy.spec.obs_size), goal=np.zeros(3))
    want = np.random.default_rng(7).standard_normal(agent.noise.shape, dtype=np.float32)
    np.testing.assert_array_equal(agent.noise, want)  # the first plan's noise: seed 7's first draw
    env.close()
