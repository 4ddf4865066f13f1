"""The learned critic inside the Controller: shipped in the bundle by ``spine-export --critic``,
loaded and contract-checked by the Controller, its risk and choice reported on every tick."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import sim
from deploy.export.app import main as export_main
from deploy.runtime.controller import CRITIC_FILE, Controller
from deploy.safety.critic import CriticGuard
from deploy.safety.filter import Stage
from sim.contract import ContractMismatch
from tests.deploy.test_safety_critic import untrained_critic


@pytest.fixture(scope="module")
def reach_critic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_critic("reach", tmp_path_factory.mktemp("reach_critic"))


@pytest.fixture()
def bundle_with_critic(tiny_checkpoint: Path, reach_critic: Path, tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    assert (
        export_main(
            [str(tiny_checkpoint), "--out", str(out), "--samples", "32", "--critic", str(reach_critic)]
        )
        == 0
    )
    return out


def test_export_ships_the_critic_and_the_controller_uses_it(bundle_with_critic: Path) -> None:
    assert (bundle_with_critic / CRITIC_FILE).is_file()
    env = sim.make("reach")
    env.reset(seed=3)
    ctrl = Controller(bundle_with_critic, env.task_spec)
    assert isinstance(ctrl.critic, CriticGuard) and ctrl.critic.period_ticks == 1  # ticks at policy rate
    ctrl.reset(env.state())
    ticks = []
    for _ in range(5):
        tick = ctrl.step_info(env.state())
        env.step(tick.command)
        ticks.append(tick)
    assert all(t.critic_ran and 0.0 <= t.risk <= 1.0 and t.choice >= 0 for t in ticks)
    assert all((Stage.CRITIC in t.stages) == (t.choice > 0) for t in ticks)
    plain = Controller(bundle_with_critic, env.task_spec, critic=False)
    plain.reset(env.state())
    tick = plain.step_info(env.state())
    assert plain.critic is None and np.isnan(tick.risk) and tick.choice == -1 and not tick.critic_ran


def test_export_refuses_a_critic_for_another_robot(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = untrained_critic("push", tmp_path / "push_critic")
    out = tmp_path / "bundle"
    assert (
        export_main([str(tiny_checkpoint), "--out", str(out), "--samples", "32", "--critic", str(other)]) == 1
    )
    assert "push" in capsys.readouterr().err or not (out / CRITIC_FILE).exists()
    assert not (out / CRITIC_FILE).exists()


def test_controller_refuses_a_mismatched_critic_in_the_bundle(
    bundle_with_critic: Path, tmp_path: Path
) -> None:
    other = untrained_critic("push", tmp_path / "push_critic")
    shutil.copyfile(other, bundle_with_critic / CRITIC_FILE)
    with pytest.raises(ContractMismatch):
        Controller(bundle_with_critic, sim.make("reach").task_spec)
