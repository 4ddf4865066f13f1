"""The torch-free runtime: bound onnxruntime graphs, chunk execution, subgoal hold, deadlines,
contract validation; and the Controller driving chunked and hierarchical bundles in MuJoCo.
(The executors alone, without onnxruntime: tests/sim/test_execution.py.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import sim
from deploy.runtime.agents import load_agent
from deploy.runtime.bundle import load_bundle
from deploy.runtime.controller import Controller
from deploy.runtime.deadline import DeadlineMonitor
from deploy.runtime.graph import OnnxGraph, OnnxPolicy
from sim.chunking import SubgoalHold
from sim.contract import ContractMismatch, TensorSpec
from sim.execution import ChunkPolicy, HierarchicalPolicy, StepPolicy
from tests.deploy.test_export import build_bundle


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {f: build_bundle(f, tmp_path_factory.mktemp(f)) for f in ("gcbc", "diffusion", "hiql")}


def test_subgoal_hold_and_deadline_monitor() -> None:
    hold = SubgoalHold(every=3)
    pattern = []
    for _ in range(7):
        pattern.append(hold.due())
        if hold.due():
            hold.ran()
        hold.tick()
    assert pattern == [True, False, False, True, False, False, True]
    mon = DeadlineMonitor(budget_us=100.0)
    assert [mon.record(t) for t in (50.0, 150.0, 100.0, 101.0)] == [False, True, False, True]
    s = mon.summary()
    assert s["ticks"] == 4 and s["late"] == 2 and s["late_fraction"] == 0.5 and s["worst_us"] == 150.0
    with pytest.raises(ValueError, match="budget_us"):
        DeadlineMonitor(budget_us=0.0)


def test_bound_graph_matches_plain_session_run_and_refuses_wrong_tensors(bundles: dict[str, Path]) -> None:
    bundle = load_bundle(bundles["gcbc"])
    c = bundle.contract
    policy = OnnxPolicy(bundle.policy_path, c)
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs, goal = rng.normal(size=c.task.obs_size), rng.normal(size=3)
        plain = policy.session.run(None, {"observation": obs[None].astype(np.float32),
                                          "goal": goal[None].astype(np.float32)})[0][0]  # fmt: skip
        np.testing.assert_array_equal(policy(observation=obs, goal=goal), plain)
    wrong = (TensorSpec("observation", (1, c.task.obs_size + 1)), c.inputs[1])
    with pytest.raises(ValueError, match=r"input 'observation' has shape"):
        OnnxGraph(bundle.policy_path, wrong, c.outputs)
    with pytest.raises(ValueError, match=r"graph inputs \['observation', 'goal'\]"):
        OnnxGraph(bundle.policy_path, c.inputs[::-1], c.outputs)


def test_chunk_policy_plans_every_execute_steps_and_is_reproducible(bundles: dict[str, Path]) -> None:
    bundle = load_bundle(bundles["diffusion"])
    runs = []
    for _ in range(2):
        agent = load_agent(bundle, seed=7)
        assert isinstance(agent, ChunkPolicy)
        obs, goal = np.zeros(bundle.contract.task.obs_size), np.zeros(3)
        cmds, planned = [], []
        for _ in range(6):
            cmds.append(agent(observation=obs, goal=goal))
            planned.append(agent.planned)
        assert planned == [True, False, True, False, True, False]  # execute_steps = 2
        runs.append(np.array(cmds))
    np.testing.assert_array_equal(runs[0], runs[1])  # same seed, same noise, same commands
    other = load_agent(bundle, seed=8)
    assert np.abs(other(observation=obs, goal=goal) - runs[0][0]).max() > 1e-6
    ens = load_agent(bundle, seed=7, mode="ensemble")
    assert [ens(observation=obs, goal=goal) is not None and ens.planned for _ in range(3)] == [True] * 3


def test_hierarchical_policy_holds_the_subgoal_between_high_level_calls(bundles: dict[str, Path]) -> None:
    bundle = load_bundle(bundles["hiql"])
    agent = load_agent(bundle)
    assert isinstance(agent, HierarchicalPolicy) and agent.hold.every == 5
    low = OnnxPolicy(bundle.policy_path, bundle.contract)
    rng = np.random.default_rng(0)
    goal = rng.normal(size=3)
    held = None
    for t in range(11):
        obs = rng.normal(size=bundle.contract.task.obs_size)
        cmd = agent(observation=obs, goal=goal)
        assert agent.planned == (t % 5 == 0)
        if agent.planned:
            held = agent.subgoal.copy()
        np.testing.assert_array_equal(agent.subgoal, held)
        np.testing.assert_allclose(cmd, low(observation=obs, subgoal_rep=held), atol=0)
    assert isinstance(load_agent(load_bundle(bundles["gcbc"])), StepPolicy)


@pytest.mark.parametrize("family", ["diffusion", "hiql"])
def test_controller_runs_chunked_and_hierarchical_bundles_in_sim(
    bundles: dict[str, Path], family: str
) -> None:
    env = sim.make("reach")
    ctrl = Controller(bundles[family], env.task_spec, deadline_us=1e9)
    for ep in range(2):
        env.reset(seed=ep)
        ctrl.reset(env.state())
        planned = []
        for _ in range(12):
            tick = ctrl.step_info(env.state())
            assert tick.error == "" and np.all(np.isfinite(tick.command)) and not tick.late
            planned.append(ctrl.policy.planned)
            env.step(tick.command)
        every = 2 if family == "diffusion" else 5
        assert planned == [t % every == 0 for t in range(12)]  # reset restarted the schedule
    assert ctrl.deadline.ticks == 24 and ctrl.deadline.late == 0
    tight = Controller(bundles[family], env.task_spec, deadline_us=1e-3)
    tight.reset(env.state())
    assert tight.step_info(env.state()).late and tight.deadline.late == 1


def test_contract_validation_names_dimensions_and_rates(bundles: dict[str, Path]) -> None:
    spec = sim.make("reach").task_spec
    hiql = load_bundle(bundles["hiql"]).contract
    hiql.check_robot(spec)
    with pytest.raises(ContractMismatch, match="high_level_hz"):
        dataclasses.replace(hiql, high_level_hz=hiql.policy_hz / 2.5).check_robot(spec)
    diff = load_bundle(bundles["diffusion"]).contract
    with pytest.raises(ContractMismatch, match="execute_steps"):
        dataclasses.replace(diff, execute_steps=diff.chunk_length + 1).check_robot(spec)
    with pytest.raises(ContractMismatch, match="chunk_length"):
        dataclasses.replace(diff, chunk_length=8).check_robot(spec)
    gcbc = load_bundle(bundles["gcbc"]).contract
    wide = (TensorSpec("observation", (1, spec.obs_size + 2)), gcbc.inputs[1])
    with pytest.raises(ContractMismatch, match=r"inputs\[observation\]"):
        dataclasses.replace(gcbc, inputs=wide).check_robot(spec)


def test_spine_run_drives_a_chunked_bundle_and_reports_deadlines(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    from deploy.offline.run import run

    s = run(
        bundles["diffusion"], "reach", episodes=1, seed=3, log_dir=tmp_path / "run", chunk_mode="ensemble"
    )
    d = s["deadline"]
    assert d["ticks"] == s["ticks"] > 0 and 0 <= d["late"] <= d["ticks"]
    assert np.isfinite(d["worst_us"])  # measured (its value is the benchmark's business)
    assert d["budget_us"] == pytest.approx(1e6 / load_bundle(bundles["diffusion"]).contract.policy_hz)
