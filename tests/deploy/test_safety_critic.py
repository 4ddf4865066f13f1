"""Stage 3 of the filter: the exported critic graph in onnxruntime, its candidate selection,
its schedule inside the filter, and the envelope invariants with the critic in the loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from deploy.safety.critic import CANDIDATES, CriticGuard, OnnxCritic, candidate_name
from deploy.safety.engines import load_critic, make_filter, open_critic
from deploy.safety.filter import SafetyLimits, Stage
from sim.contract import ContractMismatch
from sim.observation import build_observation

TASK = "reach_obstacles"


@pytest.fixture(scope="module")
def critic_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real exported critic graph; untrained (training is tested in tests/policies), its
    normalizer fitted on real observations: the selection and the schedule are what is tested."""
    return untrained_critic(TASK, tmp_path_factory.mktemp("critic"))


def untrained_critic(task: str, out: Path) -> Path:
    import torch

    from deploy.export.critic import export_critic
    from policies.critic import CriticConfig, TwinRiskCritic, save_critic

    torch.manual_seed(0)
    env = sim.make(task)
    obs = []
    for seed in range(4):
        env.reset(seed=seed)
        obs.append(build_observation(env.state(), env.task_spec.observation))
    # switch_margin 0: the plain "first under the threshold, else the least risky" rule (the
    # margin's arithmetic is checked against torch in tests/policies/test_critic.py)
    critic = TwinRiskCritic(env.task_spec, CriticConfig(hidden=32, samples=4, switch_margin=0.0))
    critic.fit_normalizer(np.stack(obs))
    save_critic(out / "checkpoint", critic, {"critic_hz": 100.0})
    export_critic(out / "checkpoint", out / "critic.onnx", samples=16)
    return out / "critic.onnx"


@pytest.fixture(scope="module")
def scene() -> tuple[object, dict[str, np.ndarray]]:
    env = sim.make(TASK)
    env.reset(seed=5)
    return env, env.state()


def test_critic_refuses_another_robot_naming_the_field(critic_path: Path) -> None:
    with pytest.raises(ContractMismatch, match="observation"):
        load_critic(critic_path, sim.make("push").task_spec)
    with pytest.raises(ValueError, match="not a Spine critic"):
        _plain_onnx(critic_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        OnnxCritic(critic_path.with_name("nope.onnx"))


def test_critic_refuses_an_older_graph_format(critic_path: Path) -> None:
    """A critic.onnx from before the anchors input is refused with what to do about it."""
    import json

    import onnx

    model = onnx.load(str(critic_path))
    for prop in model.metadata_props:
        if prop.key == "spine.contract":
            contract = json.loads(prop.value)
            anchors = contract["inputs"][1]
            contract["inputs"][1:2] = [dict(anchors, name="action"), dict(anchors, name="hold")]
            prop.value = json.dumps(contract)
    old = critic_path.with_name("old.onnx")
    onnx.save(model, str(old))
    with pytest.raises(ValueError, match="older graph format; re-export"):
        OnnxCritic(old)


def _plain_onnx(critic_path: Path) -> None:
    """An ONNX file without the critic's metadata is refused."""
    import onnx

    model = onnx.load(str(critic_path))
    del model.metadata_props[:]
    plain = critic_path.with_name("plain.onnx")
    onnx.save(model, str(plain))
    OnnxCritic(plain)


def test_selection_graph_picks_the_first_candidate_under_the_threshold(critic_path: Path, scene) -> None:
    env, state = scene
    spec = env.task_spec
    critic = open_critic(critic_path, spec)
    obs = build_observation(state, spec.observation)
    q = state["joint_pos"]
    action, hold = q + 0.3, q - 0.01
    fixed = [action, q + 0.5 * (action - q), q + 0.25 * (action - q), hold, q]
    risk, chosen, choice = critic.run(obs, action, hold, threshold=1.0)
    assert choice == 0 and risk.shape == (critic.k,)
    np.testing.assert_allclose(chosen, action, atol=1e-6)
    risk, chosen, choice = critic.run(obs, action, hold, threshold=1e-12)  # none passes: argmin
    assert choice == int(np.argmin(risk))
    if choice < len(CANDIDATES):
        np.testing.assert_allclose(chosen, fixed[choice], atol=1e-6)
    thr = float(np.sort(risk)[len(risk) // 2])  # about half pass: the first of them wins
    _, _, choice = critic.run(obs, action, hold, threshold=thr)
    assert choice == int(np.flatnonzero(risk <= thr)[0])
    assert candidate_name(0) == "policy" and candidate_name(-1) == "none"
    assert candidate_name(len(CANDIDATES)) == "sample0"


def test_filter_runs_the_critic_on_new_commands_and_reports_risk_every_tick(critic_path: Path, scene) -> None:
    env, state = scene
    spec = env.task_spec
    guard = load_critic(critic_path, spec, tick_hz=500)
    assert guard.period_ticks == 5  # critic_hz 100 at 500 Hz ticks
    lim = SafetyLimits.from_spec(spec, margin=0.08, tick_hz=500)
    f = make_filter(lim, critic=guard)
    q = state["joint_pos"]
    f.reset(q)
    obs = build_observation(state, spec.observation)
    cmd = q + 0.02
    reports = [f.tick(cmd, q, 0.002 * i, observation=obs) for i in range(12)]
    assert [r.critic_ran for r in reports] == [True, *([False] * 4), True, *([False] * 4), True, False]
    assert all(np.isfinite(r.risk) and 0.0 <= r.risk <= 1.0 for r in reports)
    assert reports[1].risk == reports[0].risk
    r = f.tick(cmd + 0.01, q, 0.0, observation=obs)  # a new command: judged at once
    assert r.critic_ran
    everything = CriticGuard(guard.critic, threshold=1e-12, period_ticks=5)  # nothing is safe enough
    g = make_filter(lim, critic=everything)
    g.reset(q)
    r = g.tick(q + 0.3, q, 0.0, observation=obs)
    assert r.choice == int(np.argmin(everything.last_risks))
    assert (Stage.CRITIC in r.stages) == (r.choice > 0)
    nan_obs = np.full_like(obs, np.nan)  # bad critic input: keep the command, report NaN
    r = g.tick(q + 0.05, q, 0.0, observation=nan_obs)
    assert r.critic_ran and np.isnan(r.risk) and Stage.CRITIC not in r.stages


joint = st.floats(-0.5, 0.5)
tick = st.tuples(
    st.none() | st.lists(joint | st.sampled_from([np.nan, np.inf, 30.0]), min_size=7, max_size=7),
    st.lists(st.floats(-0.05, 0.05), min_size=7, max_size=7),
    st.floats(0.0, 0.3),
    st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(ticks=st.lists(tick, min_size=1, max_size=25), threshold=st.floats(0.01, 1.0))
def test_outputs_stay_in_the_envelope_with_the_critic_in_the_loop(
    critic_path: Path, scene, ticks, threshold
) -> None:
    env, state = scene
    spec = env.task_spec
    guard = CriticGuard(open_critic(critic_path, spec), threshold=threshold, period_ticks=3)
    lim = SafetyLimits.from_spec(spec, margin=0.08, tick_hz=500)
    f = make_filter(lim, critic=guard)
    q0 = state["joint_pos"]
    f.reset(q0)
    obs = build_observation(state, spec.observation)
    prev = f.last.copy()
    for cmd, dq, age, estop in ticks:
        command = None if cmd is None else q0 + np.asarray(cmd)
        r = f.tick(command, q0 + np.asarray(dq), age, observation=obs, estop=estop)
        assert np.all(np.isfinite(r.command))
        assert np.all(r.command >= lim.q_min) and np.all(r.command <= lim.q_max)
        assert np.all(np.abs(r.command - prev) <= lim.max_step + 1e-12)
        prev = r.command


NO_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import numpy as np
import sim
from deploy.safety.engines import load_critic, make_filter
from deploy.safety.model_limits import arm_limits
from sim.observation import build_observation
env = sim.make("reach_obstacles")
env.reset(seed=0)
state = env.state()
filt = make_filter(arm_limits(env), critic=load_critic(sys.argv[1], env.task_spec, tick_hz=500))
filt.reset(state["joint_pos"])
r = filt.tick(state["joint_pos"] + 0.01, state["joint_pos"], 0.0,
              observation=build_observation(state, env.task_spec.observation))
assert r.critic_ran and 0.0 <= r.risk <= 1.0
print("ok")
"""


def test_critic_and_filter_run_without_torch(critic_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(critic_path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
