"""deploy/ runs on a robot without torch: import it and drive a Controller with torch blocked."""

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import numpy as np
import deploy, deploy.runtime.controller, deploy.offline.replay, deploy.offline.run
import deploy.logs.writer, deploy.logs.read
from deploy import Controller, load_bundle
bundle = load_bundle(sys.argv[1])
ctrl = Controller(bundle, bundle.contract.task)
state = {"joint_pos": np.zeros(7), "joint_vel": np.zeros(7), "ee_pos": np.array([0.5, 0, 0.3]),
         "goal": np.array([0.5, 0.1, 0.3])}
ctrl.reset(state)
cmd = ctrl.step(state)
assert cmd.shape == (7,) and np.all(np.isfinite(cmd))
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules if sys.modules[m] is not None)
print("ok")
"""


def test_deploy_imports_and_runs_without_torch(tiny_bundle: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_bundle)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
