"""Spine's reach task on Isaac Lab 3 (kit-less, Newton) and back (docs/isaac.md): in the Isaac
Lab environment (``.venv-isaac``, a subprocess) the env matches Spine's task spec and its MuJoCo
physics, and a tiny rsl_rl training writes a run; here, in Spine's environment, that run is
imported as a ``ppo`` checkpoint, exported to a bundle, and runs through the Controller
(``spine-run``), replay and the ROS 2 nodes (``spine-stack``).

Skipped, with the reason, where ``./spine.sh setup-isaac`` has not made ``.venv-isaac`` (CI
does not: several GB). Each Isaac Lab process pays ~10 s of imports and ~10 s to build the
env; Newton's CPU kernels must be compiled already (``setup-isaac`` does it once).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.robots import REPO, SHARED_ROBOTS

ISAAC_PY = REPO / ".venv-isaac" / "bin" / "python"
BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not ISAAC_PY.is_file(),
        reason=f"no Isaac Lab environment at {ISAAC_PY.parents[1]}: ./spine.sh setup-isaac (docs/isaac.md)",
    ),
]


def isaac(log: Path, *args: str) -> subprocess.Popen:
    """Start ``python -m <args>`` in the Isaac Lab environment from the repository root, its
    output to ``log`` (a file: a pipe nobody reads while it runs could fill up and stall it)."""
    env = dict(os.environ)
    if SHARED_ROBOTS.is_dir():
        env.setdefault("MENAGERIE_ROOT", str(SHARED_ROBOTS))
    with log.open("w") as f:
        proc = subprocess.Popen(
            [str(ISAAC_PY), "-m", *args], cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env
        )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def finished(proc: subprocess.Popen, timeout: float = 300) -> None:
    """Wait for ``proc`` and check it exited with 0 (else fail with the end of its output)."""
    proc.wait(timeout=timeout)
    assert proc.returncode == 0, f"{proc.args[2]} failed:\n{proc.log.read_text()[-5000:]}"  # type: ignore[attr-defined]


def sh(*args: str) -> str:
    out = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen, Path]]:
    """A tiny rsl_rl training of Spine-Reach-Arm7-v0 (4 envs, 2 iterations of 2 steps), started
    first and left running while the env check runs (two Isaac Lab processes, two cores)."""
    out = tmp_path_factory.mktemp("isaac") / "run"
    args = ["--robot", "arm7", "--num_envs", "4", "--max_iterations", "2", "--num_steps_per_env", "2"]
    proc = isaac(out.with_suffix(".log"), "isaac.train", *args, "--out", str(out))
    yield proc, out
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def run_dir(training: tuple[subprocess.Popen, Path]) -> Path:
    """The finished training's run folder."""
    proc, out = training
    finished(proc)
    return out


def test_the_isaac_env_is_spines_reach_task(training: object, tmp_path: Path) -> None:
    """Same fields, goal, rates and episode length as ``sim.make("reach")``; the same physics
    as Spine's MuJoCo arm to a fraction of a millimetre over 12 random control steps."""
    import sim

    args = ["--robot", "arm7", "--num_envs", "2", "--steps", "1", "--parity", "12"]
    finished(isaac(tmp_path / "check.log", "isaac.check", *args, "--out", str(tmp_path / "check.json")))
    report = json.loads((tmp_path / "check.json").read_text())
    spec = sim.make("reach").task_spec
    assert report["observation_fields"] == [[f.name, f.size, f.unit] for f in spec.observation]
    assert report["goal_field"] == [spec.goal.name, spec.goal.size, spec.goal.unit]
    sizes = {"observation": spec.obs_size, "goal": spec.goal.size, "policy": spec.obs_size + spec.goal.size}
    assert report["groups"] == {k: [2, n] for k, n in sizes.items()}
    assert report["max_episode_length"] == spec.episode_steps
    assert report["decimation"] == round(spec.physics_hz / spec.control_hz)
    assert report["finite"] and set(report["costs"]) == set(spec.cost_kinds)
    assert report["parity"]["ee_m"] < 1e-3 and report["parity"]["joint_rad"] < 5e-3, report["parity"]


def test_rsl_rl_run_imports_exports_and_runs_in_spine(run_dir: Path, tmp_path: Path) -> None:
    """The run's actor becomes a ``ppo`` checkpoint (normalizer inside, same outputs as rsl_rl's
    actor), a bundle, and runs through the Controller, replay and the ROS 2 nodes."""
    import torch

    from isaac.import_policy import import_run
    from policies.checkpoint import load_checkpoint

    assert (run_dir / "model_1.pt").is_file() and (run_dir / "params" / "agent.yaml").is_file()
    ckpt = import_run(run_dir, tmp_path / "checkpoint")
    policy, meta = load_checkpoint(ckpt)
    assert meta["family"] == "ppo" and meta["contract"]["task"]["robot"] == "arm7"
    assert bool(policy.obs_norm.fitted) and bool(policy.goal_norm.fitted)
    _same_as_rsl_rl_actor(policy, run_dir / "model_1.pt", torch)

    d = tmp_path
    sh("spine-export", str(ckpt), "--out", f"{d}/bundle", "--samples", "64")
    contract = json.loads((d / "bundle/contract.json").read_text())
    assert contract["family"] == "ppo" and contract["train_config"]["source"] == "isaaclab"
    out = sh("spine-run", f"{d}/bundle", "--episodes", "2", "--log", f"{d}/run")
    summary = json.loads((d / "run/summary.json").read_text())
    assert summary["episodes"] == 2 and "success" in out
    sh("spine-replay", f"{d}/run/log", "--bundle", f"{d}/bundle", "--out", f"{d}/replay")
    assert json.loads((d / "replay/report.json").read_text())["command_error_rad"]["max"] < 1e-9

    from tests.ros_nodes.domains import fresh_domain

    params = (REPO / "configs/ros/stack.yaml").read_text()
    params = re.sub(r"bundle: runs/demo/bundle.*", f"bundle: {d}/bundle", params)
    (d / "stack.yaml").write_text(params.replace("episodes: 10", "episodes: 1"))
    domain = str(fresh_domain())
    sh("spine-stack", "--params-file", f"{d}/stack.yaml", "--out", f"{d}/stack", "--domain-id", domain)
    ran = json.loads((d / "stack/sim_summary.json").read_text())
    assert ran["episodes"] == 1 and ran["bad_commands"] == 0


def _same_as_rsl_rl_actor(policy: object, model_pt: Path, torch: object) -> None:
    """rsl_rl's own actor (where rsl-rl-lib is installed here) on random inputs: its
    deterministic step ``a`` gives the targets ``q + max_delta * a`` the Spine policy computes."""
    rsl = pytest.importorskip("rsl_rl.models")
    from tensordict import TensorDict

    from sim.spec import JOINT_POS, field_offset

    spec = policy.spec
    gen = torch.Generator().manual_seed(0)
    obs = torch.randn(32, spec.obs_size, generator=gen)
    goal = torch.rand(32, spec.goal.size, generator=gen)
    groups = TensorDict({"observation": obs, "goal": goal}, batch_size=[32])
    beta = {"class_name": "BetaDistribution", "action_range": (-1.0, 1.0)}
    c = policy.config
    actor = rsl.MLPModel(
        groups, {"actor": ["observation", "goal"]}, "actor", spec.n_joints, hidden_dims=[c.hidden] * c.layers,
        activation=c.activation, obs_normalization=True, distribution_cfg=beta,
    )  # fmt: skip
    actor.load_state_dict(torch.load(model_pt, weights_only=True)["actor_state_dict"])
    actor.eval()
    with torch.no_grad():
        a = actor(groups)
        ours = policy(obs, goal)
    start = field_offset(spec.observation, JOINT_POS)
    q = obs[:, start : start + spec.n_joints]
    expected = q + torch.tensor(spec.action.max_delta) * a.clamp(-1, 1)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), atol=1e-5)
