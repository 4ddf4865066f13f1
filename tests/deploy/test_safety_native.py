"""The C engine (``NativeSafetyFilter``, deploy/safety/native/filter.c) against the reference it
repeats (``SafetyFilter``): bit-identical commands, stage bits, risks and choices over arbitrary
input sequences; the C critic against onnxruntime; ``warm``; and the fallbacks of
``make_filter``, which say why."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from deploy.safety.critic import OnnxCritic
from deploy.safety.engines import load_critic, make_filter
from deploy.safety.extension import NativeUnavailable, extension
from deploy.safety.filter import SafetyFilter, SafetyLimits, TickReport
from deploy.safety.model_limits import arm_limits
from deploy.safety.native_critic import NativeOnnxCritic, build_native, parity
from deploy.safety.native_filter import NativeSafetyFilter
from sim.observation import build_observation
from tests.deploy.test_safety import LIMITS, N
from tests.deploy.test_safety_critic import untrained_critic

TASK = "reach_obstacles"
SMALL = dataclasses.replace(LIMITS, frozen_ticks=3)  # test_safety's robot, frozen-sensor check on


def test_the_extension_is_built() -> None:
    """./spine.sh setup compiles deploy/safety/native/ (setup.py); without it every loop runs in Python."""
    assert hasattr(extension(), "NativeFilter")


@pytest.fixture(scope="module")
def critic_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_critic(TASK, tmp_path_factory.mktemp("critic"))


@pytest.fixture(scope="module")
def arm() -> tuple[object, SafetyLimits, dict[str, np.ndarray]]:
    env = sim.make(TASK)
    env.reset(seed=3)
    limits = arm_limits(env, tick_hz=500.0, floor=0.02, ee_speed_max=1.0, frozen_ticks=4)
    return env, limits, env.state()


def same(a: TickReport, b: TickReport) -> bool:
    risk = a.risk == b.risk or (math.isnan(a.risk) and math.isnan(b.risk))
    return (
        a.command.tobytes() == b.command.tobytes()
        and a.stages == b.stages
        and risk
        and (a.critic_ran, a.choice) == (b.critic_ran, b.choice)
    )


AGES = st.sampled_from([0.0, 0.004, 0.013, 0.039, 0.04, 0.2, 0.5, math.inf, math.nan, -0.01])
wild = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.floats(-4, 4)
vector = st.lists(st.floats(-4, 4), min_size=N, max_size=N).map(np.array)
bad_vector = st.lists(wild, min_size=N, max_size=N).map(np.array) | st.just(np.zeros(N + 1))
small_tick = st.tuples(
    st.none() | vector | bad_vector,  # command
    st.none() | st.just("same") | vector | bad_vector,  # joint_pos ("same": frozen)
    AGES,  # command age
    st.sampled_from([False, False, False, False, True]),  # e-stop
    st.sampled_from([0.0, 0.0, 0.0, 1.0, math.nan]),  # state age
)


@settings(max_examples=300, deadline=None)
@given(
    interpolate=st.booleans(),
    q0=st.lists(st.floats(-3, 3), min_size=N, max_size=N).map(np.array),
    ticks=st.lists(small_tick, max_size=40),
)
def test_the_c_tick_is_the_python_tick_bit_for_bit(interpolate: bool, q0: np.ndarray, ticks: list) -> None:
    limits = SafetyLimits(**{**SMALL.__dict__, "interpolate": interpolate})
    py, c = SafetyFilter(limits), NativeSafetyFilter(limits)
    assert (py.engine, c.engine) == ("python", "native")
    py.reset(q0)
    c.reset(q0)
    q = q0
    for cmd, pos, age, estop, state_age in ticks:
        q = q if isinstance(pos, str) else pos
        a = py.tick(cmd, q, age, estop=estop, state_age=state_age)
        b = c.tick(cmd, q, age, estop=estop, state_age=state_age)
        assert same(a, b), (a, b)
        assert c.last.tobytes() == py.last.tobytes()


@settings(max_examples=60, deadline=None)
@given(
    interpolate=st.booleans(),
    seed=st.integers(0, 10_000),
    ticks=st.integers(20, 120),
)
def test_with_the_critic_box_and_cartesian_limit_too(
    arm: tuple, critic_path: Path, interpolate: bool, seed: int, ticks: int
) -> None:
    """The arm's workspace box, Cartesian rate limit and the learned critic on both engines;
    the Python filter calls the same C critic, so risks are bit-identical too."""
    env, limits, state = arm
    limits = SafetyLimits(**{**limits.__dict__, "interpolate": interpolate})
    spec = env.task_spec
    guards = [load_critic(critic_path, spec, tick_hz=500.0, engine="native") for _ in range(2)]
    py = SafetyFilter(limits, guards[0])
    c = NativeSafetyFilter(limits, guards[1])
    rng = np.random.default_rng(seed)
    q = state["joint_pos"].copy()
    py.reset(q)
    c.reset(q)
    obs = build_observation(state, spec.observation)
    cmd = q.copy()
    for i in range(ticks):
        if i % 7 == 0:
            cmd = q + rng.normal(0.0, rng.choice([0.02, 0.3, 2.0]), q.size)
        bad = rng.random()
        pos = None if bad < 0.02 else q
        command = np.full(q.size, np.nan) if 0.02 <= bad < 0.04 else cmd
        obs[:7] = q
        o = obs.copy()
        if 0.04 <= bad < 0.06:
            o[3] = np.nan
        age = (i % 7) * 0.002 if bad < 0.97 else 1.0
        a = py.tick(command, pos, age, observation=o, estop=bad > 0.995)
        b = c.tick(command, pos, age, observation=o, estop=bad > 0.995)
        assert same(a, b), (i, a, b)
        np.testing.assert_array_equal(guards[0].last_risks, guards[1].last_risks)
        q = q + 0.3 * (b.command - q)


def test_warm_changes_nothing(arm: tuple, critic_path: Path) -> None:
    """A filter warmed before each tick gives exactly the commands of one that is not."""
    env, limits, state = arm
    guards = [load_critic(critic_path, env.task_spec, tick_hz=500.0) for _ in range(2)]
    cold, warmed = make_filter(limits, guards[0]), make_filter(limits, guards[1])
    q = state["joint_pos"].copy()
    cold.reset(q)
    warmed.reset(q)
    obs = build_observation(state, env.task_spec.observation)
    rng = np.random.default_rng(0)
    for i in range(60):
        cmd = q + rng.normal(0.0, 0.1, q.size)
        warmed.warm(q + 1.0, q, 0.0, observation=obs)  # other inputs than the real tick's
        a = cold.tick(cmd, q, (i % 5) * 0.002, observation=obs)
        b = warmed.tick(cmd, q, (i % 5) * 0.002, observation=obs)
        assert same(a, b)
        q = q + 0.3 * (a.command - q)
        obs[:7] = q
    with pytest.raises(RuntimeError, match="before reset"):
        make_filter(limits).warm(q, q, 0.0)


def test_c_critic_matches_onnxruntime(critic_path: Path) -> None:
    spec = sim.make(TASK).task_spec
    native = NativeOnnxCritic(critic_path, spec)
    ort = OnnxCritic(critic_path, spec)
    assert (native.engine, ort.engine) == ("native", "onnxruntime")
    assert native.native_parity["max_abs_risk_error"] <= 1e-4
    rng = np.random.default_rng(1)
    env = sim.make(TASK)
    for seed in range(20):
        env.reset(seed=seed)
        obs = build_observation(env.state(), spec.observation)
        q = env.state()["joint_pos"]
        action = q + rng.normal(0.0, 0.05, q.size)
        r1, c1, i1 = native.run(obs, action, q, 0.5)
        r2, c2, i2 = ort.run(obs, action, q, 0.5)
        np.testing.assert_allclose(r1, r2, atol=1e-5)
        assert i1 == i2
        np.testing.assert_allclose(c1, c2, atol=1e-6)


def test_a_graph_that_is_not_the_selection_graph_stays_in_onnxruntime(
    critic_path: Path, tiny_bundle: Path
) -> None:
    with pytest.raises(NativeUnavailable, match="not the critic selection graph"):
        build_native(tiny_bundle / "policy.onnx", 0)


def test_a_c_critic_that_disagrees_with_onnxruntime_is_refused(critic_path: Path, tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(critic_path))
    for t in model.graph.initializer:
        if t.name == "b1":  # a different first-layer bias: a different critic
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) + 0.5, "b1"))
    other = tmp_path / "other.onnx"
    onnx.save(model, str(other))
    spec = sim.make(TASK).task_spec
    reference = OnnxCritic(critic_path, spec)
    native, init = build_native(other, reference._q.start)
    with pytest.raises(NativeUnavailable, match="differs from onnxruntime"):
        parity(native, init, reference.run_onnxruntime, reference._q)


def test_engines_say_why_they_are_not_native(arm: tuple) -> None:
    _, limits, _ = arm

    class PythonCritic:
        period_ticks = 1

        def evaluate(self, observation, action, hold):  # type: ignore[no-untyped-def]
            return action, 0.0, 0

    auto = make_filter(limits, PythonCritic())  # type: ignore[arg-type]
    assert auto.engine == "python" and "not a native critic" in auto.engine_note
    with pytest.raises(ValueError, match=r"no native engine: .*PythonCritic"):
        make_filter(limits, PythonCritic(), engine="native")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="engine 'fast' is not one of"):
        make_filter(limits, engine="fast")
    assert make_filter(limits).engine == "native"
