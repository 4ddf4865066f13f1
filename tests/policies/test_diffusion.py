"""Diffusion policy: EDM preconditioning, receding horizon, guidance, training and the
one-step student on a tiny bimodal toy (two joints, targets +0.4 or -0.4 rad by episode)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from policies.checkpoint import load_checkpoint, save_checkpoint
from policies.dataset import TrajectoryDataset
from policies.denoiser import ChunkDenoiser, edm_scalings
from policies.diffusion import DiffusionConfig, DiffusionPolicy
from policies.distill import DistilledPolicy, StudentConfig
from policies.family import TrainContext
from tests.sim.toy import TOY_SPEC

MODE = 0.4  # rad: the toy's two target offsets are +MODE and -MODE
TOY = dict(
    chunk_length=4, execute_steps=2, hidden=64, layers=2, lr=1e-2, sampler_steps=8, noise_scale=1.0,
    sigma_data=1.0,
)  # fmt: skip
SPEC = TOY_SPEC


def toy_data(episodes: int = 64, length: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Joints at 0, goal 0, every expert target of an episode +MODE or -MODE (a coin flip);
    the executed ``action`` adds collection noise to it."""
    rng = np.random.default_rng(seed)
    n = episodes * length
    sign = np.repeat(rng.choice([-1.0, 1.0], episodes), length)
    obs = np.zeros((n, 2))  # one state: the mode is not observable
    goal = np.zeros((n, 1))
    expert = obs + MODE * sign[:, None]
    return {
        "observation": obs, "desired_goal": goal, "next_achieved_goal": goal,
        "expert_action": expert, "action": expert + 0.1 * rng.standard_normal((n, 2)),
        "episode": np.repeat(np.arange(episodes), length),
        "done": np.tile(np.arange(length) == length - 1, episodes),
    }  # fmt: skip


def ctx(steps: int) -> TrainContext:
    return TrainContext("toy", {}, toy_data(), batch_size=128, total_steps=steps, seed=0)


def chunks(policy: DiffusionPolicy, n: int = 200, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` chunks ``(n, H, 2)`` at q = 0 and the noise ``(n, H, 2)`` they came from."""
    noise = torch.randn(n, policy.config.chunk_length, 2, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return policy(torch.zeros(n, 2), torch.zeros(n, 1), noise), noise


def near_a_mode(chunk: torch.Tensor, tol: float) -> torch.Tensor:
    """(n,) whether every target of each chunk is within ``tol`` of one common mode."""
    side = torch.sign(chunk.mean(dim=(1, 2)))
    return ((chunk - side[:, None, None] * MODE).abs() < tol).all(dim=(1, 2))


Teacher = tuple[DiffusionPolicy, Path, list[float]]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Teacher:
    torch.manual_seed(0)
    policy = DiffusionPolicy(SPEC, DiffusionConfig(**TOY))
    policy.setup_training(ctx(300))
    losses = [policy.update(step)["loss"] for step in range(1, 301)]
    path = save_checkpoint(tmp_path_factory.mktemp("teacher"), policy.eval(), {}, 300, {})
    return policy, path, losses


def test_edm_scalings_match_their_definitions() -> None:
    sigma, sd = torch.tensor([0.0, 0.1, 1.0, 20.0]), 0.5
    c_skip, c_out, c_in, c_noise = edm_scalings(sigma, sd)
    torch.testing.assert_close(c_skip, sd**2 / (sigma**2 + sd**2))
    torch.testing.assert_close(c_out, sigma * sd / (sigma**2 + sd**2).sqrt())
    torch.testing.assert_close(c_in, 1 / (sigma**2 + sd**2).sqrt())
    torch.testing.assert_close(c_noise[1:], sigma[1:].log() / 4)
    assert c_skip[0] == 1 and c_out[0] == 0 and torch.isfinite(c_noise).all()
    # the clean sample has unit variance after c_in at every sigma: Var(c_in (y + sigma n)) = 1
    torch.testing.assert_close(c_in**2 * (sd**2 + sigma**2), torch.ones(4))


def test_denoiser_returns_its_input_at_sigma_zero() -> None:
    net = ChunkDenoiser(8, 3, 2, hidden=32, layers=2, sigma_data=1.0)
    torch.nn.init.normal_(net.out.weight)  # F != 0, so only the preconditioning can make D = x
    x, obs, goal, keep = torch.randn(5, 8), torch.randn(5, 3), torch.randn(5, 2), torch.ones(5)
    assert torch.equal(net(x, torch.tensor(0.0), obs, goal, keep), x)
    assert not torch.allclose(net(x, torch.tensor(1.0), obs, goal, keep), x)


def test_receding_horizon_executes_exactly_execute_steps_then_replans() -> None:
    policy = DiffusionPolicy(SPEC, DiffusionConfig(**{**TOY, "execute_steps": 3})).eval()
    planned: list[torch.Tensor] = []
    forward = policy.forward

    def recording(*args: torch.Tensor) -> torch.Tensor:
        planned.append(forward(*args))
        return planned[-1]

    policy.forward = recording
    obs = {"observation": np.zeros(2), "desired_goal": np.zeros(1)}
    actions = [policy.act(obs) for _ in range(7)]
    assert len(planned) == 3  # at calls 0, 3 and 6
    for i, a in enumerate(actions):
        np.testing.assert_allclose(a, planned[i // 3][0, i % 3].numpy(), rtol=0, atol=1e-7)
    policy.reset()
    policy.act(obs)
    assert len(planned) == 4  # reset() dropped the two queued targets of the third chunk


def test_guidance_weight_zero_ignores_the_goal_and_one_is_plain_conditioning() -> None:
    torch.manual_seed(0)
    policy = DiffusionPolicy(SPEC, DiffusionConfig(**TOY)).eval()
    torch.nn.init.normal_(policy.net.out.weight, std=0.3)
    torch.nn.init.normal_(policy.net.null_goal)
    x, obs, sigma = torch.randn(1, 8).expand(3, 8), torch.zeros(3, 2), torch.tensor(0.7)
    goals = torch.tensor([[-1.0], [0.0], [2.0]])
    with torch.no_grad():
        cond = policy.net(x, sigma, obs, goals, torch.ones(3))
        null = policy.net(x, sigma, obs, goals, torch.zeros(3))
        torch.testing.assert_close(policy.guided(obs, goals, 1.0)(x, sigma), cond)
        unguided = policy.guided(obs, goals, 0.0)(x, sigma)
        torch.testing.assert_close(unguided, null)
        torch.testing.assert_close(unguided[0], unguided[2])  # the goal plays no part
        torch.testing.assert_close(policy.guided(obs, goals, 2.5)(x, sigma), null + 2.5 * (cond - null))
    assert not torch.allclose(cond[0], cond[2])


def test_training_loss_decreases_and_samples_keep_both_modes(teacher: Teacher) -> None:
    policy, _, losses = teacher
    assert np.mean(losses[-50:]) < 0.5 * np.mean(losses[:50])
    chunk, _ = chunks(policy)
    assert near_a_mode(chunk, tol=0.1).float().mean() > 0.9  # each sample commits to a mode
    assert 0.25 < (chunk.mean(dim=(1, 2)) > 0).float().mean() < 0.75  # and both modes appear


def test_student_maps_distinct_noises_to_distinct_modes(teacher: Teacher) -> None:
    policy, path, _ = teacher
    torch.manual_seed(1)
    small = {k: TOY[k] for k in ("chunk_length", "execute_steps", "hidden", "layers", "sigma_data")}
    student = DistilledPolicy(
        SPEC,
        StudentConfig(
            **small,
            net="denoiser",
            init_from_teacher=True,
            lr=1e-3,
            teacher=str(path),
            teacher_steps=8,
            teacher_noise_scale=1.0,
            pool_size=4096,
        ),
    )
    student.setup_training(ctx(200))
    for step in range(1, 201):
        student.update(step)
    student.eval()
    got, _ = chunks(student)
    want, _ = chunks(policy)
    assert near_a_mode(got, tol=0.15).float().mean() > 0.85
    assert 0.25 < (got.mean(dim=(1, 2)) > 0).float().mean() < 0.75
    same_mode = torch.sign(got.mean(dim=(1, 2))) == torch.sign(want.mean(dim=(1, 2)))
    assert same_mode.float().mean() > 0.85  # the same noise gives the teacher's mode
    assert student.contract_fields() == {"chunk_length": 4, "sampler_steps": 1}


def test_checkpoint_round_trip_gives_identical_chunks_for_the_same_noise(teacher: Teacher) -> None:
    policy, path, _ = teacher
    loaded, meta = load_checkpoint(path)
    a, _ = chunks(policy, n=8)
    b, _ = chunks(loaded, n=8)
    assert torch.equal(a, b)
    assert meta["contract"]["chunk_length"] == 4 and meta["contract"]["sampler_steps"] == 8
    assert [t["name"] for t in meta["contract"]["inputs"]] == ["observation", "goal", "noise"]


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="sampler"):
        DiffusionConfig(sampler="hune")
    with pytest.raises(ValueError, match="execute_steps"):
        DiffusionConfig(chunk_length=4, execute_steps=5)
    with pytest.raises(ValueError, match="sampler_steps"):
        StudentConfig(sampler_steps=4)
    with pytest.raises(ValueError, match="labels"):
        DiffusionConfig(labels="actions")
    student = DistilledPolicy(SPEC, StudentConfig(chunk_length=4, execute_steps=2, hidden=64, layers=2))
    with pytest.raises(ValueError, match="teacher"):
        student.setup_training(ctx(1))
    data = {k: v for k, v in toy_data().items() if k != "expert_action"}
    policy = DiffusionPolicy(SPEC, DiffusionConfig(chunk_length=4, execute_steps=2, hidden=64, layers=2))
    with pytest.raises(ValueError, match="expert_action"):
        policy.setup_training(TrainContext("toy", {}, data, batch_size=8, total_steps=1, seed=0))


def test_chunks_come_from_the_labels_array_not_the_executed_actions() -> None:
    data = TrajectoryDataset(toy_data())
    idx = np.arange(0, 64, 8)  # first step of the first 8 episodes: the chunk stays in the episode
    for labels in ("expert_action", "action"):
        config = DiffusionConfig(chunk_length=4, execute_steps=2, hidden=8, layers=1, labels=labels)
        policy = DiffusionPolicy(SPEC, config)
        want = torch.as_tensor(data.data[labels][idx[:, None] + np.arange(4)], dtype=torch.float32)
        torch.testing.assert_close(policy.chunk_offsets(data, idx), want.flatten(1))  # q = 0


def test_hydra_configs_compose_and_reject_typos() -> None:
    from hydra import compose, initialize_config_dir

    import policies.train_app  # noqa: F401  (registers the schemas)

    config_dir = str(Path(__file__).resolve().parents[2] / "configs")
    with initialize_config_dir(version_base=None, config_dir=config_dir):
        base = ["task=push", "dataset=x"]
        cfg = compose("train", overrides=[*base, "policy=diffusion", "policy.guidance=2"])
        assert DiffusionConfig(**cfg.policy).guidance == 2.0
        cfg = compose("train", overrides=[*base, "policy=diffusion_student", "policy.teacher=t"])
        assert StudentConfig(**cfg.policy).sampler_steps == 1
        with pytest.raises(Exception, match="sampler_step"):
            compose("train", overrides=[*base, "policy=diffusion", "policy.sampler_step=3"])


def test_a_smaller_student_starts_from_scratch_not_from_the_teachers_weights(teacher: Teacher) -> None:
    """Width and depth may differ from the teacher's only without init_from_teacher."""
    _, path, _ = teacher
    shared = {k: TOY[k] for k in ("chunk_length", "execute_steps", "sigma_data")}
    smaller = {**shared, "hidden": TOY["hidden"] // 2, "layers": 1, "teacher": str(path), "pool_size": 256}
    smaller["net"] = "denoiser"
    with pytest.raises(ValueError, match=r"hidden.*init_from_teacher=false"):
        DistilledPolicy(SPEC, StudentConfig(**smaller, init_from_teacher=True)).setup_training(ctx(2))
    student = DistilledPolicy(SPEC, StudentConfig(**smaller, init_from_teacher=False, lr=1e-3))
    student.setup_training(ctx(2))
    assert np.isfinite(student.update(1)["loss"])
    size = lambda m: sum(p.numel() for p in m.net.parameters())  # noqa: E731
    assert size(student) < size(teacher[0])


def test_a_checkpoint_written_with_horizon_loads_as_chunk_length(teacher: Teacher, tmp_path: Path) -> None:
    """``DiffusionConfig.chunk_length`` was ``horizon``: old checkpoints load with the same chunks."""
    import json
    import shutil

    policy, path, _ = teacher
    old = Path(shutil.copytree(path, tmp_path / "old"))
    meta = json.loads((old / "checkpoint.json").read_text())
    meta["policy_config"]["horizon"] = meta["policy_config"].pop("chunk_length")  # as written before
    (old / "checkpoint.json").write_text(json.dumps(meta))
    loaded, _ = load_checkpoint(old)
    assert loaded.config.chunk_length == TOY["chunk_length"]
    assert torch.equal(chunks(loaded, n=8)[0], chunks(policy, n=8)[0])
