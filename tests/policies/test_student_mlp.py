"""The one-step student as a plain MLP (``diffusion_student`` with ``net=mlp``): config refusals,
distillation from a tiny real teacher (reach data from the sim expert), and its lean export twin
through ``spine-export``'s Python API (float32 parity, int8 parity reported)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deploy.export.app import export_bundle
from policies.checkpoint import save_checkpoint
from policies.diffusion import DiffusionConfig, DiffusionPolicy
from policies.distill import DistilledPolicy, StudentConfig
from policies.family import TrainContext
from policies.student_net import StudentMLP
from sim import make

SMALL = dict(chunk_length=4, execute_steps=2, hidden=32, layers=1)
# wider, deeper and without the teacher's mean head (which is inside the pool's targets)
STUDENT = dict(SMALL, hidden=48, layers=2, mean_head=False, net="mlp", init_from_teacher=False, lr=1e-3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tiny_dataset: Path) -> dict[str, np.ndarray]:
    with np.load(tiny_dataset, allow_pickle=False) as z:
        return dict(z)


def context(data: dict[str, np.ndarray], steps: int) -> TrainContext:
    return TrainContext("reach", {}, data, batch_size=64, total_steps=steps, seed=0)


@pytest.fixture(scope="module")
def teacher(data: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny diffusion teacher on reach (60 steps: an imperfect map is still a map to distill)."""
    torch.manual_seed(0)
    config = DiffusionConfig(**SMALL, sampler="euler", sampler_steps=3)
    policy = DiffusionPolicy(make("reach").task_spec, config)
    policy.setup_training(context(data, 60))
    for step in range(1, 61):
        policy.update(step)
    return save_checkpoint(tmp_path_factory.mktemp("teacher"), policy.eval(), {}, 60, {})


@pytest.fixture(scope="module")
def student(data: dict[str, np.ndarray], teacher: Path) -> tuple[DistilledPolicy, list[float]]:
    """The MLP student after 150 steps, with its full-pool loss before and after."""
    torch.manual_seed(1)
    config = StudentConfig(**STUDENT, teacher=str(teacher), teacher_steps=3, pool_size=512)
    policy = DistilledPolicy(make("reach").task_spec, config)
    policy.setup_training(context(data, 150))
    pool_loss = lambda: float(policy.loss(policy._pool)[0].detach())  # noqa: E731
    losses = [pool_loss()]
    for step in range(1, 151):
        policy.update(step)
    losses.append(pool_loss())
    return policy.eval(), losses


def test_config_refuses_a_bad_net_and_the_teachers_weights_for_an_mlp() -> None:
    with pytest.raises(ValueError, match=r"StudentConfig\.net.*'mpl'"):
        StudentConfig(net="mpl")
    with pytest.raises(ValueError, match=r"init_from_teacher.*net='mlp'"):
        StudentConfig(net="mlp", init_from_teacher=True)
    default = StudentConfig()  # the MLP student, trained from scratch
    assert (default.net, default.init_from_teacher, default.hidden, default.layers) == ("mlp", False, 384, 3)


def test_hydra_accepts_net_and_rejects_a_typo_by_name() -> None:
    from hydra import compose, initialize_config_dir

    import policies.train_app  # noqa: F401  (registers the schemas)

    config_dir = str(Path(__file__).resolve().parents[2] / "configs")
    base = ["task=push", "dataset=x", "policy=diffusion_student", "policy.teacher=t"]
    with initialize_config_dir(version_base=None, config_dir=config_dir):
        cfg = compose("train", overrides=[*base, "policy.net=mlp", "policy.init_from_teacher=false"])
        assert StudentConfig(**cfg.policy).net == "mlp"
        with pytest.raises(Exception, match="nett"):
            compose("train", overrides=[*base, "policy.nett=mlp"])


def test_mlp_student_is_a_plain_mlp_without_mean_head_and_learns_the_teachers_map(
    student: tuple[DistilledPolicy, list[float]],
) -> None:
    policy, (before, after) = student
    assert isinstance(policy.net, StudentMLP) and policy.mean_net is None
    assert after < 0.7 * before, (before, after)
    assert policy.contract_fields() == {"chunk_length": 4, "sampler_steps": 1}


def test_mlp_student_exports_its_lean_twin_in_float32_and_int8(
    student: tuple[DistilledPolicy, list[float]], tmp_path: Path
) -> None:
    import onnx

    from deploy.export.quant import first_layer_nodes

    ckpt = save_checkpoint(tmp_path / "ckpt", student[0], {}, 150, {})
    report = export_bundle(ckpt, tmp_path / "fp32", samples=256)
    graph = report["graphs"]["policy.onnx"]
    assert graph["twin"] == "StudentMLPTwin" and "fallback_from" not in graph
    assert report["parity"]["max_abs_error"] <= 1e-4
    model = onnx.load(str(tmp_path / "fp32" / "policy.onnx"))
    gemms = [n.name for n in model.graph.node if n.op_type == "Gemm"]
    raw_fed = [name for name in first_layer_nodes(model) if name in gemms]
    assert raw_fed == gemms[:2]  # [obs, goal, noise] -> hidden and obs -> q: kept float32 by int8

    report = export_bundle(
        ckpt, tmp_path / "int8", samples=256, eval_episodes=1, quantize="int8", quant_tolerance=1.0
    )
    err = report["quantized"]["max_abs_error"]
    print(f"int8 max |torch - onnxruntime| = {err:.3g} rad; float32 {report['parity']['max_abs_error']:.3g}")
    assert np.isfinite(err) and err < 0.05  # reported, loosely bounded: int8 is lossy
    ops = [n.op_type for n in onnx.load(str(tmp_path / "int8" / "policy.onnx")).graph.node]
    matmuls = [op for op in ops if op in ("Gemm", "MatMul", "MatMulInteger")]
    assert sorted(matmuls) == ["MatMul"] * 2 + ["MatMulInteger"] * 2  # raw-input Gemms float32, rest int8
