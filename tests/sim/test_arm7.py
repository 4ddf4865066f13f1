"""arm7 model and physics wrapper: names, limits, contacts, kinematic quantities."""

from __future__ import annotations

import numpy as np
import pytest

from sim.robots.arm7 import constants as c
from sim.robots.arm7.physics import Arm7Physics

# Elbow folded to its limit with the wrist bent: the hand lands on the shoulder links.
SELF_COLLISION_Q = np.array([0.0, -0.785, 0.0, -3.07, 0.0, 1.0, 0.785])
# Shoulder pitched fully forward: the hand goes through the table top.
TABLE_COLLISION_Q = np.array([0.0, 1.2, 0.0, -2.356, 0.0, 1.571, 0.785])


@pytest.fixture(scope="module")
def physics() -> Arm7Physics:
    return Arm7Physics()


def test_model_matches_constants(physics: Arm7Physics) -> None:
    m = physics.model
    assert m.opt.timestep == pytest.approx(0.002)
    np.testing.assert_allclose(physics.pos_min, c.JOINT_POS_MIN)
    np.testing.assert_allclose(physics.pos_max, c.JOINT_POS_MAX)
    np.testing.assert_allclose(physics.ctrl_min, c.JOINT_POS_MIN)
    np.testing.assert_allclose(physics.ctrl_max, c.JOINT_POS_MAX)
    for joint, actuator in zip(c.JOINT_NAMES, c.ACTUATOR_NAMES, strict=True):
        assert m.actuator(actuator).trnid[0] == m.joint(joint).id
    for body in c.ARM_BODY_NAMES[1:]:
        assert m.body_gravcomp[m.body(body).id] == 1.0
    assert m.geom(c.TABLE_GEOM).id >= 0
    assert m.body(c.GOAL_MOCAP_BODY).mocapid[0] >= 0
    assert m.camera(c.CAMERA).id >= 0
    assert len(c.JOINT_VEL_MAX) == c.N_JOINTS
    assert np.all(np.asarray(c.HOME) > physics.pos_min)
    assert np.all(np.asarray(c.HOME) < physics.pos_max)


def test_home_is_contact_free_and_above_the_table(physics: Arm7Physics) -> None:
    physics.reset()
    np.testing.assert_allclose(physics.joint_pos(), c.HOME)
    assert physics.contacts().total == 0
    assert 0.2 < physics.ee_pos()[0] < 0.4
    assert physics.ee_pos()[2] > 0.3


def test_self_and_table_contacts_are_detected(physics: Arm7Physics) -> None:
    physics.set_joint_state(SELF_COLLISION_Q, np.zeros(c.N_JOINTS))
    contacts = physics.contacts()
    assert contacts.arm_self > 0
    assert contacts.arm_table == 0
    physics.set_joint_state(TABLE_COLLISION_Q, np.zeros(c.N_JOINTS))
    assert physics.contacts().arm_table > 0


def test_joint_limit_margin(physics: Arm7Physics) -> None:
    q = np.asarray(c.HOME).copy()
    q[0] = c.JOINT_POS_MAX[0] - 0.01
    physics.set_joint_state(q, np.zeros(c.N_JOINTS))
    margin = physics.joint_limit_margin()
    assert margin.shape == (c.N_JOINTS,)
    assert margin[0] == pytest.approx(0.01)
    assert np.all(margin > 0)


def test_ee_velocity_matches_finite_difference(physics: Arm7Physics) -> None:
    physics.reset()
    qd = np.linspace(-0.3, 0.3, c.N_JOINTS)
    physics.set_joint_state(np.asarray(c.HOME), qd)
    vel, jac = physics.ee_vel(), physics.ee_jacobian()
    assert jac.shape == (3, c.N_JOINTS)
    eps = 1e-6
    before = physics.ee_pos()
    physics.set_joint_state(np.asarray(c.HOME) + eps * qd, qd)
    np.testing.assert_allclose((physics.ee_pos() - before) / eps, vel, atol=1e-5)


def test_targets_are_clipped_to_the_actuator_range(physics: Arm7Physics) -> None:
    applied = physics.set_targets(np.full(c.N_JOINTS, 10.0))
    np.testing.assert_allclose(applied, c.JOINT_POS_MAX)
    np.testing.assert_allclose(physics.targets(), c.JOINT_POS_MAX)


def test_position_servos_hold_a_target(physics: Arm7Physics) -> None:
    physics.reset()
    target = np.asarray(c.HOME) + 0.1
    physics.set_targets(target)
    physics.step(500)  # 1 s
    np.testing.assert_allclose(physics.joint_pos(), target, atol=2e-3)
    assert np.abs(physics.joint_vel()).max() < 1e-2
