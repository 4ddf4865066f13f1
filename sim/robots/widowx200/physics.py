"""widowx200 physics: the shared servo-arm physics with the wx200's constants."""

from __future__ import annotations

from pathlib import Path

import mujoco

from sim.robots.servo_arm import ServoArmPhysics
from sim.robots.widowx200 import constants as c


class WidowXPhysics(ServoArmPhysics):
    """The wx200 model and its simulation state (5 joints; see ``ServoArmPhysics``)."""

    def __init__(self, xml_path: Path = c.XML_PATH) -> None:
        super().__init__(mujoco.MjModel.from_xml_path(str(xml_path)), c)
        self.reset()
