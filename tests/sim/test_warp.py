"""The Warp backend against the CPU backend: same seeds, same actions, same trajectories.

Tolerances: float32 MuJoCo Warp against float64 MuJoCo over 80 control steps (1,600 physics
steps) with an auto-reset at step 40, random targets up to 0.06 rad from the measured joints.
Worst differences measured on Warp's CPU device: arm7 joint positions 7.5e-7 rad, joint
velocities 1.7e-5 rad/s, end effector 5.4e-7 m, rewards 4.9e-7 m (randomized arm7 alike);
Panda 3.0e-5 rad, 2.7e-4 rad/s, 3.6e-7 m, 3.0e-7 m; the URDF arm and the UR5e (at 0.02 rad,
see AMPLITUDE) below 1e-5 rad/s. The bounds below leave 3x (Panda's joints) to 100x room.
Costs, successes, truncations and auto-resets are equal.

Building an env compiles MuJoCo Warp's kernels once per model into Warp's kernel cache (a minute
or two on 2 cores; ``sim.warp.backend``); after that a build loads them (5-10 s). The arm7 envs
are module-scoped, built once per session.
"""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.randomization import RandomizationConfig
from sim.robots.arm7 import constants as c
from sim.warp import supported_tasks
from tests.robots import ROBOTS

NUM = 6
EPISODE = 40  # shorter than the run, so every world auto-resets once
STEPS = 80
TOL_JOINT_POS = 1e-4  # rad: joint positions, and their entries in the observation
TOL_JOINT_VEL = 2e-3  # rad/s: joint velocities in the observation
TOL_EE = 1e-4  # m: end-effector position (observation, achieved goal)
TOL_REWARD = 1e-5  # m

needs_warp = pytest.mark.skipif(
    any(__import__("importlib").util.find_spec(m) is None for m in ("warp", "mujoco_warp", "torch")),
    reason="the Warp backend needs warp-lang, mujoco-warp and torch: the scale extra, pip install '.[scale]'",
)


def _pair(num: int = NUM, randomization: RandomizationConfig | None = None, task: str = "reach", **kwargs):
    warp_env = sim.make_vec(task, num, backend="warp", device="cpu", randomization=randomization, **kwargs)
    cpu_env = sim.make_vec(task, num, randomization=randomization, **kwargs)
    return warp_env, cpu_env


def _np(x):
    return x.detach().cpu().numpy()


def _run_parity(warp_env, cpu_env, seed: int, amplitude: float) -> dict:
    """Step both with the same random targets (up to ``amplitude`` rad from the measured
    joints); assert the bounds; return the worst differences."""
    n = cpu_env.task_spec.n_joints
    keep = np.arange(n)
    ow, oc = warp_env.reset(seed=seed), cpu_env.reset(seed=seed)
    np.testing.assert_allclose(_np(ow["desired_goal"]), oc["desired_goal"], atol=1e-6)
    np.testing.assert_allclose(_np(ow["observation"]), oc["observation"], atol=1e-5)
    rng = np.random.default_rng(seed)
    worst = dict.fromkeys(("joint_pos", "joint_vel", "ee_pos", "reward"), 0.0)
    resets = 0
    for _ in range(STEPS):
        q = cpu_env.state()["joint_pos"]
        action = q + rng.uniform(-amplitude, amplitude, q.shape)
        ow, rw, tw, trw, iw = warp_env.step(action)
        oc, rc, tc, trc, ic = cpu_env.step(action)
        diff = {"reward": np.abs(_np(rw) - rc).max()}
        for w_obs, c_obs in ((ow, oc), (iw["final_obs"], ic["final_obs"])):
            err = np.abs(_np(w_obs["observation"]) - c_obs["observation"])
            achieved = np.abs(_np(w_obs["achieved_goal"]) - c_obs["achieved_goal"]).max()
            fields = (("joint_pos", keep), ("joint_vel", n + keep), ("ee_pos", 2 * n + np.arange(3)))
            for name, cols in fields:
                diff[name] = max(diff.get(name, 0.0), err[:, cols].max())
            diff["ee_pos"] = max(diff["ee_pos"], achieved)
        state_err = np.abs(_np(warp_env.state()["joint_pos"]) - cpu_env.state()["joint_pos"])[:, keep].max()
        diff["joint_pos"] = max(diff["joint_pos"], state_err)
        worst = {k: max(worst[k], float(diff[k])) for k in worst}
        for name, tol in (
            ("joint_pos", TOL_JOINT_POS),
            ("joint_vel", TOL_JOINT_VEL),
            ("ee_pos", TOL_EE),
            ("reward", TOL_REWARD),
        ):
            assert diff[name] < tol, (name, diff)
        np.testing.assert_array_equal(_np(trw), trc)
        resets += int(trc.sum())
        np.testing.assert_array_equal(_np(tw), tc)
        np.testing.assert_array_equal(_np(iw["_final_obs"]), ic["_final_obs"])
        np.testing.assert_array_equal(_np(iw["is_success"]), ic["is_success"])
        for kind, value in ic["cost"].items():
            np.testing.assert_array_equal(_np(iw["cost"][kind]), value, err_msg=kind)
    assert resets == (STEPS // EPISODE) * cpu_env.num_envs  # every world auto-reset, alike
    return worst


def test_make_vec_backends_and_refusals() -> None:
    env = sim.make_vec("reach", 2, threads=2)
    assert type(env).__name__ == "VectorEnv" and env.num_envs == 2
    env.close()
    with pytest.raises(ValueError, match="backend='warp'"):
        sim.make_vec("reach", 2, device="cuda:0")
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        sim.make_vec("reach", 2, backend="jax")
    with pytest.raises(ValueError, match=r"runs the tasks \['reach', 'widowx_reach'\], not 'push'"):
        sim.make_vec("push", 2, backend="warp")
    with pytest.raises(ValueError, match="threads applies to backend='cpu'"):
        sim.make_vec("reach", 2, backend="warp", threads=2)
    assert supported_tasks() == ["reach", "widowx_reach"]


@pytest.fixture(scope="module")
def arm7_pair():
    warp_env, cpu_env = _pair(episode_steps=EPISODE)
    yield warp_env, cpu_env
    warp_env.close()
    cpu_env.close()


@needs_warp
def test_arm7_parity_with_cpu_backend(arm7_pair) -> None:
    worst = _run_parity(*arm7_pair, seed=3, amplitude=0.06)
    print("arm7 worst differences:", worst)


@needs_warp
def test_costs_and_contacts_match(arm7_pair) -> None:
    """Worlds driven into the table (collision), to a joint limit (joint_limit) and fast
    (speed) report the same costs on both backends."""
    warp_env, cpu_env = arm7_pair
    warp_env.reset(seed=0), cpu_env.reset(seed=0)
    action = np.tile(np.array(c.HOME), (NUM, 1))
    action[0:2, 1], action[0:2, 3] = 1.2, -1.0  # lean over: the hand presses on the table
    action[2, 5] = 0.0  # joint6 within 0.05 rad of its lower limit
    action[3, 0] = 1.5  # a fast swing of the base joint
    seen = {kind: 0.0 for kind in cpu_env.task_spec.cost_kinds}
    for _ in range(25):
        _, _, _, _, iw = warp_env.step(action)
        _, _, _, _, ic = cpu_env.step(action)
        # contact points per touching geom pair are the narrowphase's choice (MuJoCo Warp made
        # 6 where MuJoCo made 10 here); whether the arm touches anything is what must agree
        np.testing.assert_array_equal(_np(iw["contacts"]) > 0, ic["contacts"] > 0)
        for kind, value in ic["cost"].items():
            np.testing.assert_array_equal(_np(iw["cost"][kind]), value, err_msg=kind)
            seen[kind] += value.sum()
        ee = np.abs(_np(warp_env.state()["ee_pos"]) - cpu_env.state()["ee_pos"]).max()
        assert ee < 1e-4, ee
    assert all(count > 0 for count in seen.values()), seen  # every cost kind was exercised


@needs_warp
def test_tensors_live_on_the_device_as_views(arm7_pair) -> None:
    import torch
    import warp as wp

    warp_env, _ = arm7_pair
    obs = warp_env.reset(seed=1)
    obs, reward, terminated, truncated, info = warp_env.step(torch.zeros(NUM, 7) + torch.tensor(c.HOME))
    tensors = [*obs.values(), reward, terminated, truncated, *info["cost"].values(), info["distance"]]
    assert all(isinstance(t, torch.Tensor) and t.device == warp_env.device for t in tensors)
    assert obs["observation"].dtype == torch.float32 and obs["observation"].shape == (NUM, 17)
    physics = warp_env.physics  # the torch state is Warp's memory, not a copy
    assert physics.qpos.data_ptr() == physics.data.qpos.ptr
    assert physics.site_xpos.data_ptr() == physics.data.site_xpos.ptr
    assert str(wp.device_from_torch(warp_env.device)) == str(physics.wp_device)


@needs_warp
@pytest.mark.skipif(
    not __import__("importlib").util.find_spec("torch") or not __import__("torch").cuda.is_available(),
    reason="no CUDA GPU on this machine: the GPU half of the device check runs where there is one",
)
def test_gpu_tensors_stay_on_the_gpu() -> None:
    import torch

    env = sim.make_vec("reach", 8, backend="warp", device="cuda:0")
    obs = env.reset(seed=0)
    obs, reward, _, _, info = env.step(torch.tensor(c.HOME, device="cuda:0").repeat(8, 1))
    for t in (*obs.values(), reward, *info["cost"].values()):
        assert t.is_cuda
    assert env.physics.qpos.data_ptr() == env.physics.data.qpos.ptr
    env.close()


@needs_warp
def test_randomization_parity() -> None:
    """Per-world masses, friction, gains, damping and latency: the same per world as the CPU
    backend's ``Randomized`` wrappers, and the same trajectories."""
    config = RandomizationConfig(
        mass_scale=(0.7, 1.3),
        friction_scale=(0.5, 1.5),
        kp_scale=(0.7, 1.3),
        damping_scale=(0.5, 2.0),
        frictionloss_scale=(0.5, 2.0),
        action_latency=(0, 2),
    )
    warp_env, cpu_env = _pair(4, randomization=config, episode_steps=EPISODE)
    try:
        print("randomized arm7 worst differences:", _run_parity(warp_env, cpu_env, seed=7, amplitude=0.06))
        masses = _np(warp_env.physics.model_field("body_mass"))
        gains = _np(warp_env.physics.model_field("actuator_gainprm"))[:, :, 0]
        for i, env in enumerate(cpu_env.envs):
            model = env.unwrapped.physics.model
            np.testing.assert_allclose(masses[i], model.body_mass, rtol=1e-6)
            np.testing.assert_allclose(gains[i], model.actuator_gainprm[:, 0], rtol=1e-6)
        assert np.ptp(masses.sum(axis=1)) > 0.1  # the worlds differ (kg)
        np.testing.assert_array_equal(_np(warp_env.randomization.latency), [e.latency for e in cpu_env.envs])
    finally:
        warp_env.close()
        cpu_env.close()


@needs_warp
def test_observation_noise_is_batched_and_seeded() -> None:
    config = RandomizationConfig(obs_noise_std_fields={"joint_vel": 0.05})
    a = sim.make_vec("reach", 3, backend="warp", device="cpu", randomization=config)
    b = sim.make_vec("reach", 3, backend="warp", device="cpu")
    oa, ob = a.reset(seed=2), b.reset(seed=2)
    noise = _np(oa["observation"] - ob["observation"])
    assert np.abs(noise[:, 7:14]).max() > 1e-3 and np.abs(noise[:, 7:14]).max() < 0.5
    np.testing.assert_array_equal(noise[:, :7], 0.0)  # other fields: no noise
    np.testing.assert_array_equal(_np(oa["achieved_goal"]), _np(ob["achieved_goal"]))
    again = a.reset(seed=2)
    np.testing.assert_array_equal(_np(again["observation"]), _np(oa["observation"]))
    a.close(), b.close()


# Targets step up to this far (rad) from the measured joints. The UR5e's wrist servos (kp 500,
# 28 N m limit) on near-zero inertias saturate beyond 28 / 500 = 0.056 rad, where the implicit
# integrator switches their damping derivative off and on each physics step; float32 and
# float64 rounding then flip that switch at different steps and the trajectories part (wrist_3
# up to ~0.5 rad apart at 0.06). Inside that range the two backends agree as for the others.
AMPLITUDE = {"ur5e": 0.02}


@needs_warp
@pytest.mark.slow
@pytest.mark.parametrize("robot", ROBOTS)
def test_configured_robot_parity(robot: str) -> None:
    warp_env, cpu_env = _pair(4, robot=robot, episode_steps=EPISODE)
    try:
        assert warp_env.task_spec == cpu_env.task_spec
        worst = _run_parity(warp_env, cpu_env, seed=5, amplitude=AMPLITUDE.get(robot, 0.06))
        print(f"{robot} worst differences:", worst)
    finally:
        warp_env.close()
        cpu_env.close()


@needs_warp
@pytest.mark.slow
def test_widowx_reach_parity() -> None:
    """``widowx_reach`` (reach on the WidowX 200, no collision cost) has the same Warp twin."""
    warp_env, cpu_env = _pair(4, task="widowx_reach", episode_steps=EPISODE)
    try:
        assert "collision" not in warp_env.task_spec.cost_kinds
        print("widowx_reach worst differences:", _run_parity(warp_env, cpu_env, seed=2, amplitude=0.1))
    finally:
        warp_env.close()
        cpu_env.close()
