"""ros_nodes/ runs on a robot without torch: import every node and run them in-process with
torch blocked."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import ros_nodes.dds, ros_nodes.stack, ros_nodes.recorder_node
from ros_nodes.inprocess import InProcessBus
from ros_nodes.params import ParameterStore
from ros_nodes.policy_node import PolicyNode
from ros_nodes.safety_node import SafetyNode
from ros_nodes.sim_robot_node import SimRobotNode
bus, nodes = InProcessBus(), []
for cls in (SimRobotNode, SafetyNode, PolicyNode):
    store = ParameterStore(cls.name)
    store.set("bundle", sys.argv[1], "test", node_specific=False)
    store.set("robot", sys.argv[2], "test", node_specific=False)
    nodes.append(cls(bus.port(cls.name, store)))
for n in nodes:
    n.configure()
for n in nodes:
    n.activate()
bus.run_for(0.5)
assert nodes[2].steps >= 10 and nodes[1].runner.mode.value == "track", (nodes[2].steps, nodes[1].runner.mode)
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules if sys.modules[m] is not None)
print("ok")
"""


def test_nodes_import_and_run_without_torch() -> None:
    bundle = REPO / "tests/ros_nodes/data/reach_gcbc"
    robot = REPO / "configs/ros/arm7_reach.yaml"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(bundle), str(robot)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
