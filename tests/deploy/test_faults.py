"""Fault injection with real MuJoCo (reach_obstacles, short episodes): whatever the policy or
the sensors do, every command the full filter (deterministic stages + an exported critic)
sends stays inside the joint envelope, the rate limits and the workspace box, and the stage
that should act does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sim
from deploy.safety.engines import load_critic, make_filter
from deploy.safety.model_limits import arm_limits, run_episode
from sim.faults import FAULTS, SENSOR_FAULTS, FaultInjector, FaultSpec
from tests.deploy.test_safety_critic import untrained_critic

TASK, STEPS, SEED = "reach_obstacles", 40, 7
START, DURATION = 0.3, 0.8  # s: the fault's window inside the 1.6 s episode
EXPECTED = {  # stages that must act under each fault
    "nan": {"input_guard"},
    "inf": {"input_guard"},
    "stall": {"watchdog", "damp"},
    "nan_sensor": {"input_guard"},
    "dropout": {"input_guard"},
    "frozen_sensor": {"input_guard"},
    "scale10": {"envelope", "rate_limit"},
    "max_jump": {"envelope", "rate_limit"},
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    env = sim.make(TASK)
    limits = arm_limits(env, floor=0.02, ee_speed_max=1.0, frozen_ticks=25)
    guard = load_critic(untrained_critic(TASK, tmp_path_factory.mktemp("critic")), env.task_spec, tick_hz=500)
    return env, limits, guard, sim.expert_class(TASK)(env)


def injector(kind: str, limits) -> FaultInjector:
    return FaultInjector(FaultSpec.for_kind(kind, START, DURATION), limits.q_min, limits.q_max)


def check_invariants(commands: np.ndarray, limits) -> None:
    assert np.all(np.isfinite(commands))
    assert np.all(commands >= limits.q_min) and np.all(commands <= limits.q_max)
    assert np.all(np.abs(np.diff(commands, axis=0)) <= limits.max_step + 1e-12)
    ee = limits.chain.positions(commands)
    assert np.all(ee >= np.asarray(limits.workspace_low) - 1e-9)
    assert np.all(ee <= np.asarray(limits.workspace_high) + 1e-9)
    steps = np.linalg.norm(np.diff(ee, axis=0), axis=1)
    assert np.all(steps <= limits.ee_speed_max * limits.tick_period + 1e-9)


@pytest.mark.parametrize("kind", [k for k in FAULTS if k != "none"])
def test_full_filter_under_each_fault(setup, kind: str) -> None:
    env, limits, guard, expert = setup
    filt = make_filter(limits, critic=guard)
    res = run_episode(env, expert.act, filt, injector(kind, limits), SEED, STEPS, keep_commands=True)
    assert res.ticks == STEPS * env.unwrapped.substeps
    check_invariants(res.commands, limits)
    acted = {name for name, n in res.stages.items() if n > 0}
    assert EXPECTED.get(kind, set()) <= acted, f"{kind}: stages that acted {sorted(acted)}"
    assert "estop" not in acted
    if kind in SENSOR_FAULTS or kind in ("nan", "inf", "stall"):
        assert res.violation_steps == 0


def test_a_stall_holds_the_command_then_damps(setup) -> None:
    env, limits, _, expert = setup
    res = run_episode(env, expert.act, make_filter(limits), injector("stall", limits), SEED, STEPS, True)
    dt = env.unwrapped.physics.timestep
    tick = lambda t: round(t / dt)  # noqa: E731
    period = limits.policy_period
    last = (np.ceil(START / period - 1e-9) - 1) * period  # the last command before the stall
    hold_from = tick(last + limits.watchdog_periods * period) + 2
    damp_from = tick(last + limits.damp_periods * period)
    held = res.commands[hold_from : damp_from - 1]
    assert np.ptp(held, axis=0).max() == 0.0  # held still
    damped = res.commands[damp_from + 5 : tick(START + 0.5)]
    follow = np.abs(damped - res.positions[damp_from + 5 : tick(START + 0.5)]).max()
    assert follow < 0.01  # the command sits on the measured position: no spring force


@pytest.mark.parametrize("kind", ["scale10", "max_jump", "sign_flip"])
def test_the_filter_prevents_the_violations_of_wild_commands(setup, kind: str) -> None:
    env, limits, guard, expert = setup
    bare = run_episode(env, expert.act, None, injector(kind, limits), SEED, STEPS)
    filtered = run_episode(
        env, expert.act, make_filter(limits, critic=guard), injector(kind, limits), SEED, STEPS
    )
    assert filtered.violation_steps <= bare.violation_steps
    if kind != "sign_flip":
        assert bare.violation_steps >= 5 and filtered.violation_steps <= bare.violation_steps // 5


def test_nominal_episode_is_not_disturbed(setup) -> None:
    env, limits, _, expert = setup
    fault = injector("none", limits)
    bare = run_episode(env, expert.act, None, fault, SEED, 100)
    filtered = run_episode(env, expert.act, make_filter(limits), fault, SEED, 100)
    assert bare.success and filtered.success and filtered.violation_steps == 0


def test_unknown_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault 'nann'"):
        FaultSpec("nann")


def test_no_critic_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="critic"):
        load_critic(tmp_path / "critic.onnx", sim.make(TASK).task_spec)
