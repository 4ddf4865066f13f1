"""The Controller with real onnxruntime and real MuJoCo: contract checks and faulty policy outputs."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import sim
from deploy.runtime.bundle import load_bundle
from deploy.runtime.controller import Controller
from deploy.safety.filter import SafetyLimits, Stage
from sim.contract import ContractMismatch


def test_controller_runs_an_episode_in_sim(tiny_bundle: Path) -> None:
    env = sim.make("reach")
    ctrl = Controller(tiny_bundle, env.task_spec)
    env.reset(seed=3)
    ctrl.reset(env.state())
    for _ in range(20):
        tick = ctrl.step_info(env.state())
        assert tick.policy_ran and tick.error == ""
        env.step(tick.command)
    assert np.all(np.isfinite(env.state()["joint_pos"]))


def test_contract_mismatch_names_the_field(tiny_bundle: Path) -> None:
    spec = sim.make("reach").task_spec
    names = list(spec.joint_names)
    names[3] = "elbow"
    with pytest.raises(ContractMismatch, match=r"joint_names\[3\]"):
        Controller(tiny_bundle, dataclasses.replace(spec, joint_names=tuple(names)))
    with pytest.raises(ContractMismatch, match="policy_hz"):
        Controller(tiny_bundle, dataclasses.replace(spec, control_hz=50.0))
    with pytest.raises(ContractMismatch, match=r"joint_pos_max\[6\]"):
        Controller(tiny_bundle, dataclasses.replace(spec, joint_pos_max=(*spec.joint_pos_max[:6], 1.0)))


class FaultyPolicy:
    """Stands in for the ONNX policy's output: NaN, Inf, far out of range, then sign flips."""

    def __init__(self, real, rng: np.random.Generator) -> None:
        self.real, self.rng, self.calls = real, rng, 0

    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        self.calls += 1
        out = self.real(**inputs).astype(np.float64)
        kind = self.calls % 5
        if kind == 0:
            out[self.rng.integers(out.size)] = np.nan
        elif kind == 1:
            out[:] = np.inf * self.rng.choice([-1, 1], out.size)
        elif kind == 2:
            out = self.rng.uniform(-100, 100, out.size)  # 10x beyond any joint range
        elif kind == 3:
            out = -out
        return out


def test_faulty_policy_outputs_never_leave_the_envelope(tiny_bundle: Path) -> None:
    env = sim.make("reach")
    ctrl = Controller(tiny_bundle, env.task_spec)
    ctrl.policy = FaultyPolicy(ctrl.policy, np.random.default_rng(0))
    lim: SafetyLimits = ctrl.filter.limits
    seen = Stage.NONE
    for ep in range(2):
        env.reset(seed=ep)
        ctrl.reset(env.state())
        prev = ctrl.filter.last.copy()
        for _ in range(env.task_spec.episode_steps):
            tick = ctrl.step_info(env.state())
            seen |= tick.stages
            cmd = tick.command
            assert np.all(np.isfinite(cmd))
            assert np.all(cmd >= lim.q_min) and np.all(cmd <= lim.q_max)
            assert np.all(np.abs(cmd - prev) <= lim.max_step + 1e-12)
            prev = cmd
            _, _, _, _, info = env.step(cmd)
            assert info["cost"]["joint_limit"] == 0.0
    assert Stage.INPUT_GUARD in seen and Stage.ENVELOPE in seen and Stage.RATE_LIMIT in seen


def test_nan_sensors_and_missing_fields_hold_the_robot(tiny_bundle: Path) -> None:
    env = sim.make("reach")
    ctrl = Controller(tiny_bundle, env.task_spec)
    env.reset(seed=0)
    state = env.state()
    ctrl.reset(state)
    held = ctrl.step(state)
    bad = dict(state, joint_vel=np.full(7, np.nan))
    tick = ctrl.step_info(bad)
    assert Stage.INPUT_GUARD in tick.stages and tick.error == "non-finite observation"
    np.testing.assert_array_equal(tick.command, held)
    missing = {k: v for k, v in state.items() if k != "ee_pos"}
    tick = ctrl.step_info(missing)
    assert Stage.INPUT_GUARD in tick.stages and "ee_pos" in tick.error
    np.testing.assert_array_equal(tick.command, held)


def test_bundle_with_edited_contract_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bad)
    text = (bad / "contract.json").read_text().replace('"joint1"', '"jointX"')
    (bad / "contract.json").write_text(text)
    with pytest.raises(ValueError, match="embedded contract differs"):
        load_bundle(bad)
